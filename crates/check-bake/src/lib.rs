//! CheckBake: one poll of the bake automation.
//!
//! Still running -> `done: false` (the state machine waits and polls again). Success with an
//! image -> the intermediate image id and the change summary the bake recorded before it
//! updated (`listUpdates.Output`). Success without an image, because no update was pending ->
//! `upToDate: true` (the run ends SKIPPED). Any other end -> BakeFailed naming the automation
//! step that failed and why. Past the deadline the automation is stopped first, so its
//! document's onCancel route terminates the temporary instance, then BakeTimedOut.

use aws_sdk_ssm::types::AutomationExecution;
use golden_ami_core::automation::{
    Progress, command_output_location, current_step, failure_message, output, progress, ran_for,
    status_name,
};
use golden_ami_core::naming::{is_ami_id, parse_timestamp};
use golden_ami_core::{
    BakeStarted, BakeStatus, Deps, StepError, StepInput, UpdateSummary, get_automation,
    stop_automation,
};

/// The outputs of infra/bake-document.yaml this step reads.
pub const IMAGE_OUTPUT: &str = "createImage.ImageId";
pub const UPDATES_OUTPUT: &str = "listUpdates.Output";
pub const UPDATES_COMMAND_OUTPUT: &str = "listUpdates.CommandId";
pub const INSTANCE_OUTPUT: &str = "launchInstance.InstanceId";

pub async fn handler(deps: &Deps, input: StepInput) -> Result<BakeStatus, StepError> {
    let bake = input.state.require_bake()?;
    let id = &bake.automation_execution_id;
    let execution = get_automation(deps.clients.ssm(), id)
        .await?
        .ok_or_else(|| StepError::BakeFailed(format!("automation {id} no longer exists")))?;
    let status = evaluate(&execution, bake, &deps.config.report_bucket_name)?;
    if status.done {
        return Ok(status);
    }
    let deadline = parse_timestamp("state.bake.deadline", &bake.deadline)?;
    if deps.now() > deadline {
        stop_automation(deps.clients.ssm(), id).await?;
        return Err(StepError::BakeTimedOut(format!(
            "automation {id} was still {} at its deadline {} (BAKE_TIMEOUT_MINUTES={}); it has been stopped, and its document terminates the temporary instance",
            status.status,
            bake.deadline,
            deps.config.bake_timeout.as_secs() / 60
        )));
    }
    Ok(status)
}

/// Decide what one GetAutomationExecution answer means.
pub fn evaluate(
    execution: &AutomationExecution,
    bake: &BakeStarted,
    report_bucket: &str,
) -> Result<BakeStatus, StepError> {
    let id = &bake.automation_execution_id;
    let mut status = BakeStatus {
        done: false,
        status: status_name(execution),
        current_step: current_step(execution.step_executions()),
        ..BakeStatus::default()
    };
    match progress(execution.automation_execution_status()) {
        Progress::Running => Ok(status),
        Progress::Ended => Err(StepError::BakeFailed(failure_message(execution, id))),
        Progress::Succeeded => {
            status.done = true;
            status.duration_seconds = ran_for(execution);
            let image = output(execution, IMAGE_OUTPUT).filter(|value| is_ami_id(value));
            let updates = update_summary(execution, bake, report_bucket);
            match (image, updates) {
                (Some(image), updates) => {
                    if let Err(problem) = &updates {
                        // The image is good; only its change report is missing.
                        tracing::warn!(%problem, "the bake's update summary is unreadable");
                    }
                    status.baked_ami_id = Some(image.to_string());
                    status.updates = updates.ok();
                }
                (None, Ok(updates)) if updates.up_to_date => {
                    status.up_to_date = true;
                    status.updates = Some(updates);
                }
                (None, Ok(_)) => {
                    return Err(StepError::BakeFailed(format!(
                        "automation {id} succeeded without an image although updates were pending: check the bake document's anythingToUpdate branch and its output {IMAGE_OUTPUT}"
                    )));
                }
                (None, Err(problem)) => {
                    return Err(StepError::BakeFailed(format!(
                        "automation {id} succeeded but its output {IMAGE_OUTPUT} holds no image id and {UPDATES_OUTPUT} is unreadable: {problem}"
                    )));
                }
            }
            Ok(status)
        }
    }
}

/// The change summary of the bake, with where its full report is.
fn update_summary(
    execution: &AutomationExecution,
    bake: &BakeStarted,
    report_bucket: &str,
) -> Result<UpdateSummary, String> {
    let text = output(execution, UPDATES_OUTPUT)
        .ok_or_else(|| format!("the bake returned no {UPDATES_OUTPUT}"))?;
    let mut summary = UpdateSummary::from_output(text)?;
    summary.report = Some(command_output_location(
        report_bucket,
        &format!("updates/{}", bake.target_ami_name),
        output(execution, UPDATES_COMMAND_OUTPUT),
        output(execution, INSTANCE_OUTPUT),
    ));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_automation_execution::{
        GetAutomationExecutionError, GetAutomationExecutionOutput,
    };
    use aws_sdk_ssm::operation::stop_automation_execution::StopAutomationExecutionOutput;
    use aws_sdk_ssm::types::error::AutomationExecutionNotFoundException;
    use aws_sdk_ssm::types::{AutomationExecutionStatus as Status, StepExecution, StopType};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/check-bake/in-progress.json");
    const PAST_DEADLINE: &str = include_str!("../../../events/check-bake/past-deadline.json");
    const ID: &str = "4c5d6e7f-1111-4222-8333-944455556666";
    const PENDING: &str = r#"{"upToDate":false,"packages":12,"advisories":3,"severities":{"Critical":1,"Important":2,"Medium":0,"Low":0,"Bugfix":0,"Enhancement":0},"cves":7,"kernelBefore":"6.1.112-122.189.amzn2023.x86_64","kernelAfter":"6.1.115-126.197.amzn2023.x86_64","advisoryIds":["ALAS2023-2024-745","ALAS2023-2024-751","ALAS2023-2024-760"],"truncated":false}
--- full report ---"#;
    const NOTHING: &str = r#"{"upToDate":true,"packages":0,"advisories":0,"severities":{},"cves":0,"kernelBefore":"6.1.115-126.197.amzn2023.x86_64","kernelAfter":"6.1.115-126.197.amzn2023.x86_64","advisoryIds":[],"truncated":false}"#;

    fn step(name: &str, action: &str, status: Status, failure: Option<&str>) -> StepExecution {
        StepExecution::builder()
            .step_name(name)
            .action(action)
            .step_status(status)
            .set_failure_message(failure.map(str::to_string))
            .build()
    }

    fn get(status: Status, steps: Vec<StepExecution>, outputs: &[(&str, &str)]) -> Rule {
        let outputs: HashMap<String, Vec<String>> = outputs
            .iter()
            .map(|(key, value)| (key.to_string(), vec![value.to_string()]))
            .collect();
        mock!(Ssm::get_automation_execution)
            .match_requests(|request| request.automation_execution_id() == Some(ID))
            .then_output(move || {
                GetAutomationExecutionOutput::builder()
                    .automation_execution(
                        AutomationExecution::builder()
                            .automation_execution_id(ID)
                            .automation_execution_status(status.clone())
                            .set_step_executions(Some(steps.clone()))
                            .set_outputs(Some(outputs.clone()))
                            .build(),
                    )
                    .build()
            })
    }

    fn baked(image: &'static str, updates: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            (IMAGE_OUTPUT, image),
            (UPDATES_OUTPUT, updates),
            (
                UPDATES_COMMAND_OUTPUT,
                "9f8e7d6c-0000-4000-8000-000000000001",
            ),
            (INSTANCE_OUTPUT, "i-0123456789abcdef0"),
        ]
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
            &[],
        );
        let stop = stop_rule();
        let status = run(EVENT, vec![&poll, &stop]).await.unwrap();
        assert!(!status.done && !status.up_to_date);
        assert_eq!(status.status, "InProgress");
        assert_eq!(status.current_step.as_deref(), Some("updateOs"));
        assert_eq!((poll.num_calls(), stop.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn success_reports_the_baked_image_and_what_changed() {
        let poll = get(
            Status::Success,
            vec![],
            &baked("ami-0bbbbbbbbbbbbbbbb", PENDING),
        );
        let status = run(EVENT, vec![&poll]).await.unwrap();
        assert!(status.done && !status.up_to_date);
        assert_eq!(
            status.baked_ami_id.as_deref(),
            Some("ami-0bbbbbbbbbbbbbbbb")
        );
        let updates = status.updates.unwrap();
        assert_eq!(
            (updates.packages, updates.advisories, updates.cves),
            (12, 3, 7)
        );
        assert_eq!(
            updates.report.as_deref(),
            Some(
                "s3://golden-ami-reports-111122223333/updates/golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-5e6f7a8b/9f8e7d6c-0000-4000-8000-000000000001/i-0123456789abcdef0/"
            )
        );
    }

    #[tokio::test]
    async fn an_unreadable_summary_does_not_stop_a_good_image() {
        let poll = get(
            Status::Success,
            vec![],
            &baked(
                "ami-0bbbbbbbbbbbbbbbb",
                "Error: Failed to download metadata",
            ),
        );
        let status = run(EVENT, vec![&poll]).await.unwrap();
        assert_eq!(
            status.baked_ami_id.as_deref(),
            Some("ami-0bbbbbbbbbbbbbbbb")
        );
        assert_eq!(status.updates, None);
    }

    #[tokio::test]
    async fn nothing_to_update_is_done_without_an_image() {
        let poll = get(
            Status::Success,
            vec![],
            &baked(golden_ami_core::automation::NO_OUTPUT, NOTHING),
        );
        let status = run(EVENT, vec![&poll]).await.unwrap();
        assert!(status.done && status.up_to_date);
        assert_eq!(status.baked_ami_id, None);
        assert!(status.updates.unwrap().up_to_date);
    }

    #[tokio::test]
    async fn no_image_although_updates_were_pending_is_bake_failed() {
        let poll = get(
            Status::Success,
            vec![],
            &baked(golden_ami_core::automation::NO_OUTPUT, PENDING),
        );
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "BakeFailed");
        assert!(error.to_string().contains("anythingToUpdate"), "{error}");
    }

    #[tokio::test]
    async fn no_image_and_no_summary_is_bake_failed() {
        let poll = get(Status::Success, vec![], &[]);
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "BakeFailed");
        assert!(error.to_string().contains(IMAGE_OUTPUT), "{error}");
    }

    #[tokio::test]
    async fn a_failed_bake_names_the_failing_step_and_reason() {
        let poll = get(
            Status::Failed,
            vec![
                step("launchInstance", "aws:executeAwsApi", Status::Success, None),
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
            &[],
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
    async fn an_instance_that_never_reaches_ssm_names_the_likely_causes() {
        let poll = get(
            Status::Failed,
            vec![step(
                "waitForSsm",
                "aws:waitForAwsResourceProperty",
                Status::Timedout,
                Some("Step timed out"),
            )],
            &[],
        );
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("security group allows egress on 443"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn cancelled_and_timed_out_bakes_fail() {
        for (status, words) in [
            (
                Status::Cancelled,
                "was cancelled (StopAutomationExecution), not failed",
            ),
            (Status::Timedout, "ended TimedOut"),
        ] {
            let poll = get(status.clone(), vec![], &[]);
            let error = run(EVENT, vec![&poll]).await.unwrap_err();
            assert_eq!(error.error_type(), "BakeFailed");
            assert!(error.to_string().contains(words), "{error}");
        }
    }

    #[tokio::test]
    async fn a_bake_cancelled_while_it_waits_for_ssm_says_cancelled_not_unreachable() {
        const STARTER: &str = "arn:aws:sts::111122223333:assumed-role/StartBakeRole/start-bake";
        // GetAutomationExecution after StopAutomationExecution (Cancel) in waitForSsm: the
        // execution and that step Cancelled, the onCancel route's terminate step run, and
        // ExecutedBy the starter (nothing records the stopper).
        let poll = mock!(Ssm::get_automation_execution)
            .match_requests(|request| request.automation_execution_id() == Some(ID))
            .then_output(|| {
                GetAutomationExecutionOutput::builder()
                    .automation_execution(
                        AutomationExecution::builder()
                            .automation_execution_id(ID)
                            .automation_execution_status(Status::Cancelled)
                            .executed_by(STARTER)
                            .step_executions(step(
                                "launchInstance",
                                "aws:runInstances",
                                Status::Success,
                                None,
                            ))
                            .step_executions(step(
                                "waitForSsm",
                                "aws:waitForAwsResourceProperty",
                                Status::Cancelled,
                                Some("Step cancelled"),
                            ))
                            .step_executions(step(
                                "terminateInstance",
                                "aws:changeInstanceState",
                                Status::Success,
                                None,
                            ))
                            .build(),
                    )
                    .build()
            });
        let stop = stop_rule();
        let error = run(EVENT, vec![&poll, &stop]).await.unwrap_err();
        assert_eq!(error.error_type(), "BakeFailed");
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "automation {ID} was cancelled (StopAutomationExecution) during step waitForSsm, not failed"
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("started by {STARTER}")),
            "{message}"
        );
        assert!(
            message.contains("SSM does not record who stopped it"),
            "{message}"
        );
        assert!(!message.contains("egress on 443"), "{message}");
        assert_eq!((poll.num_calls(), stop.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn a_vanished_automation_is_bake_failed() {
        let poll = mock!(Ssm::get_automation_execution).then_error(|| {
            GetAutomationExecutionError::AutomationExecutionNotFoundException(
                AutomationExecutionNotFoundException::builder().build(),
            )
        });
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "BakeFailed");
        assert!(error.to_string().contains("no longer exists"));
    }

    #[tokio::test]
    async fn past_the_deadline_the_bake_is_stopped_then_timed_out() {
        let poll = get(Status::Inprogress, vec![], &[]);
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
