//! Helpers for the step crates' unit tests: a fixed configuration and clock, and concrete SDK
//! clients whose responses come from `aws-smithy-mocks` rules (no hand-written client traits).
//! Compiled only with the `testing` feature, for tests, where a panic is a failed assertion.
#![allow(clippy::panic)]

use aws_smithy_types::retry::RetryConfig;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::macros::datetime;

pub use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock};
pub use aws_smithy_types::error::ErrorMetadata;

use crate::config::Config;
use crate::deps::{Clients, Deps};
use crate::types::ExecutionContext;

pub const ACCOUNT: &str = "111122223333";
/// The region of the mocked clients, the same as in the test ARNs.
pub const REGION: &str = "eu-west-1";
pub const POINTER: &str = "/golden-ami/current";
pub const TARGETS_PARAMETER: &str = "/golden-ami-pipeline/targets";
pub const LOCK_PARAMETER: &str = "/golden-ami-pipeline/lock";
/// The default DURATIONS_PATH (PIPELINE_NAME golden-ami-pipeline).
pub const DURATIONS_PATH: &str = "/golden-ami-pipeline/durations";
pub const BAKE_DOCUMENT: &str = "golden-ami-bake";
pub const TEST_DOCUMENT: &str = "golden-ami-test";
pub const UPDATE_REPORT_DOCUMENT: &str = "golden-ami-update-report";
pub const BASELINE_APPLY_DOCUMENT: &str = "golden-ami-baseline-apply";
pub const BASELINE_CHECK_DOCUMENT: &str = "golden-ami-baseline-check";
pub const REPORT_BUCKET: &str = "golden-ami-reports-111122223333";
pub const GOLDEN_KEY_ARN: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
pub const TOPIC_ARN: &str = "arn:aws:sns:eu-west-1:111122223333:golden-ami-pipeline";
pub const ORGANIZATION_ARN: &str = "arn:aws:organizations::999988887777:organization/o-a1b2c3d4e5";
pub const EXECUTION_ID: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:2026-12-01-monthly";

/// The instant every test runs at: five minutes into the events' execution.
pub fn fixed_now() -> OffsetDateTime {
    datetime!(2026-12-01 08:05:00 UTC)
}

/// The configuration the events/ files were written for.
pub fn config() -> Config {
    let vars = [
        ("AWS_REGION", REGION),
        ("TARGETS_PARAMETER_NAME", TARGETS_PARAMETER),
        ("LOCK_PARAMETER_NAME", LOCK_PARAMETER),
        ("GOLDEN_KMS_KEY_ARN", GOLDEN_KEY_ARN),
        ("BAKE_DOCUMENT_NAME", BAKE_DOCUMENT),
        (
            "AUTOMATION_ASSUME_ROLE_ARN",
            "arn:aws:iam::111122223333:role/golden-ami-pipeline-automation",
        ),
        ("BAKE_SUBNET_ID", "subnet-0a1b2c3d4e5f60718"),
        (
            "BAKE_INSTANCE_PROFILE_NAME",
            "golden-ami-pipeline-bake-instance",
        ),
        ("BAKE_SECURITY_GROUP_ID", "sg-0f1e2d3c4b5a69788"),
        ("UPDATE_REPORT_DOCUMENT_NAME", UPDATE_REPORT_DOCUMENT),
        ("BASELINE_APPLY_DOCUMENT_NAME", BASELINE_APPLY_DOCUMENT),
        ("BASELINE_CHECK_DOCUMENT_NAME", BASELINE_CHECK_DOCUMENT),
        ("TEST_DOCUMENT_NAME", TEST_DOCUMENT),
        ("REPORT_BUCKET_NAME", REPORT_BUCKET),
        ("BAKE_TIMEOUT_MINUTES", "120"),
        ("COPY_TIMEOUT_MINUTES", "90"),
        ("IMAGE_NAME_PREFIX", "golden-ami"),
        ("NOTIFICATION_TOPIC_ARN", TOPIC_ARN),
        ("PIPELINE_NAME", "golden-ami-pipeline"),
        // Waits for asynchronous writes: short, and reads again without pausing.
        ("POINTER_WAIT_SECONDS", "1"),
        ("POINTER_POLL_MILLISECONDS", "0"),
    ];
    match Config::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }) {
        Ok(config) => config,
        Err(error) => panic!("the test configuration is invalid: {error}"),
    }
}

pub fn context() -> ExecutionContext {
    ExecutionContext {
        execution_id: EXECUTION_ID.to_string(),
        started_at: "2026-12-01T08:00:00Z".to_string(),
    }
}

/// Deps with the test configuration, the fixed clock and the given clients.
pub fn deps(clients: Clients) -> Deps {
    Deps {
        config: config(),
        clients,
        clock: fixed_now,
    }
}

/// Parse an events/ file (read with include_str!) into the handler's input type.
pub fn event<T: DeserializeOwned>(json: &str) -> T {
    match serde_json::from_str(json) {
        Ok(value) => value,
        Err(error) => panic!("the event file does not parse as the handler's input: {error}"),
    }
}

/// GetParameter of a family's durations (pacing.rs) answering `value`, or, with None, that
/// the family has none yet (its first run).
pub fn durations(value: Option<&'static str>) -> Rule {
    let rule = aws_smithy_mocks::mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name().is_some_and(|n| n.starts_with(DURATIONS_PATH)));
    match value {
        Some(value) => rule.then_output(move || {
            aws_sdk_ssm::operation::get_parameter::GetParameterOutput::builder()
                .parameter(
                    aws_sdk_ssm::types::Parameter::builder()
                        .value(value)
                        .version(3)
                        .build(),
                )
                .build()
        }),
        None => rule.then_error(|| {
            aws_sdk_ssm::operation::get_parameter::GetParameterError::ParameterNotFound(
                aws_sdk_ssm::types::error::ParameterNotFound::builder().build(),
            )
        }),
    }
}

/// A service error with the given code, as the SDK builds it from a response.
pub fn service_error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

macro_rules! client_fn {
    ($name:ident, $krate:ident) => {
        #[doc = concat!("A `", stringify!($krate), "` client answering from `rules` (any order); retries off so call counts are exact.")]
        pub fn $name(rules: &[&Rule]) -> $krate::Client {
            aws_smithy_mocks::mock_client!(
                $krate,
                RuleMode::MatchAny,
                rules.iter().copied(),
                |config| config
                    .retry_config(RetryConfig::disabled())
                    .region(aws_config::Region::new(REGION))
            )
        }
    };
}

client_fn!(ec2, aws_sdk_ec2);
client_fn!(ssm, aws_sdk_ssm);
client_fn!(kms, aws_sdk_kms);
client_fn!(sns, aws_sdk_sns);
client_fn!(organizations, aws_sdk_organizations);
client_fn!(ram, aws_sdk_ram);

/// A builder of `Clients`: every client answers from its own rules; a call with no matching
/// rule fails the test.
#[derive(Default)]
pub struct MockClients<'a> {
    pub ec2: Vec<&'a Rule>,
    pub ssm: Vec<&'a Rule>,
    pub kms: Vec<&'a Rule>,
    pub sns: Vec<&'a Rule>,
    pub organizations: Vec<&'a Rule>,
    pub ram: Vec<&'a Rule>,
}

impl MockClients<'_> {
    pub fn build(&self) -> Clients {
        Clients::fixed(
            ec2(&self.ec2),
            ssm(&self.ssm),
            kms(&self.kms),
            sns(&self.sns),
            organizations(&self.organizations),
            ram(&self.ram),
        )
    }

    pub fn deps(&self) -> Deps {
        deps(self.build())
    }
}

/// A bare HTTP response with `status` (e.g. 503 to exercise the retryable path).
pub fn http_status(status: u16) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    match aws_smithy_runtime_api::http::StatusCode::try_from(status) {
        Ok(code) => aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
            code,
            aws_smithy_types::body::SdkBody::from("{}"),
        ),
        Err(error) => panic!("{status} is not an HTTP status: {error}"),
    }
}

/// DescribeImageAttribute(launchPermission) of `image_id` answering `permissions`.
pub fn launch_permissions(
    image_id: &'static str,
    permissions: Vec<aws_sdk_ec2::types::LaunchPermission>,
) -> Rule {
    use aws_sdk_ec2::Client;
    use aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput;
    use aws_sdk_ec2::types::ImageAttributeName;
    mock!(Client::describe_image_attribute)
        .match_requests(move |request| {
            request.image_id() == Some(image_id)
                && request.attribute() == Some(&ImageAttributeName::LaunchPermission)
        })
        .then_output(move || {
            DescribeImageAttributeOutput::builder()
                .image_id(image_id)
                .set_launch_permissions(Some(permissions.clone()))
                .build()
        })
}

/// The launch permission of the test organization.
pub fn organization_launch_permission() -> aws_sdk_ec2::types::LaunchPermission {
    aws_sdk_ec2::types::LaunchPermission::builder()
        .organization_arn(ORGANIZATION_ARN)
        .build()
}

/// The one family the events/ files are written for: "default", in the home region only.
pub fn family() -> crate::FamilyTarget {
    crate::FamilyTarget {
        name: crate::targets::DEFAULT_FAMILY.to_string(),
        pointer: POINTER.to_string(),
        architecture: crate::targets::Architecture::X86_64,
        instance_type: "t3.small".to_string(),
        subnet_id: "subnet-0a1b2c3d4e5f60718".to_string(),
        instance_profile: "golden-ami-pipeline-bake-instance".to_string(),
        home_region: REGION.to_string(),
        regions: vec![crate::RegionSpec {
            region: REGION.to_string(),
            kms_key_arn: GOLDEN_KEY_ARN.to_string(),
        }],
        base_image: None,
        approval: None,
        encryption: crate::targets::Encryption::Copy,
    }
}
