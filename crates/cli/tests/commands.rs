//! Every command of `golden-ami` against mocked AWS APIs (aws-smithy-mocks): what it asks, what
//! it answers, and what it refuses to do.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a broken fixture should fail loudly

use aws_sdk_cloudformation::operation::describe_stacks::{
    DescribeStacksError, DescribeStacksOutput,
};
use aws_sdk_cloudformation::types::{
    Output, Parameter as StackParameter, Stack as CfnStack, StackStatus,
};
use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
use aws_sdk_ec2::types::{Image, ImageState};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
use aws_sdk_sfn::types::{
    ExecutionListItem, ExecutionStatus, HistoryEvent, HistoryEventType, StateEnteredEventDetails,
    TaskSucceededEventDetails,
};
use aws_sdk_ssm::operation::delete_parameter::{DeleteParameterError, DeleteParameterOutput};
use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionOutput;
use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryOutput;
use aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput;
use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
use aws_sdk_ssm::types::error::ParameterNotFound;
use aws_sdk_ssm::types::{AutomationExecution, Parameter, ParameterHistory, StepExecution};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use golden_ami_cli::{self as cli, Aws, Family, Stack};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-03 09:00:00 UTC);
const MACHINE: &str = "arn:aws:states:eu-west-1:111122223333:stateMachine:golden-ami-pipeline";
const EXECUTION: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:monthly";
const TARGETS: &str = r#"{"families": [
    {"name": "default", "pointer": "/golden-ami/current", "architecture": "x86_64", "instanceType": "t3.small"},
    {"name": "arm64", "pointer": "/golden-ami/arm64", "architecture": "arm64", "instanceType": "t4g.small", "regions": ["eu-west-1"]}],
  "regions": [{"region": "eu-west-1"}, {"region": "us-east-1"}]}"#;
const CURRENT: &str = "ami-0ccccccccccccccc0";
const PREVIOUS: &str = "ami-0bbbbbbbbbbbbbbb0";

#[derive(Default)]
struct Rules<'a> {
    cloudformation: Vec<&'a Rule>,
    sfn: Vec<&'a Rule>,
    ssm: Vec<&'a Rule>,
    ec2: Vec<&'a Rule>,
    sts: Vec<&'a Rule>,
}

impl Rules<'_> {
    fn aws(&self) -> Aws {
        macro_rules! client {
            ($krate:ident, $rules:expr) => {
                mock_client!($krate, RuleMode::MatchAny, $rules.iter().copied(), |c| c
                    .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
                    .region($krate::config::Region::new("eu-west-1")))
            };
        }
        Aws::fixed(
            client!(aws_sdk_cloudformation, self.cloudformation),
            client!(aws_sdk_sfn, self.sfn),
            client!(aws_sdk_ssm, self.ssm),
            client!(aws_sdk_ec2, self.ec2),
            client!(aws_sdk_sts, self.sts),
        )
    }
}

fn stack(machine: Option<&str>) -> Stack {
    Stack {
        name: "golden-ami-pipeline".into(),
        region: "eu-west-1".into(),
        targets_parameter: "/golden-ami-pipeline/targets".into(),
        state_machine_arn: machine.map(str::to_string),
        schedule: Some("cron(0 8 1 * ? *) Europe/Paris".into()),
    }
}

fn default_family() -> Family {
    Family {
        name: "default".into(),
        pointer: "/golden-ami/current".into(),
        regions: vec!["eu-west-1".into()],
    }
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn targets() -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some("/golden-ami-pipeline/targets"))
        .then_output(|| {
            GetParameterOutput::builder()
                .parameter(Parameter::builder().value(TARGETS).version(3).build())
                .build()
        })
}

fn pointer_rule() -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name().is_some_and(|n| n.starts_with("/golden-ami/")))
        .then_output(|| {
            GetParameterOutput::builder()
                .parameter(
                    Parameter::builder()
                        .value(CURRENT)
                        .version(7)
                        .last_modified_date(DateTime::from_secs(
                            datetime!(2026-12-01 09:30:00 UTC).unix_timestamp(),
                        ))
                        .build(),
                )
                .build()
        })
}

fn no_pins() -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameters_by_path)
        .match_requests(|r| r.path() == Some("/golden-ami-pipeline/pins"))
        .then_output(|| GetParametersByPathOutput::builder().build())
}

fn image(state: ImageState) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images).then_output(move || {
        DescribeImagesOutput::builder()
            .images(
                Image::builder()
                    .image_id(PREVIOUS)
                    .state(state.clone())
                    .build(),
            )
            .build()
    })
}

fn put() -> Rule {
    mock!(aws_sdk_ssm::Client::put_parameter)
        .then_output(|| PutParameterOutput::builder().version(9).build())
}

fn entered(name: &str, input: &str) -> HistoryEvent {
    HistoryEvent::builder()
        .timestamp(DateTime::from_secs(0))
        .r#type(HistoryEventType::TaskStateEntered)
        .id(1)
        .state_entered_event_details(
            StateEnteredEventDetails::builder()
                .name(name)
                .input(input)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn history_of(events: Vec<HistoryEvent>) -> Rule {
    mock!(aws_sdk_sfn::Client::get_execution_history).then_output(move || {
        GetExecutionHistoryOutput::builder()
            .set_events(Some(events.clone()))
            .build()
            .unwrap()
    })
}

fn execution(status: ExecutionStatus, output: Option<&'static str>) -> Rule {
    mock!(aws_sdk_sfn::Client::describe_execution).then_output(move || {
        let mut out = DescribeExecutionOutput::builder()
            .execution_arn(EXECUTION)
            .state_machine_arn(MACHINE)
            .status(status.clone())
            .start_date(DateTime::from_secs(
                datetime!(2026-12-01 08:00:00 UTC).unix_timestamp(),
            ))
            .stop_date(DateTime::from_secs(
                datetime!(2026-12-01 08:41:05 UTC).unix_timestamp(),
            ));
        if let Some(output) = output {
            out = out.output(output);
        }
        if status == ExecutionStatus::Failed {
            out = out.error("States.TaskFailed").cause("the run failed");
        }
        out.build().unwrap()
    })
}

fn listed(status: ExecutionStatus) -> Rule {
    mock!(aws_sdk_sfn::Client::list_executions).then_output(move || {
        ListExecutionsOutput::builder()
            .executions(
                ExecutionListItem::builder()
                    .execution_arn(EXECUTION)
                    .state_machine_arn(MACHINE)
                    .name("monthly")
                    .status(status.clone())
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    })
}

const OUTPUT: &str = r#"{"plan": {"pinned": [{"family": "arm64"}]}, "families": [{"family": {"name": "default"},
  "outcome": "PUBLISHED", "pointers": [{"publish": {"region": "eu-west-1", "previousAmiId": "ami-0bbbbbbbbbbbbbbb0",
  "newAmiId": "ami-0ccccccccccccccc0"}}]}]}"#;

// ---- the stack, the families ---------------------------------------------------------------

fn described_stack() -> Rule {
    mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .match_requests(|r| r.stack_name() == Some("golden-ami-pipeline"))
        .then_output(|| {
            let output = |k: &str, v: &str| Output::builder().output_key(k).output_value(v).build();
            let parameter = |k: &str, v: &str| {
                StackParameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            };
            DescribeStacksOutput::builder()
                .stacks(
                    CfnStack::builder()
                        .stack_name("golden-ami-pipeline")
                        .creation_time(DateTime::from_secs(0))
                        .stack_status(StackStatus::UpdateComplete)
                        .outputs(output(
                            "TargetsParameterName",
                            "/golden-ami-pipeline/targets",
                        ))
                        .outputs(output("StateMachineArn", MACHINE))
                        .parameters(parameter("ScheduleTimezone", "Europe/Paris"))
                        .parameters(parameter("ScheduleState", "DISABLED"))
                        .build(),
                )
                .build()
        })
}

#[tokio::test]
async fn the_stack_is_read_from_its_outputs_unless_the_targets_are_given() {
    let described = described_stack();
    let aws = Rules {
        cloudformation: vec![&described],
        ..Default::default()
    }
    .aws();
    let found = cli::find_stack(&aws, "golden-ami-pipeline", None, None)
        .await
        .unwrap();
    assert_eq!(found.targets_parameter, "/golden-ami-pipeline/targets");
    assert_eq!(found.state_machine_arn.as_deref(), Some(MACHINE));
    assert_eq!(found.schedule.as_deref(), Some("disabled (ScheduleState)"));
    assert_eq!(found.pins_path(), "/golden-ami-pipeline/pins");

    let given = cli::find_stack(&aws, "golden-ami-pipeline", Some("/t".into()), None)
        .await
        .unwrap();
    assert_eq!(
        (given.targets_parameter.as_str(), given.state_machine_arn),
        ("/t", None)
    );
    assert_eq!(
        described.num_calls(),
        1,
        "given the targets, the stack is not read"
    );
}

#[tokio::test]
async fn a_missing_stack_says_what_to_pass() {
    let missing = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_error(|| {
        DescribeStacksError::generic(error(
            "ValidationError",
            "Stack with id nope does not exist",
        ))
    });
    let aws = Rules {
        cloudformation: vec![&missing],
        ..Default::default()
    }
    .aws();
    let refused = cli::find_stack(&aws, "nope", None, None).await.unwrap_err();
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .message
            .contains("the stack nope does not exist in eu-west-1: pass --stack"),
        "{refused}"
    );
}

#[tokio::test]
async fn families_take_the_targets_regions_unless_they_list_their_own() {
    let targets = targets();
    let aws = Rules {
        ssm: vec![&targets],
        ..Default::default()
    }
    .aws();
    let families = cli::families(&aws, &stack(None)).await.unwrap();
    assert_eq!(families[0].regions, ["eu-west-1", "us-east-1"]);
    assert_eq!(families[1].regions, ["eu-west-1"]);

    assert_eq!(
        cli::pick(&families, Some("arm64")).unwrap().pointer,
        "/golden-ami/arm64"
    );
    let several = cli::pick(&families, None).unwrap_err();
    assert_eq!(
        several.message,
        "several families (default, arm64): say which with --family"
    );
    assert!(
        cli::pick(&families, Some("x"))
            .unwrap_err()
            .message
            .starts_with("no family x")
    );
    assert_eq!(cli::pick(&families[..1], None).unwrap().name, "default");
    let elsewhere = cli::regions_of(&families[1], Some("us-east-1")).unwrap_err();
    assert_eq!(
        elsewhere.message,
        "family arm64 is not published in us-east-1: its regions are eu-west-1"
    );
    assert_eq!(
        cli::regions_of(&families[0], None).unwrap(),
        ["eu-west-1", "us-east-1"]
    );
}

// ---- status, history -----------------------------------------------------------------------

#[tokio::test]
async fn status_shows_pointers_pins_runs_and_the_run_in_progress() {
    let (pointer, list, described) = (
        pointer_rule(),
        listed(ExecutionStatus::Running),
        execution(ExecutionStatus::Running, None),
    );
    let pins = mock!(aws_sdk_ssm::Client::get_parameters_by_path).then_output(|| {
        GetParametersByPathOutput::builder()
            .parameters(Parameter::builder().name("/golden-ami-pipeline/pins/default").value(
                r#"{"family": "default", "amiId": "ami-0bbbbbbbbbbbbbbb0", "region": "eu-west-1", "pinnedBy": "arn:aws:sts::1:assumed-role/oncall/a", "pinnedAt": "2026-12-02T10:00:00Z"}"#,
            ).build())
            .build()
    });
    let history = history_of(vec![
        entered("ForEachFamily", "{}"),
        entered("WaitForBake", "{}"),
    ]);
    let aws = Rules {
        ssm: vec![&pointer, &pins],
        sfn: vec![&list, &described, &history],
        ..Default::default()
    }
    .aws();
    let status = cli::status(&aws, &stack(Some(MACHINE)), &[default_family()], NOW)
        .await
        .unwrap();
    let [p] = status.pointers.as_slice() else {
        panic!("{:?}", status.pointers)
    };
    assert_eq!(
        (p.value.as_deref(), p.version, p.age_days),
        (Some(CURRENT), Some(7), Some(1))
    );
    assert_eq!(status.pins[0].ami_id, PREVIOUS);
    assert_eq!(status.runs.as_ref().unwrap()[0].status, "RUNNING");
    assert_eq!(
        status.running,
        Some(("monthly".to_string(), "WaitForBake".to_string()))
    );
    assert_eq!(
        status.next_run.as_deref(),
        Some("2027-01-01 08:00 (cron(0 8 1 * ? *) Europe/Paris)")
    );
}

#[tokio::test]
async fn status_without_a_state_machine_says_why_there_are_no_runs() {
    let (pointer, pins) = (pointer_rule(), no_pins());
    let aws = Rules {
        ssm: vec![&pointer, &pins],
        ..Default::default()
    }
    .aws();
    let status = cli::status(&aws, &stack(None), &[default_family()], NOW)
        .await
        .unwrap();
    assert!(status.runs.is_none());
    assert!(
        status
            .runs_unavailable
            .unwrap()
            .starts_with("no state machine for the stack golden-ami-pipeline")
    );
}

#[test]
fn the_next_run_is_the_next_first_of_a_month_at_eight() {
    assert_eq!(
        cli::next_first_of_month(datetime!(2026-12-01 07:59:00 UTC)),
        "2026-12-01 08:00"
    );
    assert_eq!(
        cli::next_first_of_month(datetime!(2026-12-01 08:00:00 UTC)),
        "2027-01-01 08:00"
    );
    assert_eq!(
        cli::next_first_of_month(datetime!(2026-11-23 12:00:00 UTC)),
        "2026-12-01 08:00"
    );
}

#[tokio::test]
async fn history_gives_each_runs_duration_and_old_to_new_images() {
    let (list, described) = (
        listed(ExecutionStatus::Succeeded),
        execution(ExecutionStatus::Succeeded, Some(OUTPUT)),
    );
    let aws = Rules {
        sfn: vec![&list, &described],
        ..Default::default()
    }
    .aws();
    let [run] = cli::history(&aws, &stack(Some(MACHINE)), 5)
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        (run.status.as_str(), run.duration_seconds),
        ("SUCCEEDED", Some(41 * 60 + 5))
    );
    assert_eq!(
        run.families[0].moved,
        [format!("eu-west-1: {PREVIOUS} -> {CURRENT}")]
    );
    assert_eq!(
        (
            run.families[1].family.as_str(),
            run.families[1].outcome.as_str()
        ),
        ("arm64", "PINNED")
    );
}

// ---- why -----------------------------------------------------------------------------------

#[tokio::test]
async fn why_names_the_failed_state_its_cause_the_automation_step_and_the_pointers() {
    let list = mock!(aws_sdk_sfn::Client::list_executions)
        .match_requests(|r| r.status_filter() == Some(&ExecutionStatus::Failed))
        .then_output(|| {
            ListExecutionsOutput::builder()
                .executions(
                    ExecutionListItem::builder()
                        .execution_arn(EXECUTION)
                        .state_machine_arn(MACHINE)
                        .name("monthly")
                        .status(ExecutionStatus::Failed)
                        .start_date(DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        });
    let described = execution(ExecutionStatus::Failed, None);
    let history = history_of(vec![
        entered("CheckBake", "{}"),
        entered(
            "CheckBakeFailed",
            r#"{"family": {"name": "default"}, "bake": {"automationExecutionId": "auto-1"},
            "error": {"Error": "BakeFailed", "Cause": "{\"errorType\":\"BakeFailed\",\"errorMessage\":\"automation auto-1 failed at updateOs\"}"}}"#,
        ),
        entered("FamilyCleanupAfterFailure", "{}"),
        entered("PipelineFailed", r#"{"error": {"Error": "x"}}"#),
    ]);
    let automation = mock!(aws_sdk_ssm::Client::get_automation_execution)
        .match_requests(|r| r.automation_execution_id() == Some("auto-1"))
        .then_output(|| {
            GetAutomationExecutionOutput::builder()
                .automation_execution(
                    AutomationExecution::builder()
                        .step_executions(
                            StepExecution::builder()
                                .step_name("launchInstance")
                                .step_status("Success".into())
                                .build(),
                        )
                        .step_executions(
                            StepExecution::builder()
                                .step_name("updateOs")
                                .step_status("Failed".into())
                                .failure_message("dnf exited 1")
                                .outputs("exitCode", vec!["1".into()])
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let pointer = pointer_rule();
    let aws = Rules {
        sfn: vec![&list, &described, &history],
        ssm: vec![&automation, &pointer],
        ..Default::default()
    }
    .aws();
    let why = cli::why(&aws, &stack(Some(MACHINE)), None, &[default_family()], NOW)
        .await
        .unwrap();
    assert_eq!(why.execution, EXECUTION);
    let [failure] = why.failures.as_slice() else {
        panic!("{:?}", why.failures)
    };
    assert_eq!(
        (
            failure.family.as_deref(),
            failure.state.as_str(),
            failure.error.as_str()
        ),
        (Some("default"), "CheckBake", "BakeFailed")
    );
    assert_eq!(failure.cause, "automation auto-1 failed at updateOs");
    assert_eq!(
        why.automation.as_deref(),
        Some("automation auto-1: step updateOs Failed: dnf exited 1\n    exitCode: 1")
    );
    assert_eq!(why.pointers[0].value.as_deref(), Some(CURRENT));
}

#[tokio::test]
async fn why_of_a_named_run_without_a_recorded_failure_gives_the_executions_own_error() {
    let described = mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(|r| r.execution_arn() == Some(EXECUTION))
        .then_output(|| {
            DescribeExecutionOutput::builder()
                .execution_arn(EXECUTION)
                .state_machine_arn(MACHINE)
                .status(ExecutionStatus::TimedOut)
                .start_date(DateTime::from_secs(0))
                .error("States.Timeout")
                .cause("{\"errorMessage\":\"the run took too long\"}")
                .build()
                .unwrap()
        });
    let history = history_of(vec![entered("WaitForCopy", "{}")]);
    let aws = Rules {
        sfn: vec![&described, &history],
        ..Default::default()
    }
    .aws();
    let why = cli::why(
        &aws,
        &stack(Some(MACHINE)),
        Some("monthly".into()),
        &[],
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(why.status, "TIMED_OUT");
    assert_eq!(
        (
            why.failures[0].state.as_str(),
            why.failures[0].cause.as_str()
        ),
        ("Execution", "the run took too long")
    );
}

// ---- run -----------------------------------------------------------------------------------

#[tokio::test]
async fn run_starts_a_named_execution_and_progress_reports_new_states_and_the_bake_step() {
    let started = mock!(aws_sdk_sfn::Client::start_execution)
        .match_requests(|r| {
            r.state_machine_arn() == Some(MACHINE)
                && r.input() == Some("{}")
                && r.name().is_some_and(|n| n == "manual-20261203T090000")
        })
        .then_output(|| {
            StartExecutionOutput::builder()
                .execution_arn(EXECUTION)
                .start_date(DateTime::from_secs(0))
                .build()
                .unwrap()
        });
    let polled = HistoryEvent::builder()
        .timestamp(DateTime::from_secs(0))
        .r#type(HistoryEventType::TaskSucceeded)
        .id(3)
        .task_succeeded_event_details(
            TaskSucceededEventDetails::builder()
                .resource_type("lambda")
                .resource("invoke")
                .output(r#"{"done": false, "currentStep": "updateOs"}"#)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let history = history_of(vec![
        entered("PlanRun", "{}"),
        entered("CheckBake", "{}"),
        polled,
    ]);
    let described = execution(ExecutionStatus::Running, None);
    let aws = Rules {
        sfn: vec![&started, &history, &described],
        ..Default::default()
    }
    .aws();
    assert_eq!(
        cli::start(&aws, &stack(Some(MACHINE)), NOW).await.unwrap(),
        EXECUTION
    );
    let (new, step, status) = cli::progress(&aws, EXECUTION, 1).await.unwrap();
    assert_eq!(
        (new, step.as_deref(), status.as_str()),
        (vec!["CheckBake".to_string()], Some("updateOs"), "RUNNING")
    );

    let none = Rules::default().aws();
    assert_eq!(
        cli::start(&none, &stack(None), NOW).await.unwrap_err().code,
        2
    );
}

// ---- rollback, pin, unpin ------------------------------------------------------------------

fn history_rule() -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameter_history).then_output(|| {
        let version = |v: i64, ami: &str| ParameterHistory::builder().version(v).value(ami).build();
        // Out of order, and a re-put of the current value: the previous is the newest other one.
        GetParameterHistoryOutput::builder()
            .parameters(version(7, CURRENT))
            .parameters(version(5, "ami-0aaaaaaaaaaaaaaa0"))
            .parameters(version(8, CURRENT))
            .parameters(version(6, PREVIOUS))
            .build()
    })
}

#[tokio::test]
async fn rollback_puts_the_previous_image_back() {
    let (history, available) = (history_rule(), image(ImageState::Available));
    let put = mock!(aws_sdk_ssm::Client::put_parameter)
        .match_requests(|r| {
            r.name() == Some("/golden-ami/current")
                && r.value() == Some(PREVIOUS)
                && r.overwrite() == Some(true)
                && r.data_type() == Some("aws:ec2:image")
        })
        .then_output(|| PutParameterOutput::builder().version(9).build());
    let aws = Rules {
        ssm: vec![&history, &put],
        ec2: vec![&available],
        ..Default::default()
    }
    .aws();
    let [moved] = cli::rollback(&aws, &default_family(), &["eu-west-1"])
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        (moved.from.as_deref(), moved.to.as_str(), moved.version),
        (Some(CURRENT), PREVIOUS, 9)
    );
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn rollback_refuses_a_gone_or_unavailable_image_and_moves_nothing() {
    let gone = mock!(aws_sdk_ec2::Client::describe_images).then_error(|| {
        DescribeImagesError::generic(error(
            "InvalidAMIID.NotFound",
            "The image id does not exist",
        ))
    });
    for ec2 in [gone, image(ImageState::Deregistered)] {
        let (history, put) = (history_rule(), put());
        let aws = Rules {
            ssm: vec![&history, &put],
            ec2: vec![&ec2],
            ..Default::default()
        }
        .aws();
        let refused = cli::rollback(&aws, &default_family(), &["eu-west-1"])
            .await
            .unwrap_err();
        assert_eq!(refused.code, 1);
        assert!(
            refused.message.starts_with(&format!(
                "cannot roll back default in eu-west-1 to {PREVIOUS}: {PREVIOUS}"
            )),
            "{refused}"
        );
        assert_eq!(put.num_calls(), 0);
    }
    let only = mock!(aws_sdk_ssm::Client::get_parameter_history).then_output(|| {
        GetParameterHistoryOutput::builder()
            .parameters(
                ParameterHistory::builder()
                    .version(1)
                    .value(CURRENT)
                    .build(),
            )
            .build()
    });
    let aws = Rules {
        ssm: vec![&only],
        ..Default::default()
    }
    .aws();
    let refused = cli::rollback(&aws, &default_family(), &["eu-west-1"])
        .await
        .unwrap_err();
    assert!(
        refused.message.contains("never held another image"),
        "{refused}"
    );
}

fn caller() -> Rule {
    mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        GetCallerIdentityOutput::builder()
            .arn("arn:aws:sts::111122223333:assumed-role/oncall/alice")
            .build()
    })
}

#[tokio::test]
async fn pin_writes_the_pin_and_moves_the_pointer_only_when_it_holds_another_image() {
    let (available, who, pointer) = (image(ImageState::Available), caller(), pointer_rule());
    let pin_put = mock!(aws_sdk_ssm::Client::put_parameter)
        .match_requests(|r| {
            r.name() == Some("/golden-ami-pipeline/pins/default")
                && r.value().is_some_and(|v| {
                    let pin: serde_json::Value = serde_json::from_str(v).unwrap();
                    pin["family"] == "default"
                        && pin["amiId"] == PREVIOUS
                        && pin["region"] == "eu-west-1"
                        && pin["pinnedBy"] == "arn:aws:sts::111122223333:assumed-role/oncall/alice"
                        && pin["pinnedAt"] == "2026-12-03T09:00:00Z"
                        && pin["reason"] == "kernel regression"
                })
        })
        .then_output(|| PutParameterOutput::builder().version(1).build());
    let pointer_put = mock!(aws_sdk_ssm::Client::put_parameter)
        .match_requests(|r| r.name() == Some("/golden-ami/current") && r.value() == Some(PREVIOUS))
        .then_output(|| PutParameterOutput::builder().version(8).build());
    let aws = Rules {
        ssm: vec![&pin_put, &pointer_put, &pointer],
        ec2: vec![&available],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let (pin, moved) = cli::pin(
        &aws,
        &stack(None),
        &default_family(),
        "eu-west-1",
        PREVIOUS,
        Some("kernel regression".into()),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(pin.ami_id, PREVIOUS);
    assert_eq!(moved.unwrap().from.as_deref(), Some(CURRENT));
    assert_eq!((pin_put.num_calls(), pointer_put.num_calls()), (1, 1));

    // Pinning what the pointer already holds writes the pin only.
    let (available, who, pointer, any_put) = (
        image(ImageState::Available),
        caller(),
        pointer_rule(),
        put(),
    );
    let aws = Rules {
        ssm: vec![&any_put, &pointer],
        ec2: vec![&available],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let (_, moved) = cli::pin(
        &aws,
        &stack(None),
        &default_family(),
        "eu-west-1",
        CURRENT,
        None,
        NOW,
    )
    .await
    .unwrap();
    assert!(moved.is_none());
    assert_eq!(any_put.num_calls(), 1);

    let nothing = Rules::default().aws();
    let refused = cli::pin(
        &nothing,
        &stack(None),
        &default_family(),
        "eu-west-1",
        "latest",
        None,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (2, "latest is not an AMI id (ami- and 8 or 17 hex digits)")
    );
}

#[tokio::test]
async fn unpin_removes_the_pin_and_says_when_there_was_none() {
    let removed = mock!(aws_sdk_ssm::Client::delete_parameter)
        .match_requests(|r| r.name() == Some("/golden-ami-pipeline/pins/default"))
        .then_output(|| DeleteParameterOutput::builder().build());
    let aws = Rules {
        ssm: vec![&removed],
        ..Default::default()
    }
    .aws();
    assert!(
        cli::unpin(&aws, &stack(None), &default_family())
            .await
            .unwrap()
    );
    let none = mock!(aws_sdk_ssm::Client::delete_parameter).then_error(|| {
        DeleteParameterError::ParameterNotFound(ParameterNotFound::builder().build())
    });
    let aws = Rules {
        ssm: vec![&none],
        ..Default::default()
    }
    .aws();
    assert!(
        !cli::unpin(&aws, &stack(None), &default_family())
            .await
            .unwrap()
    );
}
