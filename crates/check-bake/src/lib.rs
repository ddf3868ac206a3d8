//! CheckBake: one poll of the bake automation.
//!
//! Still running -> `done: false` (the state machine waits and polls again); Success -> the
//! intermediate image id from the document's outputs; any other end -> BakeFailed naming the
//! automation step that failed and why. Past the deadline the automation is stopped first, so
//! its document's onCancel route terminates the temporary instance, then BakeTimedOut.

use aws_sdk_ssm::types::{AutomationExecution, AutomationExecutionStatus, StepExecution};
use golden_ami_core::naming::{is_ami_id, parse_timestamp};
use golden_ami_core::{
    BakeStatus, Deps, StepError, StepInput, classify_sdk_error, stop_automation,
};

/// The output of infra/bake-document.yaml that carries the new image id.
pub const IMAGE_OUTPUT: &str = "createImage.ImageId";

pub async fn handler(deps: &Deps, input: StepInput) -> Result<BakeStatus, StepError> {
    let bake = input.state.require_bake()?;
    let id = &bake.automation_execution_id;
    let output = deps
        .clients
        .ssm
        .get_automation_execution()
        .automation_execution_id(id)
        .send()
        .await
        .map_err(|error| match error.as_service_error() {
            Some(service) if service.is_automation_execution_not_found_exception() => {
                StepError::BakeFailed(format!("automation {id} no longer exists"))
            }
            _ => classify_sdk_error("ssm:GetAutomationExecution", error),
        })?;
    let execution = output
        .automation_execution()
        .ok_or_else(|| StepError::AwsError {
            operation: "ssm:GetAutomationExecution".into(),
            code: "EmptyResponse".into(),
            message: format!("no automation execution in the response for {id}"),
        })?;
    match evaluate(execution, id)? {
        Poll::Running(status) => {
            let deadline = parse_timestamp("state.bake.deadline", &bake.deadline)?;
            if deps.now() > deadline {
                stop_automation(&deps.clients.ssm, id).await?;
                return Err(StepError::BakeTimedOut(format!(
                    "automation {id} was still {} at its deadline {} (BAKE_TIMEOUT_MINUTES={}); it has been stopped, and its document terminates the temporary instance",
                    status.status,
                    bake.deadline,
                    deps.config.bake_timeout.as_secs() / 60
                )));
            }
            Ok(status)
        }
        Poll::Done(status) => Ok(status),
    }
}

/// The outcome of one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Running(BakeStatus),
    Done(BakeStatus),
}

/// Decide what one GetAutomationExecution answer means.
pub fn evaluate(execution: &AutomationExecution, id: &str) -> Result<Poll, StepError> {
    let status = execution
        .automation_execution_status()
        .map_or("Unknown", AutomationExecutionStatus::as_str)
        .to_string();
    let current_step = current_step(execution.step_executions());
    match execution.automation_execution_status() {
        Some(
            AutomationExecutionStatus::Success | AutomationExecutionStatus::CompletedWithSuccess,
        ) => {
            let image = execution
                .outputs()
                .and_then(|outputs| outputs.get(IMAGE_OUTPUT))
                .and_then(|values| values.first())
                .filter(|value| is_ami_id(value))
                .ok_or_else(|| {
                    StepError::BakeFailed(format!(
                        "automation {id} succeeded but its output {IMAGE_OUTPUT} holds no image id: check the bake document's outputs"
                    ))
                })?;
            Ok(Poll::Done(BakeStatus {
                done: true,
                status,
                baked_ami_id: Some(image.clone()),
                current_step,
            }))
        }
        Some(
            AutomationExecutionStatus::Pending
            | AutomationExecutionStatus::Inprogress
            | AutomationExecutionStatus::Waiting
            | AutomationExecutionStatus::Cancelling
            | AutomationExecutionStatus::RunbookInprogress
            | AutomationExecutionStatus::Scheduled
            | AutomationExecutionStatus::Approved
            | AutomationExecutionStatus::PendingApproval
            | AutomationExecutionStatus::PendingChangeCalendarOverride
            | AutomationExecutionStatus::ChangeCalendarOverrideApproved,
        ) => Ok(Poll::Running(BakeStatus {
            done: false,
            status,
            baked_ami_id: None,
            current_step,
        })),
        _ => Err(StepError::BakeFailed(failure_message(
            execution, id, &status,
        ))),
    }
}

/// The step running now, or the last one that ran.
fn current_step(steps: &[StepExecution]) -> Option<String> {
    steps
        .iter()
        .find(|step| {
            step.step_status()
                .is_some_and(|s| s.as_str() == "InProgress")
        })
        .or_else(|| steps.iter().rev().find(|step| step.step_status().is_some()))
        .and_then(|step| step.step_name().map(str::to_string))
}

/// Name the step that failed and why; fall back to the automation's own message.
pub fn failure_message(execution: &AutomationExecution, id: &str, status: &str) -> String {
    let failed = execution.step_executions().iter().find(|step| {
        step.step_status()
            .is_some_and(|s| matches!(s.as_str(), "Failed" | "TimedOut" | "Cancelled"))
    });
    match failed {
        Some(step) => format!(
            "automation {id} ended {status}: step {} ({}) {}: {}",
            step.step_name().unwrap_or("(unnamed)"),
            step.action().unwrap_or("unknown action"),
            step.step_status().map_or("failed", |s| s.as_str()),
            step.failure_message()
                .or(execution.failure_message())
                .unwrap_or("no failure message")
        ),
        None => format!(
            "automation {id} ended {status}: {}",
            execution.failure_message().unwrap_or("no failure message")
        ),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::types::StopType;
    use std::collections::HashMap;

    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionOutput;
    use aws_sdk_ssm::operation::stop_automation_execution::StopAutomationExecutionOutput;
    use aws_sdk_ssm::types::AutomationExecutionStatus as Status;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/check-bake/in-progress.json");
    const PAST_DEADLINE: &str = include_str!("../../../events/check-bake/past-deadline.json");
    const ID: &str = "4c5d6e7f-1111-4222-8333-944455556666";

    fn step(name: &str, action: &str, status: Status, failure: Option<&str>) -> StepExecution {
        StepExecution::builder()
            .step_name(name)
            .action(action)
            .step_status(status)
            .set_failure_message(failure.map(str::to_string))
            .build()
    }

    fn get(status: Status, steps: Vec<StepExecution>, image: Option<&str>) -> Rule {
        let outputs: Option<HashMap<String, Vec<String>>> =
            image.map(|id| HashMap::from([(IMAGE_OUTPUT.to_string(), vec![id.to_string()])]));
        mock!(Ssm::get_automation_execution)
            .match_requests(|request| request.automation_execution_id() == Some(ID))
            .then_output(move || {
                GetAutomationExecutionOutput::builder()
                    .automation_execution(
                        AutomationExecution::builder()
                            .automation_execution_id(ID)
                            .automation_execution_status(status.clone())
                            .set_step_executions(Some(steps.clone()))
                            .set_outputs(outputs.clone())
                            .build(),
                    )
                    .build()
            })
    }

    fn stop_rule() -> Rule {
        mock!(Ssm::stop_automation_execution)
            .match_requests(|request| {
                request.automation_execution_id() == Some(ID)
                    && request.r#type() == Some(&StopType::Cancel)
            })
            .then_output(|| StopAutomationExecutionOutput::builder().build())
    }

    async fn run(event: &str, rules: Vec<&Rule>) -> Result<BakeStatus, StepError> {
        let deps = MockClients {
            ssm: rules,
            ..Default::default()
        }
        .deps();
        handler(&deps, testing::event(event)).await
    }

    #[tokio::test]
    async fn a_running_bake_is_not_done_and_names_its_step() {
        let poll = get(
            Status::Inprogress,
            vec![
                step("launchInstance", "aws:executeAwsApi", Status::Success, None),
                step("updateOs", "aws:runCommand", Status::Inprogress, None),
            ],
            None,
        );
        let stop = stop_rule();
        let status = run(EVENT, vec![&poll, &stop]).await.unwrap();
        assert!(!status.done);
        assert_eq!(status.status, "InProgress");
        assert_eq!(status.current_step.as_deref(), Some("updateOs"));
        assert_eq!((poll.num_calls(), stop.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn success_reports_the_baked_image() {
        let poll = get(Status::Success, vec![], Some("ami-0bbbbbbbbbbbbbbbb"));
        let status = run(EVENT, vec![&poll]).await.unwrap();
        assert!(status.done);
        assert_eq!(
            status.baked_ami_id.as_deref(),
            Some("ami-0bbbbbbbbbbbbbbbb")
        );
    }

    #[tokio::test]
    async fn success_without_an_image_output_is_bake_failed() {
        let poll = get(Status::Success, vec![], None);
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "BakeFailed");
        assert!(error.to_string().contains(IMAGE_OUTPUT));
    }

    #[tokio::test]
    async fn a_failed_bake_names_the_failing_step_and_reason() {
        let poll = get(
            Status::Failed,
            vec![
                step("launchInstance", "aws:executeAwsApi", Status::Success, None),
                step(
                    "waitForSsm",
                    "aws:waitForAwsResourceProperty",
                    Status::Success,
                    None,
                ),
                step(
                    "updateOs",
                    "aws:runCommand",
                    Status::Failed,
                    Some("dnf exited with 1: Cannot download repomd.xml"),
                ),
                step(
                    "terminateInstance",
                    "aws:changeInstanceState",
                    Status::Success,
                    None,
                ),
            ],
            None,
        );
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "BakeFailed");
        assert_eq!(
            error.to_string(),
            format!(
                "bake failed: automation {ID} ended Failed: step updateOs (aws:runCommand) Failed: dnf exited with 1: Cannot download repomd.xml"
            )
        );
    }

    #[tokio::test]
    async fn cancelled_and_timed_out_bakes_fail() {
        for status in [Status::Cancelled, Status::Timedout] {
            let poll = get(status.clone(), vec![], None);
            let error = run(EVENT, vec![&poll]).await.unwrap_err();
            assert_eq!(error.error_type(), "BakeFailed");
            assert!(error.to_string().contains(status.as_str()));
        }
    }

    #[tokio::test]
    async fn past_the_deadline_the_bake_is_stopped_then_timed_out() {
        let poll = get(Status::Inprogress, vec![], None);
        let stop = stop_rule();
        let error = run(PAST_DEADLINE, vec![&poll, &stop]).await.unwrap_err();
        assert_eq!(error.error_type(), "BakeTimedOut");
        assert_eq!(stop.num_calls(), 1);
        assert!(error.to_string().contains("has been stopped"));
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let poll =
            mock!(Ssm::get_automation_execution).then_http_response(|| testing::http_status(500));
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }
}
