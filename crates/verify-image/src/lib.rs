//! VerifyImage: the last gate before the pointer moves.
//!
//! Every check runs and every failure is collected, so one failed run names everything that is
//! wrong with the golden image: it exists and is available, each of its snapshots is encrypted
//! under the golden key, the launch permission holds every principal ShareImage granted, the
//! golden tags are set, and it is neither the published image nor the intermediate one.

use std::collections::HashMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Image, ImageAttributeName, ImageState, LaunchPermission, Snapshot, Tag};
use golden_ami_core::naming::{golden_image_tags, is_kms_key_arn};
use golden_ami_core::{
    Deps, LaunchPrincipals, RegionClients, ShareResult, StepError, StepInput, VerifyResult,
    classify_sdk_error, error_code,
};

/// One check: what passed (as a person reads it), or every problem found.
pub type Check = Result<String, Vec<String>>;

pub async fn handler(deps: &Deps, input: StepInput) -> Result<VerifyResult, StepError> {
    let state = &input.state;
    let family = state.require_family()?;
    let target = state.require_target()?;
    let golden_ami_id = state.require_copy()?.golden_ami_id.as_str();
    // The bake's source (the home pointer's image) names the golden image in its tags.
    let source_ami_id = state.require_current()?.ami_id.as_str();
    let share = state.require_share()?;
    let key_arn = target.kms_key_arn.as_str();
    let region = deps.clients.region(&target.region);

    let mut checks = vec![
        check_identity(
            golden_ami_id,
            target.ami_id.as_deref(),
            state.intermediate_ami_id(),
        ),
        check_share_record(share, golden_ami_id),
    ];
    let mut snapshot_ids = Vec::new();
    match describe_image(&region, golden_ami_id).await? {
        None => checks.push(Err(vec![format!(
            "the golden image {golden_ami_id} does not exist"
        )])),
        Some(image) => {
            checks.push(check_available(&image));
            let (ids, mapping_problems) = ebs_snapshot_ids(&image);
            if !mapping_problems.is_empty() {
                checks.push(Err(mapping_problems));
            }
            if !ids.is_empty() {
                checks.push(verify_snapshots(&region, &ids, key_arn).await?);
            }
            snapshot_ids = ids;
            checks.push(check_tags(
                &golden_image_tags(
                    &deps.config.pipeline_name,
                    &input.context,
                    &family.name,
                    source_ami_id,
                    state
                        .bake_status
                        .as_ref()
                        .and_then(|status| status.updates.as_ref()),
                )?,
                image.tags(),
            ));
            let permissions = launch_permissions(&region, golden_ami_id).await?;
            checks.push(
                permissions.and_then(|permissions| {
                    check_launch_permission(&share.principals, &permissions)
                }),
            );
        }
    }

    let (passed, failed) = split(checks);
    if !failed.is_empty() {
        return Err(StepError::VerificationFailed(failed));
    }
    tracing::info!(%golden_ami_id, checks = ?passed, "golden image verified");
    Ok(VerifyResult {
        golden_ami_id: golden_ami_id.to_string(),
        snapshot_ids,
        kms_key_arn: key_arn.to_string(),
        checks: passed,
    })
}

/// The passed checks' descriptions and every problem, in check order.
pub fn split(checks: Vec<Check>) -> (Vec<String>, Vec<String>) {
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for check in checks {
        match check {
            Ok(description) => passed.push(description),
            Err(problems) => failed.extend(problems),
        }
    }
    (passed, failed)
}

async fn describe_image(
    clients: &RegionClients,
    image_id: &str,
) -> Result<Option<Image>, StepError> {
    match clients
        .ec2()
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
    {
        Ok(output) => Ok(output
            .images()
            .iter()
            .find(|image| image.image_id() == Some(image_id))
            .cloned()),
        Err(error) if error_code(&error) == Some("InvalidAMIID.NotFound") => Ok(None),
        Err(error) => Err(classify_sdk_error("ec2:DescribeImages", error)),
    }
}

/// The launch permission on the image, or the check's failure if EC2 cannot tell.
async fn launch_permissions(
    clients: &RegionClients,
    image_id: &str,
) -> Result<Result<Vec<LaunchPermission>, Vec<String>>, StepError> {
    match clients
        .ec2()
        .describe_image_attribute()
        .image_id(image_id)
        .attribute(ImageAttributeName::LaunchPermission)
        .send()
        .await
    {
        Ok(output) => Ok(Ok(output.launch_permissions().to_vec())),
        Err(error) if error_code(&error).is_some_and(|code| code.starts_with("InvalidAMIID.")) => {
            Ok(Err(vec![format!(
                "the launch permission of {image_id} cannot be read: {}",
                error.message().unwrap_or("image not found")
            )]))
        }
        Err(error) => Err(classify_sdk_error("ec2:DescribeImageAttribute", error)),
    }
}

/// Describe the snapshots, resolve any key that is not given as a key ARN, and check each.
async fn verify_snapshots(
    clients: &RegionClients,
    ids: &[String],
    golden_key_arn: &str,
) -> Result<Check, StepError> {
    let snapshots = match clients
        .ec2()
        .describe_snapshots()
        .set_snapshot_ids(Some(ids.to_vec()))
        .send()
        .await
    {
        Ok(output) => output.snapshots().to_vec(),
        Err(error)
            if error_code(&error).is_some_and(|code| code.starts_with("InvalidSnapshot.")) =>
        {
            return Ok(Err(vec![format!(
                "the snapshots {} of the golden image cannot be described: {}",
                ids.join(", "),
                error.message().unwrap_or("not found")
            )]));
        }
        Err(error) => return Err(classify_sdk_error("ec2:DescribeSnapshots", error)),
    };
    let mut resolved = HashMap::new();
    for key in snapshots.iter().filter_map(Snapshot::kms_key_id) {
        if !is_kms_key_arn(key) && !resolved.contains_key(key) {
            resolved.insert(key.to_string(), resolve_key(clients, key).await?);
        }
    }
    let problems: Vec<String> = ids
        .iter()
        .filter_map(|id| {
            let snapshot = snapshots
                .iter()
                .find(|snapshot| snapshot.snapshot_id() == Some(id.as_str()));
            check_snapshot(id, snapshot, &resolved, golden_key_arn).err()
        })
        .collect();
    Ok(if problems.is_empty() {
        Ok(format!(
            "snapshots {} are encrypted under the golden key {golden_key_arn}",
            ids.join(", ")
        ))
    } else {
        Err(problems)
    })
}

/// A key reference that is not a key ARN (a key id or an alias), resolved to the key's ARN; the
/// error is the reason it could not be.
async fn resolve_key(
    clients: &RegionClients,
    key: &str,
) -> Result<Result<String, String>, StepError> {
    match clients.kms().describe_key().key_id(key).send().await {
        Ok(output) => Ok(output
            .key_metadata()
            .and_then(|metadata| metadata.arn())
            .map(str::to_string)
            .ok_or_else(|| "KMS returned no key ARN".to_string())),
        Err(error)
            if error.as_service_error().is_some_and(|service| {
                service.is_not_found_exception() || service.is_invalid_arn_exception()
            }) || error_code(&error) == Some("AccessDeniedException") =>
        {
            Ok(Err(format!(
                "kms:DescribeKey failed: {}",
                error.message().unwrap_or("key not found")
            )))
        }
        Err(error) => Err(classify_sdk_error("kms:DescribeKey", error)),
    }
}

/// A key reference names the golden key only if it is a key ARN equal to it: an alias, a bare
/// key id or another key (aws/ebs, the account's EBS key) fails. References that are not key
/// ARNs are resolved through kms:DescribeKey before they get here.
pub fn same_key(key: &str, golden_key_arn: &str) -> bool {
    is_kms_key_arn(key) && key == golden_key_arn
}

/// One snapshot of the golden image: it exists, is encrypted, and under the golden key.
/// `resolved` maps key references that are not key ARNs to their ARN (or why not).
pub fn check_snapshot(
    id: &str,
    snapshot: Option<&Snapshot>,
    resolved: &HashMap<String, Result<String, String>>,
    golden_key_arn: &str,
) -> Result<(), String> {
    let snapshot =
        snapshot.ok_or_else(|| format!("snapshot {id} of the golden image does not exist"))?;
    if snapshot.encrypted() != Some(true) {
        return Err(format!("snapshot {id} is not encrypted"));
    }
    let key = snapshot
        .kms_key_id()
        .ok_or_else(|| format!("snapshot {id} is encrypted but EC2 reports no KMS key"))?;
    let key_arn = if is_kms_key_arn(key) {
        key
    } else {
        match resolved.get(key) {
            Some(Ok(arn)) => arn.as_str(),
            Some(Err(reason)) => {
                return Err(format!(
                    "snapshot {id} is encrypted under {key}, which cannot be resolved to a key ARN ({reason})"
                ));
            }
            None => {
                return Err(format!(
                    "snapshot {id} is encrypted under {key}, which was not resolved to a key ARN"
                ));
            }
        }
    };
    if same_key(key_arn, golden_key_arn) {
        Ok(())
    } else {
        Err(format!(
            "snapshot {id} is encrypted under {key_arn}, not the golden key {golden_key_arn}"
        ))
    }
}

/// The snapshot ids of the image's EBS block devices, and every device without one.
pub fn ebs_snapshot_ids(image: &Image) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut problems = Vec::new();
    for mapping in image.block_device_mappings() {
        let Some(ebs) = mapping.ebs() else { continue };
        match ebs.snapshot_id() {
            Some(id) => ids.push(id.to_string()),
            None => problems.push(format!(
                "EBS block device {} of the golden image has no snapshot",
                mapping.device_name().unwrap_or("(unnamed)")
            )),
        }
    }
    if ids.is_empty() && problems.is_empty() {
        problems.push("the golden image has no EBS snapshot".to_string());
    }
    (ids, problems)
}

pub fn check_available(image: &Image) -> Check {
    let id = image.image_id().unwrap_or("(no id)");
    match image.state() {
        Some(ImageState::Available) => Ok(format!("golden image {id} is available")),
        state => Err(vec![format!(
            "the golden image {id} is {}, not available",
            state.map_or("in an unknown state", ImageState::as_str)
        )]),
    }
}

/// The golden image is this run's copy: not the published image, not the intermediate one.
pub fn check_identity(
    golden_ami_id: &str,
    current_ami_id: Option<&str>,
    intermediate_id: Option<&str>,
) -> Check {
    let mut problems = Vec::new();
    if Some(golden_ami_id) == current_ami_id {
        problems.push(format!(
            "the golden image {golden_ami_id} is the image the region's pointer already holds (state.target.amiId)"
        ));
    }
    if Some(golden_ami_id) == intermediate_id {
        problems.push(format!(
            "the golden image {golden_ami_id} is the intermediate image (state.bakeStatus.bakedAmiId)"
        ));
    }
    if problems.is_empty() {
        Ok(format!(
            "golden image {golden_ami_id} is a new image (not {}, not the intermediate {})",
            current_ami_id.unwrap_or("the region's pointer, which does not exist yet"),
            intermediate_id.unwrap_or("image")
        ))
    } else {
        Err(problems)
    }
}

/// ShareImage's record is about this image and shares it with someone.
pub fn check_share_record(share: &ShareResult, golden_ami_id: &str) -> Check {
    let mut problems = Vec::new();
    if share.golden_ami_id != golden_ami_id {
        problems.push(format!(
            "state.share is about {}, not the golden image {golden_ami_id}",
            share.golden_ami_id
        ));
    }
    if share.principals.is_empty() {
        problems.push(
            "state.share lists no principals: the golden image is shared with nobody".to_string(),
        );
    }
    if problems.is_empty() {
        Ok(format!(
            "ShareImage shared {golden_ami_id} with {}",
            share.principals.describe().join(", ")
        ))
    } else {
        Err(problems)
    }
}

/// Every principal ShareImage granted is in the image's launch permission.
pub fn check_launch_permission(
    principals: &LaunchPrincipals,
    existing: &[LaunchPermission],
) -> Check {
    let missing: Vec<String> = principals
        .partition_by(existing)
        .0
        .describe()
        .into_iter()
        .map(|principal| format!("the launch permission lacks {principal}"))
        .collect();
    if missing.is_empty() {
        Ok(format!(
            "launch permission holds {}",
            principals.describe().join(", ")
        ))
    } else {
        Err(missing)
    }
}

/// Every expected tag is on the image with the expected value.
pub fn check_tags(expected: &[(&str, String)], actual: &[Tag]) -> Check {
    let problems: Vec<String> = expected
        .iter()
        .filter_map(
            |(key, value)| match actual.iter().find(|tag| tag.key() == Some(*key)) {
                None => Some(format!("tag {key} is missing (expected {value:?})")),
                Some(tag) if tag.value() != Some(value.as_str()) => Some(format!(
                    "tag {key} is {:?}, expected {value:?}",
                    tag.value().unwrap_or_default()
                )),
                Some(_) => None,
            },
        )
        .collect();
    if problems.is_empty() {
        let keys: Vec<&str> = expected.iter().map(|(key, _)| *key).collect();
        Ok(format!("tags {} are set", keys.join(", ")))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
    use aws_sdk_ec2::operation::describe_snapshots::{
        DescribeSnapshotsError, DescribeSnapshotsOutput,
    };
    use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice};
    use aws_sdk_kms::Client as Kms;
    use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
    use aws_sdk_kms::types::KeyMetadata;
    use golden_ami_core::naming::{TAG_PATCH_DATE, TAG_SOURCE_AMI};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/verify-image/ok.json");
    const MISSING_SHARE: &str = include_str!("../../../events/verify-image/missing-share.json");
    const GOLDEN: &str = "ami-0c0ffee0123456789";
    const SOURCE: &str = "ami-0123456789abcdef0";
    const ROOT: &str = "snap-0a1b2c3d4e5f60718";
    const DATA: &str = "snap-0f1e2d3c4b5a69788";
    const AWS_EBS_KEY_ARN: &str =
        "arn:aws:kms:eu-west-1:111122223333:key/aaaabbbb-cccc-dddd-eeee-ffff00001111";

    fn tags() -> Vec<Tag> {
        golden_image_tags(
            "golden-ami-pipeline",
            &testing::context(),
            "default",
            SOURCE,
            None,
        )
        .unwrap()
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .chain([Tag::builder()
            .key("Name")
            .value("golden-ami-2026-12-01-0420140d")
            .build()])
        .collect()
    }

    fn golden_image(state: ImageState, tags: Vec<Tag>) -> Image {
        let device = |name: &str, snapshot: &str| {
            BlockDeviceMapping::builder()
                .device_name(name)
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(snapshot)
                        .encrypted(true)
                        .build(),
                )
                .build()
        };
        Image::builder()
            .image_id(GOLDEN)
            .state(state)
            .block_device_mappings(device("/dev/xvda", ROOT))
            .block_device_mappings(device("/dev/xvdb", DATA))
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/sdc")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .set_tags(Some(tags))
            .build()
    }

    fn images(image: Image) -> Rule {
        mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [GOLDEN])
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(image.clone())
                    .build()
            })
    }

    fn snapshot(id: &str, key: &str) -> Snapshot {
        Snapshot::builder()
            .snapshot_id(id)
            .encrypted(true)
            .kms_key_id(key)
            .build()
    }

    fn snapshots(list: Vec<Snapshot>) -> Rule {
        mock!(Ec2::describe_snapshots)
            .match_requests(|request| request.snapshot_ids() == [ROOT, DATA])
            .then_output(move || {
                DescribeSnapshotsOutput::builder()
                    .set_snapshots(Some(list.clone()))
                    .build()
            })
    }

    fn good_snapshots() -> Vec<Snapshot> {
        vec![
            snapshot(ROOT, testing::GOLDEN_KEY_ARN),
            snapshot(DATA, testing::GOLDEN_KEY_ARN),
        ]
    }

    async fn run(ec2: &[&Rule], kms: &[&Rule], event: &str) -> Result<VerifyResult, StepError> {
        let deps = MockClients {
            ec2: ec2.to_vec(),
            kms: kms.to_vec(),
            ..Default::default()
        }
        .deps();
        handler(&deps, testing::event(event)).await
    }

    fn failures(error: StepError) -> Vec<String> {
        match error {
            StepError::VerificationFailed(list) => list,
            other => panic!("expected VerificationFailed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_good_golden_image_passes_every_check() {
        let describe = images(golden_image(ImageState::Available, tags()));
        let snaps = snapshots(good_snapshots());
        let attribute =
            testing::launch_permissions(GOLDEN, vec![testing::organization_launch_permission()]);
        let result = run(&[&describe, &snaps, &attribute], &[], EVENT)
            .await
            .unwrap();
        assert_eq!(result.golden_ami_id, GOLDEN);
        assert_eq!(result.snapshot_ids, [ROOT, DATA]);
        assert_eq!(result.kms_key_arn, testing::GOLDEN_KEY_ARN);
        assert_eq!(result.checks.len(), 6, "{:?}", result.checks);
        assert!(
            result
                .checks
                .iter()
                .any(|check| check.contains("launch permission holds")
                    && check.contains(testing::ORGANIZATION_ARN)),
            "{:?}",
            result.checks
        );
        assert_eq!(
            (
                describe.num_calls(),
                snaps.num_calls(),
                attribute.num_calls()
            ),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_snapshot_under_another_key_is_named() {
        let describe = images(golden_image(ImageState::Available, tags()));
        let snaps = snapshots(vec![
            snapshot(ROOT, testing::GOLDEN_KEY_ARN),
            snapshot(DATA, AWS_EBS_KEY_ARN),
        ]);
        let attribute =
            testing::launch_permissions(GOLDEN, vec![testing::organization_launch_permission()]);
        let error = run(&[&describe, &snaps, &attribute], &[], EVENT)
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "VerificationFailed");
        assert_eq!(
            failures(error),
            [format!(
                "snapshot {DATA} is encrypted under {AWS_EBS_KEY_ARN}, not the golden key {}",
                testing::GOLDEN_KEY_ARN
            )]
        );
    }

    #[tokio::test]
    async fn a_key_given_by_id_is_resolved_through_kms() {
        for (resolved_arn, passes) in [(testing::GOLDEN_KEY_ARN, true), (AWS_EBS_KEY_ARN, false)] {
            let describe = images(golden_image(ImageState::Available, tags()));
            let snaps = snapshots(vec![
                snapshot(ROOT, "1234abcd-12ab-34cd-56ef-1234567890ab"),
                snapshot(DATA, testing::GOLDEN_KEY_ARN),
            ]);
            let attribute = testing::launch_permissions(
                GOLDEN,
                vec![testing::organization_launch_permission()],
            );
            let key = mock!(Kms::describe_key)
                .match_requests(|request| {
                    request.key_id() == Some("1234abcd-12ab-34cd-56ef-1234567890ab")
                })
                .then_output(move || {
                    DescribeKeyOutput::builder()
                        .key_metadata(
                            KeyMetadata::builder()
                                .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
                                .arn(resolved_arn)
                                .build()
                                .unwrap(),
                        )
                        .build()
                });
            let result = run(&[&describe, &snaps, &attribute], &[&key], EVENT).await;
            assert_eq!(result.is_ok(), passes, "{result:?}");
            assert_eq!(key.num_calls(), 1);
        }
    }

    #[tokio::test]
    async fn several_failures_are_listed_in_one_error() {
        let mut wrong_tags = tags();
        wrong_tags.retain(|tag| tag.key() != Some(TAG_PATCH_DATE));
        let describe = images(golden_image(ImageState::Available, wrong_tags));
        let snaps = snapshots(vec![
            Snapshot::builder()
                .snapshot_id(ROOT)
                .encrypted(false)
                .build(),
            snapshot(DATA, "arn:aws:kms:eu-west-1:111122223333:alias/aws/ebs"),
        ]);
        let attribute = testing::launch_permissions(GOLDEN, vec![]);
        let key = mock!(Kms::describe_key).then_output(|| {
            DescribeKeyOutput::builder()
                .key_metadata(
                    KeyMetadata::builder()
                        .key_id("aaaabbbb-cccc-dddd-eeee-ffff00001111")
                        .arn(AWS_EBS_KEY_ARN)
                        .build()
                        .unwrap(),
                )
                .build()
        });
        let error = run(&[&describe, &snaps, &attribute], &[&key], EVENT)
            .await
            .unwrap_err();
        let list = failures(error);
        assert_eq!(list.len(), 4, "{list:?}");
        assert!(list[0].contains(ROOT) && list[0].contains("not encrypted"));
        assert!(list[1].contains(DATA) && list[1].contains(AWS_EBS_KEY_ARN));
        assert!(list[2].contains("tag golden-ami:patch-date is missing"));
        assert!(list[3].contains("lacks") && list[3].contains(testing::ORGANIZATION_ARN));
    }

    #[tokio::test]
    async fn a_missing_launch_permission_fails() {
        let describe = images(golden_image(ImageState::Available, tags()));
        let snaps = snapshots(good_snapshots());
        let attribute = testing::launch_permissions(
            GOLDEN,
            vec![LaunchPermission::builder().user_id("444455556666").build()],
        );
        let error = run(&[&describe, &snaps, &attribute], &[], EVENT)
            .await
            .unwrap_err();
        assert_eq!(
            failures(error),
            [format!(
                "the launch permission lacks {}",
                testing::ORGANIZATION_ARN
            )]
        );
    }

    #[tokio::test]
    async fn a_wrong_or_missing_tag_fails() {
        let mut wrong = tags();
        for tag in &mut wrong {
            if tag.key() == Some(TAG_SOURCE_AMI) {
                *tag = Tag::builder()
                    .key(TAG_SOURCE_AMI)
                    .value("ami-99999999")
                    .build();
            }
        }
        let describe = images(golden_image(ImageState::Available, wrong));
        let snaps = snapshots(good_snapshots());
        let attribute =
            testing::launch_permissions(GOLDEN, vec![testing::organization_launch_permission()]);
        let error = run(&[&describe, &snaps, &attribute], &[], EVENT)
            .await
            .unwrap_err();
        assert_eq!(
            failures(error),
            [format!(
                "tag {TAG_SOURCE_AMI} is \"ami-99999999\", expected \"{SOURCE}\""
            )]
        );
    }

    #[tokio::test]
    async fn an_image_that_is_not_available_fails() {
        let describe = images(golden_image(ImageState::Pending, tags()));
        let snaps = snapshots(good_snapshots());
        let attribute =
            testing::launch_permissions(GOLDEN, vec![testing::organization_launch_permission()]);
        let error = run(&[&describe, &snaps, &attribute], &[], EVENT)
            .await
            .unwrap_err();
        assert_eq!(
            failures(error),
            [format!(
                "the golden image {GOLDEN} is pending, not available"
            )]
        );
    }

    #[tokio::test]
    async fn a_missing_image_fails_without_further_calls() {
        let describe =
            mock!(Ec2::describe_images).then_output(|| DescribeImagesOutput::builder().build());
        let snaps = snapshots(good_snapshots());
        let attribute =
            testing::launch_permissions(GOLDEN, vec![testing::organization_launch_permission()]);
        let error = run(&[&describe, &snaps, &attribute], &[], EVENT)
            .await
            .unwrap_err();
        assert_eq!(
            failures(error),
            [format!("the golden image {GOLDEN} does not exist")]
        );
        assert_eq!((snaps.num_calls(), attribute.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn throttled_snapshots_are_retryable() {
        let describe = images(golden_image(ImageState::Available, tags()));
        let snaps = mock!(Ec2::describe_snapshots).then_error(|| {
            DescribeSnapshotsError::generic(testing::service_error(
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ))
        });
        let attribute =
            testing::launch_permissions(GOLDEN, vec![testing::organization_launch_permission()]);
        let error = run(&[&describe, &snaps, &attribute], &[], EVENT)
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
        assert!(
            error.to_string().contains("ec2:DescribeSnapshots"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_missing_share_is_invalid_input() {
        let describe = images(golden_image(ImageState::Available, tags()));
        let error = run(&[&describe], &[], MISSING_SHARE).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("ShareImage"), "{error}");
        assert_eq!(describe.num_calls(), 0);
    }

    #[test]
    fn only_the_golden_key_arn_itself_matches() {
        assert!(same_key(testing::GOLDEN_KEY_ARN, testing::GOLDEN_KEY_ARN));
        assert!(!same_key(AWS_EBS_KEY_ARN, testing::GOLDEN_KEY_ARN));
        assert!(!same_key(
            "arn:aws:kms:eu-west-1:111122223333:alias/golden-ami",
            testing::GOLDEN_KEY_ARN
        ));
        assert!(!same_key(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890ab"
        ));
        // The same key id in another region is another key.
        assert!(!same_key(
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            testing::GOLDEN_KEY_ARN
        ));
    }

    #[test]
    fn an_unresolved_key_is_a_failure_not_a_pass() {
        let resolved = HashMap::from([(
            "alias/golden".to_string(),
            Err("kms:DescribeKey failed: alias not found".to_string()),
        )]);
        let error = check_snapshot(
            ROOT,
            Some(&snapshot(ROOT, "alias/golden")),
            &resolved,
            testing::GOLDEN_KEY_ARN,
        )
        .unwrap_err();
        assert!(error.contains("cannot be resolved"), "{error}");
        assert!(check_snapshot(ROOT, None, &resolved, testing::GOLDEN_KEY_ARN).is_err());
    }

    #[test]
    fn the_published_and_intermediate_images_are_refused() {
        let problems = check_identity(GOLDEN, Some(GOLDEN), Some(GOLDEN)).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(check_identity(GOLDEN, Some(SOURCE), Some("ami-0b1a2e3d4c5f60718")).is_ok());
        // A region where the pointer does not exist yet.
        assert!(check_identity(GOLDEN, None, Some("ami-0b1a2e3d4c5f60718")).is_ok());
    }

    #[test]
    fn an_image_without_snapshots_is_reported() {
        let image = Image::builder().image_id(GOLDEN).build();
        let (ids, problems) = ebs_snapshot_ids(&image);
        assert!(ids.is_empty());
        assert_eq!(problems, ["the golden image has no EBS snapshot"]);
    }
}
