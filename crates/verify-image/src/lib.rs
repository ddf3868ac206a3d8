//! VerifyImage: the last gate before the pointer moves.
//!
//! Every check runs and every failure is collected, so one failed run names everything that is
//! wrong with the golden image: it exists and is available, not deprecated, of the family's
//! architecture, each of its snapshots is encrypted under the golden key, the launch permission
//! holds every principal ShareImage granted, the golden tags are set, and it is neither the
//! published image nor the intermediate one. The image's checks are golden_ami_core::golden's,
//! the ones `golden-ami pin` runs too.

pub use golden_ami_core::golden::Check;
use golden_ami_core::golden::{GoldenSpec, inspect, split};
use golden_ami_core::naming::golden_image_tags;
use golden_ami_core::{Deps, ShareResult, StepError, StepInput, VerifyResult};

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
    let tags = golden_image_tags(
        &deps.config.pipeline_name,
        &input.context,
        &family.name,
        source_ami_id,
        state
            .bake_status
            .as_ref()
            .and_then(|status| status.updates.as_ref()),
    )?;
    let spec = GoldenSpec {
        tags: &tags,
        key_arn,
        principals: &share.principals,
        architecture: family.architecture,
        // The copy CopyImage made in this account.
        owner: None,
        now: deps.now(),
    };

    let mut checks = vec![
        check_identity(
            golden_ami_id,
            target.ami_id.as_deref(),
            state.intermediate_ami_id(),
        ),
        check_share_record(share, golden_ami_id),
    ];
    let inspection = inspect(region.ec2(), region.kms(), golden_ami_id, &spec).await?;
    checks.extend(inspection.checks);

    let (passed, failed) = split(checks);
    if !failed.is_empty() {
        return Err(StepError::VerificationFailed(failed));
    }
    tracing::info!(%golden_ami_id, checks = ?passed, "golden image verified");
    Ok(VerifyResult {
        golden_ami_id: golden_ami_id.to_string(),
        snapshot_ids: inspection.snapshot_ids,
        kms_key_arn: key_arn.to_string(),
        checks: passed,
    })
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
    use std::collections::HashMap;

    use aws_sdk_ec2::types::{
        ArchitectureValues, Image, ImageState, LaunchPermission, Snapshot, Tag,
    };
    use golden_ami_core::golden::*;
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
            .architecture(ArchitectureValues::X8664)
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
        assert_eq!(result.checks.len(), 8, "{:?}", result.checks);
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
