//! CheckTest: one poll of the boot test, and its verdict.
//!
//! Still running -> `done: false`. Ended with every baseline control passing -> `passed: true`,
//! the only result that lets PublishPointer run. Anything else is TestFailed, naming each failed
//! control with its evidence, or the step that failed (an image that never comes Online did not
//! boot, or cannot reach Systems Manager). The verdict fails closed: output that does not reach
//! the check's SUMMARY line is a failure. Past the deadline the automation is stopped (its
//! onCancel route terminates the test instance), then TestTimedOut.

use aws_sdk_ssm::types::AutomationExecution;
use golden_ami_core::automation::{
    Progress, WAIT_FOR_SSM_STEP, command_output_location, current_step, failed_step,
    failure_message, output, progress, ran_for, status_name, was_cancelled,
};
use golden_ami_core::naming::parse_timestamp;
use golden_ami_core::report::Outcome;
use golden_ami_core::{
    CheckReport, Deps, StepError, StepInput, TestStarted, TestStatus, get_automation,
    stop_automation,
};

/// The outputs of infra/test-document.yaml this step reads.
pub const CHECK_OUTPUT: &str = "runCheck.Output";
pub const CHECK_COMMAND_OUTPUT: &str = "runCheck.CommandId";
pub const INSTANCE_OUTPUT: &str = "launchInstance.InstanceId";
/// The step of the test document that runs the check.
pub const CHECK_STEP: &str = "runCheck";

pub async fn handler(deps: &Deps, input: StepInput) -> Result<TestStatus, StepError> {
    let test = input.state.require_test()?;
    let test_name = &input
        .state
        .home_region_result()?
        .require_copy()?
        .golden_ami_name;
    let id = &test.automation_execution_id;
    let execution = get_automation(deps.clients.ssm(), id)
        .await?
        .ok_or_else(|| {
            StepError::TestFailed(vec![format!("test automation {id} no longer exists")])
        })?;
    let report = command_output_location(
        &deps.config.report_bucket_name,
        &format!("tests/{test_name}"),
        output(&execution, CHECK_COMMAND_OUTPUT),
        output(&execution, INSTANCE_OUTPUT),
    );
    let status = evaluate(&execution, test, &report)?;
    if status.done {
        tracing::info!(golden_ami_id = %test.golden_ami_id, passed = status.controls_passed, "boot test passed");
        return Ok(status);
    }
    let deadline = parse_timestamp("state.test.deadline", &test.deadline)?;
    if deps.now() > deadline {
        stop_automation(deps.clients.ssm(), id).await?;
        return Err(StepError::TestTimedOut(format!(
            "test automation {id} was still {} (step {}) at its deadline {} (TEST_TIMEOUT_MINUTES={}); it has been stopped, and its document terminates the test instance",
            status.status,
            status.current_step.as_deref().unwrap_or("unknown"),
            test.deadline,
            deps.config.test_timeout.as_secs() / 60
        )));
    }
    Ok(status)
}

/// Decide what one GetAutomationExecution answer of the test means.
pub fn evaluate(
    execution: &AutomationExecution,
    test: &TestStarted,
    report: &str,
) -> Result<TestStatus, StepError> {
    let id = &test.automation_execution_id;
    let running = TestStatus {
        done: false,
        status: status_name(execution),
        current_step: current_step(execution.step_executions()),
        golden_ami_id: Some(test.golden_ami_id.clone()),
        instance_id: output(execution, INSTANCE_OUTPUT).map(str::to_string),
        report: Some(report.to_string()),
        ..TestStatus::default()
    };
    match progress(execution.automation_execution_status()) {
        Progress::Running => Ok(running),
        Progress::Succeeded => {
            let check = CheckReport::parse(output(execution, CHECK_OUTPUT).unwrap_or_default());
            verdict(&check, report)?;
            Ok(TestStatus {
                done: true,
                passed: true,
                controls_passed: check.count(Outcome::Pass),
                controls_skipped: check.count(Outcome::Skip),
                duration_seconds: ran_for(execution),
                ..running
            })
        }
        Progress::Ended => Err(StepError::TestFailed(ended_failures(execution, id, report))),
    }
}

/// Every control passed, and the output is complete (it reached SUMMARY with no failure).
pub fn verdict(check: &CheckReport, report: &str) -> Result<(), StepError> {
    let failures = check.failures();
    if !failures.is_empty() {
        return Err(StepError::TestFailed(failures));
    }
    match check.summary {
        Some((passed, 0, _)) if passed > 0 && passed == check.count(Outcome::Pass) => Ok(()),
        Some((_, failed, _)) if failed > 0 => Err(StepError::TestFailed(vec![format!(
            "the check reports {failed} failed controls that its output does not show: see {report}"
        )])),
        _ => Err(StepError::TestFailed(vec![format!(
            "the baseline check's output is incomplete (no SUMMARY line, or it does not match the controls shown): see {report}"
        )])),
    }
}

/// Why a test automation that did not succeed failed: the failed controls if the check ran and
/// said so, else the failed step.
fn ended_failures(execution: &AutomationExecution, id: &str, report: &str) -> Vec<String> {
    let step = failed_step(execution);
    let name = step.and_then(|step| step.step_name()).unwrap_or_default();
    if name == CHECK_STEP {
        // The check exits non-zero when a control fails; its output says which.
        let mut text = step
            .and_then(|step| step.outputs())
            .and_then(|outputs| outputs.get("Output"))
            .map(|values| values.join("\n"))
            .unwrap_or_default();
        text.push('\n');
        text.push_str(
            step.and_then(|step| step.failure_message())
                .unwrap_or_default(),
        );
        let failures = CheckReport::parse(&text).failures();
        if !failures.is_empty() {
            return failures;
        }
    }
    let message = failure_message(execution, id);
    if was_cancelled(execution) {
        // Stopped by someone, not a verdict on the image: say so, and not "may not boot".
        return vec![message];
    }
    if name == WAIT_FOR_SSM_STEP {
        vec![format!(
            "the golden image did not come Online in Systems Manager: it may not boot (a kernel update?), or {message}"
        )]
    } else {
        vec![format!("{message} (check output, if any: {report})")]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionOutput;
    use aws_sdk_ssm::operation::stop_automation_execution::StopAutomationExecutionOutput;
    use aws_sdk_ssm::types::{AutomationExecutionStatus as Status, StepExecution, StopType};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/check-test/in-progress.json");
    const PAST_DEADLINE: &str = include_str!("../../../events/check-test/past-deadline.json");
    const ID: &str = "7a8b9c0d-2222-4333-8444-a55566667777";
    const PASSING: &str = "PASS selinux-config SELINUX=enforcing (/etc/selinux/config)\nPASS ssh-ciphers Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com\nSKIP sysctl-runtime sysctl not readable\nSUMMARY pass=2 fail=0 skip=1\n";
    const FAILING: &str = "PASS selinux-config SELINUX=enforcing (/etc/selinux/config)\nFAIL ssh-ciphers Ciphers allows aes128-cbc (/etc/ssh/sshd_config.d/00-golden-ami.conf)\nFAIL time-sync no server 169.254.169.123 line\nSUMMARY pass=1 fail=2 skip=0\n";

    fn step(name: &str, status: Status, failure: Option<&str>, out: Option<&str>) -> StepExecution {
        StepExecution::builder()
            .step_name(name)
            .action("aws:runCommand")
            .step_status(status)
            .set_failure_message(failure.map(str::to_string))
            .set_outputs(
                out.map(|text| HashMap::from([("Output".to_string(), vec![text.to_string()])])),
            )
            .build()
    }

    fn get(status: Status, steps: Vec<StepExecution>, check: Option<&str>) -> Rule {
        let mut outputs = HashMap::from([
            (
                INSTANCE_OUTPUT.to_string(),
                vec!["i-0fedcba9876543210".to_string()],
            ),
            (
                CHECK_COMMAND_OUTPUT.to_string(),
                vec!["5d6e7f80-0000-4000-8000-000000000002".to_string()],
            ),
        ]);
        if let Some(check) = check {
            outputs.insert(CHECK_OUTPUT.to_string(), vec![check.to_string()]);
        }
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

    fn stop_rule() -> Rule {
        mock!(Ssm::stop_automation_execution)
            .match_requests(|request| {
                request.automation_execution_id() == Some(ID)
                    && request.r#type() == Some(&StopType::Cancel)
            })
            .then_output(|| StopAutomationExecutionOutput::builder().build())
    }

    async fn run(event: &str, rules: Vec<&Rule>) -> Result<TestStatus, StepError> {
        let deps = MockClients {
            ssm: rules,
            ..Default::default()
        }
        .deps();
        handler(&deps, testing::event(event)).await
    }

    #[tokio::test]
    async fn a_running_test_is_not_done() {
        let poll = get(
            Status::Inprogress,
            vec![step("waitForSsm", Status::Inprogress, None, None)],
            None,
        );
        let stop = stop_rule();
        let status = run(EVENT, vec![&poll, &stop]).await.unwrap();
        assert!(!status.done && !status.passed);
        assert_eq!(status.current_step.as_deref(), Some("waitForSsm"));
        assert_eq!(stop.num_calls(), 0);
    }

    #[tokio::test]
    async fn every_control_passing_is_a_passed_test() {
        let poll = get(Status::Success, vec![], Some(PASSING));
        let status = run(EVENT, vec![&poll]).await.unwrap();
        assert!(status.done && status.passed);
        assert_eq!((status.controls_passed, status.controls_skipped), (2, 1));
        assert_eq!(
            status.golden_ami_id.as_deref(),
            Some("ami-0ccccccccccccccc0")
        );
        assert_eq!(status.instance_id.as_deref(), Some("i-0fedcba9876543210"));
        assert_eq!(
            status.report.as_deref(),
            Some(
                "s3://golden-ami-reports-111122223333/tests/golden-ami-2026-12-01-5e6f7a8b/5d6e7f80-0000-4000-8000-000000000002/i-0fedcba9876543210/"
            )
        );
    }

    #[tokio::test]
    async fn a_failed_control_names_each_control_and_its_evidence() {
        let poll = get(
            Status::Failed,
            vec![step(
                CHECK_STEP,
                Status::Failed,
                Some("Step fails when it is Poll action status:Failed."),
                Some(FAILING),
            )],
            None,
        );
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "TestFailed");
        assert_eq!(
            error.to_string(),
            "boot test failed: control ssh-ciphers failed: Ciphers allows aes128-cbc (/etc/ssh/sshd_config.d/00-golden-ami.conf); control time-sync failed: no server 169.254.169.123 line"
        );
    }

    #[tokio::test]
    async fn failed_controls_are_found_in_the_failure_message_too() {
        let message = format!(
            "Step fails when it is Poll action status:Failed. Command x returns unexpected invocation result: {{Status=[Failed], ResponseCode=[1], Output=[{FAILING}]}}"
        );
        let poll = get(
            Status::Failed,
            vec![step(CHECK_STEP, Status::Failed, Some(&message), None)],
            None,
        );
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert!(
            error.to_string().contains("control time-sync failed"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_image_that_never_comes_online_did_not_boot() {
        let poll = get(
            Status::Failed,
            vec![step(
                WAIT_FOR_SSM_STEP,
                Status::Timedout,
                Some("Step timed out"),
                None,
            )],
            None,
        );
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "TestFailed");
        let message = error.to_string();
        assert!(message.contains("may not boot"), "{message}");
        assert!(message.contains("egress on 443"), "{message}");
    }

    #[tokio::test]
    async fn a_cancelled_test_fails() {
        let poll = get(
            Status::Cancelled,
            vec![step("runCheck", Status::Cancelled, Some("cancelled"), None)],
            None,
        );
        let error = run(EVENT, vec![&poll]).await.unwrap_err();
        assert_eq!(error.error_type(), "TestFailed");
        assert!(
            error.to_string().contains(&format!(
                "automation {ID} was cancelled (StopAutomationExecution) during step runCheck"
            )),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_test_cancelled_while_it_waits_for_ssm_is_not_an_image_that_may_not_boot() {
        const STARTER: &str = "arn:aws:sts::111122223333:assumed-role/StartTestRole/start-test";
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
                            .step_executions(step("launchInstance", Status::Success, None, None))
                            .step_executions(step(
                                WAIT_FOR_SSM_STEP,
                                Status::Cancelled,
                                Some("Step cancelled"),
                                None,
                            ))
                            .step_executions(step("terminateInstance", Status::Success, None, None))
                            .build(),
                    )
                    .build()
            });
        let stop = stop_rule();
        let error = run(EVENT, vec![&poll, &stop]).await.unwrap_err();
        assert_eq!(error.error_type(), "TestFailed");
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
        assert!(!message.contains("may not boot"), "{message}");
        assert!(!message.contains("Online"), "{message}");
        assert_eq!(poll.num_calls(), 1);
        // Already cancelled: nothing to stop.
        assert_eq!(stop.num_calls(), 0);
    }

    #[tokio::test]
    async fn success_without_a_complete_check_output_fails_closed() {
        for output in [
            None,
            Some("PASS selinux-config ok\n"),
            Some("SUMMARY pass=3 fail=0 skip=0\nPASS selinux-config ok\n"),
        ] {
            let poll = get(Status::Success, vec![], output);
            let error = run(EVENT, vec![&poll]).await.unwrap_err();
            assert_eq!(error.error_type(), "TestFailed", "{output:?}");
            assert!(error.to_string().contains("incomplete"), "{error}");
        }
    }

    #[tokio::test]
    async fn past_the_deadline_the_test_is_stopped_then_timed_out() {
        let poll = get(Status::Inprogress, vec![], None);
        let stop = stop_rule();
        let error = run(PAST_DEADLINE, vec![&poll, &stop]).await.unwrap_err();
        assert_eq!(error.error_type(), "TestTimedOut");
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
