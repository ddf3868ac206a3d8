//! Every command of `golden-ami` against mocked AWS APIs (aws-smithy-mocks): what it asks, what
//! it answers, and what it refuses to do. The clients fail a test on any call no rule matches.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a broken fixture should fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_cloudformation::operation::describe_stacks::{
    DescribeStacksError, DescribeStacksOutput,
};
use aws_sdk_cloudformation::types::{
    Output, Parameter as StackParameter, Stack as CfnStack, StackStatus,
};
use aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput;
use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, Image, ImageState, LaunchPermission,
    Snapshot, Tag,
};
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
use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
use aws_sdk_ssm::operation::get_parameter_history::{
    GetParameterHistoryError, GetParameterHistoryOutput,
};
use aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput;
use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
use aws_sdk_ssm::types::error::ParameterNotFound;
use aws_sdk_ssm::types::{
    AutomationExecution, Parameter, ParameterHistory, ParameterTier, ParameterType, StepExecution,
};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use golden_ami_cli::{self as cli, Aws, FailureSeen, Family, FamilyOutcome, Moved, Stack};
use golden_ami_core::targets::Architecture;
use golden_ami_core::{ApprovalRequest, LaunchPrincipals, Pin};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-03 09:00:00 UTC);
const STACK: &str = "golden-ami-pipeline";
const TARGETS_PARAMETER: &str = "/golden-ami-pipeline/targets";
const PINS: &str = "/golden-ami-pipeline/pins";
const MACHINE: &str = "arn:aws:states:eu-west-1:111122223333:stateMachine:golden-ami-pipeline";
const EXECUTION: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:monthly";
const RUNNING: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:manual-20261203T085000";
const TARGETS: &str = r#"{"families": [
    {"name": "default", "pointer": "/golden-ami/current", "architecture": "x86_64", "instanceType": "t3.small"},
    {"name": "arm64", "pointer": "/golden-ami/arm64", "architecture": "arm64", "instanceType": "t4g.small", "regions": ["eu-west-1"]}],
  "regions": [{"region": "eu-west-1"}, {"region": "us-east-1"}]}"#;
const POINTER: &str = "/golden-ami/current";
const ACCOUNT: &str = "111122223333";
const GOLDEN_KEY: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
const ORGANIZATION: &str = "arn:aws:organizations::999988887777:organization/o-a1b2c3d4e5";
const ARM_POINTER: &str = "/golden-ami/arm64";
const CURRENT: &str = "ami-0ccccccccccccccc0";
const PREVIOUS: &str = "ami-0bbbbbbbbbbbbbbb0";
const OLDEST: &str = "ami-0aaaaaaaaaaaaaaa0";
const CALLER: &str = "arn:aws:sts::111122223333:assumed-role/oncall/alice";
/// A run's output: one family published (old -> new), one pinned (skipped).
const OUTPUT: &str = r#"{"plan": {"pinned": [{"family": "arm64"}]}, "families": [{"family": {"name": "default"},
  "outcome": "PUBLISHED", "pointers": [{"publish": {"region": "eu-west-1", "previousAmiId": "ami-0bbbbbbbbbbbbbbb0",
  "newAmiId": "ami-0ccccccccccccccc0"}}, {"publish": {"region": "us-east-1", "newAmiId": "ami-0ccccccccccccccc0"}}]}]}"#;

#[derive(Default)]
struct Rules<'a> {
    cloudformation: Vec<&'a Rule>,
    sfn: Vec<&'a Rule>,
    ssm: Vec<&'a Rule>,
    ec2: Vec<&'a Rule>,
    kms: Vec<&'a Rule>,
    sts: Vec<&'a Rule>,
}

impl Rules<'_> {
    /// Clients answering from the rules (any order), retries off so that call counts are exact.
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
            client!(aws_sdk_kms, self.kms),
            client!(aws_sdk_sts, self.sts),
        )
    }
}

fn at(t: OffsetDateTime) -> DateTime {
    DateTime::from_secs(t.unix_timestamp())
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn stack(machine: Option<&str>) -> Stack {
    Stack {
        name: STACK.into(),
        region: "eu-west-1".into(),
        targets_parameter: TARGETS_PARAMETER.into(),
        state_machine_arn: machine.map(str::to_string),
        schedule: Some("cron(0 8 1 * ? *) Europe/Paris".into()),
        timezone: Some("Europe/Paris".into()),
        golden_key_arn: Some(GOLDEN_KEY.into()),
        shared_with: Some(shared_with_organization()),
    }
}

fn shared_with_organization() -> LaunchPrincipals {
    LaunchPrincipals {
        organization_arns: vec![ORGANIZATION.into()],
        ..Default::default()
    }
}

/// The golden key of each region of TARGETS: the replicas of GOLDEN_KEY.
fn golden_keys() -> std::collections::BTreeMap<String, String> {
    ["eu-west-1", "us-east-1"]
        .into_iter()
        .map(|region| (region.to_string(), GOLDEN_KEY.replace("eu-west-1", region)))
        .collect()
}

/// The families of TARGETS, as `families` reads them.
fn two_families() -> [Family; 2] {
    [
        Family {
            name: "default".into(),
            pointer: POINTER.into(),
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            architecture: Architecture::X86_64,
            golden_keys: golden_keys(),
        },
        Family {
            name: "arm64".into(),
            pointer: ARM_POINTER.into(),
            regions: vec!["eu-west-1".into()],
            architecture: Architecture::Arm64,
            golden_keys: golden_keys(),
        },
    ]
}

fn default_family() -> Family {
    Family {
        name: "default".into(),
        pointer: POINTER.into(),
        regions: vec!["eu-west-1".into()],
        architecture: Architecture::X86_64,
        golden_keys: golden_keys(),
    }
}

// ---- SSM -------------------------------------------------------------------------------------

/// GetParameter of `name`: `value` at version 7, last modified 2026-12-01 09:30 UTC.
fn pointer(name: &'static str, value: &'static str) -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(move |r| r.name() == Some(name))
        .then_output(move || {
            GetParameterOutput::builder()
                .parameter(
                    Parameter::builder()
                        .name(name)
                        .value(value)
                        .version(7)
                        .last_modified_date(at(datetime!(2026-12-01 09:30:00 UTC)))
                        .build(),
                )
                .build()
        })
}

fn no_pointer(name: &'static str) -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(move |r| r.name() == Some(name))
        .then_error(|| GetParameterError::ParameterNotFound(ParameterNotFound::builder().build()))
}

fn pins_rule(values: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameters_by_path)
        .match_requests(|r| r.path() == Some(PINS))
        .then_output(move || {
            GetParametersByPathOutput::builder()
                .set_parameters(Some(
                    values
                        .iter()
                        .map(|v| {
                            Parameter::builder()
                                .name(format!("{PINS}/x"))
                                .value(*v)
                                .build()
                        })
                        .collect(),
                ))
                .build()
        })
}

const APPROVALS: &str = "/golden-ami-pipeline/approvals";
const TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAR0ken";
const WAITING: &str = r#"{"executionId": "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:monthly",
    "family": "default", "taskToken": "AQCEAAAAKgAAAAMAAAAAAAAAAR0ken", "requestedAt": "2026-12-03T08:00:00Z",
    "deadline": "2026-12-04T08:00:00Z", "images": [{"region": "eu-west-1", "amiId": "ami-0ccccccccccccccc0"}]}"#;

/// GetParametersByPath under the approvals path: each value at APPROVALS/<execution>/<family>.
fn approvals_rule(values: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameters_by_path)
        .match_requests(|r| {
            r.path().is_some_and(|p| p.starts_with(APPROVALS)) && r.recursive() == Some(true)
        })
        .then_output(move || {
            GetParametersByPathOutput::builder()
                .set_parameters(Some(
                    values
                        .iter()
                        .map(|v| {
                            let family = serde_json::from_str::<serde_json::Value>(v)
                                .ok()
                                .and_then(|v| v["family"].as_str().map(str::to_string))
                                .unwrap_or_else(|| "x".into());
                            Parameter::builder()
                                .name(format!("{APPROVALS}/monthly/{family}"))
                                .value(*v)
                                .build()
                        })
                        .collect(),
                ))
                .build()
        })
}

/// Any PutParameter, answering `version`.
fn put(version: i64) -> Rule {
    mock!(aws_sdk_ssm::Client::put_parameter)
        .then_output(move || PutParameterOutput::builder().version(version).build())
}

/// PutParameter of the pointer to `value` (an aws:ec2:image overwrite), counted in `written`.
fn pointer_put(value: &'static str, version: i64, written: Arc<AtomicUsize>) -> Rule {
    mock!(aws_sdk_ssm::Client::put_parameter)
        .match_requests(move |r| {
            r.name() == Some(POINTER)
                && r.value() == Some(value)
                && r.r#type() == Some(&ParameterType::String)
                && r.data_type() == Some("aws:ec2:image")
                && r.overwrite() == Some(true)
        })
        .then_output(move || {
            written.fetch_add(1, Ordering::SeqCst);
            PutParameterOutput::builder().version(version).build()
        })
}

/// GetParameter of the pointer: `before` until the write and for `pending` reads after it (SSM
/// validating it), then `after`.
fn pointer_written(
    before: (&'static str, i64),
    pending: usize,
    after: (&'static str, i64),
    written: Arc<AtomicUsize>,
) -> Rule {
    let reads_after = Arc::new(AtomicUsize::new(0));
    mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some(POINTER))
        .then_output(move || {
            let shown = written.load(Ordering::SeqCst) > 0
                && reads_after.fetch_add(1, Ordering::SeqCst) >= pending;
            let (value, version) = if shown { after } else { before };
            GetParameterOutput::builder()
                .parameter(
                    Parameter::builder()
                        .name(POINTER)
                        .value(value)
                        .version(version)
                        .build(),
                )
                .build()
        })
}

/// The pointer's history: out of order, and the current value put again (version 8).
fn pointer_history() -> Rule {
    mock!(aws_sdk_ssm::Client::get_parameter_history)
        .match_requests(|r| r.name() == Some(POINTER))
        .then_output(|| {
            let version =
                |v: i64, ami: &str| ParameterHistory::builder().version(v).value(ami).build();
            GetParameterHistoryOutput::builder()
                .parameters(version(7, CURRENT))
                .parameters(version(5, OLDEST))
                .parameters(version(8, CURRENT))
                .parameters(version(6, PREVIOUS))
                .build()
        })
}

// ---- EC2, STS --------------------------------------------------------------------------------

/// DescribeImages of `image` answering it in `state`.
fn image(image: &'static str, state: ImageState) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(move |r| r.image_ids() == [image])
        .then_output(move || {
            DescribeImagesOutput::builder()
                .images(
                    Image::builder()
                        .image_id(image)
                        .state(state.clone())
                        .build(),
                )
                .build()
        })
}

fn image_gone() -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images).then_error(|| {
        DescribeImagesError::generic(error(
            "InvalidAMIID.NotFound",
            "The image id '[ami-0bbbbbbbbbbbbbbb0]' does not exist",
        ))
    })
}

const SNAPSHOT: &str = "snap-0a1b2c3d4e5f60718";

/// A golden image of the default family in eu-west-1, as a run publishes it.
fn golden_image(image: &'static str) -> Image {
    Image::builder()
        .image_id(image)
        .owner_id(ACCOUNT)
        .state(ImageState::Available)
        .architecture(ArchitectureValues::X8664)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(SNAPSHOT)
                        .encrypted(true)
                        .build(),
                )
                .build(),
        )
        .tags(Tag::builder().key("Type").value("golden-ami").build())
        .tags(
            Tag::builder()
                .key("golden-ami:family")
                .value("default")
                .build(),
        )
        .build()
}

/// What EC2 answers about `image`: the image, its snapshot (under `key`) and its launch
/// permission (`shared`).
fn described_image(image: Image, key: &'static str, shared: Vec<LaunchPermission>) -> [Rule; 3] {
    let id = image.image_id().unwrap_or_default().to_string();
    let matching = id.clone();
    [
        mock!(aws_sdk_ec2::Client::describe_images)
            .match_requests(move |r| r.image_ids() == [matching.clone()])
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(image.clone())
                    .build()
            }),
        mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(|r| r.snapshot_ids() == [SNAPSHOT])
            .then_output(move || {
                DescribeSnapshotsOutput::builder()
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id(SNAPSHOT)
                            .encrypted(true)
                            .kms_key_id(key)
                            .build(),
                    )
                    .build()
            }),
        mock!(aws_sdk_ec2::Client::describe_image_attribute)
            .match_requests(move |r| r.image_id() == Some(id.as_str()))
            .then_output(move || {
                DescribeImageAttributeOutput::builder()
                    .set_launch_permissions(Some(shared.clone()))
                    .build()
            }),
    ]
}

fn organization() -> Vec<LaunchPermission> {
    vec![
        LaunchPermission::builder()
            .organization_arn(ORGANIZATION)
            .build(),
    ]
}

fn caller() -> Rule {
    mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        GetCallerIdentityOutput::builder()
            .arn(CALLER)
            .account(ACCOUNT)
            .build()
    })
}

// ---- Step Functions --------------------------------------------------------------------------

fn entered(name: &str, input: &str) -> HistoryEvent {
    HistoryEvent::builder()
        .timestamp(DateTime::from_secs(0))
        .r#type(HistoryEventType::PassStateEntered)
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

fn task_succeeded(output: &str) -> HistoryEvent {
    HistoryEvent::builder()
        .timestamp(DateTime::from_secs(0))
        .r#type(HistoryEventType::TaskSucceeded)
        .id(2)
        .task_succeeded_event_details(
            TaskSucceededEventDetails::builder()
                .resource_type("lambda")
                .resource("invoke")
                .output(output)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// GetExecutionHistory of `execution`.
fn events_of(execution: &'static str, events: Vec<HistoryEvent>) -> Rule {
    mock!(aws_sdk_sfn::Client::get_execution_history)
        .match_requests(move |r| r.execution_arn() == Some(execution))
        .then_output(move || {
            GetExecutionHistoryOutput::builder()
                .set_events(Some(events.clone()))
                .build()
                .unwrap()
        })
}

/// DescribeExecution of `arn`: started 2026-12-01 08:00, stopped 41 min 5 s later unless running;
/// a failed one with its own error and cause.
fn described(arn: &'static str, status: ExecutionStatus, output: Option<&'static str>) -> Rule {
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(move |r| r.execution_arn() == Some(arn))
        .then_output(move || {
            let mut out = DescribeExecutionOutput::builder()
                .execution_arn(arn)
                .state_machine_arn(MACHINE)
                .status(status.clone())
                .start_date(at(datetime!(2026-12-01 08:00:00 UTC)))
                .set_output(output.map(str::to_string));
            if status != ExecutionStatus::Running {
                out = out.stop_date(at(datetime!(2026-12-01 08:41:05 UTC)));
            }
            if status == ExecutionStatus::Failed {
                out = out
                    .error("GoldenAmiPipelineFailed")
                    .cause("a family failed");
            }
            out.build().unwrap()
        })
}

fn listing(arn: &str, name: &str, status: ExecutionStatus) -> ExecutionListItem {
    ExecutionListItem::builder()
        .execution_arn(arn)
        .state_machine_arn(MACHINE)
        .name(name)
        .status(status)
        .start_date(DateTime::from_secs(0))
        .build()
        .unwrap()
}

/// ListExecutions of the state machine with `max_results`, answering `executions`.
fn listed(max_results: i32, executions: Vec<ExecutionListItem>) -> Rule {
    mock!(aws_sdk_sfn::Client::list_executions)
        .match_requests(move |r| {
            r.state_machine_arn() == Some(MACHINE) && r.max_results() == Some(max_results)
        })
        .then_output(move || {
            ListExecutionsOutput::builder()
                .set_executions(Some(executions.clone()))
                .build()
                .unwrap()
        })
}

// ---- the stack, the families ---------------------------------------------------------------

fn described_stack(parameters: &'static [(&'static str, &'static str)]) -> Rule {
    mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .match_requests(|r| r.stack_name() == Some(STACK))
        .then_output(move || {
            let output = |k: &str, v: &str| Output::builder().output_key(k).output_value(v).build();
            DescribeStacksOutput::builder()
                .stacks(
                    CfnStack::builder()
                        .stack_name(STACK)
                        .creation_time(DateTime::from_secs(0))
                        .stack_status(StackStatus::UpdateComplete)
                        .outputs(output("TargetsParameterName", TARGETS_PARAMETER))
                        .outputs(output("StateMachineArn", MACHINE))
                        .outputs(output("GoldenKeyArn", GOLDEN_KEY))
                        .set_parameters(Some(
                            parameters
                                .iter()
                                .map(|(k, v)| {
                                    StackParameter::builder()
                                        .parameter_key(*k)
                                        .parameter_value(*v)
                                        .build()
                                })
                                .collect(),
                        ))
                        .build(),
                )
                .build()
        })
}

#[tokio::test]
async fn find_stack_reads_the_targets_the_state_machine_and_the_schedule_from_the_stack() {
    for (parameters, schedule, zone) in [
        (
            &[
                ("ScheduleTimezone", "Europe/Paris"),
                ("ScheduleState", "ENABLED"),
            ][..],
            "cron(0 8 1 * ? *) Europe/Paris",
            "Europe/Paris",
        ),
        (&[][..], "cron(0 8 1 * ? *) UTC", "UTC"),
        (
            &[
                ("ScheduleTimezone", "Europe/Paris"),
                ("ScheduleState", "DISABLED"),
            ][..],
            "disabled (ScheduleState)",
            "Europe/Paris",
        ),
    ] {
        let described = described_stack(parameters);
        let aws = Rules {
            cloudformation: vec![&described],
            ..Default::default()
        }
        .aws();
        let found = cli::find_stack(&aws, STACK, None, None).await.unwrap();
        assert_eq!(
            found,
            Stack {
                name: STACK.into(),
                region: "eu-west-1".into(),
                targets_parameter: TARGETS_PARAMETER.into(),
                state_machine_arn: Some(MACHINE.into()),
                schedule: Some(schedule.into()),
                timezone: Some(zone.into()),
                golden_key_arn: Some(GOLDEN_KEY.into()),
                shared_with: None,
            }
        );
        assert_eq!(found.pins_path(), PINS);
        assert_eq!(described.num_calls(), 1);
    }
}

#[tokio::test]
async fn find_stack_with_the_targets_given_does_not_read_the_stack() {
    let described = described_stack(&[]);
    let aws = Rules {
        cloudformation: vec![&described],
        ..Default::default()
    }
    .aws();
    let given = cli::find_stack(&aws, "local", Some("/t".into()), Some(MACHINE.into()))
        .await
        .unwrap();
    assert_eq!(
        given,
        Stack {
            name: "local".into(),
            region: "eu-west-1".into(),
            targets_parameter: "/t".into(),
            state_machine_arn: Some(MACHINE.into()),
            schedule: None,
            timezone: None,
            golden_key_arn: None,
            shared_with: None,
        }
    );
    assert_eq!(described.num_calls(), 0);

    // A state machine given with the flag wins over the stack's output.
    let other = "arn:aws:states:eu-west-1:111122223333:stateMachine:other";
    let found = cli::find_stack(&aws, STACK, None, Some(other.into()))
        .await
        .unwrap();
    assert_eq!(found.state_machine_arn.as_deref(), Some(other));
    assert_eq!(described.num_calls(), 1);
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
    assert_eq!(
        refused.message,
        "the stack nope does not exist in eu-west-1: pass --stack (or GOLDEN_AMI_STACK) and --stack-region, or give --targets-parameter (and --state-machine-arn)"
    );
    assert_eq!(missing.num_calls(), 1);

    let denied = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .then_error(|| DescribeStacksError::generic(error("AccessDenied", "not authorized")));
    let aws = Rules {
        cloudformation: vec![&denied],
        ..Default::default()
    }
    .aws();
    let refused = cli::find_stack(&aws, STACK, None, None).await.unwrap_err();
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .message
            .starts_with("cloudformation:DescribeStacks failed (AccessDenied: not authorized)"),
        "{refused}"
    );
}

#[tokio::test]
async fn families_take_the_targets_regions_unless_they_list_their_own() {
    let targets = mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some(TARGETS_PARAMETER))
        .then_output(|| {
            GetParameterOutput::builder()
                .parameter(Parameter::builder().value(TARGETS).version(3).build())
                .build()
        });
    let aws = Rules {
        ssm: vec![&targets],
        ..Default::default()
    }
    .aws();
    let families = cli::families(&aws, &stack(None)).await.unwrap();
    assert_eq!(families, two_families());
    assert_eq!(targets.num_calls(), 1);
}

#[test]
fn pick_and_regions_of_choose_the_family_and_its_regions() {
    let families = two_families();
    assert_eq!(cli::pick(&families, Some("arm64")).unwrap(), &families[1]);
    assert_eq!(cli::pick(&families[..1], None).unwrap(), &families[0]);
    let several = cli::pick(&families, None).unwrap_err();
    assert_eq!(
        (several.code, several.message.as_str()),
        (
            2,
            "several families (default, arm64): say which with --family"
        )
    );
    let unknown = cli::pick(&families, Some("x")).unwrap_err();
    assert_eq!(
        (unknown.code, unknown.message.as_str()),
        (2, "no family x: the targets have default, arm64")
    );

    assert_eq!(
        cli::regions_of(&families[0], None).unwrap(),
        ["eu-west-1", "us-east-1"]
    );
    assert_eq!(
        cli::regions_of(&families[0], Some("us-east-1")).unwrap(),
        ["us-east-1"]
    );
    let elsewhere = cli::regions_of(&families[1], Some("us-east-1")).unwrap_err();
    assert_eq!(
        (elsewhere.code, elsewhere.message.as_str()),
        (
            2,
            "family arm64 is not published in us-east-1: its regions are eu-west-1"
        )
    );
}

// ---- status, history -----------------------------------------------------------------------

#[tokio::test]
async fn status_shows_pointers_pins_runs_and_the_run_in_progress() {
    let (current, arm) = (pointer(POINTER, CURRENT), no_pointer(ARM_POINTER));
    let pins = pins_rule(&[
        r#"{"family": "arm64", "amiId": "ami-0bbbbbbbbbbbbbbb0", "region": "eu-west-1", "pinnedBy": "arn:aws:sts::111122223333:assumed-role/oncall/alice", "pinnedAt": "2026-12-02T10:00:00Z", "reason": "kernel regression"}"#,
    ]);
    let list = listed(
        3,
        vec![
            listing(RUNNING, "manual-20261203T085000", ExecutionStatus::Running),
            listing(EXECUTION, "monthly", ExecutionStatus::Succeeded),
        ],
    );
    let (running, done) = (
        described(RUNNING, ExecutionStatus::Running, None),
        described(EXECUTION, ExecutionStatus::Succeeded, Some(OUTPUT)),
    );
    let history = events_of(
        RUNNING,
        vec![
            entered("PlanRun", "{}"),
            task_succeeded(r#"{"families": []}"#),
            entered("ForEachFamily", "{}"),
            entered("WaitForBake", "{}"),
        ],
    );
    let waiting = approvals_rule(&[]);
    let aws = Rules {
        ssm: vec![&current, &arm, &pins, &waiting],
        sfn: vec![&list, &running, &done, &history],
        ..Default::default()
    }
    .aws();
    let status = cli::status(&aws, &stack(Some(MACHINE)), &two_families(), NOW)
        .await
        .unwrap();

    let seen = |family: &str, region: &str, parameter: &str| cli::PointerNow {
        family: family.into(),
        region: region.into(),
        parameter: parameter.into(),
        value: Some(CURRENT.into()),
        version: Some(7),
        modified: Some("2026-12-01T09:30:00Z".into()),
        age_days: Some(1),
    };
    assert_eq!(
        status.pointers,
        [
            seen("default", "eu-west-1", POINTER),
            seen("default", "us-east-1", POINTER),
            cli::PointerNow {
                value: None,
                version: None,
                modified: None,
                age_days: None,
                ..seen("arm64", "eu-west-1", ARM_POINTER)
            },
        ]
    );
    assert_eq!((current.num_calls(), arm.num_calls()), (2, 1));
    assert_eq!(
        status.pins,
        [Pin {
            family: "arm64".into(),
            ami_id: PREVIOUS.into(),
            region: "eu-west-1".into(),
            pinned_by: CALLER.into(),
            pinned_at: "2026-12-02T10:00:00Z".into(),
            reason: Some("kernel regression".into()),
        }]
    );
    let runs = status.runs.as_ref().unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| (r.name.as_str(), r.status.as_str(), r.duration_seconds))
            .collect::<Vec<_>>(),
        [
            ("manual-20261203T085000", "RUNNING", None),
            ("monthly", "SUCCEEDED", Some(41 * 60 + 5)),
        ]
    );
    assert!(runs[0].families.is_empty());
    assert_eq!(
        runs[1]
            .families
            .iter()
            .map(|f| f.outcome.as_str())
            .collect::<Vec<_>>(),
        ["PUBLISHED", "PINNED"]
    );
    assert_eq!(status.runs_unavailable, None);
    assert_eq!(
        status.running,
        Some((
            "manual-20261203T085000".to_string(),
            "WaitForBake".to_string()
        ))
    );
    assert_eq!(
        status.next_run.as_deref(),
        Some("2027-01-01 08:00 CET (2027-01-01 07:00 UTC) (cron(0 8 1 * ? *) Europe/Paris)")
    );
    assert_eq!(
        (
            pins.num_calls(),
            list.num_calls(),
            running.num_calls(),
            done.num_calls(),
            history.num_calls()
        ),
        (1, 1, 1, 1, 1)
    );
}

#[tokio::test]
async fn status_without_a_state_machine_says_why_there_are_no_runs() {
    let (current, pins) = (pointer(POINTER, CURRENT), pins_rule(&[]));
    let waiting = approvals_rule(&[WAITING]);
    let aws = Rules {
        ssm: vec![&current, &pins, &waiting],
        ..Default::default()
    }
    .aws();
    let disabled = Stack {
        schedule: Some("disabled (ScheduleState)".into()),
        ..stack(None)
    };
    let status = cli::status(&aws, &disabled, &[default_family()], NOW)
        .await
        .unwrap();
    assert_eq!(status.pointers.len(), 1);
    assert!(status.pins.is_empty());
    assert_eq!(status.runs, None);
    assert_eq!(
        status.runs_unavailable.as_deref(),
        Some(
            "no state machine for the stack golden-ami-pipeline: give --state-machine-arn, or deploy the stack (its StateMachineArn output)"
        )
    );
    assert_eq!(status.running, None);
    assert_eq!(status.next_run.as_deref(), Some("disabled (ScheduleState)"));
    assert_eq!(status.approvals.len(), 1);
    assert_eq!(status.approvals[0].execution, "monthly");
    assert_eq!(status.approvals[0].request.family, "default");
}

#[tokio::test]
async fn a_pin_that_is_not_a_pin_says_how_to_remove_it() {
    let pins = pins_rule(&["ami-0bbbbbbbbbbbbbbb0"]);
    let aws = Rules {
        ssm: vec![&pins],
        ..Default::default()
    }
    .aws();
    let refused = cli::pins(&aws, &stack(None)).await.unwrap_err();
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .message
            .starts_with(&format!("the pin {PINS}/x is not a pin"))
            && refused.message.ends_with("`golden-ami unpin` removes it"),
        "{refused}"
    );
}

#[test]
fn the_next_run_is_the_next_first_of_a_month_at_eight_in_the_schedule_s_zone() {
    for (now, zone, next) in [
        (
            datetime!(2026-12-01 07:59:59 UTC),
            "UTC",
            "2026-12-01 08:00 UTC",
        ),
        (
            datetime!(2026-03-01 00:00:00 UTC),
            "UTC",
            "2026-03-01 08:00 UTC",
        ),
        (
            datetime!(2026-03-01 08:00:00 UTC),
            "UTC",
            "2026-04-01 08:00 UTC",
        ),
        (
            datetime!(2026-11-23 12:00:00 UTC),
            "UTC",
            "2026-12-01 08:00 UTC",
        ),
        (
            datetime!(2026-12-01 08:00:00 UTC),
            "UTC",
            "2027-01-01 08:00 UTC",
        ),
        (
            datetime!(2026-12-31 23:59:00 UTC),
            "UTC",
            "2027-01-01 08:00 UTC",
        ),
        // 07:30 UTC on the 1st is 08:30 in Paris: this month's run has passed there.
        (
            datetime!(2026-12-01 07:30:00 UTC),
            "Europe/Paris",
            "2027-01-01 08:00 CET (2027-01-01 07:00 UTC)",
        ),
        // 23:30 UTC on the 31st is already the 1st, 01:30, in Paris: the run is today.
        (
            datetime!(2026-12-31 23:30:00 UTC),
            "Europe/Paris",
            "2027-01-01 08:00 CET (2027-01-01 07:00 UTC)",
        ),
        // Summer time: 08:00 CEST is 06:00 UTC.
        (
            datetime!(2026-06-15 12:00:00 UTC),
            "Europe/Paris",
            "2026-07-01 08:00 CEST (2026-07-01 06:00 UTC)",
        ),
        // West of UTC: 03:00 UTC on the 1st is still the 30th in Los Angeles.
        (
            datetime!(2026-12-01 03:00:00 UTC),
            "America/Los_Angeles",
            "2026-12-01 08:00 PST (2026-12-01 16:00 UTC)",
        ),
    ] {
        assert_eq!(
            cli::next_first_of_month(now, zone).as_deref(),
            Ok(next),
            "at {now} in {zone}"
        );
    }
    let unknown =
        cli::next_first_of_month(datetime!(2026-12-01 07:30:00 UTC), "Mars/Olympus").unwrap_err();
    assert!(unknown.contains("Mars/Olympus"), "{unknown}");
}

#[tokio::test]
async fn history_gives_each_runs_status_duration_and_outcomes() {
    let failed_arn = "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:earlier";
    let list = listed(
        2,
        vec![
            listing(EXECUTION, "monthly", ExecutionStatus::Succeeded),
            listing(failed_arn, "earlier", ExecutionStatus::Failed),
        ],
    );
    let (succeeded, failed) = (
        described(EXECUTION, ExecutionStatus::Succeeded, Some(OUTPUT)),
        described(failed_arn, ExecutionStatus::Failed, None),
    );
    let aws = Rules {
        sfn: vec![&list, &succeeded, &failed],
        ..Default::default()
    }
    .aws();
    let runs = cli::history(&aws, &stack(Some(MACHINE)), 2).await.unwrap();
    assert_eq!(
        runs,
        [
            cli::Run {
                name: "monthly".into(),
                arn: EXECUTION.into(),
                status: "SUCCEEDED".into(),
                started: "2026-12-01T08:00:00Z".into(),
                duration_seconds: Some(41 * 60 + 5),
                families: vec![
                    FamilyOutcome {
                        family: "default".into(),
                        outcome: "PUBLISHED".into(),
                        moved: vec![
                            format!("eu-west-1: {PREVIOUS} -> {CURRENT}"),
                            format!("us-east-1: (none) -> {CURRENT}"),
                        ],
                    },
                    FamilyOutcome {
                        family: "arm64".into(),
                        outcome: "PINNED".into(),
                        moved: vec![],
                    },
                ],
            },
            cli::Run {
                name: "earlier".into(),
                arn: failed_arn.into(),
                status: "FAILED".into(),
                started: "2026-12-01T08:00:00Z".into(),
                duration_seconds: Some(41 * 60 + 5),
                families: vec![],
            },
        ]
    );
    assert_eq!(
        (list.num_calls(), succeeded.num_calls(), failed.num_calls()),
        (1, 1, 1)
    );

    let none = Rules::default().aws();
    assert_eq!(
        cli::history(&none, &stack(None), 2).await.unwrap_err().code,
        2
    );
}

// ---- why -----------------------------------------------------------------------------------

#[tokio::test]
async fn why_names_the_failed_states_their_causes_the_automation_step_and_the_pointers() {
    let list = mock!(aws_sdk_sfn::Client::list_executions)
        .match_requests(|r| {
            r.state_machine_arn() == Some(MACHINE)
                && r.status_filter() == Some(&ExecutionStatus::Failed)
                && r.max_results() == Some(1)
        })
        .then_output(|| {
            ListExecutionsOutput::builder()
                .executions(listing(EXECUTION, "monthly", ExecutionStatus::Failed))
                .build()
                .unwrap()
        });
    let execution = described(EXECUTION, ExecutionStatus::Failed, None);
    let history = events_of(
        EXECUTION,
        vec![
            entered("CheckBake", r#"{"family": {"name": "default"}}"#),
            entered(
                "CheckBakeFailed",
                r#"{"family": {"name": "default"}, "bake": {"automationExecutionId": "auto-1"},
                "error": {"Error": "BakeFailed", "Cause": "{\"errorType\":\"BakeFailed\",\"errorMessage\":\"automation auto-1 failed at updateOs\"}"}}"#,
            ),
            entered(
                "CopyImageFailed",
                r#"{"family": {"name": "arm64"}, "target": {"region": "eu-west-1"},
                "error": {"Error": "States.Timeout", "Cause": "the copy took too long"}}"#,
            ),
            // Retain records its failure elsewhere: no error object, not a failure of the run.
            entered(
                "RetainFailed",
                r#"{"family": {"name": "arm64"}, "retentionError": {"Error": "x", "Cause": "y"}}"#,
            ),
            entered("NotifyFailure", "{}"),
            entered(
                "PipelineFailed",
                r#"{"error": {"Error": "GoldenAmiPipelineFailed", "Cause": "a family failed"}}"#,
            ),
        ],
    );
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
    let (current, arm) = (pointer(POINTER, CURRENT), pointer(ARM_POINTER, PREVIOUS));
    let aws = Rules {
        sfn: vec![&list, &execution, &history],
        ssm: vec![&automation, &current, &arm],
        ..Default::default()
    }
    .aws();
    let why = cli::why(&aws, &stack(Some(MACHINE)), None, &two_families(), NOW)
        .await
        .unwrap();
    assert_eq!(
        (why.execution.as_str(), why.status.as_str()),
        (EXECUTION, "FAILED")
    );
    assert_eq!(
        why.failures,
        [
            FailureSeen {
                family: Some("default".into()),
                state: "CheckBake".into(),
                region: None,
                error: "BakeFailed".into(),
                cause: "automation auto-1 failed at updateOs".into(),
            },
            FailureSeen {
                family: Some("arm64".into()),
                state: "CopyImage".into(),
                region: Some("eu-west-1".into()),
                error: "States.Timeout".into(),
                cause: "the copy took too long".into(),
            },
        ]
    );
    assert_eq!(
        why.automation.as_deref(),
        Some("automation auto-1: step updateOs Failed: dnf exited 1\n    exitCode: 1")
    );
    assert_eq!(
        why.pointers
            .iter()
            .map(|p| (p.family.as_str(), p.region.as_str(), p.value.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("default", "eu-west-1", Some(CURRENT)),
            ("default", "us-east-1", Some(CURRENT)),
            ("arm64", "eu-west-1", Some(PREVIOUS)),
        ]
    );
    assert_eq!(
        (
            list.num_calls(),
            execution.num_calls(),
            history.num_calls(),
            automation.num_calls()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn why_of_a_named_run_without_a_recorded_failure_gives_the_executions_own_error() {
    let execution = mock!(aws_sdk_sfn::Client::describe_execution)
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
    let history = events_of(
        EXECUTION,
        vec![
            entered("WaitForCopy", "{}"),
            // A `<State>Failed` state without an error object records nothing.
            entered("CheckCopyFailed", r#"{"target": {"region": "us-east-1"}}"#),
        ],
    );
    let aws = Rules {
        sfn: vec![&execution, &history],
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
    assert_eq!(
        (why.execution.as_str(), why.status.as_str()),
        (EXECUTION, "TIMED_OUT")
    );
    assert_eq!(
        why.failures,
        [FailureSeen {
            family: None,
            state: "Execution".into(),
            region: None,
            error: "States.Timeout".into(),
            cause: "the run took too long".into(),
        }]
    );
    assert_eq!(why.automation, None);
    assert!(why.pointers.is_empty());
    assert_eq!((execution.num_calls(), history.num_calls()), (1, 1));
}

#[tokio::test]
async fn why_without_a_failed_run_has_nothing_to_explain() {
    let list = mock!(aws_sdk_sfn::Client::list_executions).then_output(|| {
        ListExecutionsOutput::builder()
            .set_executions(Some(vec![]))
            .build()
            .unwrap()
    });
    let aws = Rules {
        sfn: vec![&list],
        ..Default::default()
    }
    .aws();
    let refused = cli::why(&aws, &stack(Some(MACHINE)), None, &[], NOW)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (2, "no failed run: nothing to explain")
    );
    assert_eq!(list.num_calls(), 1);
}

// ---- run -----------------------------------------------------------------------------------

#[tokio::test]
async fn start_runs_a_manual_execution_with_an_empty_input() {
    let started = mock!(aws_sdk_sfn::Client::start_execution)
        .match_requests(|r| {
            r.state_machine_arn() == Some(MACHINE)
                && r.input() == Some("{}")
                && r.name() == Some("manual-20261203T090000")
        })
        .then_output(|| {
            StartExecutionOutput::builder()
                .execution_arn(EXECUTION)
                .start_date(DateTime::from_secs(0))
                .build()
                .unwrap()
        });
    let aws = Rules {
        sfn: vec![&started],
        ..Default::default()
    }
    .aws();
    assert_eq!(
        cli::start(&aws, &stack(Some(MACHINE)), NOW).await.unwrap(),
        EXECUTION
    );
    assert_eq!(started.num_calls(), 1);

    let refused = cli::start(&aws, &stack(None), NOW).await.unwrap_err();
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .message
            .starts_with("no state machine for the stack"),
        "{refused}"
    );
    assert_eq!(started.num_calls(), 1);
}

#[tokio::test]
async fn progress_reports_the_new_states_the_bake_step_and_the_status() {
    let history = events_of(
        EXECUTION,
        vec![
            entered("PlanRun", "{}"),
            entered("CheckBake", "{}"),
            task_succeeded(r#"{"done": false, "currentStep": "launchInstance"}"#),
            entered("BakeDone?", "{}"),
            entered("WaitForBake", "{}"),
            entered("CheckBake", "{}"),
            task_succeeded(r#"{"done": false, "currentStep": "updateOs"}"#),
            task_succeeded(r#"{"other": "output"}"#),
        ],
    );
    let execution = described(EXECUTION, ExecutionStatus::Running, None);
    let aws = Rules {
        sfn: vec![&history, &execution],
        ..Default::default()
    }
    .aws();
    let (new, step, status) = cli::progress(&aws, EXECUTION, 3).await.unwrap();
    assert_eq!(new, ["WaitForBake", "CheckBake"]);
    assert_eq!(step.as_deref(), Some("updateOs"));
    assert_eq!(status, "RUNNING");
    assert_eq!((history.num_calls(), execution.num_calls()), (1, 1));

    let (new, _, _) = cli::progress(&aws, EXECUTION, 5).await.unwrap();
    assert!(new.is_empty());
}

// ---- rollback, pin, unpin ------------------------------------------------------------------

#[tokio::test]
async fn rollback_puts_the_previous_image_back() {
    let (history, available) = (pointer_history(), image(PREVIOUS, ImageState::Available));
    let written = Arc::new(AtomicUsize::new(0));
    let put = pointer_put(PREVIOUS, 9, written.clone());
    // SSM shows the write after one more read: it validates aws:ec2:image values first.
    let read = pointer_written((CURRENT, 8), 1, (PREVIOUS, 9), written);
    let aws = Rules {
        ssm: vec![&history, &put, &read],
        ec2: vec![&available],
        ..Default::default()
    }
    .aws();
    let moved = cli::rollback(&aws, &default_family(), &["eu-west-1"])
        .await
        .unwrap();
    assert_eq!(
        moved,
        [Moved {
            family: "default".into(),
            region: "eu-west-1".into(),
            parameter: POINTER.into(),
            from: Some(CURRENT.into()),
            to: PREVIOUS.into(),
            version: 9,
        }]
    );
    assert_eq!(
        (history.num_calls(), available.num_calls(), put.num_calls()),
        (1, 1, 1)
    );
    // Before the write, one read while SSM validates it, one that shows it.
    assert_eq!(read.num_calls(), 3);
}

#[tokio::test]
async fn a_pointer_write_that_never_shows_or_is_overtaken_is_an_error_naming_it() {
    for (after, pending, words) in [
        (
            (PREVIOUS, 9),
            usize::MAX,
            "did not show within 0 s: SSM validates an aws:ec2:image value asynchronously",
        ),
        (
            (OLDEST, 9),
            0,
            "was changed by someone else while this wrote",
        ),
    ] {
        let (history, available) = (pointer_history(), image(PREVIOUS, ImageState::Available));
        let written = Arc::new(AtomicUsize::new(0));
        let put = pointer_put(PREVIOUS, 9, written.clone());
        let read = pointer_written((CURRENT, 8), pending, after, written);
        let mut aws = Rules {
            ssm: vec![&history, &put, &read],
            ec2: vec![&available],
            ..Default::default()
        }
        .aws();
        aws.pointer_wait = std::time::Duration::ZERO;
        let error = cli::rollback(&aws, &default_family(), &["eu-west-1"])
            .await
            .unwrap_err();
        assert_eq!(error.code, 1);
        assert!(error.message.contains(words), "{}", error.message);
        assert!(error.message.contains(POINTER), "{}", error.message);
    }
}

#[tokio::test]
async fn rollback_refuses_a_gone_or_unavailable_image_and_moves_nothing() {
    for (ec2, why) in [
        (
            image_gone(),
            format!("{PREVIOUS} does not exist in eu-west-1 (deregistered?)"),
        ),
        (
            image(PREVIOUS, ImageState::Deregistered),
            format!("{PREVIOUS} is deregistered in eu-west-1, not available"),
        ),
        (
            image(PREVIOUS, ImageState::Pending),
            format!("{PREVIOUS} is pending in eu-west-1, not available"),
        ),
    ] {
        let (history, put) = (pointer_history(), put(9));
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
                "cannot roll back default in eu-west-1 to {PREVIOUS}: {why}"
            )),
            "{refused}"
        );
        assert_eq!((ec2.num_calls(), put.num_calls()), (1, 0));
    }
}

#[tokio::test]
async fn rollback_checks_every_region_before_moving_any() {
    let history = pointer_history();
    let images = mock!(aws_sdk_ec2::Client::describe_images)
        .sequence()
        .output(|| {
            DescribeImagesOutput::builder()
                .images(
                    Image::builder()
                        .image_id(PREVIOUS)
                        .state(ImageState::Available)
                        .build(),
                )
                .build()
        })
        .error(|| DescribeImagesError::generic(error("InvalidAMIID.NotFound", "gone")))
        .build();
    let put = put(9);
    let aws = Rules {
        ssm: vec![&history, &put],
        ec2: vec![&images],
        ..Default::default()
    }
    .aws();
    let refused = cli::rollback(&aws, &two_families()[0], &["eu-west-1", "us-east-1"])
        .await
        .unwrap_err();
    assert!(
        refused.message.starts_with(&format!(
            "cannot roll back default in us-east-1 to {PREVIOUS}"
        )),
        "{refused}"
    );
    assert_eq!(
        (history.num_calls(), images.num_calls(), put.num_calls()),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn rollback_refuses_a_pointer_that_never_held_another_image() {
    let only = mock!(aws_sdk_ssm::Client::get_parameter_history).then_output(|| {
        let version = |v: i64| {
            ParameterHistory::builder()
                .version(v)
                .value(CURRENT)
                .build()
        };
        GetParameterHistoryOutput::builder()
            .parameters(version(1))
            .parameters(version(2))
            .build()
    });
    let (available, put) = (image(CURRENT, ImageState::Available), put(9));
    let aws = Rules {
        ssm: vec![&only, &put],
        ec2: vec![&available],
        ..Default::default()
    }
    .aws();
    let refused = cli::rollback(&aws, &default_family(), &["eu-west-1"])
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (
            1,
            "default in eu-west-1: the pointer /golden-ami/current never held another image: nothing to roll back to"
        )
    );
    assert_eq!((available.num_calls(), put.num_calls()), (0, 0));

    let missing = mock!(aws_sdk_ssm::Client::get_parameter_history).then_error(|| {
        GetParameterHistoryError::ParameterNotFound(ParameterNotFound::builder().build())
    });
    let aws = Rules {
        ssm: vec![&missing],
        ..Default::default()
    }
    .aws();
    let refused = cli::rollback(&aws, &default_family(), &["eu-west-1"])
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (
            1,
            "default has no pointer /golden-ami/current in eu-west-1: nothing to roll back"
        )
    );
}

fn the_pin(image: &str, reason: Option<&str>) -> Pin {
    Pin {
        family: "default".into(),
        ami_id: image.into(),
        region: "eu-west-1".into(),
        pinned_by: CALLER.into(),
        pinned_at: "2026-12-03T09:00:00Z".into(),
        reason: reason.map(str::to_string),
    }
}

#[tokio::test]
async fn pin_writes_the_pin_then_moves_the_pointer() {
    let [available, snapshots, shared] =
        described_image(golden_image(PREVIOUS), GOLDEN_KEY, organization());
    let who = caller();
    let pin_put = mock!(aws_sdk_ssm::Client::put_parameter)
        .match_requests(|r| {
            r.name() == Some("/golden-ami-pipeline/pins/default")
                && r.r#type() == Some(&ParameterType::String)
                && r.tier() == Some(&ParameterTier::Standard)
                && r.overwrite() == Some(true)
                && r.value().is_some_and(|v| {
                    let pin: serde_json::Value = serde_json::from_str(v).unwrap();
                    pin == serde_json::json!({
                        "family": "default",
                        "amiId": PREVIOUS,
                        "region": "eu-west-1",
                        "pinnedBy": CALLER,
                        "pinnedAt": "2026-12-03T09:00:00Z",
                        "reason": "kernel regression",
                    })
                })
        })
        .then_output(|| PutParameterOutput::builder().version(1).build());
    let written = Arc::new(AtomicUsize::new(0));
    let pointer_put = pointer_put(PREVIOUS, 8, written.clone());
    let current = pointer_written((CURRENT, 7), 0, (PREVIOUS, 8), written);
    let aws = Rules {
        ssm: vec![&pin_put, &pointer_put, &current],
        ec2: vec![&available, &snapshots, &shared],
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
    assert_eq!(pin, the_pin(PREVIOUS, Some("kernel regression")));
    assert_eq!(
        moved,
        Some(Moved {
            family: "default".into(),
            region: "eu-west-1".into(),
            parameter: POINTER.into(),
            from: Some(CURRENT.into()),
            to: PREVIOUS.into(),
            version: 8,
        })
    );
    assert_eq!(
        (
            available.num_calls(),
            who.num_calls(),
            current.num_calls(),
            pin_put.num_calls() + pointer_put.num_calls()
        ),
        // The pointer read for the notice, before the write, and once the write shows.
        (1, 1, 3, 2)
    );
    assert_eq!((snapshots.num_calls(), shared.num_calls()), (1, 1));
}

#[tokio::test]
async fn pin_of_the_image_the_pointer_holds_writes_the_pin_only() {
    let [available, snapshots, shared] =
        described_image(golden_image(CURRENT), GOLDEN_KEY, organization());
    let (who, current, any_put) = (caller(), pointer(POINTER, CURRENT), put(1));
    let aws = Rules {
        ssm: vec![&any_put, &current],
        ec2: vec![&available, &snapshots, &shared],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let (pin, moved) = cli::pin(
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
    assert_eq!(pin, the_pin(CURRENT, None));
    assert_eq!(moved, None);
    assert_eq!(any_put.num_calls(), 1);
}

#[tokio::test]
async fn pin_refuses_what_is_not_an_ami_id_without_any_call() {
    let (available, who, current, any_put) = (
        image(PREVIOUS, ImageState::Available),
        caller(),
        pointer(POINTER, CURRENT),
        put(1),
    );
    let aws = Rules {
        ssm: vec![&any_put, &current],
        ec2: vec![&available],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    for bad in ["latest", "ami-0BBBBBBBBBBBBBBB0", "ami-123"] {
        let refused = cli::pin(
            &aws,
            &stack(None),
            &default_family(),
            "eu-west-1",
            bad,
            None,
            NOW,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (refused.code, refused.message),
            (
                2,
                format!("{bad} is not an AMI id (ami- and 8 or 17 hex digits)")
            )
        );
    }
    assert_eq!(
        (
            available.num_calls(),
            who.num_calls(),
            current.num_calls(),
            any_put.num_calls()
        ),
        (0, 0, 0, 0)
    );
}

#[tokio::test]
async fn pin_refuses_an_image_that_is_gone_and_writes_nothing() {
    let (gone, who, any_put) = (image_gone(), caller(), put(1));
    let aws = Rules {
        ssm: vec![&any_put],
        ec2: vec![&gone],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let refused = cli::pin(
        &aws,
        &stack(None),
        &default_family(),
        "eu-west-1",
        PREVIOUS,
        None,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code, 1);
    assert!(
        refused.message.starts_with(&format!(
            "cannot pin {PREVIOUS}: it is not a golden image of default in eu-west-1: the golden image {PREVIOUS} does not exist; pin an image"
        )),
        "{refused}"
    );
    assert_eq!(
        (gone.num_calls(), who.num_calls(), any_put.num_calls()),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn pin_refuses_an_image_that_is_not_the_familys_golden_image_and_writes_nothing() {
    const AWS_EBS_KEY: &str =
        "arn:aws:kms:eu-west-1:111122223333:key/aaaabbbb-cccc-dddd-eeee-ffff00001111";
    // A public arm64 image, another account's, unshared, under the account's EBS key, untagged,
    // and deprecated.
    let public = Image::builder()
        .owner_id("137112412989")
        .architecture(ArchitectureValues::Arm64)
        .deprecation_time("2026-12-01T00:00:00.000Z")
        .set_tags(None)
        .set_image_id(Some(PREVIOUS.into()))
        .set_state(Some(ImageState::Available))
        .set_block_device_mappings(Some(
            golden_image(PREVIOUS).block_device_mappings().to_vec(),
        ))
        .build();
    let [public, snapshots, shared] = described_image(public, AWS_EBS_KEY, vec![]);
    let (who, any_put) = (caller(), put(1));
    let aws = Rules {
        ssm: vec![&any_put],
        ec2: vec![&public, &snapshots, &shared],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let refused = cli::pin(
        &aws,
        &stack(None),
        &default_family(),
        "eu-west-1",
        PREVIOUS,
        None,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code, 1);
    assert_eq!(
        refused.message,
        format!(
            "cannot pin {PREVIOUS}: it is not a golden image of default in eu-west-1: \
             {PREVIOUS} is owned by 137112412989, not this account {ACCOUNT}; \
             {PREVIOUS} is deprecated since 2026-12-01T00:00:00.000Z; \
             {PREVIOUS} is arm64, not the family's architecture x86_64; \
             snapshot {SNAPSHOT} is encrypted under {AWS_EBS_KEY}, not the golden key {GOLDEN_KEY}; \
             tag Type is missing (expected \"golden-ami\"); \
             tag golden-ami:family is missing (expected \"default\"); \
             the launch permission lacks {ORGANIZATION}; \
             pin an image a run published for default in eu-west-1 (`golden-ami status` shows \
             what each pointer holds; the family's golden images are tagged \
             golden-ami:family=default)"
        )
    );
    assert_eq!(any_put.num_calls(), 0);
}

#[tokio::test]
async fn pin_without_the_stacks_key_or_sharing_says_which_flag_to_give() {
    let (who, any_put) = (caller(), put(1));
    let aws = Rules {
        ssm: vec![&any_put],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let unknown_key = Family {
        golden_keys: Default::default(),
        ..default_family()
    };
    let refused = cli::pin(
        &aws,
        &stack(None),
        &unknown_key,
        "eu-west-1",
        PREVIOUS,
        None,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code, 2);
    assert!(
        refused.message.contains("give --golden-key-arn"),
        "{refused}"
    );
    let unshared = Stack {
        shared_with: None,
        ..stack(None)
    };
    let refused = cli::pin(
        &aws,
        &unshared,
        &default_family(),
        "eu-west-1",
        PREVIOUS,
        None,
        NOW,
    )
    .await
    .unwrap_err();
    assert!(refused.message.contains("give --shared-with"), "{refused}");
    assert_eq!(any_put.num_calls(), 0);
}

#[test]
fn shared_with_takes_organizations_ous_and_accounts_and_nothing_else() {
    let ou = "arn:aws:organizations::999988887777:ou/o-a1b2c3d4e5/ou-ab12-cdef3456";
    let parsed = cli::parse_shared_with(&format!("{ORGANIZATION}, {ou},444455556666")).unwrap();
    assert_eq!(
        parsed,
        LaunchPrincipals {
            organization_arns: vec![ORGANIZATION.into()],
            organizational_unit_arns: vec![ou.into()],
            account_ids: vec!["444455556666".into()],
        }
    );
    let refused = cli::parse_shared_with("alias/everyone").unwrap_err();
    assert_eq!(refused.code, 2);
}

#[tokio::test]
async fn find_stack_reads_who_the_stack_shares_with_from_its_parameters() {
    let described = described_stack(&[
        ("OrganizationArn", ORGANIZATION),
        ("ShareWithOrganization", "false"),
        ("ShareAccountIds", "444455556666, 777788889999"),
    ]);
    let aws = Rules {
        cloudformation: vec![&described],
        ..Default::default()
    }
    .aws();
    let found = cli::find_stack(&aws, STACK, None, None).await.unwrap();
    assert_eq!(found.golden_key_arn.as_deref(), Some(GOLDEN_KEY));
    assert_eq!(
        found.shared_with,
        Some(LaunchPrincipals {
            account_ids: vec!["444455556666".into(), "777788889999".into()],
            ..Default::default()
        })
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
    assert_eq!(removed.num_calls(), 1);

    let none = mock!(aws_sdk_ssm::Client::delete_parameter)
        .match_requests(|r| r.name() == Some("/golden-ami-pipeline/pins/default"))
        .then_error(|| {
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
    assert_eq!(none.num_calls(), 1);
}

#[tokio::test]
async fn a_family_failure_is_reported_once_not_again_by_family_failed() {
    let execution = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
        DescribeExecutionOutput::builder()
            .execution_arn(EXECUTION)
            .state_machine_arn(MACHINE)
            .status(ExecutionStatus::Failed)
            .start_date(DateTime::from_secs(0))
            .build()
            .unwrap()
    });
    // The family's failure path: the caught error travels on through FamilyFailed.
    let error =
        r#"{"family": {"name": "default"}, "error": {"Error": "StartBakeFailed", "Cause": "no"}}"#;
    let history = events_of(
        EXECUTION,
        vec![
            entered("StartBakeFailed", error),
            entered("FamilyCleanupAfterFailure", error),
            entered("FamilyFailed", error),
        ],
    );
    let aws = Rules {
        sfn: vec![&execution, &history],
        ..Default::default()
    }
    .aws();
    let why = cli::why(
        &aws,
        &stack(Some(MACHINE)),
        Some(EXECUTION.into()),
        &[],
        NOW,
    )
    .await
    .unwrap();
    let states: Vec<&str> = why.failures.iter().map(|f| f.state.as_str()).collect();
    assert_eq!(states, ["StartBake"]);
}

// ---- approve, deny ---------------------------------------------------------------------------

const ARM_WAITING: &str = r#"{"executionId": "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:monthly",
    "family": "arm64", "taskToken": "arm-token", "requestedAt": "2026-12-03T08:00:00Z",
    "deadline": "2026-12-04T08:00:00Z", "images": [{"region": "eu-west-1", "amiId": "ami-0dddddddddddddddd0"}]}"#;

fn withdrawn(family: &'static str) -> Rule {
    mock!(aws_sdk_ssm::Client::delete_parameter)
        .match_requests(move |r| r.name() == Some(format!("{APPROVALS}/monthly/{family}").as_str()))
        .then_output(|| DeleteParameterOutput::builder().build())
}

#[tokio::test]
async fn approve_answers_the_token_with_who_approved_and_withdraws_the_request() {
    let (waiting, who, removed) = (approvals_rule(&[WAITING]), caller(), withdrawn("default"));
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let decision: serde_json::Value =
                serde_json::from_str(r.output().unwrap_or_default()).unwrap();
            r.task_token() == Some(TOKEN)
                && decision
                    == serde_json::json!({"approvedBy": CALLER, "approvedAt": "2026-12-03T09:00:00Z", "reason": "CAB-7"})
        })
        .then_output(|| aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput::builder().build());
    let aws = Rules {
        ssm: vec![&waiting, &removed],
        sfn: vec![&success],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    // The execution by its ARN or its name; the family is the only one waiting.
    let chosen = cli::pick_waiting(&aws, &stack(None), Some(EXECUTION), None)
        .await
        .unwrap();
    assert_eq!(chosen.len(), 1);
    let answered = cli::approve(&aws, &chosen[0], Some("CAB-7".into()), NOW)
        .await
        .unwrap();
    assert_eq!(
        (
            answered.decision.as_str(),
            answered.by.as_str(),
            answered.images.as_slice()
        ),
        (
            "approved",
            CALLER,
            &["eu-west-1 ami-0ccccccccccccccc0".to_string()][..]
        )
    );
    assert_eq!((success.num_calls(), removed.num_calls()), (1, 1));
}

#[tokio::test]
async fn deny_fails_the_task_with_approval_denied_and_a_readable_cause() {
    let (waiting, who, removed) = (approvals_rule(&[WAITING]), caller(), withdrawn("default"));
    let failure = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            let cause: serde_json::Value =
                serde_json::from_str(r.cause().unwrap_or_default()).unwrap();
            r.task_token() == Some(TOKEN)
                && r.error() == Some("ApprovalDenied")
                && cause["errorMessage"]
                    == format!("denied by {CALLER} at 2026-12-03T09:00:00Z: kernel regression")
        })
        .then_output(|| {
            aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput::builder().build()
        });
    let aws = Rules {
        ssm: vec![&waiting, &removed],
        sfn: vec![&failure],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let chosen = cli::pick_waiting(&aws, &stack(None), Some("monthly"), Some("default"))
        .await
        .unwrap();
    let answered = cli::deny(&aws, &chosen[0], "kernel regression", NOW)
        .await
        .unwrap();
    assert_eq!(answered.decision, "denied");
    assert_eq!((failure.num_calls(), removed.num_calls()), (1, 1));
}

#[tokio::test]
async fn an_expired_or_answered_approval_fails_clearly_and_its_request_is_removed() {
    use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
    use aws_sdk_sfn::types::error::{TaskDoesNotExist, TaskTimedOut};
    for (timed_out, expected) in [
        (
            true,
            "the approval of default can no longer be answered (TaskTimedOut): its deadline 2026-12-04T08:00:00Z passed",
        ),
        (
            false,
            "the approval of default in monthly was already answered or its run ended",
        ),
    ] {
        let (waiting, who, removed) = (approvals_rule(&[WAITING]), caller(), withdrawn("default"));
        let refused = mock!(aws_sdk_sfn::Client::send_task_success).then_error(move || {
            if timed_out {
                SendTaskSuccessError::TaskTimedOut(TaskTimedOut::builder().build())
            } else {
                SendTaskSuccessError::TaskDoesNotExist(TaskDoesNotExist::builder().build())
            }
        });
        let aws = Rules {
            ssm: vec![&waiting, &removed],
            sfn: vec![&refused],
            sts: vec![&who],
            ..Default::default()
        }
        .aws();
        let chosen = cli::pick_waiting(&aws, &stack(None), None, None)
            .await
            .unwrap();
        let error = cli::approve(&aws, &chosen[0], None, NOW).await.unwrap_err();
        assert_eq!(error.code, 1);
        assert!(error.message.starts_with(expected), "{error}");
        assert_eq!(removed.num_calls(), 1);
    }
}

#[tokio::test]
async fn approve_refuses_without_a_call_when_the_choice_is_not_clear() {
    let both = approvals_rule(&[WAITING, ARM_WAITING]);
    let none = approvals_rule(&[]);
    let aws = Rules {
        ssm: vec![&both],
        ..Default::default()
    }
    .aws();
    let several = cli::pick_waiting(&aws, &stack(None), None, None)
        .await
        .unwrap_err();
    assert_eq!(
        (several.code, several.message.as_str()),
        (
            2,
            "several families wait (arm64 in monthly, default in monthly): give --family"
        )
    );
    let unknown = cli::pick_waiting(&aws, &stack(None), None, Some("x"))
        .await
        .unwrap_err();
    assert!(
        unknown
            .message
            .starts_with("family x does not wait for approval"),
        "{unknown}"
    );
    let picked = cli::pick_waiting(&aws, &stack(None), Some("monthly"), Some("arm64"))
        .await
        .unwrap();
    assert_eq!(picked[0].request.task_token, "arm-token");
    let aws = Rules {
        ssm: vec![&none],
        ..Default::default()
    }
    .aws();
    let nothing = cli::pick_waiting(&aws, &stack(None), Some("monthly"), None)
        .await
        .unwrap_err();
    assert!(
        nothing
            .message
            .starts_with("nothing of execution monthly waits for approval"),
        "{nothing}"
    );
}

#[tokio::test]
async fn why_with_a_full_execution_arn_needs_no_state_machine() {
    let (execution, history) = (
        described(EXECUTION, ExecutionStatus::Failed, None),
        events_of(EXECUTION, vec![entered("PlanRun", "{}")]),
    );
    let aws = Rules {
        sfn: vec![&execution, &history],
        ..Default::default()
    }
    .aws();
    let why = cli::why(&aws, &stack(None), Some(EXECUTION.into()), &[], NOW)
        .await
        .unwrap();
    assert_eq!(why.execution, EXECUTION);
    let by_name = cli::why(&aws, &stack(None), Some("monthly".into()), &[], NOW)
        .await
        .unwrap_err();
    assert!(by_name.message.starts_with("no state machine"), "{by_name}");
}

#[tokio::test]
async fn status_still_reports_a_running_run_whose_history_is_denied() {
    let (current, pins, waiting) = (
        pointer(POINTER, CURRENT),
        pins_rule(&[]),
        approvals_rule(&[]),
    );
    let list = listed(
        3,
        vec![listing(
            RUNNING,
            "manual-20261203T085000",
            ExecutionStatus::Running,
        )],
    );
    let running = described(RUNNING, ExecutionStatus::Running, None);
    let denied = mock!(aws_sdk_sfn::Client::get_execution_history).then_error(|| {
        aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryError::generic(error(
            "AccessDeniedException",
            "not authorized to perform states:GetExecutionHistory",
        ))
    });
    let aws = Rules {
        ssm: vec![&current, &pins, &waiting],
        sfn: vec![&list, &running, &denied],
        ..Default::default()
    }
    .aws();
    let status = cli::status(&aws, &stack(Some(MACHINE)), &[default_family()], NOW)
        .await
        .unwrap();
    let (name, state) = status.running.unwrap();
    assert_eq!(name, "manual-20261203T085000");
    assert!(
        state.starts_with(
            "(its state is not available: states:GetExecutionHistory failed (AccessDeniedException"
        ),
        "{state}"
    );
}

const RERUN_WAITING: &str = r#"{"executionId": "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:rerun@dec",
    "family": "default", "taskToken": "rerun-token", "requestedAt": "2026-12-03T08:00:00Z",
    "deadline": "2026-12-04T08:00:00Z", "images": [{"region": "eu-west-1", "amiId": "ami-0ccccccccccccccc0"}]}"#;

#[tokio::test]
async fn approve_finds_a_run_whose_name_ssm_refuses_under_its_safe_form_and_names_it_as_typed() {
    // RequestApproval stored it under the execution's SSM form; the person types the real name.
    let stored = ApprovalRequest::parameter_name(APPROVALS, "rerun@dec", "default");
    let (listed_path, stored_name) = (
        ApprovalRequest::execution_path(APPROVALS, "rerun@dec"),
        stored.clone(),
    );
    assert!(!stored.contains('@'), "{stored}");
    let waiting = mock!(aws_sdk_ssm::Client::get_parameters_by_path)
        .match_requests(move |r| r.path() == Some(listed_path.as_str()))
        .then_output(move || {
            GetParametersByPathOutput::builder()
                .parameters(
                    Parameter::builder()
                        .name(stored_name.as_str())
                        .value(RERUN_WAITING)
                        .build(),
                )
                .build()
        });
    let removed_name = stored.clone();
    let removed = mock!(aws_sdk_ssm::Client::delete_parameter)
        .match_requests(move |r| r.name() == Some(removed_name.as_str()))
        .then_output(|| DeleteParameterOutput::builder().build());
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some("rerun-token"))
        .then_output(|| {
            aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput::builder().build()
        });
    let who = caller();
    let aws = Rules {
        ssm: vec![&waiting, &removed],
        sfn: vec![&success],
        sts: vec![&who],
        ..Default::default()
    }
    .aws();
    let chosen = cli::pick_waiting(&aws, &stack(None), Some("rerun@dec"), None)
        .await
        .unwrap();
    assert_eq!(
        (chosen[0].execution.as_str(), chosen[0].parameter.as_str()),
        ("rerun@dec", stored.as_str())
    );
    let answered = cli::approve(&aws, &chosen[0], None, NOW).await.unwrap();
    assert_eq!(answered.execution, "rerun@dec");
    assert_eq!(
        (
            waiting.num_calls(),
            success.num_calls(),
            removed.num_calls()
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_path_ssm_refuses_holds_no_approval_request() {
    let refused = mock!(aws_sdk_ssm::Client::get_parameters_by_path).then_error(|| {
        aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathError::generic(error(
            "ValidationException",
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".",
        ))
    });
    let aws = Rules {
        ssm: vec![&refused],
        ..Default::default()
    }
    .aws();
    let nothing = cli::pick_waiting(&aws, &stack(None), Some("monthly"), None)
        .await
        .unwrap_err();
    assert!(
        nothing
            .message
            .starts_with("nothing of execution monthly waits for approval"),
        "{nothing}"
    );
    assert_eq!(refused.num_calls(), 1);
}
