//! StartBake: start the bake Automation document on the current golden AMI.
//!
//! The ClientToken derives from the execution and the step, so a retried invocation (say the
//! Lambda timed out after SSM accepted the call) gets the same automation back instead of a
//! second bake.
//!
//! In the `copy` encryption mode the bake makes an intermediate image that CopyImage
//! re-encrypts. In the `direct` mode it launches its instance with every EBS volume of the source
//! under the home region's golden key and names and types its image as the golden image: the
//! bake's image is the home region's golden image (targets::Encryption).

use std::collections::HashMap;

use aws_sdk_ec2::types::ImageState;
use golden_ami_core::automation::{parameters, run_parameters, start_automation};
use golden_ami_core::image::describe_image;
use golden_ami_core::naming::{self, format_timestamp};
use golden_ami_core::pacing;
use golden_ami_core::{
    BakeStarted, Config, CurrentImage, Deps, Encryption, ExecutionContext, FamilyTarget, StepError,
    StepInput,
};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<BakeStarted, StepError> {
    let family = input.state.require_family()?;
    let current = input.state.require_current()?;
    let config = &deps.config;
    let (target_ami_name, launch) = match family.encryption {
        Encryption::Copy => (
            naming::intermediate_image_name(
                &config.image_name_prefix,
                &family.name,
                &input.context,
                &current.ami_id,
            )?,
            None,
        ),
        Encryption::Direct => (
            naming::golden_image_name(&config.image_name_prefix, &family.name, &input.context)?,
            Some(direct_block_device_mappings(family, current)?),
        ),
    };
    let mut parameters = bake_parameters(
        config,
        &input.context,
        family,
        &current.ami_id,
        &target_ami_name,
    );
    if let Some(mappings) = launch {
        parameters.insert("BlockDeviceMappings".to_string(), mappings);
    }
    // ReadCurrentAmi checked the source; it may have been disabled or deregistered since, and
    // EC2 would then refuse the launch deep inside the automation.
    check_source(deps, current).await?;
    let automation_execution_id = start_automation(
        deps.clients.ssm(),
        &config.bake_document_name,
        "BAKE_DOCUMENT_NAME",
        parameters,
        client_token(&input.context, family),
    )
    .await?;
    tracing::info!(%automation_execution_id, %target_ami_name, source = %current.ami_id, encryption = family.encryption.as_str(), "bake started");
    let history = pacing::family_history(deps, &family.name).await;
    let pace = pacing::pace(&history.bake, config.bake_poll_seconds, config.bake_timeout);
    Ok(BakeStarted {
        automation_execution_id,
        document_name: config.bake_document_name.clone(),
        source_ami_id: current.ami_id.clone(),
        target_ami_name,
        deadline: format_timestamp(deps.now() + config.bake_timeout),
        first_wait_seconds: pace.first_wait_seconds,
        poll_seconds: pace.poll_seconds,
    })
}

/// The source image still exists and is available (a disabled image cannot be launched:
/// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/disable-an-ami.html).
async fn check_source(deps: &Deps, current: &CurrentImage) -> Result<(), StepError> {
    let image = describe_image(deps.clients.ec2(), &current.ami_id, true).await?;
    match source_refusal(image.as_ref().and_then(|image| image.state())) {
        None => Ok(()),
        Some(reason) => Err(StepError::SourceImageNotFound {
            image_id: current.ami_id.clone(),
            parameter: current
                .base_image
                .clone()
                .unwrap_or_else(|| current.parameter_name.clone()),
            reason,
        }),
    }
}

/// Why an image in `state` (None: it does not exist) cannot be baked from, if it cannot.
pub fn source_refusal(state: Option<&ImageState>) -> Option<String> {
    match state {
        Some(ImageState::Available) => None,
        None => Some(
            "it no longer exists (deregistered after the run read it): point the pointer at an available golden image (golden-ami rollback or pin) and re-run".into(),
        ),
        Some(ImageState::Disabled) => Some(
            "it was disabled after the run read it, and EC2 launches no disabled image: enable it (aws ec2 enable-image) or point the pointer at another golden image, then re-run".into(),
        ),
        Some(state) => Some(format!(
            "it is {}, not available: wait until it is, or point the pointer at another golden image, then re-run",
            state.as_str()
        )),
    }
}

/// The bake document's BlockDeviceMappings (a MapList: one JSON object per value) for a direct
/// bake: every EBS device of the source, encrypted under the home region's golden key, deleted
/// with the instance.
pub fn direct_block_device_mappings(
    family: &FamilyTarget,
    current: &CurrentImage,
) -> Result<Vec<String>, StepError> {
    let key = family
        .region(&family.home_region)
        .map(|home| home.kms_key_arn.as_str())
        .ok_or_else(|| {
            StepError::invalid_input(format!(
                "family {} has no golden key for its home region {}: PlanRun puts the home region first in state.family.regions",
                family.name, family.home_region
            ))
        })?;
    if current.ebs_devices.is_empty() {
        return Err(StepError::invalid_input(format!(
            "state.current.ebsDevices is empty: a direct bake puts each EBS volume of the source {} under the golden key and must know them (ReadCurrentAmi lists them)",
            current.ami_id
        )));
    }
    Ok(current
        .ebs_devices
        .iter()
        .map(|device| {
            serde_json::json!({
                "DeviceName": device,
                "Ebs": {"Encrypted": true, "KmsKeyId": key, "DeleteOnTermination": true},
            })
            .to_string()
        })
        .collect())
}

/// The same token on every retry of this step of this execution for this family.
pub fn client_token(context: &ExecutionContext, family: &FamilyTarget) -> String {
    naming::target_token(&context.execution_id, "StartBake", &family.name, None)
}

/// The bake document's parameters (infra/bake-document.yaml).
pub fn bake_parameters(
    config: &Config,
    context: &ExecutionContext,
    family: &FamilyTarget,
    source_ami_id: &str,
    target_ami_name: &str,
) -> HashMap<String, Vec<String>> {
    parameters(
        [
            ("SourceAmiId", source_ami_id),
            ("InstanceType", family.instance_type.as_str()),
            ("SubnetId", family.subnet_id.as_str()),
            ("SecurityGroupId", config.bake_security_group_id.as_str()),
            ("IamInstanceProfileName", family.instance_profile.as_str()),
            ("TargetAmiName", target_ami_name),
            ("ImageType", family.encryption.baked_image_type()),
            (
                "UpdateReportDocumentName",
                config.update_report_document_name.as_str(),
            ),
            (
                "BaselineApplyDocumentName",
                config.baseline_apply_document_name.as_str(),
            ),
            ("ReportBucketName", config.report_bucket_name.as_str()),
            (
                "RebuildWhenUpToDate",
                if config.rebuild_when_up_to_date {
                    "true"
                } else {
                    "false"
                },
            ),
            (
                "AutomationAssumeRole",
                config.automation_assume_role_arn.as_str(),
            ),
        ]
        .into_iter()
        .chain(run_parameters(config, context, family)),
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::start_automation_execution::{
        StartAutomationExecutionError, StartAutomationExecutionOutput,
    };
    use aws_sdk_ssm::types::error::{
        AutomationDefinitionNotFoundException, AutomationExecutionLimitExceededException,
    };
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    /// DescribeImages of the source (the events' current image), in `state` (None: gone).
    fn source(state: Option<ImageState>) -> Rule {
        use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
        use aws_sdk_ec2::types::Image;
        let rule = mock!(aws_sdk_ec2::Client::describe_images).match_requests(|request| {
            request.image_ids().len() == 1 && request.include_disabled() == Some(true)
        });
        match state {
            Some(state) => rule.then_output(move || {
                DescribeImagesOutput::builder()
                    .images(
                        Image::builder()
                            .image_id("ami-0123456789abcdef0")
                            .state(state.clone())
                            .build(),
                    )
                    .build()
            }),
            None => rule.then_error(|| {
                DescribeImagesError::generic(testing::service_error(
                    "InvalidAMIID.NotFound",
                    "The image id '[ami-0123456789abcdef0]' does not exist",
                ))
            }),
        }
    }

    #[tokio::test]
    async fn a_source_disabled_or_deregistered_since_it_was_read_is_not_baked() {
        for (state, words) in [
            (Some(ImageState::Disabled), "disabled after the run read it"),
            (None, "no longer exists"),
            (Some(ImageState::Pending), "is pending"),
        ] {
            let start = mock!(aws_sdk_ssm::Client::start_automation_execution).then_output(|| {
                aws_sdk_ssm::operation::start_automation_execution::StartAutomationExecutionOutput::builder()
                    .automation_execution_id("never")
                    .build()
            });
            let deps = MockClients {
                ec2: vec![&source(state)],
                ssm: vec![&start, &testing::durations(None)],
                ..Default::default()
            }
            .deps();
            let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
            assert_eq!(error.error_type(), "SourceImageNotFound");
            assert!(error.to_string().contains(words), "{error}");
            assert_eq!(start.num_calls(), 0);
        }
    }

    /// SSM's answer to StartAutomationExecution.
    fn started() -> StartAutomationExecutionOutput {
        StartAutomationExecutionOutput::builder()
            .automation_execution_id("4c5d6e7f-1111-4222-8333-944455556666")
            .build()
    }

    const EVENT: &str = include_str!("../../../events/start-bake/ok.json");
    const NO_CURRENT: &str = include_str!("../../../events/start-bake/missing-current.json");

    #[tokio::test]
    async fn starts_the_document_with_every_parameter_and_a_stable_token() {
        let input: StepInput = testing::event(EVENT);
        let family = testing::family();
        let token = client_token(&input.context, &family);
        let expected_name = naming::intermediate_image_name(
            "golden-ami",
            &family.name,
            &input.context,
            "ami-0123456789abcdef0",
        )
        .unwrap();
        let expected = bake_parameters(
            &testing::config(),
            &input.context,
            &family,
            "ami-0123456789abcdef0",
            &expected_name,
        );
        let start = mock!(Ssm::start_automation_execution)
            .match_requests(move |request| {
                request.document_name() == Some(testing::BAKE_DOCUMENT)
                    && request.client_token() == Some(token.as_str())
                    && request.parameters() == Some(&expected)
            })
            .then_output(started);
        let history = testing::durations(None);
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start, &history],
            ..Default::default()
        }
        .deps();
        let bake = handler(&deps, input).await.unwrap();
        assert_eq!((start.num_calls(), history.num_calls()), (1, 1));
        assert_eq!(
            bake.automation_execution_id,
            "4c5d6e7f-1111-4222-8333-944455556666"
        );
        assert_eq!(bake.source_ami_id, "ami-0123456789abcdef0");
        assert_eq!(bake.target_ami_name, expected_name);
        assert!(
            bake.target_ami_name
                .starts_with("golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-")
        );
        // Fixed clock 08:05 + 120 minutes.
        assert_eq!(bake.deadline, "2026-12-01T10:05:00Z");
        // The family's first run: the stack's interval from the start.
        assert_eq!((bake.first_wait_seconds, bake.poll_seconds), (120, 120));
    }

    #[tokio::test]
    async fn the_family_s_last_bakes_size_the_waits() {
        let start = mock!(Ssm::start_automation_execution).then_output(started);
        let history = testing::durations(Some(
            r#"{"bake": [2300, 2400, 2500], "copy": [900], "test": [600]}"#,
        ));
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start, &history],
            ..Default::default()
        }
        .deps();
        let bake = handler(&deps, testing::event(EVENT)).await.unwrap();
        // 85% of the 2400 s median, then every 60 s (2400 / 40).
        assert_eq!((bake.first_wait_seconds, bake.poll_seconds), (2040, 60));

        // A history nobody can read is no history: the run goes on at the stack's interval.
        let broken = testing::durations(Some("not json"));
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start, &broken],
            ..Default::default()
        }
        .deps();
        let bake = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!((bake.first_wait_seconds, bake.poll_seconds), (120, 120));
    }

    #[test]
    fn parameters_name_every_input_of_the_document() {
        let parameters = bake_parameters(
            &testing::config(),
            &testing::context(),
            &testing::family(),
            "ami-12345678",
            "golden-ami-intermediate-x",
        );
        let document = include_str!("../../../infra/bake-document.yaml");
        for (name, values) in &parameters {
            assert!(
                document.contains(&format!("\n  {name}:\n")),
                "{name} is not a parameter of the bake document"
            );
            assert_eq!(values.len(), 1);
        }
        assert_eq!(parameters["SubnetId"], ["subnet-0a1b2c3d4e5f60718"]);
        assert_eq!(parameters["SecurityGroupId"], ["sg-0f1e2d3c4b5a69788"]);
        assert_eq!(parameters["RebuildWhenUpToDate"], ["false"]);
        // The seed's copy mode: an intermediate image, volumes as the source has them.
        assert_eq!(parameters["ImageType"], ["golden-ami-intermediate"]);
        assert!(!parameters.contains_key("BlockDeviceMappings"));
        // What the document tags everything it creates with: cleanup proves ownership by them.
        assert_eq!(parameters["StackName"], ["golden-ami-pipeline"]);
        assert_eq!(parameters["RunId"], [testing::context().execution_id]);
        assert_eq!(parameters["Family"], ["default"]);
        assert_eq!(
            parameters["ReportBucketName"],
            ["golden-ami-reports-111122223333"]
        );
        assert_eq!(
            parameters["IamInstanceProfileName"],
            ["golden-ami-pipeline-bake-instance"]
        );
    }

    #[test]
    fn the_token_is_a_stable_uuid_per_execution() {
        let a: StepInput = testing::event(EVENT);
        let mut b = a.clone();
        b.context.execution_id.push_str("-retry-run");
        let family = testing::family();
        let mut other = testing::family();
        other.name = "arm64-minimal".into();
        assert_eq!(
            client_token(&a.context, &family),
            client_token(&a.context, &family)
        );
        assert_ne!(
            client_token(&a.context, &family),
            client_token(&b.context, &family)
        );
        // Two families of one run start two bakes, not one.
        assert_ne!(
            client_token(&a.context, &family),
            client_token(&a.context, &other)
        );
        assert_eq!(client_token(&a.context, &family).len(), 36);
    }

    #[tokio::test]
    async fn a_family_bakes_on_its_own_instance_type_and_names_its_image() {
        let mut input: StepInput = testing::event(EVENT);
        let mut family = testing::family();
        family.name = "arm64-minimal".into();
        family.instance_type = "t4g.small".into();
        family.subnet_id = "subnet-0f0f0f0f0f0f0f0f0".into();
        input.state.family = Some(family);
        let start = mock!(Ssm::start_automation_execution)
            .match_requests(|request| {
                let parameters = request.parameters().cloned().unwrap_or_default();
                parameters["InstanceType"] == ["t4g.small"]
                    && parameters["SubnetId"] == ["subnet-0f0f0f0f0f0f0f0f0"]
            })
            .then_output(started);
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start, &testing::durations(None)],
            ..Default::default()
        }
        .deps();
        let bake = handler(&deps, input).await.unwrap();
        assert_eq!(start.num_calls(), 1);
        assert!(
            bake.target_ami_name
                .starts_with("golden-ami-arm64-minimal-intermediate-2026-12-01-"),
            "{}",
            bake.target_ami_name
        );
    }

    #[tokio::test]
    async fn a_direct_bake_launches_every_volume_under_the_golden_key_and_names_the_golden_image() {
        let mut input: StepInput = testing::event(EVENT);
        let family = input.state.family.as_mut().unwrap();
        family.encryption = Encryption::Direct;
        let current = input.state.current.as_mut().unwrap();
        current.ebs_devices = vec!["/dev/xvda".into(), "/dev/sdf".into()];
        let golden = naming::golden_image_name("golden-ami", "default", &input.context).unwrap();
        let expected_name = golden.clone();
        let start = mock!(Ssm::start_automation_execution)
            .match_requests(move |request| {
                let parameters = request.parameters().cloned().unwrap_or_default();
                parameters["TargetAmiName"] == [expected_name.as_str()]
                    && parameters["ImageType"] == ["golden-ami"]
            })
            .then_output(started);
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start, &testing::durations(None)],
            ..Default::default()
        }
        .deps();
        let bake = handler(&deps, input.clone()).await.unwrap();
        assert_eq!(start.num_calls(), 1);
        assert_eq!(bake.target_ami_name, golden);

        let mappings = direct_block_device_mappings(
            input.state.family.as_ref().unwrap(),
            input.state.current.as_ref().unwrap(),
        )
        .unwrap();
        let parsed: Vec<serde_json::Value> = mappings
            .iter()
            .map(|m| serde_json::from_str(m).unwrap())
            .collect();
        assert_eq!(
            parsed,
            [
                serde_json::json!({"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": true, "KmsKeyId": testing::GOLDEN_KEY_ARN, "DeleteOnTermination": true}}),
                serde_json::json!({"DeviceName": "/dev/sdf", "Ebs": {"Encrypted": true, "KmsKeyId": testing::GOLDEN_KEY_ARN, "DeleteOnTermination": true}}),
            ]
        );
        let document = include_str!("../../../infra/bake-document.yaml");
        assert!(document.contains("\n  BlockDeviceMappings:\n    type: MapList\n"));

        // Without the source's devices nothing is started: a volume left out would keep the
        // source's key.
        input.state.current.as_mut().unwrap().ebs_devices.clear();
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(
            error
                .to_string()
                .contains("state.current.ebsDevices is empty"),
            "{error}"
        );
        assert_eq!(start.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_document_is_a_config_error() {
        let start = mock!(Ssm::start_automation_execution).then_error(|| {
            StartAutomationExecutionError::AutomationDefinitionNotFoundException(
                AutomationDefinitionNotFoundException::builder().build(),
            )
        });
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        assert!(error.to_string().contains("BAKE_DOCUMENT_NAME"));
    }

    #[tokio::test]
    async fn the_automation_quota_is_retryable() {
        let start = mock!(Ssm::start_automation_execution).then_error(|| {
            StartAutomationExecutionError::AutomationExecutionLimitExceededException(
                AutomationExecutionLimitExceededException::builder().build(),
            )
        });
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[tokio::test]
    async fn without_the_current_image_nothing_is_started() {
        let start = mock!(Ssm::start_automation_execution)
            .then_output(|| StartAutomationExecutionOutput::builder().build());
        let deps = MockClients {
            ec2: vec![&source(Some(ImageState::Available))],
            ssm: vec![&start],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(NO_CURRENT))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("ReadCurrentAmi"));
        assert_eq!(start.num_calls(), 0);
    }
}
