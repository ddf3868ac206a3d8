//! The automations the pipeline starts (the bake, the boot test): reading one poll of an
//! execution and stopping one. CheckBake, CheckTest and the failure path read them alike.

use std::collections::HashMap;

use aws_sdk_ssm::types::{AutomationExecution, AutomationExecutionStatus, StepExecution, StopType};

use crate::error::{StepError, classify_sdk_error};

/// What SSM puts in an output whose step did not succeed (e.g. a step a branch skipped).
pub const NO_OUTPUT: &str = "No output available yet because the step is not successfully executed";

/// The step of both documents that waits for the instance to reach Systems Manager.
pub const WAIT_FOR_SSM_STEP: &str = "waitForSsm";

/// What a person can check when an instance never reaches Systems Manager.
pub const SSM_UNREACHABLE_HINT: &str = "the instance never came Online in Systems Manager: check that the subnet routes to the ssm, ssmmessages and ec2messages endpoints (VPC endpoints or a NAT gateway), that the security group allows egress on 443, and that the instance profile has AmazonSSMManagedInstanceCore";

/// Where an automation is, as far as the pipeline cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Still running (or about to): poll again.
    Running,
    /// Ended with success.
    Succeeded,
    /// Ended any other way (failed, cancelled, timed out, rejected).
    Ended,
}

pub fn progress(status: Option<&AutomationExecutionStatus>) -> Progress {
    match status {
        Some(
            AutomationExecutionStatus::Success | AutomationExecutionStatus::CompletedWithSuccess,
        ) => Progress::Succeeded,
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
        ) => Progress::Running,
        _ => Progress::Ended,
    }
}

/// The status as SSM spells it.
pub fn status_name(execution: &AutomationExecution) -> String {
    execution
        .automation_execution_status()
        .map_or("Unknown", AutomationExecutionStatus::as_str)
        .to_string()
}

/// A document output (`step.Output`) that holds a value, not SSM's "no output" placeholder.
pub fn output<'a>(execution: &'a AutomationExecution, name: &str) -> Option<&'a str> {
    execution
        .outputs()
        .and_then(|outputs| outputs.get(name))
        .and_then(|values| values.first())
        .map(String::as_str)
        .filter(|value| !value.is_empty() && !value.starts_with(NO_OUTPUT))
}

/// The step running now, or the last one that ran.
pub fn current_step(steps: &[StepExecution]) -> Option<String> {
    steps
        .iter()
        .find(|step| {
            step.step_status()
                .is_some_and(|s| s.as_str() == "InProgress")
        })
        .or_else(|| steps.iter().rev().find(|step| step.step_status().is_some()))
        .and_then(|step| step.step_name().map(str::to_string))
}

/// The first step that failed, timed out or was cancelled.
pub fn failed_step(execution: &AutomationExecution) -> Option<&StepExecution> {
    execution.step_executions().iter().find(|step| {
        step.step_status()
            .is_some_and(|s| matches!(s.as_str(), "Failed" | "TimedOut" | "Cancelled"))
    })
}

/// Whether someone stopped the automation (StopAutomationExecution, type Cancel): its status is
/// Cancelled, and the step that was running when it stopped is Cancelled too.
pub fn was_cancelled(execution: &AutomationExecution) -> bool {
    matches!(
        execution.automation_execution_status(),
        Some(AutomationExecutionStatus::Cancelled | AutomationExecutionStatus::Cancelling)
    )
}

/// What a person reads about an automation someone cancelled: that it was cancelled, in which
/// step, and what the execution says about who. GetAutomationExecution's AutomationExecution
/// records `ExecutedBy`, the ARN that started it, and no field for the caller that stopped it
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AutomationExecution.html):
/// the stopper is in CloudTrail, under the StopAutomationExecution event, not here.
pub fn cancelled_message(execution: &AutomationExecution, id: &str) -> String {
    let during = failed_step(execution)
        .and_then(StepExecution::step_name)
        .map(|name| format!(" during step {name}"))
        .unwrap_or_default();
    let started_by = execution
        .executed_by()
        .filter(|who| !who.is_empty())
        .map(|who| format!("; it was started by {who}"))
        .unwrap_or_default();
    format!(
        "automation {id} was cancelled (StopAutomationExecution){during}, not failed: nothing is known against the image{started_by}, and SSM does not record who stopped it (CloudTrail's StopAutomationExecution event for {id} names the caller); re-run the pipeline once whoever stopped it agrees"
    )
}

/// Name the step that failed and why; fall back to the automation's own message. A failed
/// wait for Systems Manager also names its likely causes. A cancelled automation says so,
/// whichever step it stopped in.
pub fn failure_message(execution: &AutomationExecution, id: &str) -> String {
    if was_cancelled(execution) {
        return cancelled_message(execution, id);
    }
    let status = status_name(execution);
    match failed_step(execution) {
        Some(step) => {
            let name = step.step_name().unwrap_or("(unnamed)");
            let mut message = format!(
                "automation {id} ended {status}: step {name} ({}) {}: {}",
                step.action().unwrap_or("unknown action"),
                step.step_status().map_or("failed", |s| s.as_str()),
                step.failure_message()
                    .or(execution.failure_message())
                    .unwrap_or("no failure message")
            );
            if name == WAIT_FOR_SSM_STEP {
                message.push_str(&format!(" ({SSM_UNREACHABLE_HINT})"));
            }
            message
        }
        None => format!(
            "automation {id} ended {status}: {}",
            execution.failure_message().unwrap_or("no failure message")
        ),
    }
}

/// How long an automation ran, from its start to its end (None while it runs).
pub fn ran_for(execution: &AutomationExecution) -> Option<u64> {
    let start = execution.execution_start_time()?.secs();
    let end = execution.execution_end_time()?.secs();
    u64::try_from(end - start).ok()
}

/// GetAutomationExecution; `None` if the execution does not exist (any more).
pub async fn get_automation(
    ssm: &aws_sdk_ssm::Client,
    id: &str,
) -> Result<Option<AutomationExecution>, StepError> {
    match ssm
        .get_automation_execution()
        .automation_execution_id(id)
        .send()
        .await
    {
        Ok(output) => output
            .automation_execution()
            .cloned()
            .map(Some)
            .ok_or_else(|| StepError::AwsError {
                operation: "ssm:GetAutomationExecution".into(),
                code: "EmptyResponse".into(),
                message: format!("no automation execution in the response for {id}"),
            }),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_automation_execution_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(classify_sdk_error("ssm:GetAutomationExecution", error)),
    }
}

/// StartAutomationExecution of one of the pipeline's documents, idempotently (the same token
/// returns the execution it started). `variable` names the environment variable that holds the
/// document's name, so a missing document says what to fix.
pub async fn start_automation(
    ssm: &aws_sdk_ssm::Client,
    document: &str,
    variable: &str,
    parameters: HashMap<String, Vec<String>>,
    client_token: String,
) -> Result<String, StepError> {
    let output = ssm
        .start_automation_execution()
        .document_name(document)
        .set_parameters(Some(parameters))
        .client_token(client_token)
        .send()
        .await
        .map_err(|error| match error.as_service_error() {
            Some(service) if service.is_automation_definition_not_found_exception() => {
                StepError::ConfigError(format!(
                    "document {document} not found: deploy the stack, or fix {variable}"
                ))
            }
            Some(service) if service.is_invalid_automation_execution_parameters_exception() => {
                StepError::ConfigError(format!(
                    "document {document} rejected its parameters: {service}"
                ))
            }
            Some(service) if service.is_automation_execution_limit_exceeded_exception() => {
                // The account's concurrent automation quota: retrying later can succeed.
                StepError::Throttled {
                    operation: "ssm:StartAutomationExecution".into(),
                    message: service.to_string(),
                }
            }
            _ => classify_sdk_error("ssm:StartAutomationExecution", error),
        })?;
    output
        .automation_execution_id()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| StepError::AwsError {
            operation: "ssm:StartAutomationExecution".into(),
            code: "EmptyResponse".into(),
            message: "no automation execution id in the response".into(),
        })
}

/// Document parameters as SSM takes them: one value per name.
pub fn parameters<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> HashMap<String, Vec<String>> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_string(), vec![value.to_string()]))
        .collect()
}

/// The bake and test documents' StackName, RunId and Family: they tag everything the automation
/// creates with them (golden-ami:stack, golden-ami:execution, golden-ami:family) in the creating
/// call, which is what lets cleanup, the reaper and Retain prove a resource is this run's own.
pub fn run_parameters<'a>(
    config: &'a crate::Config,
    context: &'a crate::ExecutionContext,
    family: &'a crate::FamilyTarget,
) -> [(&'static str, &'a str); 3] {
    [
        ("StackName", config.pipeline_name.as_str()),
        ("RunId", context.execution_id.as_str()),
        ("Family", family.name.as_str()),
    ]
}

/// StopAutomationExecution (Cancel), so the document's onCancel route terminates the temporary
/// instance. An automation that ended between the caller's look and the stop is fine.
pub async fn stop_automation(ssm: &aws_sdk_ssm::Client, id: &str) -> Result<(), StepError> {
    let result = ssm
        .stop_automation_execution()
        .automation_execution_id(id)
        .r#type(StopType::Cancel)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_invalid_automation_status_update_exception()) =>
        {
            Ok(())
        }
        Err(error) => Err(classify_sdk_error("ssm:StopAutomationExecution", error)),
    }
}

/// The S3 URI prefix under which Run Command put a step's output, as the documents ask:
/// `s3://BUCKET/PREFIX/COMMAND-ID/INSTANCE-ID/`.
pub fn command_output_location(
    bucket: &str,
    key_prefix: &str,
    command_id: Option<&str>,
    instance_id: Option<&str>,
) -> String {
    let mut location = format!("s3://{bucket}/{}/", key_prefix.trim_matches('/'));
    if let Some(command) = command_id {
        location.push_str(command);
        location.push('/');
        if let Some(instance) = instance_id {
            location.push_str(instance);
            location.push('/');
        }
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, status: AutomationExecutionStatus, failure: Option<&str>) -> StepExecution {
        StepExecution::builder()
            .step_name(name)
            .action("aws:waitForAwsResourceProperty")
            .step_status(status)
            .set_failure_message(failure.map(str::to_string))
            .build()
    }

    #[test]
    fn statuses_map_to_progress() {
        use AutomationExecutionStatus as S;
        assert_eq!(progress(Some(&S::Inprogress)), Progress::Running);
        assert_eq!(progress(Some(&S::Cancelling)), Progress::Running);
        assert_eq!(progress(Some(&S::Success)), Progress::Succeeded);
        assert_eq!(progress(Some(&S::Failed)), Progress::Ended);
        assert_eq!(progress(Some(&S::Cancelled)), Progress::Ended);
        assert_eq!(progress(None), Progress::Ended);
    }

    #[test]
    fn a_failed_wait_for_ssm_names_the_likely_causes() {
        let execution = AutomationExecution::builder()
            .automation_execution_status(AutomationExecutionStatus::Failed)
            .step_executions(step(
                WAIT_FOR_SSM_STEP,
                AutomationExecutionStatus::Timedout,
                Some("Step timed out while step is verifying the property"),
            ))
            .build();
        let message = failure_message(&execution, "a-1");
        assert!(message.starts_with("automation a-1 ended Failed: step waitForSsm"));
        assert!(
            message.contains("security group allows egress on 443"),
            "{message}"
        );
        assert!(
            message.contains("AmazonSSMManagedInstanceCore"),
            "{message}"
        );
    }

    #[test]
    fn a_cancelled_wait_for_ssm_says_cancelled_and_by_whom_it_started_not_unreachable() {
        // What GetAutomationExecution answers after StopAutomationExecution (Cancel) while the
        // instance waits for SSM: the execution and the running step are Cancelled, the
        // onCancel step ran, and only the starter is recorded.
        let execution = AutomationExecution::builder()
            .automation_execution_status(AutomationExecutionStatus::Cancelled)
            .executed_by("arn:aws:sts::111122223333:assumed-role/StartBakeRole/start-bake")
            .step_executions(step(
                "launchInstance",
                AutomationExecutionStatus::Success,
                None,
            ))
            .step_executions(step(
                WAIT_FOR_SSM_STEP,
                AutomationExecutionStatus::Cancelled,
                Some("Step cancelled"),
            ))
            .step_executions(step(
                "terminateInstance",
                AutomationExecutionStatus::Success,
                None,
            ))
            .build();
        let message = failure_message(&execution, "a-1");
        assert!(
            message.starts_with(
                "automation a-1 was cancelled (StopAutomationExecution) during step waitForSsm, not failed"
            ),
            "{message}"
        );
        assert!(
            message.contains(
                "it was started by arn:aws:sts::111122223333:assumed-role/StartBakeRole/start-bake"
            ),
            "{message}"
        );
        assert!(
            message.contains("SSM does not record who stopped it"),
            "{message}"
        );
        assert!(!message.contains("egress on 443"), "{message}");
        assert!(!message.contains("Online"), "{message}");
    }

    #[test]
    fn a_cancelled_automation_without_its_starter_invents_no_one() {
        let execution = AutomationExecution::builder()
            .automation_execution_status(AutomationExecutionStatus::Cancelled)
            .build();
        let message = failure_message(&execution, "a-2");
        assert!(
            message
                .starts_with("automation a-2 was cancelled (StopAutomationExecution), not failed"),
            "{message}"
        );
        assert!(!message.contains("started by"), "{message}");
    }

    #[test]
    fn outputs_ignore_the_no_output_placeholder() {
        let execution = AutomationExecution::builder()
            .set_outputs(Some(HashMap::from([
                (
                    "createImage.ImageId".to_string(),
                    vec![NO_OUTPUT.to_string()],
                ),
                ("listUpdates.Output".to_string(), vec!["{}".to_string()]),
            ])))
            .build();
        assert_eq!(output(&execution, "createImage.ImageId"), None);
        assert_eq!(output(&execution, "listUpdates.Output"), Some("{}"));
        assert_eq!(output(&execution, "missing"), None);
    }

    #[test]
    fn command_output_locations_name_the_command_and_instance() {
        assert_eq!(
            command_output_location("b", "updates/img/", Some("c-1"), Some("i-1")),
            "s3://b/updates/img/c-1/i-1/"
        );
        assert_eq!(
            command_output_location("b", "tests/img", None, None),
            "s3://b/tests/img/"
        );
    }
}
