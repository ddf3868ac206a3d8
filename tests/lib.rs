//! Contract checks: the state machine, the SAM template, the bake document and the step crates
//! held against each other. Each check returns the list of rule violations (empty = holds), so
//! the tests can prove a check fails on a broken copy as well as passes on the real files.
//! Test-only code: a file that cannot be read is a failed test, hence the panics.
#![allow(clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use golden_ami_core::error::{ERROR_NAMES, RETRYABLE_ERROR_NAMES};
use golden_ami_core::targets::MAX_APPROVAL_MINUTES;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

/// The Lambda service errors every Task retries, besides our retryable names.
pub const LAMBDA_TRANSIENT_ERRORS: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

pub fn definition() -> Json {
    serde_json::from_str(&read("statemachine/golden-ami-pipeline.asl.json"))
        .unwrap_or_else(|error| panic!("ASL: {error}"))
}

pub fn yaml(relative: &str) -> Yaml {
    serde_yaml_ng::from_str(&read(relative)).unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// The operator CLI: a binary of the workspace, but no Lambda.
pub const CLI_BINARY: &str = "golden-ami";

/// The binary names of the workspace's step crates (the Lambdas; not the operator CLI).
pub fn workspace_binaries() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let crates = root().join("crates");
    let entries =
        std::fs::read_dir(&crates).unwrap_or_else(|error| panic!("{}: {error}", crates.display()));
    for entry in entries.flatten() {
        let Ok(manifest) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else {
            continue;
        };
        let manifest: toml::Table =
            toml::from_str(&manifest).unwrap_or_else(|error| panic!("{error}"));
        for bin in manifest
            .get("bin")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(name) = bin.get("name").and_then(|n| n.as_str())
                && name != CLI_BINARY
            {
                names.insert(name.to_string());
            }
        }
    }
    names
}

fn top_states(definition: &Json) -> &serde_json::Map<String, Json> {
    definition["States"]
        .as_object()
        .unwrap_or_else(|| panic!("the definition has no States"))
}

/// A Map state's iteration: its first state and the names of its states (not those of Maps
/// nested in it).
#[derive(Debug, Clone)]
pub struct Processor {
    pub start: String,
    pub states: BTreeSet<String>,
}

/// Every state of the definition, those of every Map's ItemProcessor included (state names are
/// unique across the whole machine), and the processor of every Map by the Map's name.
pub fn machine(definition: &Json) -> (serde_json::Map<String, Json>, BTreeMap<String, Processor>) {
    fn walk(
        states: &serde_json::Map<String, Json>,
        all: &mut serde_json::Map<String, Json>,
        maps: &mut BTreeMap<String, Processor>,
    ) {
        for (name, state) in states {
            all.insert(name.clone(), state.clone());
            let processor = &state["ItemProcessor"];
            if let Some(inner) = processor["States"].as_object() {
                maps.insert(
                    name.clone(),
                    Processor {
                        start: processor["StartAt"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        states: inner.keys().cloned().collect(),
                    },
                );
                walk(inner, all, maps);
            }
        }
    }
    let (mut all, mut maps) = (serde_json::Map::new(), BTreeMap::new());
    walk(top_states(definition), &mut all, &mut maps);
    (all, maps)
}

/// The state `name` wherever it is in the definition (for tests that break a copy on purpose).
pub fn state_mut<'a>(definition: &'a mut Json, name: &str) -> &'a mut Json {
    fn find<'a>(states: &'a mut Json, name: &str) -> Option<&'a mut Json> {
        let map = states.as_object_mut()?;
        if map.contains_key(name) {
            return map.get_mut(name);
        }
        map.values_mut().find_map(|state| {
            let inner = state.get_mut("ItemProcessor")?.get_mut("States")?;
            find(inner, name)
        })
    }
    match find(&mut definition["States"], name) {
        Some(state) => state,
        None => panic!("no state {name} in the definition"),
    }
}

/// Every state of the definition, nested ones included.
fn states(definition: &Json) -> serde_json::Map<String, Json> {
    machine(definition).0
}

fn is_task(state: &Json) -> bool {
    state["Type"] == "Task"
}

/// The callback pattern's resource: Step Functions invokes Parameters.FunctionName with a task
/// token and waits for SendTaskSuccess / SendTaskFailure.
pub const CALLBACK_RESOURCE: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

/// The `${Name}` placeholder of a Task's function: its Resource, or for a callback Task its
/// Parameters.FunctionName.
fn placeholder(state: &Json) -> Option<String> {
    let resource = state["Resource"].as_str()?;
    let function = if resource == CALLBACK_RESOURCE {
        state["Parameters"]["FunctionName"].as_str()?
    } else {
        resource
    };
    function
        .strip_prefix("${")?
        .strip_suffix('}')
        .map(str::to_string)
}

/// Rule: every Task's placeholder is substituted with a function of the template whose Binary is
/// a workspace binary, and every function of the template is used by some Task.
pub fn check_functions(
    definition: &Json,
    template: &Yaml,
    binaries: &BTreeSet<String>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let resources = &template["Resources"];
    let Some(machine) = resources.as_mapping().and_then(|m| {
        m.values()
            .find(|r| r["Type"].as_str() == Some("AWS::Serverless::StateMachine"))
    }) else {
        return vec!["the template has no AWS::Serverless::StateMachine".into()];
    };
    let substitutions = &machine["Properties"]["DefinitionSubstitutions"];
    let functions: BTreeMap<String, &Yaml> = resources
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(k, r)| Some((k.as_str()?.to_string(), r)))
        .collect();
    let mut used = BTreeSet::new();
    for (name, state) in &states(definition) {
        if !is_task(state) {
            continue;
        }
        let Some(placeholder) = placeholder(state) else {
            violations.push(format!(
                "Task {name}: Resource is not a ${{...}} placeholder"
            ));
            continue;
        };
        let function = match &substitutions[placeholder.as_str()] {
            Yaml::Tagged(tagged) if tagged.tag == "GetAtt" => tagged
                .value
                .as_str()
                .and_then(|v| v.strip_suffix(".Arn"))
                .map(str::to_string),
            _ => None,
        };
        let Some(function) = function else {
            violations.push(format!("Task {name}: placeholder {placeholder} has no DefinitionSubstitution !GetAtt <Function>.Arn"));
            continue;
        };
        if !functions.contains_key(&function) {
            violations.push(format!("Task {name}: {placeholder} names {function}, which is not a function of the template"));
            continue;
        }
        used.insert(function);
    }
    for (function, resource) in &functions {
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        if !binaries.contains(binary) {
            violations.push(format!(
                "function {function}: Binary {binary:?} is not a binary of the workspace"
            ));
        }
        if used.contains(function) {
            continue;
        }
        // The one kind of function outside the definition: invoked by an EventBridge rule on
        // the state machine's own executions (the reaper).
        let on_executions = resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .any(|(_, event)| {
                event["Type"].as_str() == Some("EventBridgeRule")
                    && event["Properties"]["Pattern"]["source"]
                        .as_sequence()
                        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some("aws.states")))
            });
        if !on_executions {
            violations.push(format!(
                "function {function} is used by no Task and no rule on the executions"
            ));
        }
    }
    violations
}

/// Rule: every Task retries the transient Lambda errors and our retryable names, and catches
/// States.ALL with ResultPath $.error (the failure path's own Tasks: into their own field);
/// every Map catches States.ALL too (an iteration's uncaught error, a result too large).
pub fn check_retry_and_catch(definition: &Json) -> Vec<String> {
    let mut violations = Vec::new();
    for (name, state) in &states(definition) {
        let kind = match state["Type"].as_str() {
            Some("Task") => "Task",
            Some("Map") => "Map",
            _ => continue,
        };
        if kind == "Task" {
            check_retries(name, state, &mut violations);
        }
        let catches = state["Catch"].as_array().cloned().unwrap_or_default();
        let catch_all = catches.iter().find(|c| {
            c["ErrorEquals"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x == "States.ALL"))
        });
        match catch_all {
            None => violations.push(format!("{kind} {name} has no Catch on States.ALL")),
            Some(catch) => {
                let path = catch["ResultPath"].as_str().unwrap_or_default();
                if !path.starts_with("$.") || path == "$" {
                    violations.push(format!(
                        "{kind} {name}: Catch ResultPath {path:?} would overwrite the state"
                    ));
                }
            }
        }
    }
    violations
}

fn check_retries(name: &str, state: &Json, violations: &mut Vec<String>) {
    {
        let retried: BTreeSet<&str> = state["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|retry| retry["ErrorEquals"].as_array().into_iter().flatten())
            .filter_map(Json::as_str)
            .collect();
        for error in LAMBDA_TRANSIENT_ERRORS.iter().chain(RETRYABLE_ERROR_NAMES) {
            if !retried.contains(error) {
                violations.push(format!("Task {name} does not retry {error}"));
            }
        }
    }
}

/// Rule: every custom (non States./Lambda.) name in an ErrorEquals is a StepError name.
pub fn check_error_names(definition: &Json) -> Vec<String> {
    let mut violations = Vec::new();
    for (name, state) in &states(definition) {
        let lists = state["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(state["Catch"].as_array().into_iter().flatten());
        for entry in lists {
            for error in entry["ErrorEquals"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
            {
                if !error.starts_with("States.")
                    && !error.starts_with("Lambda.")
                    && !ERROR_NAMES.contains(&error)
                {
                    violations.push(format!(
                        "state {name}: ErrorEquals names {error}, which no step raises"
                    ));
                }
            }
        }
    }
    violations
}

/// The states a state can go to: (Next / Choices / Default, Catch targets).
fn transitions(state: &Json) -> (Vec<String>, Vec<String>) {
    let mut normal = Vec::new();
    if let Some(next) = state["Next"].as_str() {
        normal.push(next.to_string());
    }
    for choice in state["Choices"].as_array().into_iter().flatten() {
        if let Some(next) = choice["Next"].as_str() {
            normal.push(next.to_string());
        }
    }
    if let Some(default) = state["Default"].as_str() {
        normal.push(default.to_string());
    }
    let catches = state["Catch"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Next"].as_str().map(str::to_string))
        .collect();
    (normal, catches)
}

/// The boolean an iteration's last state records about itself (`verified`, `published`):
/// Some((flag, value)) for a Pass that ends an iteration with a literal boolean.
fn iteration_flag(state: &Json) -> Option<(String, bool)> {
    if state["Type"] != "Pass" || state["End"] != true {
        return None;
    }
    state["Parameters"]
        .as_object()?
        .iter()
        .find_map(|(key, value)| value.as_bool().map(|b| (key.clone(), b)))
}

/// The state a Map's result check sends the run to when an iteration recorded its flag false
/// (the Choice after the check Pass; see `check_map_results_are_checked`).
fn failed_iteration_target(states: &serde_json::Map<String, Json>, map: &str) -> Option<String> {
    let check = states.get(states[map]["Next"].as_str()?)?;
    let variable = format!("{}.anyFailed", check["ResultPath"].as_str()?);
    let choice = states.get(check["Next"].as_str()?)?;
    choice["Choices"]
        .as_array()?
        .iter()
        .find(|rule| {
            rule["Variable"].as_str() == Some(variable.as_str()) && rule["BooleanEquals"] == true
        })
        .and_then(|rule| rule["Next"].as_str().map(str::to_string))
}

/// The states a state leads to in the flattened machine: its own transitions, a Map's first
/// iteration state, and from an iteration's last state what comes after its Map: the Map's
/// Next, or for an iteration that recorded `flag: false` (it caught its own failure) the
/// failure branch of the Map's result check.
fn graph(definition: &Json) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let (states, maps) = machine(definition);
    let mut edges: BTreeMap<String, (Vec<String>, Vec<String>)> = states
        .iter()
        .map(|(name, state)| (name.clone(), transitions(state)))
        .collect();
    for (map, processor) in &maps {
        let after: Vec<String> = states[map]["Next"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect();
        let failed: Vec<String> = failed_iteration_target(&states, map).into_iter().collect();
        if let Some(edge) = edges.get_mut(map) {
            // Entering the Map runs its iterations; its Next comes after them.
            edge.0 = vec![processor.start.clone()];
        }
        for name in &processor.states {
            let state = &states[name];
            if state["End"] != true {
                continue;
            }
            let next = match iteration_flag(state) {
                Some((_, false)) => &failed,
                _ => &after,
            };
            if let Some(edge) = edges.get_mut(name) {
                edge.0.extend(next.iter().cloned());
            }
        }
    }
    edges
}

/// The states whose success is the gate of publishing: the verification of each region's
/// golden copy and the boot test's verdict.
pub const PUBLISH_GATES: &[&str] = &["VerifyImage", "CheckTest"];

/// Rule: PublishPointer is reachable, and only through the success transition of every gate
/// (leaving a gate through its Catch means it failed).
pub fn check_gates_before_publish(definition: &Json, gates: &[&str]) -> Vec<String> {
    let edges = graph(definition);
    let reach = |blocked: Option<&str>| reachable(&edges, vec![start(definition)], blocked);
    let mut violations = Vec::new();
    if !reach(None).contains("PublishPointer") {
        violations.push("PublishPointer is not reachable from the start".into());
    }
    for gate in gates {
        if !edges.contains_key(*gate) {
            violations.push(format!("the gate {gate} is not a state of the definition"));
        } else if reach(Some(gate)).contains("PublishPointer") {
            violations.push(format!(
                "PublishPointer is reachable without passing {gate}"
            ));
        }
    }
    violations
}

/// The definition's StartAt.
fn start(definition: &Json) -> String {
    definition["StartAt"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every state reachable from `starts` in the flattened machine, every transition followed
/// except the success transitions of `blocked`: leaving a gate through its Catch means it
/// failed, and that passes nothing.
fn reachable(
    edges: &BTreeMap<String, (Vec<String>, Vec<String>)>,
    starts: Vec<String>,
    blocked: Option<&str>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = starts;
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some((normal, catches)) = edges.get(&name) {
            if Some(name.as_str()) != blocked {
                stack.extend(normal.iter().cloned());
            }
            stack.extend(catches.iter().cloned());
        }
    }
    seen
}

/// Rule: a Map whose iterations record a flag (`verified`, `published`) is followed by a Pass
/// that asks whether any iteration recorded it false, then a Choice that takes the failure path
/// when one did: a region that failed stops its family; the iterations cannot fail the Map
/// themselves (each catches its own failure so the others finish).
pub fn check_map_results_are_checked(definition: &Json) -> Vec<String> {
    let (states, maps) = machine(definition);
    let mut violations = Vec::new();
    for (map, processor) in &maps {
        let flags: BTreeSet<String> = processor
            .states
            .iter()
            .filter_map(|name| iteration_flag(&states[name]).map(|(flag, _)| flag))
            .collect();
        let Some(flag) = flags.first() else {
            continue;
        };
        let result = states[map]["ResultPath"].as_str().unwrap_or_default();
        let expected = format!("States.ArrayContains({result}[*].{flag}, false)");
        let check_name = states[map]["Next"].as_str().unwrap_or_default();
        let check = &states.get(check_name).cloned().unwrap_or_default();
        let asks = check["Parameters"]["anyFailed.$"].as_str() == Some(expected.as_str());
        if !asks {
            violations.push(format!(
                "{map} is not followed by a Pass computing anyFailed.$ = {expected}"
            ));
            continue;
        }
        let variable = format!(
            "{}.anyFailed",
            check["ResultPath"].as_str().unwrap_or_default()
        );
        let choice_name = check["Next"].as_str().unwrap_or_default();
        let choice = states.get(choice_name).cloned().unwrap_or_default();
        let routes = choice["Choices"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| {
                rule["Variable"].as_str() == Some(variable.as_str())
                    && rule["BooleanEquals"] == true
                    && rule["Next"].as_str() != choice["Default"].as_str()
            });
        if choice["Type"] != "Choice" || !routes {
            violations.push(format!(
                "{map}: {choice_name} does not leave the success path when {variable} is true"
            ));
        }
    }
    violations
}

fn is_notification(state: &Json) -> bool {
    is_task(state) && state["Parameters"]["event"].is_string()
}

fn is_failed_notification(state: &Json) -> bool {
    is_task(state) && state["Parameters"]["event"] == "FAILED"
}

const LOOPS: usize = usize::MAX - 1;

/// Every path from `from` to an end, counting FAILED notifications along it (each state at
/// most once per path, so the polling loops end). The run's end notice (FINISHED) counts as
/// FAILED on a failure route: it sends FAILED when a family failed.
fn failed_counts(
    states: &serde_json::Map<String, Json>,
    edges: &BTreeMap<String, (Vec<String>, Vec<String>)>,
    from: &str,
    follow_catches: bool,
) -> Vec<(Vec<String>, usize)> {
    #[allow(clippy::too_many_arguments)]
    fn walk(
        states: &serde_json::Map<String, Json>,
        edges: &BTreeMap<String, (Vec<String>, Vec<String>)>,
        name: &str,
        follow_catches: bool,
        path: &mut Vec<String>,
        count: usize,
        out: &mut Vec<(Vec<String>, usize)>,
    ) {
        if path.iter().any(|p| p == name) {
            // The polling loops are fine on the success path; a failure route must not loop.
            if follow_catches {
                let mut looped = path.clone();
                looped.push(name.to_string());
                out.push((looped, LOOPS));
            }
            return;
        }
        let (Some(state), Some((normal, catches))) = (states.get(name), edges.get(name)) else {
            out.push((path.clone(), usize::MAX));
            return;
        };
        // On a failure route the end notice (FINISHED) sends FAILED; leaving a notification
        // through its Catch, only an attempted FAILED one counts (a failed end notice sent no
        // verdict, and the failure path sends its own).
        let sends = if follow_catches {
            is_notification(state) && state["Parameters"]["event"] != "STARTED"
        } else {
            is_failed_notification(state)
        };
        let after_normal = count + usize::from(sends);
        let after_catch = count + usize::from(is_failed_notification(state));
        path.push(name.to_string());
        let mut normal = normal.clone();
        if follow_catches && let Some(failed) = verdict_branch(states, state, path) {
            // A failure route past the end notice takes its verdict's branch: FAILED.
            normal = vec![failed];
        }
        let catches = if follow_catches {
            catches.clone()
        } else {
            Vec::new()
        };
        if normal.is_empty() && catches.is_empty() {
            out.push((path.clone(), after_normal));
        }
        for target in normal {
            walk(
                states,
                edges,
                &target,
                follow_catches,
                path,
                after_normal,
                out,
            );
        }
        for target in catches {
            walk(
                states,
                edges,
                &target,
                follow_catches,
                path,
                after_catch,
                out,
            );
        }
        path.pop();
    }
    let mut out = Vec::new();
    walk(
        states,
        edges,
        from,
        follow_catches,
        &mut Vec::new(),
        0,
        &mut out,
    );
    out
}

/// On a path through the run's end notice (FINISHED), the branch of a Choice on that
/// notice's verdict (`<notice>.event == "FAILED"`), if `state` is that Choice.
fn verdict_branch(
    states: &serde_json::Map<String, Json>,
    state: &Json,
    path: &[String],
) -> Option<String> {
    let notice = path.iter().find_map(|name| {
        let s = states.get(name)?;
        (is_task(s) && s["Parameters"]["event"] == "FINISHED")
            .then(|| s["ResultPath"].as_str().unwrap_or_default().to_string())
    })?;
    let variable = format!("{notice}.event");
    state["Choices"].as_array()?.iter().find_map(|rule| {
        (rule["Variable"].as_str() == Some(variable.as_str()) && rule["StringEquals"] == "FAILED")
            .then(|| rule["Next"].as_str().map(str::to_string))
            .flatten()
    })
}

/// Rule: every failure route (each Catch target, following the failure path's own catches)
/// ends in the Fail state after exactly one FAILED notification (a failed family goes on to
/// the run's end notice, which sends FAILED and ends the run failed); no successful path
/// sends one. Inside a Map, a failure route records the failure for the end notice: it never
/// notifies on its own.
pub fn check_one_failed_notification(definition: &Json) -> Vec<String> {
    let (states, maps) = machine(definition);
    let edges = graph(definition);
    let mut violations = Vec::new();
    let mut targets = BTreeSet::new();
    for (name, state) in &states {
        // NotifyFailure's own catch: the one notification was attempted and failed; the run
        // still ends in the Fail state, which is what the execution status reports.
        if is_failed_notification(state) {
            continue;
        }
        for target in transitions(state).1 {
            targets.insert((name.clone(), target));
        }
    }
    let in_map = |name: &str| maps.values().any(|p| p.states.contains(name));
    for (source, target) in &targets {
        for (path, count) in failed_counts(&states, &edges, target, true) {
            if count == LOOPS {
                violations.push(format!("failure route from {source} loops and may send several FAILED notifications: {}", path.join(" -> ")));
            } else if count == usize::MAX {
                violations.push(format!(
                    "failure route from {source}: {} leads to a missing state",
                    path.join(" -> ")
                ));
            } else if count != 1 {
                violations.push(format!(
                    "failure route from {source} sends {count} FAILED notifications: {}",
                    path.join(" -> ")
                ));
            } else if path
                .last()
                .and_then(|name| states.get(name))
                .is_none_or(|state| state["Type"] != "Fail")
            {
                violations.push(format!(
                    "failure route from {source} does not end in the Fail state: {}",
                    path.join(" -> ")
                ));
            }
        }
        if in_map(source) {
            // The iteration's own part of the route: no notice before it leaves the Map.
            let mut name = target.clone();
            let mut seen = BTreeSet::new();
            while in_map(&name) && seen.insert(name.clone()) {
                let state = &states[&name];
                if is_notification(state) {
                    violations.push(format!(
                        "failure route from {source} notifies in {name}, inside its Map: record the failure for the run's end notice instead"
                    ));
                }
                if let Some((flag, true)) = iteration_flag(state) {
                    violations.push(format!(
                        "failure route from {source} ends its iteration in {name}, which records {flag}: true"
                    ));
                }
                let (normal, catches) = transitions(state);
                match normal.into_iter().chain(catches).next() {
                    Some(next) => name = next,
                    None => break,
                }
            }
        }
    }
    let start = definition["StartAt"].as_str().unwrap_or_default();
    for (path, count) in failed_counts(&states, &edges, start, false) {
        if count != 0 {
            violations.push(format!(
                "a path without errors sends a FAILED notification: {}",
                path.join(" -> ")
            ));
        }
    }
    violations
}

/// Rule: every step of an instance-launching document (the bake, the boot test) after the
/// launch routes failure and cancel to the terminate step (the launch itself aborts on
/// failure: nothing exists yet), and the terminate step ends the automation.
pub fn check_automation_document(document: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    let steps = document["mainSteps"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let terminate = steps.iter().find(|step| {
        step["action"].as_str() == Some("aws:changeInstanceState")
            && step["inputs"]["DesiredState"].as_str() == Some("terminated")
    });
    let Some(terminate) = terminate else {
        return vec!["the document has no step that terminates the instance".into()];
    };
    let terminate_name = terminate["name"].as_str().unwrap_or_default();
    let target = format!("step:{terminate_name}");
    if terminate["isEnd"].as_bool() != Some(true) {
        violations.push(format!(
            "{terminate_name} does not end the automation (isEnd)"
        ));
    }
    for step in &steps {
        let name = step["name"].as_str().unwrap_or("(unnamed)");
        if name == terminate_name {
            continue;
        }
        let launches = step["inputs"]["Api"].as_str() == Some("RunInstances");
        if step["onCancel"].as_str() != Some(target.as_str()) {
            violations.push(format!(
                "step {name}: onCancel does not go to {terminate_name}"
            ));
        }
        let on_failure = step["onFailure"].as_str();
        if !(on_failure == Some(target.as_str()) || (launches && on_failure == Some("Abort"))) {
            violations.push(format!(
                "step {name}: onFailure {on_failure:?} does not go to {terminate_name}"
            ));
        }
    }
    violations
}

/// Rule: no IAM or key policy statement allows Action "*"; every Resource "*" line says why.
pub fn check_policies(template_text: &str) -> Vec<String> {
    let mut violations = Vec::new();
    let template: Yaml = match serde_yaml_ng::from_str(template_text) {
        Ok(template) => template,
        Err(error) => return vec![format!("template does not parse: {error}")],
    };
    fn walk(value: &Yaml, violations: &mut Vec<String>) {
        match value {
            // A Deny with a wildcard takes rights away (e.g. every S3 action over plain HTTP).
            Yaml::Mapping(map) if map.get("Effect").and_then(Yaml::as_str) == Some("Deny") => {}
            Yaml::Mapping(map) => {
                for (key, child) in map {
                    if matches!(key.as_str(), Some("Action" | "NotAction")) {
                        let actions: Vec<&str> = match child {
                            Yaml::String(s) => vec![s.as_str()],
                            Yaml::Sequence(items) => {
                                items.iter().filter_map(Yaml::as_str).collect()
                            }
                            _ => vec![],
                        };
                        for action in actions {
                            if action == "*" || action.ends_with(":*") {
                                violations.push(format!("a statement allows Action {action:?}"));
                            }
                        }
                    }
                    walk(child, violations);
                }
            }
            Yaml::Sequence(items) => items.iter().for_each(|item| walk(item, violations)),
            Yaml::Tagged(tagged) => walk(&tagged.value, violations),
            _ => {}
        }
    }
    walk(&template, &mut violations);
    for (number, line) in template_text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default().trim();
        if matches!(code, "Resource: '*'" | "Resource: \"*\"" | "Resource: *")
            && !line.contains('#')
        {
            violations.push(format!(
                "line {}: Resource '*' without a comment saying why",
                number + 1
            ));
        }
    }
    violations
}

/// The documents the template embeds: (resource, source file, kind).
pub const EMBEDDED_DOCUMENTS: &[(&str, &str, DocumentKind)] = &[
    (
        "BakeDocument",
        "infra/bake-document.yaml",
        DocumentKind::Automation,
    ),
    (
        "TestDocument",
        "infra/test-document.yaml",
        DocumentKind::Automation,
    ),
    (
        "UpdateReportDocument",
        "infra/baseline/updates.sh",
        DocumentKind::Command,
    ),
    (
        "BaselineApplyDocument",
        "infra/baseline/apply.sh",
        DocumentKind::Command,
    ),
    (
        "BaselineCheckDocument",
        "infra/baseline/check.sh",
        DocumentKind::Command,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// The YAML file is the document.
    Automation,
    /// The script is the one command of a one-step aws:runShellScript document.
    Command,
}

/// Rule: the template's `resource` holds exactly `source` (an Automation document's data, or a
/// Command document that runs exactly the script).
pub fn check_embedded_document(
    template: &Yaml,
    resource: &str,
    kind: DocumentKind,
    source: &str,
) -> Vec<String> {
    let document = &template["Resources"][resource];
    if document["Type"].as_str() != Some("AWS::SSM::Document") {
        return vec![format!("the template has no AWS::SSM::Document {resource}")];
    }
    let properties = &document["Properties"];
    let content = &properties["Content"];
    let expected_type = match kind {
        DocumentKind::Automation => "Automation",
        DocumentKind::Command => "Command",
    };
    let mut violations = Vec::new();
    if properties["DocumentType"].as_str() != Some(expected_type) {
        violations.push(format!("{resource} is not a {expected_type} document"));
    }
    let same = match kind {
        DocumentKind::Automation => serde_yaml_ng::from_str::<Yaml>(source)
            .map(|parsed| &parsed == content)
            .unwrap_or(false),
        DocumentKind::Command => {
            let steps = content["mainSteps"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            steps.len() == 1
                && steps[0]["action"].as_str() == Some("aws:runShellScript")
                && steps[0]["inputs"]["runCommand"]
                    .as_sequence()
                    .map(|c| c.len())
                    == Some(1)
                && steps[0]["inputs"]["runCommand"][0].as_str() == Some(source)
        }
    };
    if !same {
        violations.push(format!(
            "the template's {resource} differs from its source file: run scripts/sync-documents.py"
        ));
    }
    violations
}

/// Every policy statement of the template (IAM policies, key policies, bucket policies), with
/// whether it is part of a KMS key policy.
fn statements(template: &Yaml) -> Vec<(bool, Yaml)> {
    fn walk(value: &Yaml, in_key_policy: bool, out: &mut Vec<(bool, Yaml)>) {
        match value {
            Yaml::Mapping(map) if map.contains_key("Effect") => {
                out.push((in_key_policy, value.clone()));
            }
            Yaml::Mapping(map) => {
                for (key, child) in map {
                    walk(
                        child,
                        in_key_policy || key.as_str() == Some("KeyPolicy"),
                        out,
                    );
                }
            }
            Yaml::Sequence(items) => items.iter().for_each(|item| walk(item, in_key_policy, out)),
            Yaml::Tagged(tagged) => walk(&tagged.value, in_key_policy, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(template, false, &mut out);
    out
}

fn actions(statement: &Yaml) -> Vec<String> {
    match &statement["Action"] {
        Yaml::String(action) => vec![action.clone()],
        Yaml::Sequence(items) => items
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// The statement's condition keys (across every operator).
fn condition_keys(statement: &Yaml) -> Vec<String> {
    statement["Condition"]
        .as_mapping()
        .into_iter()
        .flat_map(|operators| operators.values())
        .filter_map(Yaml::as_mapping)
        .flat_map(|keys| keys.keys())
        .filter_map(|key| key.as_str().map(str::to_string))
        .collect()
}

fn is_allow(statement: &Yaml) -> bool {
    statement["Effect"].as_str() == Some("Allow")
}

/// Rule: removing images and snapshots is only allowed on what the pipeline tagged.
pub fn check_tag_conditioned_deletes(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    for (_, statement) in statements(template) {
        let deletes: Vec<String> = actions(&statement)
            .into_iter()
            .filter(|a| a == "ec2:DeleteSnapshot" || a == "ec2:DeregisterImage")
            .collect();
        if is_allow(&statement)
            && !deletes.is_empty()
            && !condition_keys(&statement).contains(&"aws:ResourceTag/Type".to_string())
        {
            violations.push(format!(
                "statement {} allows {} without an aws:ResourceTag/Type condition",
                statement["Sid"].as_str().unwrap_or("(no Sid)"),
                deletes.join(", ")
            ));
        }
    }
    violations
}

/// Rule: KMS statements do what their comments say. `kms:CallerAccount` narrows nothing for a
/// role of this account, so it is never used; an IAM statement names keys (a key, or this
/// account's keys), never "*"; the organization-wide statement gives no plaintext data keys.
pub fn check_kms_statements(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    for (in_key_policy, statement) in statements(template) {
        let sid = statement["Sid"].as_str().unwrap_or("(no Sid)").to_string();
        let kms: Vec<String> = actions(&statement)
            .into_iter()
            .filter(|a| a.starts_with("kms:"))
            .collect();
        if kms.is_empty() || !is_allow(&statement) {
            continue;
        }
        if condition_keys(&statement).contains(&"kms:CallerAccount".to_string()) {
            violations.push(format!(
                "statement {sid} is narrowed by kms:CallerAccount, which is always this account"
            ));
        }
        if !in_key_policy && statement["Resource"].as_str() == Some("*") {
            violations.push(format!(
                "statement {sid} allows {} on every key: name the key, or arn:...:kms:REGION:ACCOUNT:key/*",
                kms.join(", ")
            ));
        }
        let org_wide = condition_keys(&statement).contains(&"aws:PrincipalOrgID".to_string());
        if org_wide
            && kms
                .iter()
                .any(|a| a == "kms:GenerateDataKey*" || a == "kms:GenerateDataKey")
        {
            violations.push(format!(
                "statement {sid} lets the whole organization mint plaintext data keys; EC2 needs kms:GenerateDataKeyWithoutPlaintext only"
            ));
        }
    }
    violations
}

/// Time the states other than the polling loops may take, in a run that reaches every deadline.
pub const OTHER_STATES_SECONDS: u64 = 30 * 60;

/// (deadline parameter in minutes, poll parameter in seconds) of each polling loop.
pub const POLLING_LOOPS: &[(&str, &str)] = &[
    ("BakeTimeoutMinutes", "BakePollSeconds"),
    ("CopyTimeoutMinutes", "CopyPollSeconds"),
    ("TestTimeoutMinutes", "TestPollSeconds"),
];

/// The stack parameter of the approval gate's deadline, in minutes.
pub const APPROVAL_DEADLINE: &str = "ApprovalTimeoutMinutes";

/// Rule: the largest deadlines the template allows, each overshot by one poll, plus the other
/// states, end before the state machine's TimeoutSeconds, so a slow run fails through its own
/// typed timeout and cleanup instead of ending TIMED_OUT.
pub fn check_deadlines(template: &Yaml, definition: &Json) -> Vec<String> {
    let parameters = &template["Parameters"];
    let max = |name: &str| parameters[name]["MaxValue"].as_u64();
    let mut violations = Vec::new();
    let mut total = OTHER_STATES_SECONDS;
    // A gated family also waits for its approval, at most the largest deadline the stack
    // allows; the targets document is held to the same bound (Targets::parse).
    match max(APPROVAL_DEADLINE) {
        Some(minutes) if minutes == u64::from(MAX_APPROVAL_MINUTES) => total += minutes * 60,
        Some(minutes) => violations.push(format!(
            "parameter {APPROVAL_DEADLINE} allows {minutes} minutes but the targets document allows {MAX_APPROVAL_MINUTES} (golden_ami_core::targets::MAX_APPROVAL_MINUTES): make them equal"
        )),
        None => violations.push(format!(
            "parameter {APPROVAL_DEADLINE} needs a MaxValue to bound the run"
        )),
    }
    for (deadline, poll) in POLLING_LOOPS {
        match (max(deadline), max(poll)) {
            (Some(minutes), Some(seconds)) => total += minutes * 60 + seconds,
            _ => violations.push(format!(
                "parameters {deadline} and {poll} need a MaxValue to bound the run"
            )),
        }
    }
    let timeout = definition["TimeoutSeconds"].as_u64().unwrap_or(0);
    if total > timeout {
        violations.push(format!(
            "the largest deadlines and polls add up to {total} s, past the state machine's TimeoutSeconds {timeout} s: lower the MaxValues"
        ));
    }
    violations
}

/// Rule: the run lock's lifetime is the state machine's: the template gives every function the
/// ASL's TimeoutSeconds as STATE_MACHINE_TIMEOUT_SECONDS (PlanRun's lock expires that long
/// after it is taken, plus a Task's time in flight), and the core's default is the same, so no
/// run that can still be running has its lock broken as stale.
pub fn check_lock_lifetime(template: &Yaml, definition: &Json) -> Vec<String> {
    let mut violations = Vec::new();
    let timeout = definition["TimeoutSeconds"].as_u64();
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    let given = variables["STATE_MACHINE_TIMEOUT_SECONDS"]
        .as_str()
        .and_then(|value| value.parse::<u64>().ok());
    if given.is_none() || given != timeout {
        violations.push(format!(
            "the functions' STATE_MACHINE_TIMEOUT_SECONDS is {given:?} but the state machine's TimeoutSeconds is {timeout:?}: the run lock must outlive any run, make them equal"
        ));
    }
    if timeout != Some(golden_ami_core::config::STATE_MACHINE_TIMEOUT_SECONDS) {
        violations.push(format!(
            "golden_ami_core::config::STATE_MACHINE_TIMEOUT_SECONDS is {} but the state machine's TimeoutSeconds is {timeout:?}: make them equal",
            golden_ami_core::config::STATE_MACHINE_TIMEOUT_SECONDS
        ));
    }
    if !variables["LOCK_TTL_MINUTES"].is_null() {
        violations.push(
            "LOCK_TTL_MINUTES is no longer read: the lock's lifetime is the state machine's timeout".into(),
        );
    }
    violations
}

/// Rule: every checkov finding the template does not fix is skipped on its resource with a
/// reason (`make lint` runs checkov and fails on any finding that is neither).
pub fn check_checkov_skips(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    for (name, resource) in template["Resources"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or("(unnamed)");
        let skips = &resource["Metadata"]["checkov"]["skip"];
        if skips.is_null() {
            continue;
        }
        let Some(skips) = skips.as_sequence() else {
            violations.push(format!("{name}: Metadata.checkov.skip is not a list"));
            continue;
        };
        for skip in skips {
            let id = skip["id"].as_str().unwrap_or_default();
            if !id.starts_with("CKV_") {
                violations.push(format!(
                    "{name}: a checkov skip without a check id: {skip:?}"
                ));
            }
            let comment = skip["comment"].as_str().unwrap_or_default().trim();
            if comment.split_whitespace().count() < 8 {
                violations.push(format!(
                    "{name}: the skip of {id} does not say why (a comment of a sentence at least)"
                ));
            }
        }
    }
    violations
}

/// Rule: Retain runs only after a family published (entered only from the success-mode
/// Cleanup), and neither its success nor its Catch leads to a failure path: once the pointers
/// moved, retention cannot fail the family.
pub fn check_retention(definition: &Json) -> Vec<String> {
    let (states, maps) = machine(definition);
    let edges = graph(definition);
    let mut violations = Vec::new();
    let calls = |state: &Json, function: &str| {
        placeholder(state).as_deref() == Some(&format!("{function}FunctionArn"))
    };
    let retains: Vec<&String> = states
        .iter()
        .filter(|(_, state)| calls(state, "Retain"))
        .map(|(name, _)| name)
        .collect();
    if retains.is_empty() {
        violations.push("no Task runs Retain".to_string());
    }
    for retain in retains {
        for (name, (normal, catches)) in &edges {
            if !normal.contains(retain) && !catches.contains(retain) {
                continue;
            }
            let state = &states[name];
            if !(calls(state, "Cleanup") && state["Parameters"]["mode"] == "SUCCESS")
                || catches.contains(retain)
            {
                violations.push(format!(
                    "{name} leads to {retain}: only the success path's Cleanup may"
                ));
            }
        }
        // Within the family's iteration: what follows its Map is the run's, not the family's.
        let Some(family) = maps.values().find(|p| p.states.contains(retain)) else {
            violations.push(format!("{retain} is not inside a family's iteration"));
            continue;
        };
        let mut seen = BTreeSet::new();
        let (normal, catches) = &edges[retain];
        let mut todo: Vec<String> = normal.iter().chain(catches).cloned().collect();
        while let Some(name) = todo.pop() {
            if !family.states.contains(&name) || !seen.insert(name.clone()) {
                continue;
            }
            let state = &states[&name];
            if state["Type"] == "Fail"
                || (calls(state, "Cleanup") && state["Parameters"]["mode"] != "SUCCESS")
                || state["Result"] == "FAILED"
            {
                violations.push(format!(
                    "{name} (a failure path) is reachable from {retain}: a retention failure would fail a published family"
                ));
                continue;
            }
            if let Some((normal, catches)) = edges.get(&name) {
                todo.extend(normal.iter().chain(catches).cloned());
            }
        }
    }
    violations
}

/// The approval gate's Task.
pub const APPROVAL_STATE: &str = "AwaitApproval";

/// Rule: the approval gate waits on a task token with a deadline read from the family (the
/// field FamilyTarget serializes), is entered only for a gated family and only after every
/// publish gate passed, and its failure (denied, expired) cannot reach a pointer.
pub fn check_approval_gate(definition: &Json) -> Vec<String> {
    let (states, _) = machine(definition);
    let edges = graph(definition);
    let mut violations = Vec::new();
    let Some(gate) = states.get(APPROVAL_STATE) else {
        return vec![format!("no {APPROVAL_STATE} state")];
    };
    if gate["Resource"] != CALLBACK_RESOURCE {
        violations.push(format!(
            "{APPROVAL_STATE}: Resource must be {CALLBACK_RESOURCE} (it waits for a person)"
        ));
    }
    if gate["Parameters"]["Payload"]["taskToken.$"] != "$$.Task.Token" {
        violations.push(format!(
            "{APPROVAL_STATE}: Payload.taskToken.$ must be $$.Task.Token, or nobody can answer it"
        ));
    }
    // The deadline: where the family's gate puts it, as the Rust type serializes it.
    let mut family = golden_ami_core::testing::family();
    family.approval = Some(golden_ami_core::targets::ApprovalGate {
        timeout_seconds: 3600,
    });
    let family_state = serde_json::json!({ "family": family });
    let resolves = |path: &str| {
        path.strip_prefix("$.")
            .map(|rest| {
                rest.split('.')
                    .fold(&family_state, |value, key| &value[key])
                    .clone()
            })
            .unwrap_or(Json::Null)
    };
    match gate["TimeoutSecondsPath"].as_str() {
        Some(path) if resolves(path) == 3600 => {}
        Some(path) => violations.push(format!(
            "{APPROVAL_STATE}: TimeoutSecondsPath {path} does not find the family's approval.timeoutSeconds"
        )),
        None if gate["TimeoutSeconds"].is_u64() => {}
        None => violations.push(format!(
            "{APPROVAL_STATE} has no deadline (TimeoutSecondsPath): it would wait up to a year"
        )),
    }
    // Entered only through a Choice on the family's gate.
    for (name, (normal, catches)) in &edges {
        if !normal.iter().chain(catches).any(|n| n == APPROVAL_STATE) {
            continue;
        }
        let state = &states[name];
        let tests_the_gate = state["Type"] == "Choice"
            && state["Choices"].as_array().is_some_and(|choices| {
                choices.iter().any(|c| {
                    c["Next"] == APPROVAL_STATE
                        && c["IsPresent"] == true
                        && c["Variable"].as_str().is_some_and(|v| {
                            v.strip_prefix("$.")
                                .is_some_and(|_| resolves(v).is_object())
                        })
                })
            });
        if !tests_the_gate {
            violations.push(format!(
                "{name} leads to {APPROVAL_STATE}: only a Choice on the family's approval may"
            ));
        }
    }
    // After every publish gate.
    for blocked in PUBLISH_GATES {
        if reachable(&edges, vec![start(definition)], Some(blocked)).contains(APPROVAL_STATE) {
            violations.push(format!(
                "{APPROVAL_STATE} is reachable without passing {blocked}: approval is asked for a tested image only"
            ));
        }
    }
    // Denied or expired: never a pointer.
    let caught = edges
        .get(APPROVAL_STATE)
        .map(|(_, catches)| catches.clone())
        .unwrap_or_default();
    if reachable(&edges, caught, None).contains("PublishPointer") {
        violations.push(format!(
            "PublishPointer is reachable from {APPROVAL_STATE}'s Catch: a denial would publish"
        ));
    }
    violations
}
