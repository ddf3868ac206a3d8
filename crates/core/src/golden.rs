//! What makes an image a family's golden image in a region. VerifyImage runs these checks on a
//! run's copy before any pointer moves; `golden-ami pin` runs them on the image a person pins,
//! so a pin is as strict as the pipeline. The decisions are plain functions over what EC2 and
//! KMS answered; `inspect` does the reading.

use std::collections::HashMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Image, ImageAttributeName, ImageState, LaunchPermission, Snapshot, Tag};
use time::OffsetDateTime;

use crate::error::{StepError, classify_sdk_error, error_code};
use crate::image::describe_image;
use crate::naming::{is_kms_key_arn, parse_timestamp};
use crate::targets::Architecture;
use crate::types::LaunchPrincipals;

/// One check: what passed (as a person reads it), or every problem found.
pub type Check = Result<String, Vec<String>>;

/// What a golden image of the family must be in one region.
#[derive(Debug, Clone)]
pub struct GoldenSpec<'a> {
    /// The tags it must carry, with their values.
    pub tags: &'a [(&'a str, String)],
    /// The region's golden key: every snapshot is encrypted under it.
    pub key_arn: &'a str,
    /// Who must be able to launch it (the stack's launch permission).
    pub principals: &'a LaunchPrincipals,
    pub architecture: Architecture,
    /// The account that must own it. None where the caller knows it is its own: VerifyImage
    /// checks the copy CopyImage just made in this account.
    pub owner: Option<&'a str>,
    /// A deprecation time at or before this makes it no golden image any more.
    pub now: OffsetDateTime,
}

/// Every check of one image, and its snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub checks: Vec<Check>,
    pub snapshot_ids: Vec<String>,
}

/// Read the image (a disabled one too), its snapshots, their keys and its launch permission,
/// and check each against `spec`. Err only for a failure to ask (throttling, access).
pub async fn inspect(
    ec2: &aws_sdk_ec2::Client,
    kms: &aws_sdk_kms::Client,
    image_id: &str,
    spec: &GoldenSpec<'_>,
) -> Result<Inspection, StepError> {
    let mut checks = Vec::new();
    let Some(image) = describe_image(ec2, image_id, true).await? else {
        checks.push(Err(vec![format!(
            "the golden image {image_id} does not exist"
        )]));
        return Ok(Inspection {
            checks,
            snapshot_ids: Vec::new(),
        });
    };
    if let Some(owner) = spec.owner {
        checks.push(check_owner(&image, owner));
    }
    checks.push(check_available(&image));
    checks.push(check_not_deprecated(&image, spec.now));
    checks.push(check_architecture(&image, spec.architecture));
    let (snapshot_ids, mapping_problems) = ebs_snapshot_ids(&image);
    if !mapping_problems.is_empty() {
        checks.push(Err(mapping_problems));
    }
    if !snapshot_ids.is_empty() {
        checks.push(verify_snapshots(ec2, kms, &snapshot_ids, spec.key_arn).await?);
    }
    checks.push(check_tags(spec.tags, image.tags()));
    let permissions = launch_permissions(ec2, image_id).await?;
    checks.push(
        permissions.and_then(|permissions| check_launch_permission(spec.principals, &permissions)),
    );
    Ok(Inspection {
        checks,
        snapshot_ids,
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

/// The launch permission on the image, or the check's failure if EC2 cannot tell.
async fn launch_permissions(
    ec2: &aws_sdk_ec2::Client,
    image_id: &str,
) -> Result<Result<Vec<LaunchPermission>, Vec<String>>, StepError> {
    match ec2
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

/// Describe the snapshots (DescribeImages does not return their keys), resolve any key that is
/// not given as a key ARN, and check each.
async fn verify_snapshots(
    ec2: &aws_sdk_ec2::Client,
    kms: &aws_sdk_kms::Client,
    ids: &[String],
    golden_key_arn: &str,
) -> Result<Check, StepError> {
    let snapshots = match ec2
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
            resolved.insert(key.to_string(), resolve_key(kms, key).await?);
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
    kms: &aws_sdk_kms::Client,
    key: &str,
) -> Result<Result<String, String>, StepError> {
    match kms.describe_key().key_id(key).send().await {
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

/// Available: neither pending, failed, deregistered nor disabled (DisableImage).
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

/// Owned by `account`: a public image or another account's is nobody's golden image here.
pub fn check_owner(image: &Image, account: &str) -> Check {
    let id = image.image_id().unwrap_or("(no id)");
    match image.owner_id() {
        Some(owner) if owner == account => Ok(format!("{id} is owned by this account {account}")),
        owner => Err(vec![format!(
            "{id} is owned by {}, not this account {account}",
            owner.unwrap_or("an unknown account")
        )]),
    }
}

/// Of the family's architecture.
pub fn check_architecture(image: &Image, architecture: Architecture) -> Check {
    let id = image.image_id().unwrap_or("(no id)");
    let found = image.architecture().map(|a| a.as_str());
    if found == Some(architecture.as_str()) {
        Ok(format!("{id} is {}", architecture.as_str()))
    } else {
        Err(vec![format!(
            "{id} is {}, not the family's architecture {}",
            found.unwrap_or("of an unknown architecture"),
            architecture.as_str()
        )])
    }
}

/// Not deprecated: a deprecation time at or before `now` (EnableImageDeprecation) retires it.
pub fn check_not_deprecated(image: &Image, now: OffsetDateTime) -> Check {
    let id = image.image_id().unwrap_or("(no id)");
    let Some(at) = image.deprecation_time() else {
        return Ok(format!("{id} is not deprecated"));
    };
    match parse_timestamp("DeprecationTime", at) {
        Ok(time) if time > now => Ok(format!("{id} is deprecated only from {at}")),
        Ok(_) => Err(vec![format!("{id} is deprecated since {at}")]),
        Err(error) => Err(vec![format!("{id}: {error}")]),
    }
}

/// Every principal the stack shares with is in the image's launch permission.
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
    use aws_sdk_ec2::types::ArchitectureValues;

    use super::*;

    const IMAGE: &str = "ami-0c0ffee0123456789";

    fn image() -> aws_sdk_ec2::types::builders::ImageBuilder {
        Image::builder().image_id(IMAGE)
    }

    fn at(text: &str) -> OffsetDateTime {
        parse_timestamp("now", text).unwrap()
    }

    #[test]
    fn a_public_image_or_another_accounts_is_not_ours() {
        let ours = image().owner_id("111122223333").build();
        assert!(check_owner(&ours, "111122223333").is_ok());
        let amazon = image().owner_id("137112412989").build();
        assert_eq!(
            check_owner(&amazon, "111122223333"),
            Err(vec![format!(
                "{IMAGE} is owned by 137112412989, not this account 111122223333"
            )])
        );
        assert!(check_owner(&image().build(), "111122223333").is_err());
    }

    #[test]
    fn only_the_familys_architecture_passes() {
        let arm = image().architecture(ArchitectureValues::Arm64).build();
        assert!(check_architecture(&arm, Architecture::Arm64).is_ok());
        assert_eq!(
            check_architecture(&arm, Architecture::X86_64),
            Err(vec![format!(
                "{IMAGE} is arm64, not the family's architecture x86_64"
            )])
        );
        assert!(check_architecture(&image().build(), Architecture::X86_64).is_err());
    }

    #[test]
    fn a_deprecated_image_fails_from_its_deprecation_time_on() {
        let now = at("2026-12-01T08:00:00Z");
        assert!(check_not_deprecated(&image().build(), now).is_ok());
        let later = image().deprecation_time("2026-12-05T00:00:00.000Z").build();
        assert!(check_not_deprecated(&later, now).is_ok());
        let past = image().deprecation_time("2026-11-01T00:00:00.000Z").build();
        assert_eq!(
            check_not_deprecated(&past, now),
            Err(vec![format!(
                "{IMAGE} is deprecated since 2026-11-01T00:00:00.000Z"
            )])
        );
        let now_exactly = image().deprecation_time("2026-12-01T08:00:00Z").build();
        assert!(check_not_deprecated(&now_exactly, now).is_err());
    }

    #[test]
    fn a_disabled_image_is_not_available() {
        let disabled = image().state(ImageState::Disabled).build();
        assert_eq!(
            check_available(&disabled),
            Err(vec![format!(
                "the golden image {IMAGE} is disabled, not available"
            )])
        );
    }
}
