//! ReleaseLock: let the next run start.
//!
//! At every end of a run that took the lock (success, a failed family, the failure path, and the
//! cleanup of an aborted or timed-out execution), the lock is removed if this execution holds
//! it. A lock that is not this run's (broken as stale, or never taken) is left alone and
//! reported.

use golden_ami_core::types::{LockHolder, LockRelease};
use golden_ami_core::{Deps, StepError, StepInput, classify_sdk_error};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<LockRelease, StepError> {
    release(deps, &input.context.execution_id).await
}

/// Remove the lock if `execution_id` holds it.
pub async fn release(deps: &Deps, execution_id: &str) -> Result<LockRelease, StepError> {
    let name = &deps.config.lock_parameter_name;
    let mut result = LockRelease {
        parameter_name: name.clone(),
        released: false,
        held_by: None,
    };
    let holder = match deps.clients.ssm().get_parameter().name(name).send().await {
        Ok(output) => output
            .parameter()
            .and_then(|p| p.value())
            .and_then(|value| serde_json::from_str::<LockHolder>(value).ok()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_parameter_not_found()) =>
        {
            return Ok(result);
        }
        Err(error) => return Err(classify_sdk_error("ssm:GetParameter", error)),
    };
    match holder {
        Some(holder) if holder.execution_id == execution_id => {
            match deps
                .clients
                .ssm()
                .delete_parameter()
                .name(name)
                .send()
                .await
            {
                Ok(_) => result.released = true,
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|service| service.is_parameter_not_found()) => {}
                Err(error) => return Err(classify_sdk_error("ssm:DeleteParameter", error)),
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
    use aws_sdk_ssm::types::Parameter;
    use aws_sdk_ssm::types::error::ParameterNotFound;
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
        let result = run(vec![&get, &del]).await;
        assert!(result.released);
        assert_eq!(del.num_calls(), 1);
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
