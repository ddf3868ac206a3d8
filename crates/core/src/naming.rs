//! Names, tags, idempotency tokens, dates and id checks: pure functions, tested without mocks.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::error::StepError;
use crate::report::UpdateSummary;
use crate::targets::DEFAULT_FAMILY;
use crate::types::ExecutionContext;

/// Tag keys the pipeline writes on the golden image (and verification checks).
pub const TAG_TYPE: &str = "Type";
pub const TYPE_GOLDEN: &str = "golden-ami";
pub const TYPE_INTERMEDIATE: &str = "golden-ami-intermediate";
pub const TAG_SOURCE_AMI: &str = "golden-ami:source-ami-id";
pub const TAG_EXECUTION: &str = "golden-ami:execution";
pub const TAG_PATCH_DATE: &str = "golden-ami:patch-date";
/// The image family a golden image belongs to (retention and the CLI work per family).
pub const TAG_FAMILY: &str = "golden-ami:family";
/// Set by the bake and test documents on the instances, volumes, images and snapshots they make.
pub const TAG_AUTOMATION_EXECUTION: &str = "golden-ami:automation-execution";
/// Set by PublishPointer on a golden image just before it writes a pointer to it (the value
/// names the pointer): SSM validates the write asynchronously, so until then the pointer may
/// come to hold the image, and the failure path keeps it.
pub const TAG_POINTER_WRITE: &str = "golden-ami:pointer-write";

/// Namespace of the idempotency tokens (a fixed random UUID: tokens are stable across releases).
const TOKEN_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c0e_9b7d_4e21_a5c8_2f4d_7e90_1b36);

/// An idempotency token for one step of one execution: the same on every retry of that step,
/// different for every other step or execution. A UUID, because SSM requires that format and
/// EC2 accepts it (64 ASCII characters at most).
pub fn idempotency_token(execution_id: &str, step: &str) -> String {
    Uuid::new_v5(
        &TOKEN_NAMESPACE,
        format!("{execution_id}/{step}").as_bytes(),
    )
    .to_string()
}

/// A short, stable suffix that keeps one execution's image names unique.
pub fn run_suffix(execution_id: &str) -> String {
    let token = idempotency_token(execution_id, "name");
    token
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect()
}

/// When the execution started, as a timestamp.
pub fn started_at(context: &ExecutionContext) -> Result<OffsetDateTime, StepError> {
    parse_timestamp("context.startedAt", &context.started_at)
}

/// The patch date of a run: the day its execution started (UTC).
pub fn patch_date(context: &ExecutionContext) -> Result<Date, StepError> {
    Ok(started_at(context)?.date())
}

pub fn parse_timestamp(field: &str, value: &str) -> Result<OffsetDateTime, StepError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|error| {
        StepError::InvalidInput(format!(
            "{field} is {value:?}, expected an RFC 3339 timestamp such as 2026-12-01T08:00:00Z ({error})"
        ))
    })
}

pub fn format_timestamp(value: OffsetDateTime) -> String {
    // Formatting a valid OffsetDateTime as RFC 3339 only fails for years outside 0..=9999.
    value
        .format(&Rfc3339)
        .unwrap_or_else(|_| value.unix_timestamp().to_string())
}

/// "PREFIX-" for the default family (the names a one-family setup always had), else
/// "PREFIX-FAMILY-".
fn family_prefix(prefix: &str, family: &str) -> String {
    if family == DEFAULT_FAMILY {
        format!("{prefix}-")
    } else {
        format!("{prefix}-{family}-")
    }
}

/// The intermediate (baked, account-key) image's name: the family, dated, with the source id.
/// Deterministic per execution and family, so a failure path can find it without its id.
pub fn intermediate_image_name(
    prefix: &str,
    family: &str,
    context: &ExecutionContext,
    source_ami_id: &str,
) -> Result<String, StepError> {
    Ok(format!(
        "{}intermediate-{}-{source_ami_id}-{}",
        family_prefix(prefix, family),
        patch_date(context)?,
        run_suffix(&context.execution_id)
    ))
}

/// The golden (re-encrypted, shared) image's name, the same in every region of the family.
pub fn golden_image_name(
    prefix: &str,
    family: &str,
    context: &ExecutionContext,
) -> Result<String, StepError> {
    Ok(format!(
        "{}{}-{}",
        family_prefix(prefix, family),
        patch_date(context)?,
        run_suffix(&context.execution_id)
    ))
}

/// The idempotency token of one step for one family (and region): the same on every retry,
/// different for every other family, region, step or execution.
pub fn target_token(execution_id: &str, step: &str, family: &str, region: Option<&str>) -> String {
    match region {
        Some(region) => idempotency_token(execution_id, &format!("{step}/{family}/{region}")),
        None => idempotency_token(execution_id, &format!("{step}/{family}")),
    }
}

/// The tags of the golden image: what it is, where it comes from, which run made it, and what
/// the update changed (when the bake reported it).
pub fn golden_image_tags(
    context: &ExecutionContext,
    family: &str,
    source_ami_id: &str,
    updates: Option<&UpdateSummary>,
) -> Result<Vec<(&'static str, String)>, StepError> {
    let mut tags = vec![
        (TAG_TYPE, TYPE_GOLDEN.to_string()),
        (TAG_FAMILY, family.to_string()),
        (TAG_SOURCE_AMI, source_ami_id.to_string()),
        (TAG_EXECUTION, context.execution_id.clone()),
        (TAG_PATCH_DATE, patch_date(context)?.to_string()),
    ];
    tags.extend(updates.map(UpdateSummary::tags).unwrap_or_default());
    Ok(tags)
}

/// `ami-` followed by 8 or 17 lowercase hex digits.
pub fn is_ami_id(value: &str) -> bool {
    value.strip_prefix("ami-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `arn:PARTITION:kms:REGION:ACCOUNT:key/ID` (aliases are not key ARNs).
pub fn is_kms_key_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "kms"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[5]
            .strip_prefix("key/")
            .is_some_and(|id| !id.is_empty())
}

pub fn is_organization_arn(value: &str) -> bool {
    value.starts_with("arn:aws")
        && value.contains(":organizations::")
        && value.contains(":organization/o-")
}

pub fn is_organizational_unit_arn(value: &str) -> bool {
    value.starts_with("arn:aws") && value.contains(":organizations::") && value.contains(":ou/o-")
}

/// EC2 image names allow 3-128 characters of this set; the prefix leaves room for the rest.
pub fn is_valid_image_name_prefix(value: &str) -> bool {
    (1..=60).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[]./-'@_".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> ExecutionContext {
        ExecutionContext {
            execution_id:
                "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:2026-12-01"
                    .into(),
            started_at: "2026-12-01T08:00:03.512Z".into(),
        }
    }

    #[test]
    fn target_tokens_differ_per_family_and_region() {
        let a = target_token("exec-1", "CopyImage", "x86", Some("eu-west-1"));
        assert_eq!(
            a,
            target_token("exec-1", "CopyImage", "x86", Some("eu-west-1"))
        );
        assert_ne!(
            a,
            target_token("exec-1", "CopyImage", "x86", Some("us-east-1"))
        );
        assert_ne!(
            a,
            target_token("exec-1", "CopyImage", "arm", Some("eu-west-1"))
        );
        assert_ne!(
            target_token("exec-1", "StartBake", "x86", None),
            target_token("exec-1", "StartBake", "arm", None)
        );
    }

    #[test]
    fn tokens_are_stable_per_step_and_differ_between_steps_and_runs() {
        let a = idempotency_token("exec-1", "StartBake");
        assert_eq!(a, idempotency_token("exec-1", "StartBake"));
        assert_ne!(a, idempotency_token("exec-1", "CopyImage"));
        assert_ne!(a, idempotency_token("exec-2", "StartBake"));
        assert!(Uuid::parse_str(&a).is_ok());
        assert!(a.len() <= 64);
    }

    #[test]
    fn names_are_dated_and_carry_the_source_and_run() {
        let ctx = context();
        let suffix = run_suffix(&ctx.execution_id);
        assert_eq!(suffix.len(), 8);
        assert_eq!(
            intermediate_image_name("golden-ami", "default", &ctx, "ami-0123456789abcdef0")
                .unwrap(),
            format!("golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-{suffix}")
        );
        assert_eq!(
            golden_image_name("golden-ami", "default", &ctx).unwrap(),
            format!("golden-ami-2026-12-01-{suffix}")
        );
        // Another family: its name in every name, so two families of a run never collide.
        assert_eq!(
            golden_image_name("golden-ami", "al2023-arm64", &ctx).unwrap(),
            format!("golden-ami-al2023-arm64-2026-12-01-{suffix}")
        );
        assert_eq!(
            intermediate_image_name("golden-ami", "al2023-arm64", &ctx, "ami-12345678").unwrap(),
            format!("golden-ami-al2023-arm64-intermediate-2026-12-01-ami-12345678-{suffix}")
        );
    }

    #[test]
    fn a_bad_start_time_is_invalid_input() {
        let mut ctx = context();
        ctx.started_at = "yesterday".into();
        let error = golden_image_name("golden-ami", "default", &ctx).unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("context.startedAt"));
    }

    #[test]
    fn tags_name_type_source_execution_and_date() {
        let tags = golden_image_tags(&context(), "al2023-arm64", "ami-12345678", None).unwrap();
        assert!(tags.contains(&(TAG_FAMILY, "al2023-arm64".to_string())));
        assert!(tags.contains(&(TAG_TYPE, "golden-ami".to_string())));
        assert!(tags.contains(&(TAG_SOURCE_AMI, "ami-12345678".to_string())));
        assert!(tags.contains(&(TAG_PATCH_DATE, "2026-12-01".to_string())));
        assert!(tags.contains(&(TAG_EXECUTION, context().execution_id)));
    }

    #[test]
    fn id_checks() {
        assert!(is_ami_id("ami-0123456789abcdef0"));
        assert!(is_ami_id("ami-12345678"));
        assert!(!is_ami_id("ami-0123456789ABCDEF0"));
        assert!(!is_ami_id("ami-123"));
        assert!(!is_ami_id("resolve:ssm:/x"));
        assert!(is_kms_key_arn(
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ));
        assert!(!is_kms_key_arn(
            "arn:aws:kms:eu-west-1:111122223333:alias/x"
        ));
        assert!(!is_kms_key_arn("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(is_organization_arn(
            "arn:aws:organizations::111122223333:organization/o-abc123"
        ));
        assert!(is_organizational_unit_arn(
            "arn:aws:organizations::111122223333:ou/o-abc123/ou-ab12-cd34ef56"
        ));
        assert!(is_valid_image_name_prefix("golden-ami"));
        assert!(!is_valid_image_name_prefix("golden ami"));
    }
}
