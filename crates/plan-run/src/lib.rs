//! PlanRun: what this run patches, and whether it may run at all.
//!
//! It reads the targets parameter (image families x regions), validates it (a bad entry is a
//! ConfigError naming the entry), and resolves every family against the stack's defaults. Then
//! it takes the run lock: an SSM parameter created with Overwrite=false, holding this
//! execution's ARN and an expiry past the state machine's own timeout (its TimeoutSeconds, which
//! already holds the longest approval deadline, plus a Task's time in flight). Two executions
//! started in the same second cannot both create it: the loser ends SKIPPED naming the holder. A
//! lock whose expiry passed belongs to a run that cannot still be running (the state machine
//! would have timed it out): it is broken, and the plan says so. Breaking it removes that value
//! only, never a lock another run has just taken (crates/core/src/lock.rs); two runs breaking
//! the same stale lock end like two runs started together: one works, the other skips.
//!
//! Families an operator pinned (`golden-ami pin`, a parameter under PINS_PATH per family) are
//! taken out of the plan and listed as pinned: the run leaves them and their pointers alone.
//!
//! A plan whose families x regions would reach Step Functions' history or state size limit on
//! AWS in an ordinary month (crates/core/src/budget.rs: a 40-minute bake, a 15-minute copy and a
//! 10-minute boot test, polled at the stack's intervals) is a ConfigError naming the figures and
//! the largest matrix that fits, before any lock is taken: such a run would end without its
//! failure path.

use golden_ami_core::budget::{self, FamilyShape, Loops};
use golden_ami_core::lock;
use golden_ami_core::naming::{format_timestamp, parse_timestamp};
use golden_ami_core::targets::{Source, Stack};
use golden_ami_core::types::{LockHolder, Pin, Plan};
use golden_ami_core::{Deps, ExecutionContext, StepError, StepInput, Targets, classify_sdk_error};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<Plan, StepError> {
    let mut plan = plan_at(deps, None).await?;
    let pins = read_pins(deps).await?;
    let (pinned, free): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.families)
        .into_iter()
        .partition(|family| pins.iter().any(|pin| pin.family == family.name));
    plan.families = free;
    plan.pinned = pins
        .into_iter()
        .filter(|pin| pinned.iter().any(|family| family.name == pin.family))
        .collect();
    // Pinned families do not run: only the others count against the limits.
    let shapes: Vec<FamilyShape> = plan.families.iter().map(FamilyShape::from).collect();
    let fits = budget::check(&shapes, &Loops::of(&deps.config))?;
    tracing::info!(history_events = ?fits.history_events, state_bytes = fits.state_bytes, "the run fits Step Functions' limits");
    let version = plan.targets_version;
    // The state machine's timeout already holds the longest approval deadline: no run, gated
    // or not, can still be running when its lock expires.
    match take_lock(deps, &input.context, version, deps.config.lock_ttl).await? {
        Lock::Taken(ours) => plan.lock = Some(ours),
        Lock::Broke { ours, stale } => {
            tracing::warn!(stale = ?stale, "broke a stale run lock");
            plan.lock = Some(ours);
            plan.broke = Some(stale);
        }
        Lock::Held(other) => {
            tracing::warn!(holder = %other.execution_id, "another run holds the lock; this run does nothing");
            plan.held_by = Some(other);
        }
    }
    Ok(plan)
}

/// The families and regions of the targets parameter (the latest version, or `version`),
/// validated and resolved against the stack's defaults; no lock yet.
pub async fn plan_at(deps: &Deps, version: Option<i64>) -> Result<Plan, StepError> {
    let config = &deps.config;
    let (text, version) = read_targets(deps, version).await?;
    let stack = Stack {
        home_region: &config.home_region,
        pointer_prefix: &config.pointer_prefix,
        golden_key_arn: config.golden_kms_key_arn.as_deref(),
    };
    let targets = Targets::parse(
        &text,
        &Source {
            parameter: &config.targets_parameter_name,
            version,
        },
        &stack,
    )?;
    let families = targets.plan(
        &stack,
        &config.bake_subnet_id,
        &config.bake_instance_profile_name,
    )?;
    Ok(Plan {
        families,
        max_concurrency: targets.max_concurrency,
        targets_version: version,
        lock: None,
        held_by: None,
        broke: None,
        pinned: Vec::new(),
    })
}

/// Every pin under PINS_PATH. A pin that does not parse is a ConfigError naming it: a family
/// must never be patched, or skipped, by accident.
pub async fn read_pins(deps: &Deps) -> Result<Vec<Pin>, StepError> {
    let path = &deps.config.pins_path;
    let mut pins = Vec::new();
    let mut pages = deps
        .clients
        .ssm()
        .get_parameters_by_path()
        .path(path)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| classify_sdk_error("ssm:GetParametersByPath", error))?;
        for parameter in page.parameters() {
            let name = parameter.name().unwrap_or_default();
            let pin: Pin = serde_json::from_str(parameter.value().unwrap_or_default()).map_err(
                |error| {
                    StepError::ConfigError(format!(
                        "the pin {name} is not a pin ({error}); expected {{\"family\", \"amiId\", \"region\", \"pinnedBy\", \"pinnedAt\"}} as `golden-ami pin` writes it: remove it with `golden-ami unpin` or fix it"
                    ))
                },
            )?;
            if name.rsplit('/').next() != Some(pin.family.as_str()) {
                return Err(StepError::ConfigError(format!(
                    "the pin {name} names the family {:?}: a pin's parameter is {path}/<family>",
                    pin.family
                )));
            }
            pins.push(pin);
        }
    }
    Ok(pins)
}

async fn read_targets(deps: &Deps, version: Option<i64>) -> Result<(String, i64), StepError> {
    let name = &deps.config.targets_parameter_name;
    let selector = match version {
        Some(version) => format!("{name}:{version}"),
        None => name.clone(),
    };
    let output = deps
        .clients
        .ssm()
        .get_parameter()
        .name(&selector)
        .send()
        .await
        .map_err(|error| {
            let service = error.as_service_error();
            if service.is_some_and(|service| service.is_parameter_not_found()) {
                StepError::ConfigError(format!(
                    "the targets parameter {name} does not exist: deploy the stack (it writes the image families and regions there), or fix TARGETS_PARAMETER_NAME"
                ))
            } else if service.is_some_and(|service| service.is_parameter_version_not_found()) {
                StepError::ConfigError(format!(
                    "version {} of the targets parameter {name} is gone (SSM keeps the last 100 versions)",
                    version.unwrap_or_default()
                ))
            } else {
                classify_sdk_error("ssm:GetParameter", error)
            }
        })?;
    let parameter = output.parameter().ok_or_else(|| StepError::AwsError {
        operation: "ssm:GetParameter".into(),
        code: "EmptyResponse".into(),
        message: format!("no parameter in the response for {selector}"),
    })?;
    Ok((
        parameter.value().unwrap_or_default().to_string(),
        parameter.version(),
    ))
}

/// What taking the lock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    Taken(LockHolder),
    Broke { ours: LockHolder, stale: LockHolder },
    Held(LockHolder),
}

/// How many times taking the lock looks again after finding it changing hands, and how long it
/// waits between looks; past that the step fails Throttled and the state machine retries it.
const LOCK_ROUNDS: u32 = 6;
const LOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

async fn take_lock(
    deps: &Deps,
    context: &ExecutionContext,
    targets_version: i64,
    ttl: std::time::Duration,
) -> Result<Lock, StepError> {
    let ours = LockHolder {
        execution_id: context.execution_id.clone(),
        expires: format_timestamp(deps.now() + ttl),
        targets_version: Some(targets_version),
    };
    let mut broke = None;
    for round in 0..LOCK_ROUNDS {
        if round > 0 {
            tokio::time::sleep(LOCK_PAUSE).await;
        }
        if create_lock(deps, &ours).await? {
            return Ok(match broke {
                Some(stale) => Lock::Broke { ours, stale },
                None => Lock::Taken(ours),
            });
        }
        // Released between our create and our read: create again.
        let Some(seen) = lock::read(deps).await? else {
            continue;
        };
        match decide(Some(&holder_of(&seen.value)), &ours, deps.now())? {
            Decision::Ours => {
                return Ok(match broke {
                    Some(stale) => Lock::Broke { ours, stale },
                    None => Lock::Taken(ours),
                });
            }
            Decision::Held(other) => return Ok(Lock::Held(other)),
            Decision::Gone => {}
            Decision::Stale(stale) => {
                // Removed only if it still holds exactly this value and no other run is
                // removing it (crates/core/src/lock.rs); either way the next round creates our
                // lock or finds who took it first.
                if lock::remove(deps, &seen, &ours.execution_id).await? {
                    broke = Some(stale);
                }
            }
        }
    }
    Err(StepError::Throttled {
        operation: "run lock".into(),
        message: format!(
            "the lock kept changing hands while this run looked at it ({LOCK_ROUNDS} times); the state machine retries"
        ),
    })
}

/// What an existing lock means for this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// This execution holds it already (a retried PlanRun).
    Ours,
    Held(LockHolder),
    Stale(LockHolder),
    Gone,
}

pub fn decide(
    existing: Option<&LockHolder>,
    ours: &LockHolder,
    now: time::OffsetDateTime,
) -> Result<Decision, StepError> {
    let Some(existing) = existing else {
        return Ok(Decision::Gone);
    };
    if existing.execution_id == ours.execution_id {
        return Ok(Decision::Ours);
    }
    let expires = parse_timestamp("the run lock's expires", &existing.expires)?;
    if now > expires {
        Ok(Decision::Stale(existing.clone()))
    } else {
        Ok(Decision::Held(existing.clone()))
    }
}

/// PutParameter with Overwrite=false: true if this call created the lock.
async fn create_lock(deps: &Deps, holder: &LockHolder) -> Result<bool, StepError> {
    let value = serde_json::to_string(holder)
        .map_err(|error| StepError::invalid_input(format!("lock value: {error}")))?;
    lock::create_if_absent(
        deps,
        &deps.config.lock_parameter_name,
        &value,
        "golden-ami-pipeline run lock: the execution that holds it and until when",
    )
    .await
}

/// The lock's holder, or None if there is no lock.
pub async fn read_lock(deps: &Deps) -> Result<Option<LockHolder>, StepError> {
    Ok(lock::read(deps).await?.map(|seen| holder_of(&seen.value)))
}

/// A lock value's holder. A value that is not a holder (someone wrote the parameter by hand)
/// counts as stale, so it can never block the pipeline for good.
pub fn holder_of(value: &str) -> LockHolder {
    serde_json::from_str(value).unwrap_or_else(|_| LockHolder {
        execution_id: format!("(not a lock value: {value:?})"),
        expires: "1970-01-01T00:00:00Z".into(),
        targets_version: None,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::delete_parameter::DeleteParameterOutput;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput;
    use aws_sdk_ssm::operation::put_parameter::{PutParameterError, PutParameterOutput};
    use aws_sdk_ssm::types::Parameter;
    use aws_sdk_ssm::types::error::{ParameterAlreadyExists, ParameterNotFound};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/plan-run/ok.json");
    const OTHER: &str = "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:other";

    fn targets(text: &'static str) -> Rule {
        mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(testing::TARGETS_PARAMETER))
            .then_output(move || {
                GetParameterOutput::builder()
                    .parameter(Parameter::builder().value(text).version(4).build())
                    .build()
            })
    }

    const TWO_FAMILIES: &str = r#"{"families": [
        {"name": "default", "pointer": "/golden-ami/current", "architecture": "x86_64", "instanceType": "t3.small"},
        {"name": "al2023-arm64", "pointer": "/golden-ami/al2023-arm64", "architecture": "arm64", "instanceType": "t4g.small"}],
      "regions": [{"region": "eu-west-1", "kmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-1"}],
      "maxConcurrency": 3}"#;

    fn created() -> Rule {
        mock!(Ssm::put_parameter)
            .match_requests(|r| {
                r.name() == Some(testing::LOCK_PARAMETER)
                    && r.overwrite() == Some(false)
                    && r.value().is_some_and(|v| v.contains(testing::EXECUTION_ID))
            })
            .then_output(|| PutParameterOutput::builder().version(1).build())
    }

    fn exists() -> Rule {
        mock!(Ssm::put_parameter)
            .match_requests(|r| r.name() == Some(testing::LOCK_PARAMETER))
            .then_error(|| {
                PutParameterError::ParameterAlreadyExists(ParameterAlreadyExists::builder().build())
            })
    }

    fn lock_value(execution: &'static str, expires: &'static str) -> Rule {
        mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(testing::LOCK_PARAMETER))
            .then_output(move || {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .value(format!(
                                r#"{{"executionId": "{execution}", "expires": "{expires}"}}"#
                            ))
                            .version(1)
                            .build(),
                    )
                    .build()
            })
    }

    fn pins(values: &'static [(&'static str, &'static str)]) -> Rule {
        mock!(Ssm::get_parameters_by_path)
            .match_requests(|r| r.path() == Some("/golden-ami-pipeline/pins"))
            .then_output(move || {
                GetParametersByPathOutput::builder()
                    .set_parameters(Some(
                        values
                            .iter()
                            .map(|(name, value)| {
                                Parameter::builder().name(*name).value(*value).build()
                            })
                            .collect(),
                    ))
                    .build()
            })
    }

    async fn run_with_pins(mut ssm: Vec<&Rule>, pinned: &Rule) -> Result<Plan, StepError> {
        ssm.push(pinned);
        let deps = MockClients {
            ssm,
            ..Default::default()
        }
        .deps();
        handler(&deps, testing::event(EVENT)).await
    }

    async fn run(ssm: Vec<&Rule>) -> Result<Plan, StepError> {
        run_with_pins(ssm, &pins(&[])).await
    }

    const PIN: &str = r#"{"family": "al2023-arm64", "amiId": "ami-0123456789abcdef0", "region": "eu-west-1",
        "pinnedBy": "arn:aws:sts::111122223333:assumed-role/oncall/alice", "pinnedAt": "2026-11-20T10:00:00Z",
        "reason": "kernel regression"}"#;

    #[tokio::test]
    async fn a_pinned_family_is_left_out_of_the_plan_and_listed() {
        let (get, put) = (targets(TWO_FAMILIES), created());
        let pinned = pins(&[("/golden-ami-pipeline/pins/al2023-arm64", PIN)]);
        let plan = run_with_pins(vec![&get, &put], &pinned).await.unwrap();
        assert_eq!(
            plan.families
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
            ["default"]
        );
        assert_eq!(plan.pinned.len(), 1);
        assert_eq!(plan.pinned[0].ami_id, "ami-0123456789abcdef0");
        assert_eq!(plan.pinned[0].reason.as_deref(), Some("kernel regression"));
    }

    #[tokio::test]
    async fn a_pin_of_a_family_no_longer_in_the_targets_is_ignored() {
        let (get, put) = (targets(TWO_FAMILIES), created());
        let pinned = pins(&[(
            "/golden-ami-pipeline/pins/gone",
            r#"{"family": "gone", "amiId": "ami-0123456789abcdef0", "region": "eu-west-1", "pinnedBy": "x", "pinnedAt": "2026-11-20T10:00:00Z"}"#,
        )]);
        let plan = run_with_pins(vec![&get, &put], &pinned).await.unwrap();
        assert_eq!((plan.families.len(), plan.pinned.len()), (2, 0));
    }

    #[tokio::test]
    async fn a_broken_pin_is_a_config_error_naming_it() {
        let (get, put) = (targets(TWO_FAMILIES), created());
        let pinned = pins(&[("/golden-ami-pipeline/pins/default", "ami-0123456789abcdef0")]);
        let error = run_with_pins(vec![&get, &put], &pinned).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        assert!(
            error
                .to_string()
                .contains("the pin /golden-ami-pipeline/pins/default is not a pin"),
            "{error}"
        );
        let misnamed = pins(&[("/golden-ami-pipeline/pins/default", PIN)]);
        let error = run_with_pins(vec![&get, &put], &misnamed)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("names the family \"al2023-arm64\""),
            "{error}"
        );
    }

    #[tokio::test]
    async fn plans_every_family_and_takes_the_lock() {
        let (get, put) = (targets(TWO_FAMILIES), created());
        let plan = run(vec![&get, &put]).await.unwrap();
        assert_eq!(plan.families.len(), 2);
        assert_eq!(plan.families[1].instance_type, "t4g.small");
        assert_eq!(plan.families[1].subnet_id, "subnet-0a1b2c3d4e5f60718");
        assert_eq!(plan.max_concurrency, 3);
        assert_eq!(plan.targets_version, 4);
        let lock = plan.lock.unwrap();
        assert_eq!(lock.execution_id, testing::EXECUTION_ID);
        // Fixed clock 08:05 + the state machine's 80 hours + a quarter of an hour in flight.
        assert_eq!(lock.expires, "2026-12-04T16:20:00Z");
        assert_eq!(plan.held_by, None);
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_gated_run_s_lock_lasts_as_long_as_any_run_can() {
        const GATED: &str = r#"{"families": [
            {"name": "default", "pointer": "/golden-ami/current", "architecture": "x86_64", "instanceType": "t3.small"},
            {"name": "al2023-arm64", "pointer": "/golden-ami/al2023-arm64", "architecture": "arm64", "instanceType": "t4g.small", "approval": false}],
          "regions": [{"region": "eu-west-1", "kmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-1"}],
          "approval": {"timeoutMinutes": 1440}}"#;
        let (get, put) = (targets(GATED), created());
        let plan = run(vec![&get, &put]).await.unwrap();
        assert_eq!(
            plan.families[0].approval.map(|gate| gate.timeout_seconds),
            Some(86400)
        );
        assert_eq!(plan.families[1].approval, None);
        // The state machine's timeout holds the longest approval deadline the stack allows.
        assert_eq!(plan.lock.unwrap().expires, "2026-12-04T16:20:00Z");
    }

    #[tokio::test]
    async fn a_live_lock_of_another_run_makes_this_one_skip() {
        let (get, put, held) = (
            targets(TWO_FAMILIES),
            exists(),
            lock_value(OTHER, "2026-12-01T16:00:00Z"),
        );
        let plan = run(vec![&get, &put, &held]).await.unwrap();
        assert_eq!(plan.lock, None);
        assert_eq!(plan.held_by.unwrap().execution_id, OTHER);
    }

    #[tokio::test]
    async fn a_retried_plan_finds_its_own_lock() {
        let (get, put, mine) = (
            targets(TWO_FAMILIES),
            exists(),
            lock_value(testing::EXECUTION_ID, "2026-12-01T17:05:00Z"),
        );
        let plan = run(vec![&get, &put, &mine]).await.unwrap();
        assert!(plan.lock.is_some() && plan.held_by.is_none());
    }

    const STALE: &str = r#"{"executionId": "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:other", "expires": "2026-12-01T07:00:00Z"}"#;
    const WINNER: &str = r#"{"executionId": "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:winner", "expires": "2026-12-04T16:20:00Z"}"#;

    /// The lock parameter as successive reads find it.
    fn lock_reads(values: &'static [&'static str]) -> Rule {
        let mut rule = mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(testing::LOCK_PARAMETER))
            .sequence();
        for value in values {
            rule = rule.output(move || {
                GetParameterOutput::builder()
                    .parameter(Parameter::builder().value(*value).version(3).build())
                    .build()
            });
        }
        rule.build()
    }

    fn is_marker(name: Option<&str>) -> bool {
        name.is_some_and(|name| name.starts_with(&format!("{}-removal/", testing::LOCK_PARAMETER)))
    }

    fn marker_created() -> Rule {
        mock!(Ssm::put_parameter)
            .match_requests(|r| is_marker(r.name()) && r.overwrite() == Some(false))
            .then_output(|| PutParameterOutput::builder().version(1).build())
    }

    fn lock_put(first: bool) -> Rule {
        let rule = mock!(Ssm::put_parameter)
            .match_requests(|r| {
                r.name() == Some(testing::LOCK_PARAMETER) && r.overwrite() == Some(false)
            })
            .sequence()
            .error(|| {
                PutParameterError::ParameterAlreadyExists(ParameterAlreadyExists::builder().build())
            });
        if first {
            rule.output(|| PutParameterOutput::builder().version(1).build())
                .build()
        } else {
            rule.times(2).build()
        }
    }

    fn deleted(marker: bool) -> Rule {
        mock!(Ssm::delete_parameter)
            .match_requests(move |r| {
                if marker {
                    is_marker(r.name())
                } else {
                    r.name() == Some(testing::LOCK_PARAMETER)
                }
            })
            .then_output(|| DeleteParameterOutput::builder().build())
    }

    #[tokio::test]
    async fn a_stale_lock_is_broken_and_reported() {
        let get = targets(TWO_FAMILIES);
        // Judged stale, then read again holding the removal marker: still the same value.
        let reads = lock_reads(&[STALE, STALE]);
        let (marker, put) = (marker_created(), lock_put(true));
        let (delete, unmark) = (deleted(false), deleted(true));
        let plan = run(vec![&get, &reads, &marker, &put, &delete, &unmark])
            .await
            .unwrap();
        assert_eq!(plan.broke.unwrap().execution_id, OTHER);
        assert_eq!(plan.lock.unwrap().execution_id, testing::EXECUTION_ID);
        assert_eq!((put.num_calls(), marker.num_calls()), (2, 1));
        assert_eq!((delete.num_calls(), unmark.num_calls()), (1, 1));
        assert_eq!(reads.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_stale_lock_another_run_is_removing_is_left_to_it_and_this_run_skips() {
        // The issue's race: both runs judged the same lock stale. The other created its removal
        // marker first: this run deletes nothing, looks again and finds the other run's lock.
        let get = targets(TWO_FAMILIES);
        let reads = lock_reads(&[STALE, WINNER]);
        let put = lock_put(false);
        let marker_taken = mock!(Ssm::put_parameter)
            .match_requests(|r| is_marker(r.name()))
            .then_error(|| {
                PutParameterError::ParameterAlreadyExists(ParameterAlreadyExists::builder().build())
            });
        let marker_holder = mock!(Ssm::get_parameter)
            .match_requests(|r| is_marker(r.name()))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .value("arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:winner")
                            .version(1)
                            .last_modified_date(aws_sdk_ssm::primitives::DateTime::from_secs(
                                testing::fixed_now().unix_timestamp() - 1,
                            ))
                            .build(),
                    )
                    .build()
            });
        let (delete, unmark) = (deleted(false), deleted(true));
        let plan = run(vec![
            &get,
            &reads,
            &marker_taken,
            &marker_holder,
            &put,
            &delete,
            &unmark,
        ])
        .await
        .unwrap();
        assert_eq!((plan.lock, plan.broke), (None, None));
        assert!(plan.held_by.unwrap().execution_id.ends_with(":winner"));
        assert_eq!((delete.num_calls(), unmark.num_calls()), (0, 0));
        assert_eq!((marker_taken.num_calls(), put.num_calls()), (1, 2));
    }

    #[tokio::test]
    async fn a_lock_that_changed_before_the_marker_is_not_removed() {
        // Judged stale, but by the time this run holds the marker the winner's lock is there:
        // only the marker goes, and this run skips naming the winner.
        let get = targets(TWO_FAMILIES);
        let reads = lock_reads(&[STALE, WINNER, WINNER]);
        let (marker, put) = (marker_created(), lock_put(false));
        let (delete, unmark) = (deleted(false), deleted(true));
        let plan = run(vec![&get, &reads, &marker, &put, &delete, &unmark])
            .await
            .unwrap();
        assert!(plan.held_by.unwrap().execution_id.ends_with(":winner"));
        assert_eq!(plan.broke, None);
        assert_eq!(
            (delete.num_calls(), unmark.num_calls(), marker.num_calls()),
            (0, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_failed_delete_is_tried_again_only_after_reading_the_lock() {
        // The SDK does not retry the delete (its first attempt may have gone through, and a
        // retry would then remove the next run's lock): the lock is read, still the stale
        // value, and deleted again.
        let get = targets(TWO_FAMILIES);
        let reads = lock_reads(&[STALE, STALE, STALE]);
        let (marker, put, unmark) = (marker_created(), lock_put(true), deleted(true));
        let delete = mock!(Ssm::delete_parameter)
            .match_requests(|r| r.name() == Some(testing::LOCK_PARAMETER))
            .sequence()
            .error(|| {
                aws_sdk_ssm::operation::delete_parameter::DeleteParameterError::generic(
                    aws_sdk_ssm::error::ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .build(),
                )
            })
            .output(|| DeleteParameterOutput::builder().build())
            .build();
        let plan = run(vec![&get, &reads, &marker, &put, &delete, &unmark])
            .await
            .unwrap();
        assert_eq!(plan.broke.unwrap().execution_id, OTHER);
        assert_eq!((delete.num_calls(), reads.num_calls()), (2, 3));
    }

    #[tokio::test]
    async fn a_refused_delete_is_not_tried_again() {
        // Access denied is no passing fault: the run fails instead of trying until it gives up.
        let get = targets(TWO_FAMILIES);
        let reads = lock_reads(&[STALE, STALE, STALE]);
        let (marker, put, unmark) = (marker_created(), lock_put(true), deleted(true));
        let delete = mock!(Ssm::delete_parameter)
            .match_requests(|r| r.name() == Some(testing::LOCK_PARAMETER))
            .then_error(|| {
                aws_sdk_ssm::operation::delete_parameter::DeleteParameterError::generic(
                    aws_sdk_ssm::error::ErrorMetadata::builder()
                        .code("AccessDeniedException")
                        .message("not authorized to perform ssm:DeleteParameter")
                        .build(),
                )
            });
        let error = run(vec![&get, &reads, &marker, &put, &delete, &unmark])
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "AwsError");
        assert!(
            error.to_string().contains("AccessDeniedException"),
            "{error}"
        );
        assert_eq!(delete.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_bad_targets_document_is_a_config_error_naming_the_entry() {
        let get = targets(
            r#"{"families": [{"name": "x", "pointer": "/golden-ami/x", "architecture": "arm64", "instanceType": "t3.small"}],
                "regions": [{"region": "eu-west-1", "kmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-1"}]}"#,
        );
        let put = created();
        let error = run(vec![&get, &put]).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        assert!(error.to_string().contains("families[0] (x)"), "{error}");
        assert_eq!(put.num_calls(), 0, "no lock without a valid plan");
    }

    const TWO_BY_TWO: &str = r#"{"families": [
        {"name": "default", "pointer": "/golden-ami/current", "architecture": "x86_64", "instanceType": "t3.small"},
        {"name": "al2023-arm64", "pointer": "/golden-ami/al2023-arm64", "architecture": "arm64", "instanceType": "t4g.small"}],
      "regions": [{"region": "eu-west-1", "kmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-1"},
                  {"region": "us-east-1", "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/mrk-1"}]}"#;

    /// Deps whose stack polls every loop every `seconds` s.
    fn polling_every(ssm: Vec<&Rule>, seconds: u64) -> Deps {
        let mut deps = MockClients {
            ssm,
            ..Default::default()
        }
        .deps();
        deps.config.bake_poll_seconds = seconds;
        deps.config.copy_poll_seconds = seconds;
        deps.config.test_poll_seconds = seconds;
        deps
    }

    #[tokio::test]
    async fn a_matrix_past_step_functions_limits_is_refused_before_the_lock() {
        // Polled every 2 s through the ordinary month (a 40-minute bake, a 15-minute copy, a
        // 10-minute boot test): 32 + 13,572 F + 4,087 F R events; 2 x 2 is 43,524.
        let (get, put, none) = (targets(TWO_BY_TWO), created(), pins(&[]));
        let deps = polling_every(vec![&get, &put, &none], 2);
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        let message = error.to_string();
        assert!(
            message.contains(
                "2 families x 2 regions would write about 43,524 history events (limit 25,000)"
            ),
            "{message}"
        );
        assert!(
            message.contains("the largest that fits with these intervals is 1 x 2;"),
            "{message}"
        );
        assert_eq!(put.num_calls(), 0, "no lock for a run that cannot finish");
    }

    #[tokio::test]
    async fn a_pinned_family_does_not_count_against_the_limits() {
        let (get, put) = (targets(TWO_BY_TWO), created());
        let pinned = pins(&[("/golden-ami-pipeline/pins/al2023-arm64", PIN)]);
        let deps = polling_every(vec![&get, &put, &pinned], 2);
        let plan = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!((plan.families.len(), plan.pinned.len()), (1, 1));
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_stack_s_default_intervals_let_the_same_matrix_run() {
        let (get, put, none) = (targets(TWO_BY_TWO), created(), pins(&[]));
        let deps = polling_every(vec![&get, &put, &none], 60);
        let plan = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(plan.families.len(), 2);
        assert!(plan.lock.is_some());
    }

    #[tokio::test]
    async fn a_missing_targets_parameter_says_to_deploy_the_stack() {
        let get = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let error = run(vec![&get]).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        assert!(error.to_string().contains("deploy the stack"), "{error}");
    }

    #[test]
    fn a_lock_value_is_judged_by_its_holder_and_expiry() {
        let ours = LockHolder {
            execution_id: "mine".into(),
            expires: "2026-12-01T17:00:00Z".into(),
            targets_version: None,
        };
        let now = testing::fixed_now();
        let other = |expires: &str| LockHolder {
            execution_id: "other".into(),
            expires: expires.into(),
            targets_version: None,
        };
        assert_eq!(decide(None, &ours, now).unwrap(), Decision::Gone);
        assert_eq!(decide(Some(&ours), &ours, now).unwrap(), Decision::Ours);
        assert!(matches!(
            decide(Some(&other("2026-12-01T09:00:00Z")), &ours, now).unwrap(),
            Decision::Held(_)
        ));
        assert!(matches!(
            decide(Some(&other("2026-12-01T08:00:00Z")), &ours, now).unwrap(),
            Decision::Stale(_)
        ));
    }
}
