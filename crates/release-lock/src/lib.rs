//! ReleaseLock: let the next run start.
//!
//! At every end of a run that took the lock (success, a failed family, the failure path, and the
//! cleanup of an aborted or timed-out execution), the lock is removed if this execution holds
//! it. A lock that is not this run's (broken as stale, or never taken) is left alone and
//! reported.

use golden_ami_core::types::{LockHolder, LockRelease};
use golden_ami_core::{Deps, StepError, StepInput, lock};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<LockRelease, StepError> {
    release(deps, &input.context.execution_id).await
}

/// Remove the lock if `execution_id` holds it: only that value, through the removal protocol
/// of crates/core/src/lock.rs, so a lock taken by another run meanwhile is never removed.
pub async fn release(deps: &Deps, execution_id: &str) -> Result<LockRelease, StepError> {
    let mut result = LockRelease {
        parameter_name: deps.config.lock_parameter_name.clone(),
        released: false,
        held_by: None,
    };
    let Some(seen) = lock::read(deps).await? else {
        return Ok(result);
    };
    let holder = serde_json::from_str::<LockHolder>(&seen.value).ok();
    match holder {
        Some(holder) if holder.execution_id == execution_id => {
            // Boxed: the removal's future is deep, and the reaper awaits this one inside its own.
            result.released = Box::pin(lock::remove(deps, &seen, execution_id)).await?;
            if !result.released {
                tracing::warn!(
                    "the run lock changed hands before it could be released; left alone"
                );
                result.held_by = lock::read(deps)
                    .await?
                    .and_then(|now| serde_json::from_str::<LockHolder>(&now.value).ok());
            }
        }
        other => {
            tracing::warn!(holder = ?other, "the run lock is not this execution's; left alone");
            result.held_by = other;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::delete_parameter::DeleteParameterOutput;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::operation::put_parameter::{PutParameterError, PutParameterOutput};
    use aws_sdk_ssm::types::Parameter;
    use aws_sdk_ssm::types::error::{ParameterAlreadyExists, ParameterNotFound};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/release-lock/ok.json");

    fn holder(execution: &'static str) -> Rule {
        mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(testing::LOCK_PARAMETER))
            .then_output(move || {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .value(format!(
                                r#"{{"executionId": "{execution}", "expires": "2026-12-01T17:05:00Z"}}"#
                            ))
                            .build(),
                    )
                    .build()
            })
    }

    fn delete() -> Rule {
        mock!(Ssm::delete_parameter)
            .match_requests(|r| r.name() == Some(testing::LOCK_PARAMETER))
            .then_output(|| DeleteParameterOutput::builder().build())
    }

    fn is_marker(name: Option<&str>) -> bool {
        name.is_some_and(|name| name.starts_with(&format!("{}-removal/", testing::LOCK_PARAMETER)))
    }

    async fn run(ssm: Vec<&Rule>) -> LockRelease {
        let deps = MockClients {
            ssm,
            ..Default::default()
        }
        .deps();
        handler(&deps, testing::event(EVENT)).await.unwrap()
    }

    #[tokio::test]
    async fn this_runs_lock_is_removed() {
        let (get, del) = (holder(testing::EXECUTION_ID), delete());
        // Removed through its marker (crates/core/src/lock.rs), which is removed after it.
        let marker = mock!(Ssm::put_parameter)
            .match_requests(|r| {
                is_marker(r.name())
                    && r.overwrite() == Some(false)
                    && r.value() == Some(testing::EXECUTION_ID)
            })
            .then_output(|| PutParameterOutput::builder().version(1).build());
        let unmark = mock!(Ssm::delete_parameter)
            .match_requests(|r| is_marker(r.name()))
            .then_output(|| DeleteParameterOutput::builder().build());
        let result = run(vec![&get, &del, &marker, &unmark]).await;
        assert!(result.released);
        assert_eq!(
            (del.num_calls(), marker.num_calls(), unmark.num_calls()),
            (1, 1, 1)
        );
        // Read to judge it, then again holding the marker.
        assert_eq!(get.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_lock_someone_else_is_removing_is_left_to_them() {
        let (get, del) = (holder(testing::EXECUTION_ID), delete());
        let taken = mock!(Ssm::put_parameter)
            .match_requests(|r| is_marker(r.name()))
            .then_error(|| {
                PutParameterError::ParameterAlreadyExists(ParameterAlreadyExists::builder().build())
            });
        let marker = mock!(Ssm::get_parameter)
            .match_requests(|r| is_marker(r.name()))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .value("arn:aws:states:eu-west-1:1:execution:p:reaper-of-other")
                            .last_modified_date(aws_sdk_ssm::primitives::DateTime::from_secs(
                                testing::fixed_now().unix_timestamp(),
                            ))
                            .build(),
                    )
                    .build()
            });
        let result = run(vec![&get, &del, &taken, &marker]).await;
        assert!(!result.released);
        assert_eq!(del.num_calls(), 0);
    }

    #[tokio::test]
    async fn another_runs_lock_is_left_alone() {
        let (get, del) = (
            holder("arn:aws:states:eu-west-1:1:execution:p:other"),
            delete(),
        );
        let result = run(vec![&get, &del]).await;
        assert!(!result.released);
        assert_eq!(del.num_calls(), 0);
        assert!(result.held_by.unwrap().execution_id.ends_with(":other"));
    }

    #[tokio::test]
    async fn no_lock_is_nothing_to_do() {
        let get = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let result = run(vec![&get]).await;
        assert!(!result.released && result.held_by.is_none());
    }
}
