//! The history model of crates/core/src/budget.rs counts the states the definition enters: each
//! level's success path, read here from the definition, holds the model's constants.
#![allow(clippy::panic)]

use golden_ami_core::budget::{FAMILY, Level, REGION, REGION_MAPS, RUN};
use pipeline_contract_tests::*;
use serde_json::{Map, Value as Json, json};

const ZERO: Level = Level {
    tasks: 0,
    passes: 0,
    choices: 0,
    maps: 0,
    succeeds: 0,
    loops: 0,
};

/// One level's success path from `start`: every state by type, the polling loops apart (a Wait
/// on the path is a loop's first wait; its Check Task and Done? Choice are the loop's too), and
/// the Maps entered. A Choice goes to its Default, or, for a polling loop's Choice (its Default
/// waits again), to its last rule: the work is done.
fn success_path(states: &Map<String, Json>, start: &str) -> (Level, Vec<String>) {
    let mut level = ZERO;
    let mut maps = Vec::new();
    let mut name = start.to_string();
    for _ in 0..states.len() {
        let state = &states[&name];
        let next = match state["Type"].as_str() {
            Some("Task") => {
                level.tasks += 1;
                state["Next"].as_str()
            }
            Some("Pass") => {
                level.passes += 1;
                state["Next"].as_str()
            }
            Some("Wait") => {
                level.loops += 1;
                state["Next"].as_str()
            }
            Some("Map") => {
                level.maps += 1;
                maps.push(name.clone());
                state["Next"].as_str()
            }
            Some("Succeed") => {
                level.succeeds += 1;
                None
            }
            Some("Choice") => {
                level.choices += 1;
                let default = state["Default"].as_str().unwrap_or_default();
                if states[default]["Type"] == "Wait" {
                    state["Choices"]
                        .as_array()
                        .and_then(|c| c.last())
                        .and_then(|c| c["Next"].as_str())
                } else {
                    Some(default)
                }
            }
            other => panic!("{name}: a {other:?} state on the success path"),
        };
        match next {
            Some(next) => name = next.to_string(),
            None => {
                // A loop's Check and Done? are its polls, not the level's.
                level.tasks -= level.loops;
                level.choices -= level.loops;
                return (level, maps);
            }
        }
    }
    panic!("the success path from {start} does not end");
}

fn processor(definition: &Json, map: &str) -> (Map<String, Json>, String) {
    let (all, maps) = machine(definition);
    let states = all[map]["ItemProcessor"]["States"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    (states, maps[map].start.clone())
}

fn add(a: Level, b: Level) -> Level {
    Level {
        tasks: a.tasks + b.tasks,
        passes: a.passes + b.passes,
        choices: a.choices + b.choices,
        maps: a.maps + b.maps,
        succeeds: a.succeeds + b.succeeds,
        loops: a.loops + b.loops,
    }
}

/// The run's, a family's and a region's success path (a region over every Map of the family).
fn levels(definition: &Json) -> (Level, Level, Level, usize) {
    let top = definition["States"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let (run, run_maps) = success_path(&top, definition["StartAt"].as_str().unwrap_or_default());
    assert_eq!(run_maps, ["ForEachFamily"]);
    let (states, start) = processor(definition, "ForEachFamily");
    let (family, family_maps) = success_path(&states, &start);
    let mut region = ZERO;
    for map in &family_maps {
        let (states, start) = processor(definition, map);
        let (one, inner) = success_path(&states, &start);
        assert!(inner.is_empty(), "{map} has a Map inside");
        region = add(region, one);
    }
    (run, family, region, family_maps.len())
}

fn violations(definition: &Json) -> Vec<String> {
    let (run, family, region, region_maps) = levels(definition);
    let mut found = Vec::new();
    for (name, read, model) in [
        ("run", run, RUN),
        ("family", family, FAMILY),
        ("region", region, REGION),
    ] {
        if read != model {
            found.push(format!(
                "the {name}'s success path is {read:?}, the model counts {model:?}"
            ));
        }
    }
    if region_maps as u64 != REGION_MAPS {
        found.push(format!(
            "a family has {region_maps} region Maps, the model counts {REGION_MAPS}"
        ));
    }
    found
}

#[test]
fn the_history_model_counts_the_states_the_definition_enters() {
    let found = violations(&definition());
    assert!(found.is_empty(), "{found:?}");
    // The local runs' transitions (bench/REPORT.md): 8 + 15 F + 6 F R without the polls.
    let (run, family, region, _) = levels(&definition());
    assert_eq!((run.states(), family.states(), region.states()), (8, 15, 6));

    // A state added to a family's success path, or a loop taken out of a region, is seen.
    let mut broken = definition();
    state_mut(&mut broken, "Cleanup")["Next"] = json!("Recorded");
    let family_states = broken["States"]["ForEachFamily"]["ItemProcessor"]["States"]
        .as_object_mut()
        .map(|states| states.insert("Recorded".into(), json!({"Type": "Pass", "Next": "Retain"})));
    assert!(family_states.is_some());
    let found = violations(&broken);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("the family's success path")),
        "{found:?}"
    );

    let mut no_copy_loop = definition();
    state_mut(&mut no_copy_loop, "CopyImage")["Next"] = json!("ShareImage");
    let found = violations(&no_copy_loop);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("the region's success path")),
        "{found:?}"
    );
}
