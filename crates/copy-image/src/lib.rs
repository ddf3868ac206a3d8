//! CopyImage: re-encrypt the intermediate image under the organization's golden KMS key.
//!
//! The bake produces an image under the account's EBS key, which cannot be shared; the copy
//! under the dedicated customer-managed key is the golden image. The key is checked first, so a
//! disabled or wrong key fails here with what to do instead of as a "failed" copy an hour later.
//! The copy carries a ClientToken derived from the execution, so a retried invocation returns the
//! same image instead of making a second one.
//!
//! A family in the `direct` encryption mode (targets::Encryption) has no intermediate image: its
//! bake launched under the home region's golden key and named its image as the golden image. In
//! the home region this step makes no copy: it checks that the bake's image is that image, under
//! that key, and gives it and its snapshots the golden tags. The other regions copy from it.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, KeyState, KeyUsageType};
use golden_ami_core::image::describe_image;
use golden_ami_core::naming::{TAG_EXECUTION, TAG_PATCH_DATE, TAG_STACK};
use golden_ami_core::naming::{
    format_timestamp, golden_image_name, golden_image_tags, target_token,
};
use golden_ami_core::pacing;
use golden_ami_core::{
    CopyStarted, Deps, Encryption, ExecutionContext, RegionClients, StepError, StepInput,
    UpdateSummary, classify_sdk_error, error_code,
};
use time::OffsetDateTime;

/// The step name in idempotency tokens: one token per execution for this step.
const TOKEN_STEP: &str = "CopyImage";

/// EC2 limits an image description to 255 characters.
const MAX_DESCRIPTION: usize = 255;

pub async fn handler(deps: &Deps, input: StepInput) -> Result<CopyStarted, StepError> {
    let config = &deps.config;
    let family = input.state.require_family()?;
    let target = input.state.require_target()?;
    let source_ami_id = &input.state.require_current()?.ami_id;
    let intermediate_id = input.state.require_baked_ami_id()?;
    let context = &input.context;
    let key_arn = &target.kms_key_arn;
    let region = deps.clients.region(&target.region);

    check_golden_key(key_arn, describe_key(region.kms(), key_arn).await?.as_ref())?;

    let name = golden_image_name(&config.image_name_prefix, &family.name, context)?;
    let deadline = deadline(deps.now(), config.copy_timeout)?;
    let updates = input
        .state
        .bake_status
        .as_ref()
        .and_then(|status| status.updates.as_ref());
    let tags = golden_tags(
        &name,
        &config.pipeline_name,
        context,
        &family.name,
        source_ami_id,
        updates,
    )?;
    if family.encryption == Encryption::Direct && target.region == family.home_region {
        adopt_baked_image(
            &region,
            &config.pipeline_name,
            intermediate_id,
            &name,
            key_arn,
            context,
            tags,
        )
        .await?;
        tracing::info!(golden_ami_id = %intermediate_id, %name, region = %target.region, "the direct bake is the golden image");
        return Ok(CopyStarted {
            golden_ami_id: intermediate_id.to_string(),
            golden_ami_name: name,
            kms_key_arn: key_arn.clone(),
            deadline,
            // No copy: nothing to time, nothing to wait for.
            started_at: None,
            first_wait_seconds: 0,
            poll_seconds: config.copy_poll_seconds,
        });
    }
    let output = region
        .ec2()
        .copy_image()
        .source_image_id(intermediate_id)
        // The bake happens in the family's home region; every region copies from there.
        .source_region(&family.home_region)
        .name(&name)
        .description(golden_image_description(
            source_ami_id,
            intermediate_id,
            context,
        ))
        .encrypted(true)
        .kms_key_id(key_arn)
        .client_token(target_token(
            &context.execution_id,
            TOKEN_STEP,
            &family.name,
            Some(&target.region),
        ))
        // The intermediate image's tags say "intermediate": the golden image gets its own.
        .copy_image_tags(false)
        // Tagging on create (one call, no untagged image if this function dies in between);
        // the role needs ec2:CreateTags with ec2:CreateAction = CopyImage for it.
        .set_tag_specifications(Some(tag_specifications(tags)))
        .send()
        .await
        .map_err(|error| {
            match error_code(&error).and_then(|code| {
                copy_error(
                    code,
                    error.message().unwrap_or_default(),
                    intermediate_id,
                    key_arn,
                )
            }) {
                Some(mapped) => mapped,
                None => classify_sdk_error("ec2:CopyImage", error),
            }
        })?;
    let golden_ami_id = output
        .image_id()
        .ok_or_else(|| StepError::AwsError {
            operation: "ec2:CopyImage".into(),
            code: "EmptyResponse".into(),
            message: format!("no image id in the response for the copy of {intermediate_id}"),
        })?
        .to_string();
    tracing::info!(%golden_ami_id, %intermediate_id, %name, region = %target.region, "copy started");
    // The history lives with the stack, in its own region.
    let history = pacing::family_history(deps, &family.name).await;
    let pace = pacing::pace(&history.copy, config.copy_poll_seconds, config.copy_timeout);
    Ok(CopyStarted {
        golden_ami_id,
        golden_ami_name: name,
        kms_key_arn: key_arn.clone(),
        deadline,
        started_at: Some(format_timestamp(deps.now())),
        first_wait_seconds: pace.first_wait_seconds,
        poll_seconds: pace.poll_seconds,
    })
}

async fn describe_key(
    kms: &aws_sdk_kms::Client,
    key_arn: &str,
) -> Result<Option<KeyMetadata>, StepError> {
    let output = kms
        .describe_key()
        .key_id(key_arn)
        .send()
        .await
        .map_err(|error| {
            let problem = match error.as_service_error() {
                Some(service) if service.is_not_found_exception() => {
                    Some("it does not exist in this account and region")
                }
                Some(service) if service.is_invalid_arn_exception() => Some("it is not a valid key ARN"),
                _ if error_code(&error) == Some("AccessDeniedException") => Some(
                    "this function may not describe it (allow kms:DescribeKey to the CopyImage function's role in the key policy)",
                ),
                _ => None,
            };
            match problem {
                Some(problem) => key_unusable(key_arn, problem),
                None => classify_sdk_error("kms:DescribeKey", error),
            }
        })?;
    Ok(output.key_metadata().cloned())
}

fn key_unusable(key_arn: &str, problem: &str) -> StepError {
    StepError::KmsKeyUnusable(format!(
        "the golden key {key_arn} (the region's kmsKeyArn in the targets) cannot encrypt the golden image: {problem}"
    ))
}

/// The golden key must be an enabled, symmetric, customer-managed encryption key: only such a
/// key can be shared with the organization (AWS-managed keys such as aws/ebs cannot).
pub fn check_golden_key(key_arn: &str, metadata: Option<&KeyMetadata>) -> Result<(), StepError> {
    let Some(metadata) = metadata else {
        return Err(key_unusable(key_arn, "KMS returned no key metadata"));
    };
    let mut problems = Vec::new();
    match metadata.key_state() {
        Some(KeyState::Enabled) => {}
        Some(state @ (KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)) => {
            problems.push(format!(
                "it is {} (cancel the deletion: aws kms cancel-key-deletion, then enable it)",
                state.as_str()
            ));
        }
        Some(KeyState::Disabled) => {
            problems.push("it is Disabled (enable it: aws kms enable-key)".to_string());
        }
        Some(state) => problems.push(format!("it is {}, not Enabled", state.as_str())),
        None => problems.push("KMS reported no key state".to_string()),
    }
    if metadata.key_manager() != Some(&KeyManagerType::Customer) {
        problems.push(
            "it is not a customer-managed key (AWS-managed keys such as aws/ebs cannot be shared with the organization: use the pipeline's dedicated key)"
                .to_string(),
        );
    }
    if metadata.key_usage() != Some(&KeyUsageType::EncryptDecrypt) {
        problems.push(format!(
            "its key usage is {}, not ENCRYPT_DECRYPT",
            metadata
                .key_usage()
                .map_or("unknown", |usage| usage.as_str())
        ));
    }
    if metadata.key_spec() != Some(&KeySpec::SymmetricDefault) {
        problems.push(format!(
            "its key spec is {}, not SYMMETRIC_DEFAULT (EBS encrypts with symmetric keys only)",
            metadata.key_spec().map_or("unknown", |spec| spec.as_str())
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(key_unusable(key_arn, &problems.join("; ")))
    }
}

/// The EC2 error codes of CopyImage that this step understands; `None` for the rest.
pub fn copy_error(
    code: &str,
    message: &str,
    intermediate_id: &str,
    key_arn: &str,
) -> Option<StepError> {
    let detail = format!("{code}: {message}");
    let mentions_kms = message.to_ascii_lowercase().contains("kms");
    match code {
        "InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable" | "InvalidAMIID.Malformed" => {
            Some(StepError::CopyFailed(format!(
                "the intermediate image {intermediate_id} is gone or not available ({detail}): re-run the pipeline to bake a new one"
            )))
        }
        _ if code.starts_with("InvalidKMSKey.") || code.starts_with("KMS.") => {
            Some(key_unusable(key_arn, &detail))
        }
        "InvalidParameterValue" | "InvalidParameter" | "InvalidParameterCombination"
            if mentions_kms =>
        {
            Some(key_unusable(key_arn, &detail))
        }
        "InvalidParameterValue" | "InvalidParameter" | "InvalidParameterCombination" => {
            Some(StepError::CopyFailed(format!(
                "EC2 refused the copy of {intermediate_id}: {detail}"
            )))
        }
        "ResourceLimitExceeded" | "AMIQuotaExceeded" => Some(StepError::CopyFailed(format!(
            "the image quota is reached ({detail}): raise the quota or deregister old images"
        ))),
        "IdempotentParameterMismatch" => Some(StepError::CopyFailed(format!(
            "this execution already copied with other parameters ({detail}): the configuration changed during the run; start a new execution"
        ))),
        _ => None,
    }
}

/// The golden image's description: what it is, where it comes from, which run made it.
pub fn golden_image_description(
    source_ami_id: &str,
    intermediate_id: &str,
    context: &ExecutionContext,
) -> String {
    let text = format!(
        "Golden AMI patched from {source_ami_id} (via {intermediate_id}) by execution {}",
        context.execution_name()
    );
    text.chars().take(MAX_DESCRIPTION).collect()
}

/// The tags of the golden image and of its snapshots: the golden tags plus a Name.
pub fn golden_tags(
    name: &str,
    stack: &str,
    context: &ExecutionContext,
    family: &str,
    source_ami_id: &str,
    updates: Option<&UpdateSummary>,
) -> Result<Vec<Tag>, StepError> {
    Ok(std::iter::once(("Name", name.to_string()))
        .chain(golden_image_tags(
            stack,
            context,
            family,
            source_ami_id,
            updates,
        )?)
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect())
}

/// The same tags on the new image and on its snapshots, as CopyImage's TagSpecifications.
pub fn tag_specifications(tags: Vec<Tag>) -> Vec<TagSpecification> {
    [ResourceType::Image, ResourceType::Snapshot]
        .into_iter()
        .map(|resource| {
            TagSpecification::builder()
                .resource_type(resource)
                .set_tags(Some(tags.clone()))
                .build()
        })
        .collect()
}

/// A direct bake's image becomes the home region's golden image: it must be the image the bake
/// was asked for (the golden name) with every snapshot under the golden key, or nothing is
/// tagged (ShareImage shares only golden-tagged images), and it must carry this stack's and this
/// run's tags (set by the bake in CreateImage). Tagging again on a retry is skipped: the role
/// may tag only images whose golden tags are not written yet (no patch date).
async fn adopt_baked_image(
    region: &RegionClients,
    stack: &str,
    baked: &str,
    name: &str,
    key_arn: &str,
    context: &ExecutionContext,
    tags: Vec<Tag>,
) -> Result<(), StepError> {
    let image = describe_image(region.ec2(), baked, false)
        .await?
        .ok_or_else(|| {
            StepError::CopyFailed(format!(
                "the direct bake's image {baked} is gone: re-run the pipeline to bake a new one"
            ))
        })?;
    // DescribeImages does not return the key of an image's volumes (KmsKeyId in a block device
    // mapping is a RunInstances input: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html);
    // DescribeSnapshots does.
    let snapshot_ids: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|mapping| mapping.ebs()?.snapshot_id().map(str::to_string))
        .collect();
    let snapshots = if snapshot_ids.is_empty() {
        Vec::new()
    } else {
        region
            .ec2()
            .describe_snapshots()
            .set_snapshot_ids(Some(snapshot_ids))
            .send()
            .await
            .map_err(|error| classify_sdk_error("ec2:DescribeSnapshots", error))?
            .snapshots()
            .to_vec()
    };
    check_direct_bake(&image, &snapshots, baked, name, key_arn)?;
    let tagged = |key: &str, value: &str| {
        image
            .tags()
            .iter()
            .any(|tag| tag.key() == Some(key) && tag.value() == Some(value))
    };
    // The bake document tags its image with the stack and the run in CreateImage itself: an
    // image without them was not made by this run's bake, whatever its name says.
    if !tagged(TAG_EXECUTION, &context.execution_id) || !tagged(TAG_STACK, stack) {
        return Err(StepError::CopyFailed(format!(
            "the direct bake's image {baked} does not carry this run's tags ({TAG_STACK}={stack}, {TAG_EXECUTION}={}): it was not made by this run's bake and is never made golden; re-run the pipeline",
            context.execution_id
        )));
    }
    // The golden tags are written once (the role may tag only an image without a patch date).
    if image
        .tags()
        .iter()
        .any(|tag| tag.key() == Some(TAG_PATCH_DATE))
    {
        return Ok(());
    }
    let snapshots = image
        .block_device_mappings()
        .iter()
        .filter_map(|mapping| mapping.ebs()?.snapshot_id().map(str::to_string));
    region
        .ec2()
        .create_tags()
        .set_resources(Some(
            std::iter::once(baked.to_string())
                .chain(snapshots)
                .collect(),
        ))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:CreateTags", error))?;
    Ok(())
}

/// The bake's image is the golden image only if it carries the golden name (a bake of the copy
/// mode names an intermediate image) and every EBS snapshot (as DescribeSnapshots reports it in
/// `snapshots`) is encrypted under the golden key.
pub fn check_direct_bake(
    image: &aws_sdk_ec2::types::Image,
    snapshots: &[aws_sdk_ec2::types::Snapshot],
    baked: &str,
    name: &str,
    key_arn: &str,
) -> Result<(), StepError> {
    if image.name() != Some(name) {
        return Err(StepError::CopyFailed(format!(
            "the bake's image {baked} is named {:?}, not {name}: it was not baked in the direct encryption mode (was the family's encryption changed during the run?); re-run the pipeline",
            image.name().unwrap_or_default()
        )));
    }
    let wrong: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|mapping| {
            let snapshot_id = mapping.ebs()?.snapshot_id().unwrap_or("no snapshot");
            let snapshot = snapshots
                .iter()
                .find(|snapshot| snapshot.snapshot_id() == Some(snapshot_id));
            let under = match snapshot.map(|s| (s.encrypted(), s.kms_key_id())) {
                Some((Some(true), Some(key))) if key == key_arn => return None,
                Some((Some(true), Some(key))) => format!("under {key}"),
                Some(_) => "unencrypted".to_string(),
                None => "not found by DescribeSnapshots".to_string(),
            };
            Some(format!(
                "{} ({snapshot_id}) is {under}",
                mapping.device_name().unwrap_or("a device"),
            ))
        })
        .collect();
    if image.block_device_mappings().is_empty() || !wrong.is_empty() {
        return Err(StepError::CopyFailed(format!(
            "the direct bake's image {baked} is not under the golden key {key_arn}: {}; the bake launches its instance with every EBS volume under that key (the bake document's BlockDeviceMappings): check that the automation role may use the key through EC2",
            if wrong.is_empty() {
                "it has no EBS snapshot".to_string()
            } else {
                wrong.join(", ")
            }
        )));
    }
    Ok(())
}

/// When CheckCopy gives up on the copy.
pub fn deadline(now: OffsetDateTime, timeout: std::time::Duration) -> Result<String, StepError> {
    time::Duration::try_from(timeout)
        .ok()
        .and_then(|timeout| now.checked_add(timeout))
        .map(format_timestamp)
        .ok_or_else(|| {
            StepError::ConfigError(format!(
                "COPY_TIMEOUT_MINUTES ({} s) puts the deadline out of range",
                timeout.as_secs()
            ))
        })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::copy_image::{CopyImageError, CopyImageOutput};
    use aws_sdk_kms::Client as Kms;
    use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
    use aws_sdk_kms::types::error::NotFoundException;
    use golden_ami_core::naming::TAG_SOURCE_AMI;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/copy-image/ok.json");
    const MISSING_BAKE_STATUS: &str =
        include_str!("../../../events/copy-image/missing-bake-status.json");
    const SOURCE: &str = "ami-0123456789abcdef0";
    const INTERMEDIATE: &str = "ami-0b1a2e3d4c5f60718";
    const GOLDEN: &str = "ami-0c0ffee0123456789";
    const GOLDEN_NAME: &str = "golden-ami-2026-12-01-0420140d";

    fn metadata(
        state: KeyState,
        manager: KeyManagerType,
        usage: KeyUsageType,
        spec: KeySpec,
    ) -> KeyMetadata {
        KeyMetadata::builder()
            .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
            .arn(testing::GOLDEN_KEY_ARN)
            .key_state(state)
            .key_manager(manager)
            .key_usage(usage)
            .key_spec(spec)
            .build()
            .unwrap()
    }

    fn usable() -> KeyMetadata {
        metadata(
            KeyState::Enabled,
            KeyManagerType::Customer,
            KeyUsageType::EncryptDecrypt,
            KeySpec::SymmetricDefault,
        )
    }

    fn key(metadata: KeyMetadata) -> Rule {
        mock!(Kms::describe_key)
            .match_requests(|request| request.key_id() == Some(testing::GOLDEN_KEY_ARN))
            .then_output(move || {
                DescribeKeyOutput::builder()
                    .key_metadata(metadata.clone())
                    .build()
            })
    }

    fn copy_ok() -> Rule {
        mock!(Ec2::copy_image).then_output(|| CopyImageOutput::builder().image_id(GOLDEN).build())
    }

    fn copy_fails(code: &'static str, message: &'static str) -> Rule {
        mock!(Ec2::copy_image)
            .then_error(move || CopyImageError::generic(testing::service_error(code, message)))
    }

    async fn run(kms: &[&Rule], ec2: &[&Rule], event: &str) -> Result<CopyStarted, StepError> {
        let history = testing::durations(None);
        let deps = MockClients {
            kms: kms.to_vec(),
            ec2: ec2.to_vec(),
            ssm: vec![&history],
            ..Default::default()
        }
        .deps();
        handler(&deps, testing::event(event)).await
    }

    #[tokio::test]
    async fn copies_the_intermediate_image_encrypted_under_the_golden_key() {
        let describe = key(usable());
        let token = target_token(
            testing::EXECUTION_ID,
            "CopyImage",
            "default",
            Some(testing::REGION),
        );
        let copy = mock!(Ec2::copy_image)
            .match_requests(move |request| {
                let tagged = |resource: ResourceType| {
                    request.tag_specifications().iter().any(|spec| {
                        spec.resource_type() == Some(&resource)
                            && spec.tags().iter().any(|tag| {
                                tag.key() == Some(TAG_SOURCE_AMI) && tag.value() == Some(SOURCE)
                            })
                            && spec.tags().iter().any(|tag| {
                                tag.key() == Some("Name") && tag.value() == Some(GOLDEN_NAME)
                            })
                            && spec.tags().iter().any(|tag| {
                                tag.key() == Some("golden-ami:family")
                                    && tag.value() == Some("default")
                            })
                            && spec.tags().iter().any(|tag| {
                                tag.key() == Some(TAG_STACK)
                                    && tag.value() == Some("golden-ami-pipeline")
                            })
                            && spec.tags().len() == 7
                    })
                };
                request.source_image_id() == Some(INTERMEDIATE)
                    && request.source_region() == Some(testing::REGION)
                    && request.encrypted() == Some(true)
                    && request.kms_key_id() == Some(testing::GOLDEN_KEY_ARN)
                    && request.client_token() == Some(token.as_str())
                    && request.name() == Some(GOLDEN_NAME)
                    && request.copy_image_tags() == Some(false)
                    && request.description().is_some_and(|text| {
                        text.contains(SOURCE) && text.contains("2026-12-01-monthly")
                    })
                    && tagged(ResourceType::Image)
                    && tagged(ResourceType::Snapshot)
            })
            .then_output(|| CopyImageOutput::builder().image_id(GOLDEN).build());
        let started = run(&[&describe], &[&copy], EVENT).await.unwrap();
        assert_eq!(
            started,
            CopyStarted {
                golden_ami_id: GOLDEN.into(),
                golden_ami_name: GOLDEN_NAME.into(),
                kms_key_arn: testing::GOLDEN_KEY_ARN.into(),
                // The fixed clock (08:05) plus COPY_TIMEOUT_MINUTES=90.
                deadline: "2026-12-01T09:35:00Z".into(),
                started_at: Some("2026-12-01T08:05:00Z".into()),
                // No history yet: the stack's interval from the start.
                first_wait_seconds: 60,
                poll_seconds: 60,
            }
        );
        assert_eq!((describe.num_calls(), copy.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_unusable_key_stops_before_the_copy() {
        let cases = [
            (
                metadata(
                    KeyState::Disabled,
                    KeyManagerType::Customer,
                    KeyUsageType::EncryptDecrypt,
                    KeySpec::SymmetricDefault,
                ),
                "enable-key",
            ),
            (
                metadata(
                    KeyState::PendingDeletion,
                    KeyManagerType::Customer,
                    KeyUsageType::EncryptDecrypt,
                    KeySpec::SymmetricDefault,
                ),
                "cancel-key-deletion",
            ),
            (
                metadata(
                    KeyState::Enabled,
                    KeyManagerType::Aws,
                    KeyUsageType::EncryptDecrypt,
                    KeySpec::SymmetricDefault,
                ),
                "not a customer-managed key",
            ),
            (
                metadata(
                    KeyState::Enabled,
                    KeyManagerType::Customer,
                    KeyUsageType::SignVerify,
                    KeySpec::Rsa2048,
                ),
                "SIGN_VERIFY",
            ),
        ];
        for (metadata, hint) in cases {
            let describe = key(metadata);
            let copy = copy_ok();
            let error = run(&[&describe], &[&copy], EVENT).await.unwrap_err();
            assert_eq!(error.error_type(), "KmsKeyUnusable");
            let message = error.to_string();
            assert!(
                message.contains(hint) && message.contains(testing::GOLDEN_KEY_ARN),
                "{message}"
            );
            assert_eq!(copy.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn an_unknown_key_is_unusable() {
        let describe = mock!(Kms::describe_key).then_error(|| {
            DescribeKeyError::NotFoundException(NotFoundException::builder().build())
        });
        let copy = copy_ok();
        let error = run(&[&describe], &[&copy], EVENT).await.unwrap_err();
        assert_eq!(error.error_type(), "KmsKeyUnusable");
        assert!(error.to_string().contains("does not exist"), "{error}");
        assert_eq!(copy.num_calls(), 0);
    }

    #[tokio::test]
    async fn copy_error_codes_become_their_variants() {
        let cases = [
            (
                "InvalidAMIID.NotFound",
                "The image id '[ami-0b1a2e3d4c5f60718]' does not exist",
                "CopyFailed",
                "is gone",
            ),
            (
                "InvalidKMSKey.InvalidState",
                "The KMS key provided is in an incorrect state",
                "KmsKeyUnusable",
                "incorrect state",
            ),
            (
                "InvalidParameterValue",
                "The specified KMS key is not accessible",
                "KmsKeyUnusable",
                "not accessible",
            ),
            (
                "ResourceLimitExceeded",
                "You have reached your quota of 50000 images",
                "CopyFailed",
                "deregister old images",
            ),
        ];
        for (code, text, expected, hint) in cases {
            let describe = key(usable());
            let copy = copy_fails(code, text);
            let error = run(&[&describe], &[&copy], EVENT).await.unwrap_err();
            assert_eq!(error.error_type(), expected, "{code}");
            assert!(error.to_string().contains(hint), "{error}");
        }
    }

    #[tokio::test]
    async fn an_unknown_code_keeps_the_operation_and_code() {
        let describe = key(usable());
        let copy = copy_fails("UnauthorizedOperation", "You are not authorized");
        let error = run(&[&describe], &[&copy], EVENT).await.unwrap_err();
        assert_eq!(error.error_type(), "AwsError");
        assert!(
            error
                .to_string()
                .contains("ec2:CopyImage failed with UnauthorizedOperation"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_503_is_throttled() {
        let describe = key(usable());
        let copy = mock!(Ec2::copy_image).then_http_response(|| testing::http_status(503));
        let error = run(&[&describe], &[&copy], EVENT).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
        assert!(error.to_string().contains("ec2:CopyImage"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_bake_status_is_invalid_input() {
        let describe = key(usable());
        let copy = copy_ok();
        let error = run(&[&describe], &[&copy], MISSING_BAKE_STATUS)
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("bakeStatus"), "{error}");
        assert_eq!((describe.num_calls(), copy.num_calls()), (0, 0));
    }

    #[test]
    fn several_key_problems_are_named_together() {
        let error = check_golden_key(
            testing::GOLDEN_KEY_ARN,
            Some(&metadata(
                KeyState::Disabled,
                KeyManagerType::Aws,
                KeyUsageType::EncryptDecrypt,
                KeySpec::SymmetricDefault,
            )),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("Disabled") && error.contains("not a customer-managed key"),
            "{error}"
        );
        assert!(check_golden_key(testing::GOLDEN_KEY_ARN, Some(&usable())).is_ok());
        assert!(check_golden_key(testing::GOLDEN_KEY_ARN, None).is_err());
    }

    #[test]
    fn a_parameter_error_about_something_else_is_a_failed_copy() {
        let error = copy_error(
            "InvalidParameterValue",
            "Invalid name",
            INTERMEDIATE,
            testing::GOLDEN_KEY_ARN,
        )
        .unwrap();
        assert_eq!(error.error_type(), "CopyFailed");
        assert!(copy_error("Throttling", "slow down", INTERMEDIATE, "k").is_none());
    }

    #[test]
    fn the_description_fits_ec2s_limit() {
        let mut context = testing::context();
        context.execution_id = format!("arn:aws:states:x:1:execution:p:{}", "n".repeat(300));
        assert_eq!(
            golden_image_description(SOURCE, INTERMEDIATE, &context)
                .chars()
                .count(),
            MAX_DESCRIPTION
        );
    }

    #[tokio::test]
    async fn a_second_region_copies_from_home_under_its_own_key_and_token() {
        const REPLICA: &str =
            "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
        // The same in both encryption modes: a direct bake's image is the home golden image,
        // and the other regions copy it as they copy an intermediate image.
        for encryption in [Encryption::Copy, Encryption::Direct] {
            let mut input: StepInput = testing::event(EVENT);
            let mut family = testing::family();
            family.encryption = encryption;
            family.regions.push(golden_ami_core::RegionSpec {
                region: "us-east-1".into(),
                kms_key_arn: REPLICA.into(),
            });
            input.state.family = Some(family);
            if let Some(target) = input.state.target.as_mut() {
                target.region = "us-east-1".into();
                target.kms_key_arn = REPLICA.into();
            }
            let home_token = target_token(
                testing::EXECUTION_ID,
                "CopyImage",
                "default",
                Some(testing::REGION),
            );
            let describe = mock!(Kms::describe_key)
                .match_requests(|request| request.key_id() == Some(REPLICA))
                .then_output(|| DescribeKeyOutput::builder().key_metadata(usable()).build());
            let copy = mock!(Ec2::copy_image)
                .match_requests(move |request| {
                    request.source_image_id() == Some(INTERMEDIATE)
                        && request.source_region() == Some(testing::REGION)
                        && request.kms_key_id() == Some(REPLICA)
                        && request
                            .client_token()
                            .is_some_and(|token| token != home_token)
                })
                .then_output(|| CopyImageOutput::builder().image_id(GOLDEN).build());
            let deps = MockClients {
                kms: vec![&describe],
                ec2: vec![&copy],
                ssm: vec![&testing::durations(None)],
                ..Default::default()
            }
            .deps();
            let started = handler(&deps, input).await.unwrap();
            assert_eq!(
                (started.golden_ami_id.as_str(), started.kms_key_arn.as_str()),
                (GOLDEN, REPLICA)
            );
            assert!(started.started_at.is_some());
            assert_eq!((describe.num_calls(), copy.num_calls()), (1, 1));
        }
    }

    /// The direct bake's image as DescribeImages shows it: named, one snapshot under `key`.
    /// DescribeImages of the direct bake's image (no KmsKeyId: AWS does not return one) and
    /// DescribeSnapshots of its snapshot, under `key` (None: unencrypted).
    fn baked(name: &'static str, key: Option<&'static str>, tags: &[(&str, &str)]) -> (Rule, Rule) {
        use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
        use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
        use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, Image, Snapshot};
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect();
        let images = mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [INTERMEDIATE])
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(
                        Image::builder()
                            .image_id(INTERMEDIATE)
                            .name(name)
                            .block_device_mappings(
                                BlockDeviceMapping::builder()
                                    .device_name("/dev/xvda")
                                    .ebs(
                                        EbsBlockDevice::builder()
                                            .snapshot_id("snap-0123456789abcdef0")
                                            .encrypted(key.is_some())
                                            .build(),
                                    )
                                    .build(),
                            )
                            .set_tags(Some(tags.clone()))
                            .build(),
                    )
                    .build()
            });
        let snapshots = mock!(Ec2::describe_snapshots)
            .match_requests(|request| request.snapshot_ids() == ["snap-0123456789abcdef0"])
            .then_output(move || {
                DescribeSnapshotsOutput::builder()
                    .snapshots(
                        Snapshot::builder()
                            .snapshot_id("snap-0123456789abcdef0")
                            .encrypted(key.is_some())
                            .set_kms_key_id(key.map(str::to_string))
                            .build(),
                    )
                    .build()
            });
        (images, snapshots)
    }

    fn direct(event: &str) -> StepInput {
        let mut input: StepInput = testing::event(event);
        input.state.family.as_mut().unwrap().encryption = Encryption::Direct;
        input
    }

    async fn run_direct(ec2: &[&Rule]) -> Result<CopyStarted, StepError> {
        let describe = key(usable());
        let deps = MockClients {
            kms: vec![&describe],
            ec2: ec2.to_vec(),
            ..Default::default()
        }
        .deps();
        handler(&deps, direct(EVENT)).await
    }

    #[tokio::test]
    async fn a_direct_bake_is_the_home_golden_image_tagged_without_a_copy() {
        use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
        let (image, snapshots) = baked(GOLDEN_NAME, Some(testing::GOLDEN_KEY_ARN), RUN_TAGS);
        let tag = mock!(Ec2::create_tags)
            .match_requests(|request| {
                let has = |key: &str, value: &str| {
                    request
                        .tags()
                        .iter()
                        .any(|tag| tag.key() == Some(key) && tag.value() == Some(value))
                };
                request.resources() == [INTERMEDIATE, "snap-0123456789abcdef0"]
                    && has("Name", GOLDEN_NAME)
                    && has("Type", "golden-ami")
                    && has(TAG_SOURCE_AMI, SOURCE)
                    && has(TAG_EXECUTION, testing::EXECUTION_ID)
                    && has(TAG_STACK, "golden-ami-pipeline")
                    && request.tags().len() == 7
            })
            .then_output(|| CreateTagsOutput::builder().build());
        let copy = copy_ok();
        let started = run_direct(&[&image, &snapshots, &tag, &copy])
            .await
            .unwrap();
        assert_eq!(
            started,
            CopyStarted {
                golden_ami_id: INTERMEDIATE.into(),
                golden_ami_name: GOLDEN_NAME.into(),
                kms_key_arn: testing::GOLDEN_KEY_ARN.into(),
                deadline: "2026-12-01T09:35:00Z".into(),
                started_at: None,
                first_wait_seconds: 0,
                poll_seconds: 60,
            }
        );
        assert_eq!((tag.num_calls(), copy.num_calls()), (1, 0));

        // A retry after the tags were written does not tag again (the role may not).
        let (claimed, snapshots) = baked(
            GOLDEN_NAME,
            Some(testing::GOLDEN_KEY_ARN),
            &[RUN_TAGS[0], RUN_TAGS[1], (TAG_PATCH_DATE, "2026-12-01")],
        );
        run_direct(&[&claimed, &snapshots, &tag, &copy])
            .await
            .unwrap();
        assert_eq!((tag.num_calls(), copy.num_calls()), (1, 0));
    }

    /// What the bake document tags its image with in CreateImage (infra/bake-document.yaml).
    const RUN_TAGS: &[(&str, &str)] = &[
        (TAG_EXECUTION, testing::EXECUTION_ID),
        (TAG_STACK, "golden-ami-pipeline"),
    ];

    #[tokio::test]
    async fn a_direct_bake_image_without_this_runs_tags_is_never_tagged_golden() {
        let other_run = [
            (
                TAG_EXECUTION,
                "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:other",
            ),
            RUN_TAGS[1],
        ];
        let other_stack = [RUN_TAGS[0], (TAG_STACK, "another-stack")];
        for tags in [&other_run[..], &other_stack[..], &[]] {
            let (image, snapshots) = baked(GOLDEN_NAME, Some(testing::GOLDEN_KEY_ARN), tags);
            let tag = mock!(Ec2::create_tags).then_output(|| {
                aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build()
            });
            let error = run_direct(&[&image, &snapshots, &tag]).await.unwrap_err();
            assert_eq!(error.error_type(), "CopyFailed");
            assert!(
                error.to_string().contains("does not carry this run's tags"),
                "{error}"
            );
            assert_eq!(tag.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn a_direct_bake_under_another_key_or_name_is_never_tagged_golden() {
        let cases = [
            (
                baked(GOLDEN_NAME, None, &[]),
                "/dev/xvda (snap-0123456789abcdef0) is unencrypted",
            ),
            (
                baked(
                    GOLDEN_NAME,
                    Some("arn:aws:kms:eu-west-1:111122223333:key/aws-ebs"),
                    &[],
                ),
                "is under arn:aws:kms:eu-west-1:111122223333:key/aws-ebs",
            ),
            (
                baked(
                    "golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-0420140d",
                    Some(testing::GOLDEN_KEY_ARN),
                    &[],
                ),
                "was not baked in the direct encryption mode",
            ),
        ];
        for ((image, snapshots), words) in cases {
            let tag = mock!(Ec2::create_tags).then_output(|| {
                aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build()
            });
            let error = run_direct(&[&image, &snapshots, &tag]).await.unwrap_err();
            assert_eq!(error.error_type(), "CopyFailed");
            assert!(error.to_string().contains(words), "{error}");
            assert_eq!(tag.num_calls(), 0);
        }
    }
}
