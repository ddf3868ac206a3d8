//! Names, tags, idempotency tokens, dates and id checks: pure functions, tested without mocks.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
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
/// The pipeline stack (its name, the functions' PIPELINE_NAME) that made an image, snapshot,
/// instance or volume, set in the call that creates it. Cleanup, the reaper and Retain remove
/// only what carries their own stack's value: two stacks in one account never touch each
/// other's resources.
pub const TAG_STACK: &str = "golden-ami:stack";
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
    stack: &str,
    context: &ExecutionContext,
    family: &str,
    source_ami_id: &str,
    updates: Option<&UpdateSummary>,
) -> Result<Vec<(&'static str, String)>, StepError> {
    let mut tags = vec![
        (TAG_TYPE, TYPE_GOLDEN.to_string()),
        (TAG_STACK, stack.to_string()),
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

/// The characters an SSM parameter name may hold (and `/`, which separates its levels):
/// "Requirements and constraints for parameter names",
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html
fn is_parameter_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-".contains(c)
}

/// SSM refused a parameter name or path as one it cannot hold: a ValidationException about the
/// name (AWS: "Parameter name: ... each sub-path can be formed as a mix of letters, numbers and
/// the following 3 symbols .-_"; GetParametersByPath: "The parameter doesn't meet the parameter
/// name requirements"). No parameter can exist under such a name: reading or deleting it finds
/// nothing.
pub fn is_invalid_parameter_name(error: &impl ProvideErrorMetadata) -> bool {
    error.code() == Some("ValidationException")
        && error.message().is_some_and(|message| {
            let message = message.to_ascii_lowercase();
            message.contains("name") || message.contains("path")
        })
}

/// Hex digits of the hash a rewritten segment ends with (40 bits: a collision between two
/// execution names of one stack is out of reach).
const SEGMENT_HASH_LEN: usize = 10;

/// An execution's name as one level of an SSM parameter name. Step Functions allows names SSM
/// does not (`rerun@dec`, `retry+1`, non-ASCII letters: StartExecution forbids only whitespace,
/// brackets, `?*"#%\^|~`$&,;:/` and control characters), so a name SSM would refuse has its
/// other characters replaced by `_` and a hash of the whole name appended: two names never
/// share a segment. A name already safe is kept as it is, unless it ends like a rewritten one
/// (`-` and 10 hex digits), which is rewritten too, so that no name is the image of another.
/// At most 80 characters (the longest execution name) + 11, far inside SSM's 1011.
pub fn parameter_segment(name: &str) -> String {
    let safe = !name.is_empty() && name.chars().all(is_parameter_name_char);
    if safe && !looks_rewritten(name) {
        return name.to_string();
    }
    let replaced: String = name
        .chars()
        .map(|c| if is_parameter_name_char(c) { c } else { '_' })
        .collect();
    let hash: String = Uuid::new_v5(
        &TOKEN_NAMESPACE,
        format!("parameter-segment/{name}").as_bytes(),
    )
    .simple()
    .to_string()
    .chars()
    .take(SEGMENT_HASH_LEN)
    .collect();
    format!("{replaced}-{hash}")
}

/// Ends with `-` and [`SEGMENT_HASH_LEN`] lowercase hex digits, as [`parameter_segment`]'s
/// rewritten names do.
fn looks_rewritten(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > SEGMENT_HASH_LEN
        && bytes[bytes.len() - SEGMENT_HASH_LEN - 1] == b'-'
        && bytes[bytes.len() - SEGMENT_HASH_LEN..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
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
        let tags = golden_image_tags(
            "golden-ami-pipeline",
            &context(),
            "al2023-arm64",
            "ami-12345678",
            None,
        )
        .unwrap();
        assert!(tags.contains(&(TAG_STACK, "golden-ami-pipeline".to_string())));
        assert!(tags.contains(&(TAG_FAMILY, "al2023-arm64".to_string())));
        assert!(tags.contains(&(TAG_TYPE, "golden-ami".to_string())));
        assert!(tags.contains(&(TAG_SOURCE_AMI, "ami-12345678".to_string())));
        assert!(tags.contains(&(TAG_PATCH_DATE, "2026-12-01".to_string())));
        assert!(tags.contains(&(TAG_EXECUTION, context().execution_id)));
    }

    #[test]
    fn a_safe_execution_name_is_its_own_parameter_segment() {
        for name in [
            "2026-12-01-monthly",
            "manual-20261201T080000",
            "demo_approval.2",
        ] {
            assert_eq!(parameter_segment(name), name);
        }
    }

    #[test]
    fn an_unsafe_execution_name_is_rewritten_with_a_hash_of_the_original() {
        let segment = parameter_segment("rerun@dec");
        assert!(segment.starts_with("rerun_dec-"), "{segment}");
        assert_eq!(segment.len(), "rerun_dec-".len() + SEGMENT_HASH_LEN);
        // Stable: RequestApproval, cleanup and the CLI derive it apart.
        assert_eq!(parameter_segment("rerun@dec"), segment);
        // Names that differ only in the replaced characters stay apart, and none takes the
        // name of a safe one.
        let others = [
            "rerun+dec",
            "rerun_dec",
            "rerun@déc",
            "rerun_dec-0000000000",
        ];
        let mut all: Vec<String> = others.iter().map(|n| parameter_segment(n)).collect();
        all.push(segment.clone());
        all.push(parameter_segment(&segment));
        let mut distinct = all.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
        // A safe name that ends like a rewritten one is rewritten too.
        assert_ne!(parameter_segment(&segment), segment);
        assert_eq!(parameter_segment("rerun_dec"), "rerun_dec");
    }

    #[test]
    fn every_segment_is_a_valid_ssm_name_level_within_the_length_limit() {
        let longest = "é".repeat(80);
        for name in [
            "retry+1",
            "a b",
            "日本語",
            "x",
            "",
            &longest,
            "ünïcödé@+=!'()",
        ] {
            let segment = parameter_segment(name);
            assert!(!segment.is_empty());
            assert!(segment.chars().all(is_parameter_name_char), "{segment}");
            assert!(segment.len() <= 80 + 1 + SEGMENT_HASH_LEN, "{segment}");
        }
    }

    #[test]
    fn a_validation_exception_about_the_name_means_no_such_parameter() {
        use aws_smithy_types::error::ErrorMetadata;
        let error = |code: &str, message: &str| {
            ErrorMetadata::builder().code(code).message(message).build()
        };
        assert!(is_invalid_parameter_name(&error(
            "ValidationException",
            "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_"
        )));
        assert!(is_invalid_parameter_name(&error(
            "ValidationException",
            "The parameter doesn't meet the parameter name requirements."
        )));
        assert!(!is_invalid_parameter_name(&error(
            "ValidationException",
            "1 validation error detected: Value 100 at 'maxResults' failed to satisfy constraint"
        )));
        assert!(!is_invalid_parameter_name(&error(
            "AccessDeniedException",
            "not authorized on parameter name /x"
        )));
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
