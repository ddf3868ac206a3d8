//! What a run patches: the image families, and the regions each golden image is published in.
//!
//! The list lives in one SSM parameter of the stack (TARGETS_PARAMETER_NAME), written by the
//! stack from its `ImageFamilies` and `TargetRegions` parameters, so that a change to the matrix
//! is a reviewed stack update like any other. PlanRun reads it at the start of every run and
//! validates it here: a bad entry is a ConfigError that names the entry and what to do.

use serde::{Deserialize, Serialize};

use crate::error::StepError;
use crate::naming;

/// The name of the family a one-family setup gets: its image names keep their original form.
pub const DEFAULT_FAMILY: &str = "default";

/// The most families a run processes at once unless the targets say otherwise.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 2;

/// Past this many families an inline Map holds too much state; distributed Map is the way.
pub const MAX_FAMILIES: usize = 40;

/// The approval gate's deadline bounds, in minutes. The upper bound is the stack's
/// ApprovalTimeoutMinutes MaxValue: the state machine's TimeoutSeconds leaves room for it
/// (tests/tests/contract.rs holds the two together).
pub const MIN_APPROVAL_MINUTES: u32 = 10;
pub const MAX_APPROVAL_MINUTES: u32 = 4320;
/// A family that asks for approval (`"approval": true`) when the targets set no deadline.
pub const DEFAULT_APPROVAL_MINUTES: u32 = 1440;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

/// How a family's golden image gets under the golden key (the stack's EncryptionMode; a family's
/// own `encryption` in ImageFamilies wins).
/// - `copy` (the default): the bake makes an intermediate image, and CopyImage re-encrypts it
///   under the region's golden key in every target region, the home region included.
/// - `direct`: the bake launches its instance with every EBS volume under the home region's
///   golden key, so its image already is the home region's golden image (no intermediate image,
///   no home CopyImage); the other regions copy from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    #[default]
    Copy,
    Direct,
}

impl Encryption {
    pub fn is_copy(&self) -> bool {
        *self == Self::Copy
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::Direct => "direct",
        }
    }

    /// The `Type` tag of the image a bake makes: the intermediate image, or (direct) the home
    /// region's golden image.
    pub fn baked_image_type(&self) -> &'static str {
        match self {
            Self::Copy => naming::TYPE_INTERMEDIATE,
            Self::Direct => naming::TYPE_GOLDEN,
        }
    }
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// One image family as the targets document declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FamilySpec {
    pub name: String,
    /// The pointer parameter's name, the same in every target region.
    pub pointer: String,
    pub architecture: Architecture,
    /// The bake's and the boot test's instance type (its architecture must be the family's).
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Refused when set (see `validate`): kept so that a targets document naming one is told
    /// why, not merely that the field is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    /// Publish in these target regions only (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// What the first run bakes from while the family's home pointer does not exist yet: an
    /// AMI id, or a public SSM parameter such as
    /// /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64. Once the
    /// pointer exists it is the source; this is never read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// Overrides the targets' `approval` for this family: true gates it (with the targets'
    /// deadline, or DEFAULT_APPROVAL_MINUTES), false publishes it without asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<bool>,
    /// Overrides the targets' `encryption` for this family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

/// The approval gate of the targets document (the stack's RequireApproval and
/// ApprovalTimeoutMinutes): every family waits for a person between its boot test and its
/// publication, at most this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalSpec {
    pub timeout_minutes: u32,
}

/// A target region as the targets document lists it. Without `kmsKeyArn`, the region's copy
/// of the stack's multi-Region golden key is used (a replica keeps the key id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegionEntry {
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

/// One target region and the golden key the copies there are encrypted under (a replica of a
/// multi-Region key, so the same key material and key id serve every region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionSpec {
    pub region: String,
    pub kms_key_arn: String,
}

/// The targets document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Targets {
    pub families: Vec<FamilySpec>,
    pub regions: Vec<RegionEntry>,
    /// How many families are patched at once (the family Map's MaxConcurrency).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u32,
    /// Present: families wait for an approval before they publish (see ApprovalSpec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSpec>,
    /// The families' encryption mode (the stack's EncryptionMode; default copy).
    #[serde(default, skip_serializing_if = "Encryption::is_copy")]
    pub encryption: Encryption,
}

fn default_concurrency() -> u32 {
    DEFAULT_MAX_CONCURRENCY
}

/// What one family's Map iteration works with: the family, resolved against the stack's
/// defaults, with its home region (where it is baked and tested) and every region it targets
/// (home first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyTarget {
    pub name: String,
    pub pointer: String,
    pub architecture: Architecture,
    pub instance_type: String,
    pub subnet_id: String,
    pub instance_profile: String,
    pub home_region: String,
    pub regions: Vec<RegionSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// Present: the family waits at AwaitApproval (the state machine's Choice tests it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalGate>,
    /// How the golden image gets under the golden key: StartBake, CopyImage and Cleanup read it.
    #[serde(default, skip_serializing_if = "Encryption::is_copy")]
    pub encryption: Encryption,
}

/// A gated family's approval deadline, as AwaitApproval's TimeoutSecondsPath reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalGate {
    pub timeout_seconds: u64,
}

impl FamilyTarget {
    /// The one-family setup keeps the image names it always had.
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_FAMILY
    }

    pub fn region(&self, name: &str) -> Option<&RegionSpec> {
        self.regions.iter().find(|region| region.region == name)
    }
}

/// Where the targets come from, for error messages: "parameter /x (version 3)".
pub struct Source<'a> {
    pub parameter: &'a str,
    pub version: i64,
}

/// The stack's context the targets are read in.
pub struct Stack<'a> {
    /// Where the pipeline runs: families are baked and tested here.
    pub home_region: &'a str,
    /// Every pointer is under this prefix (the functions may only write there).
    pub pointer_prefix: &'a str,
    /// The golden key in the home region (GOLDEN_KMS_KEY_ARN), if the stack made one: a region
    /// without its own kmsKeyArn uses this key's replica.
    pub golden_key_arn: Option<&'a str>,
}

/// The key of `region` for a region entry: its own, or the golden multi-Region key's replica
/// there (same key id, the region in the ARN).
pub fn region_key(entry: &RegionEntry, golden_key_arn: Option<&str>) -> Result<String, String> {
    if let Some(arn) = &entry.kms_key_arn {
        return Ok(arn.clone());
    }
    let Some(golden) = golden_key_arn else {
        return Err(
            "no kmsKeyArn, and the stack has no golden key to derive it from: give the region's key"
                .into(),
        );
    };
    let parts: Vec<&str> = golden.split(':').collect();
    let key_id = parts.get(5).and_then(|p| p.strip_prefix("key/"));
    match (parts.len(), key_id) {
        (6, Some(id)) if id.starts_with("mrk-") => Ok(format!(
            "{}:{}:{}:{}:{}:{}",
            parts[0], parts[1], parts[2], entry.region, parts[4], parts[5]
        )),
        _ => Err(format!(
            "no kmsKeyArn, and the golden key {golden} is not a multi-Region key (mrk-...), so it has no replica to use: give the region's key"
        )),
    }
}

/// A baseImage is an AMI id or a parameter name (public parameters of AWS start /aws/service/).
fn is_base_image(value: &str) -> bool {
    naming::is_ami_id(value) || is_parameter_name(value)
}

impl Targets {
    /// Parse and validate the targets document; every problem names its entry.
    pub fn parse(text: &str, source: &Source<'_>, stack: &Stack<'_>) -> Result<Self, StepError> {
        let (home_region, pointer_prefix) = (stack.home_region, stack.pointer_prefix);
        let where_ = format!("{} (version {})", source.parameter, source.version);
        let targets: Targets = serde_json::from_str(text).map_err(|error| {
            StepError::ConfigError(format!(
                "the targets parameter {where_} is not a valid targets document ({error}); expected {{\"families\": [{{\"name\", \"pointer\", \"architecture\", \"instanceType\"}}...], \"regions\": [{{\"region\", \"kmsKeyArn\"}}...]}}: fix the stack's ImageFamilies / TargetRegions parameters"
            ))
        })?;
        let bad = |entry: String, problem: String| {
            StepError::ConfigError(format!(
                "the targets parameter {where_}: {entry}: {problem}"
            ))
        };
        if targets.families.is_empty() {
            return Err(bad("families".into(), "the list is empty".into()));
        }
        if targets.families.len() > MAX_FAMILIES {
            return Err(bad(
                "families".into(),
                format!(
                    "{} families are more than an inline Map of this pipeline holds ({MAX_FAMILIES}): split the targets into two stacks",
                    targets.families.len()
                ),
            ));
        }
        if !(1..=40).contains(&targets.max_concurrency) {
            return Err(bad(
                "maxConcurrency".into(),
                format!("{} is not from 1 to 40", targets.max_concurrency),
            ));
        }
        if let Some(approval) = targets.approval
            && !(MIN_APPROVAL_MINUTES..=MAX_APPROVAL_MINUTES).contains(&approval.timeout_minutes)
        {
            return Err(bad(
                "approval.timeoutMinutes".into(),
                format!(
                    "{} is not from {MIN_APPROVAL_MINUTES} to {MAX_APPROVAL_MINUTES} (3 days, what the state machine's timeout leaves room for)",
                    approval.timeout_minutes
                ),
            ));
        }
        if targets.regions.is_empty() {
            return Err(bad("regions".into(), "the list is empty".into()));
        }
        for (i, region) in targets.regions.iter().enumerate() {
            let entry = format!("regions[{i}] ({})", region.region);
            if !is_region_name(&region.region) {
                return Err(bad(entry, "not a region name such as eu-west-1".into()));
            }
            if targets.regions[..i]
                .iter()
                .any(|other| other.region == region.region)
            {
                return Err(bad(entry, "listed twice".into()));
            }
            let key = region_key(region, stack.golden_key_arn)
                .map_err(|problem| bad(entry.clone(), problem))?;
            if !naming::is_kms_key_arn(&key)
                || key.split(':').nth(3) != Some(region.region.as_str())
            {
                return Err(bad(
                    entry,
                    format!(
                        "kmsKeyArn {key:?} is not a key ARN in {} (use the region's replica of the golden multi-Region key)",
                        region.region
                    ),
                ));
            }
        }
        if !targets.regions.iter().any(|r| r.region == home_region) {
            return Err(bad(
                "regions".into(),
                format!(
                    "the home region {home_region}, where families are baked and tested, is not a target region"
                ),
            ));
        }
        for (i, family) in targets.families.iter().enumerate() {
            let entry = format!("families[{i}] ({})", family.name);
            if !is_family_name(&family.name) {
                return Err(bad(
                    entry,
                    "name must be 1-32 characters of a-z, 0-9, '-', '_' and '.'".into(),
                ));
            }
            if targets.families[..i]
                .iter()
                .any(|other| other.name == family.name)
            {
                return Err(bad(entry, "the name is used twice".into()));
            }
            if !family.pointer.starts_with(pointer_prefix) || !is_parameter_name(&family.pointer) {
                return Err(bad(
                    entry,
                    format!(
                        "pointer {:?} must be a parameter name under {pointer_prefix} (the functions may only write there)",
                        family.pointer
                    ),
                ));
            }
            if let Some(other) = targets.families[..i]
                .iter()
                .find(|other| other.pointer == family.pointer)
            {
                return Err(bad(
                    entry,
                    format!("pointer {} is family {}'s too", family.pointer, other.name),
                ));
            }
            if let Some(arch) = instance_architecture(&family.instance_type)
                && arch != family.architecture
            {
                return Err(bad(
                    entry,
                    format!(
                        "instanceType {} runs {} but the family's architecture is {}",
                        family.instance_type,
                        arch.as_str(),
                        family.architecture.as_str()
                    ),
                ));
            }
            if let Some(base) = &family.base_image
                && !is_base_image(base)
            {
                return Err(bad(
                    entry,
                    format!(
                        "baseImage {base:?} is neither an AMI id nor a parameter name such as /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
                    ),
                ));
            }
            if family.instance_type.trim().is_empty() {
                return Err(bad(entry, "instanceType is empty".into()));
            }
            if let Some(subnet) = &family.subnet_id
                && !subnet.starts_with("subnet-")
            {
                return Err(bad(
                    entry,
                    format!(
                        "subnetId {subnet:?} is not a subnet id (it must be a subnet of the stack's BakeVpcId)"
                    ),
                ));
            }
            if let Some(profile) = &family.instance_profile {
                return Err(bad(
                    entry,
                    format!(
                        "instanceProfile {profile:?} cannot be used: the bake automation role may pass only the stack's bake instance role, so a family's own profile could never launch; remove instanceProfile (every family bakes and boots with the stack's instance profile, whose role the baseline and the report upload need)"
                    ),
                ));
            }
            for region in family.regions.iter().flatten() {
                if !targets.regions.iter().any(|r| &r.region == region) {
                    return Err(bad(
                        entry,
                        format!("region {region} is not one of the target regions"),
                    ));
                }
            }
            if let Some(regions) = &family.regions
                && !regions.iter().any(|r| r == home_region)
            {
                return Err(bad(
                    entry,
                    format!(
                        "its regions must include the home region {home_region}, where it is baked and tested"
                    ),
                ));
            }
        }
        Ok(targets)
    }

    /// Every family, resolved: the stack's subnet unless the family names its own (a subnet of
    /// the bake VPC), the stack's instance profile, its regions with the home region first.
    pub fn plan(
        &self,
        stack: &Stack<'_>,
        subnet_id: &str,
        instance_profile: &str,
    ) -> Result<Vec<FamilyTarget>, StepError> {
        let home_region = stack.home_region;
        let resolved: Vec<RegionSpec> = self
            .regions
            .iter()
            .map(|entry| {
                region_key(entry, stack.golden_key_arn)
                    .map(|kms_key_arn| RegionSpec {
                        region: entry.region.clone(),
                        kms_key_arn,
                    })
                    .map_err(|problem| {
                        StepError::ConfigError(format!("target region {}: {problem}", entry.region))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(self
            .families
            .iter()
            .map(|family| {
                let wanted = |region: &RegionSpec| {
                    family
                        .regions
                        .as_ref()
                        .is_none_or(|names| names.contains(&region.region))
                };
                let mut regions: Vec<RegionSpec> = resolved
                    .iter()
                    .filter(|r| r.region == home_region)
                    .chain(resolved.iter().filter(|r| r.region != home_region))
                    .filter(|r| wanted(r))
                    .cloned()
                    .collect();
                regions.dedup_by(|a, b| a.region == b.region);
                FamilyTarget {
                    name: family.name.clone(),
                    pointer: family.pointer.clone(),
                    architecture: family.architecture,
                    instance_type: family.instance_type.clone(),
                    subnet_id: family
                        .subnet_id
                        .clone()
                        .unwrap_or_else(|| subnet_id.to_string()),
                    instance_profile: instance_profile.to_string(),
                    home_region: home_region.to_string(),
                    regions,
                    base_image: family.base_image.clone(),
                    approval: self.approval_of(family),
                    encryption: family.encryption.unwrap_or(self.encryption),
                }
            })
            .collect())
    }

    /// A family's gate: its own `approval` flag wins over the targets' `approval`.
    fn approval_of(&self, family: &FamilySpec) -> Option<ApprovalGate> {
        let minutes = match (family.approval, self.approval) {
            (Some(false), _) | (None, None) => return None,
            (_, Some(spec)) => spec.timeout_minutes,
            (Some(true), None) => DEFAULT_APPROVAL_MINUTES,
        };
        Some(ApprovalGate {
            timeout_seconds: u64::from(minutes) * 60,
        })
    }

    /// The longest approval deadline of the run, which the run's lock must outlast.
    pub fn longest_approval(families: &[FamilyTarget]) -> std::time::Duration {
        let seconds = families
            .iter()
            .filter_map(|family| family.approval.map(|gate| gate.timeout_seconds))
            .max()
            .unwrap_or(0);
        std::time::Duration::from_secs(seconds)
    }
}

/// The architecture an instance type's family implies, where its name says it (a "g" after
/// the generation: t4g, m7g, c8g...; "a" is AMD, also x86_64).
pub fn instance_architecture(instance_type: &str) -> Option<Architecture> {
    let family = instance_type.split('.').next()?;
    let generation = family.find(|c: char| c.is_ascii_digit())?;
    let attributes = &family[generation..].trim_start_matches(|c: char| c.is_ascii_digit());
    if attributes.starts_with('g') {
        Some(Architecture::Arm64)
    } else {
        Some(Architecture::X86_64)
    }
}

fn is_region_name(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_family_name(value: &str) -> bool {
    (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

fn is_parameter_name(value: &str) -> bool {
    value.starts_with('/')
        && value.len() <= 1011
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: Source<'static> = Source {
        parameter: "/golden-ami-pipeline/targets",
        version: 3,
    };
    const KEY_EU: &str =
        "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
    const KEY_US: &str =
        "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

    fn two_by_two() -> serde_json::Value {
        serde_json::json!({
            "families": [
                {"name": "al2023-x86_64", "pointer": "/golden-ami/al2023-x86_64", "architecture": "x86_64", "instanceType": "t3.small"},
                {"name": "al2023-arm64", "pointer": "/golden-ami/al2023-arm64", "architecture": "arm64", "instanceType": "t4g.small", "subnetId": "subnet-0fedcba9876543210"}
            ],
            "regions": [
                {"region": "us-east-1", "kmsKeyArn": KEY_US},
                {"region": "eu-west-1", "kmsKeyArn": KEY_EU}
            ],
            "maxConcurrency": 2
        })
    }

    const STACK: Stack<'static> = Stack {
        home_region: "eu-west-1",
        pointer_prefix: "/golden-ami/",
        golden_key_arn: Some(KEY_EU),
    };

    fn parse(value: &serde_json::Value) -> Result<Targets, StepError> {
        Targets::parse(&value.to_string(), &SOURCE, &STACK)
    }

    #[test]
    fn a_matrix_plans_every_family_with_the_home_region_first() {
        let targets = parse(&two_by_two()).unwrap();
        let plan = targets
            .plan(&STACK, "subnet-0123456789abcdef0", "bake-profile")
            .unwrap();
        assert_eq!(plan.len(), 2);
        let arm = &plan[1];
        assert_eq!(arm.name, "al2023-arm64");
        assert_eq!(arm.subnet_id, "subnet-0fedcba9876543210");
        assert_eq!(arm.instance_profile, "bake-profile");
        assert_eq!(arm.home_region, "eu-west-1");
        let regions: Vec<&str> = arm.regions.iter().map(|r| r.region.as_str()).collect();
        assert_eq!(regions, ["eu-west-1", "us-east-1"]);
        assert_eq!(plan[0].subnet_id, "subnet-0123456789abcdef0");
        assert!(!plan[0].is_default());
    }

    #[test]
    fn a_family_may_target_a_subset_of_the_regions() {
        let mut doc = two_by_two();
        doc["families"][0]["regions"] = serde_json::json!(["eu-west-1"]);
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert_eq!(plan[0].regions.len(), 1);
        doc["families"][0]["regions"] = serde_json::json!(["us-east-1"]);
        let error = parse(&doc).unwrap_err().to_string();
        assert!(error.contains("families[0] (al2023-x86_64)"), "{error}");
        assert!(error.contains("home region eu-west-1"), "{error}");
    }

    #[test]
    fn every_bad_entry_is_named() {
        type Change = fn(&mut serde_json::Value);
        let cases: Vec<(Change, &str)> = vec![
            (
                |d| d["families"] = serde_json::json!([]),
                "families: the list is empty",
            ),
            (
                |d| d["regions"][0]["region"] = "useast1".into(),
                "regions[0] (useast1): not a region name",
            ),
            (
                |d| d["regions"][1]["kmsKeyArn"] = KEY_US.into(),
                "regions[1] (eu-west-1): kmsKeyArn",
            ),
            (
                |d| {
                    d["regions"][0] =
                        serde_json::json!({"region": "eu-west-1", "kmsKeyArn": KEY_EU})
                },
                "regions[1] (eu-west-1): listed twice",
            ),
            (
                |d| {
                    d["regions"] = serde_json::json!([{"region": "us-east-1", "kmsKeyArn": KEY_US}])
                },
                "the home region eu-west-1",
            ),
            (
                |d| d["families"][1]["instanceType"] = "t3.small".into(),
                "families[1] (al2023-arm64): instanceType t3.small runs x86_64",
            ),
            (
                |d| d["families"][1]["name"] = "al2023-x86_64".into(),
                "families[1] (al2023-x86_64): the name is used twice",
            ),
            (
                |d| d["families"][1]["pointer"] = "/golden-ami/al2023-x86_64".into(),
                "is family al2023-x86_64's too",
            ),
            (
                |d| d["families"][0]["pointer"] = "/other/x".into(),
                "must be a parameter name under /golden-ami/",
            ),
            (
                |d| d["families"][0]["name"] = "Al 2023".into(),
                "families[0] (Al 2023): name must be",
            ),
            (
                |d| d["families"][0]["architecture"] = "sparc".into(),
                "not a valid targets document",
            ),
            (
                |d| d["families"][0]["color"] = "blue".into(),
                "unknown field `color`",
            ),
            (
                |d| d["maxConcurrency"] = 0.into(),
                "maxConcurrency: 0 is not from 1 to 40",
            ),
            (
                |d| d["families"][0]["regions"] = serde_json::json!(["ap-south-1"]),
                "region ap-south-1 is not one of the target regions",
            ),
            (
                |d| d["families"][0]["instanceProfile"] = "team-profile".into(),
                "instanceProfile \"team-profile\" cannot be used: the bake automation role may pass only the stack's bake instance role",
            ),
        ];
        for (change, expected) in cases {
            let mut doc = two_by_two();
            change(&mut doc);
            let error = parse(&doc).unwrap_err();
            assert_eq!(error.error_type(), "ConfigError");
            let message = error.to_string();
            assert!(
                message.contains(expected),
                "expected {expected:?} in {message}"
            );
            assert!(
                message.contains("/golden-ami-pipeline/targets (version 3)"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_region_without_a_key_uses_the_golden_keys_replica() {
        let doc = serde_json::json!({
            "families": [{"name": "default", "pointer": "/golden-ami/current", "architecture": "x86_64", "instanceType": "t3.small"}],
            "regions": [{"region": "eu-west-1"}, {"region": "us-east-1"}]
        });
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert_eq!(plan[0].regions[0].kms_key_arn, KEY_EU);
        assert_eq!(plan[0].regions[1].kms_key_arn, KEY_US);

        // A single-Region key has no replica: the entry must name its key.
        let single = Stack {
            golden_key_arn: Some(
                "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            ),
            ..STACK
        };
        let error = Targets::parse(&doc.to_string(), &SOURCE, &single)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("regions[0] (eu-west-1): no kmsKeyArn, and the golden key"),
            "{error}"
        );
        assert!(error.contains("not a multi-Region key"), "{error}");
    }

    #[test]
    fn a_base_image_is_an_ami_id_or_a_parameter() {
        let mut doc = two_by_two();
        doc["families"][1]["baseImage"] =
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64".into();
        doc["families"][0]["baseImage"] = "ami-0123456789abcdef0".into();
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert_eq!(
            plan[1].base_image.as_deref(),
            Some("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")
        );
        doc["families"][0]["baseImage"] = "latest".into();
        let error = parse(&doc).unwrap_err().to_string();
        assert!(
            error.contains("families[0] (al2023-x86_64): baseImage \"latest\""),
            "{error}"
        );
    }

    #[test]
    fn the_approval_gate_is_the_targets_default_and_a_family_may_opt_out_or_in() {
        let mut doc = two_by_two();
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert!(plan.iter().all(|family| family.approval.is_none()));
        assert_eq!(Targets::longest_approval(&plan), std::time::Duration::ZERO);

        doc["families"][1]["approval"] = true.into();
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert_eq!(plan[0].approval, None);
        assert_eq!(
            plan[1].approval,
            Some(ApprovalGate {
                timeout_seconds: u64::from(DEFAULT_APPROVAL_MINUTES) * 60
            })
        );

        doc["approval"] = serde_json::json!({"timeoutMinutes": 120});
        doc["families"][1]["approval"] = false.into();
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert_eq!(
            plan[0].approval,
            Some(ApprovalGate {
                timeout_seconds: 7200
            })
        );
        assert_eq!(plan[1].approval, None);
        assert_eq!(
            Targets::longest_approval(&plan),
            std::time::Duration::from_secs(7200)
        );
        // The gate reaches the state machine as {"approval": {"timeoutSeconds": N}}.
        let json = serde_json::to_value(&plan[0]).unwrap();
        assert_eq!(
            json["approval"],
            serde_json::json!({"timeoutSeconds": 7200})
        );
    }

    #[test]
    fn an_approval_deadline_out_of_bounds_is_refused_by_name() {
        for minutes in [0, 9, MAX_APPROVAL_MINUTES + 1] {
            let mut doc = two_by_two();
            doc["approval"] = serde_json::json!({"timeoutMinutes": minutes});
            let error = parse(&doc).unwrap_err().to_string();
            assert!(
                error.contains(&format!(
                    "approval.timeoutMinutes: {minutes} is not from 10 to 4320"
                )),
                "{error}"
            );
        }
        let mut doc = two_by_two();
        doc["approval"] = serde_json::json!({"timeout": 60});
        let error = parse(&doc).unwrap_err().to_string();
        assert!(error.contains("unknown field `timeout`"), "{error}");
    }

    #[test]
    fn the_encryption_mode_is_the_targets_default_and_a_family_may_choose_its_own() {
        let mut doc = two_by_two();
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert!(
            plan.iter()
                .all(|family| family.encryption == Encryption::Copy)
        );
        // The default mode is not written into the state: the seed's state is unchanged.
        assert!(
            serde_json::to_value(&plan[0])
                .unwrap()
                .get("encryption")
                .is_none()
        );

        doc["encryption"] = "direct".into();
        doc["families"][1]["encryption"] = "copy".into();
        let plan = parse(&doc).unwrap().plan(&STACK, "subnet-1", "p").unwrap();
        assert_eq!(plan[0].encryption, Encryption::Direct);
        assert_eq!(plan[1].encryption, Encryption::Copy);
        assert_eq!(
            serde_json::to_value(&plan[0]).unwrap()["encryption"],
            "direct"
        );

        doc["families"][1]["encryption"] = "inplace".into();
        let error = parse(&doc).unwrap_err().to_string();
        assert!(
            error.contains("unknown variant `inplace`, expected `copy` or `direct`"),
            "{error}"
        );
    }

    #[test]
    fn instance_types_say_their_architecture() {
        assert_eq!(
            instance_architecture("t4g.small"),
            Some(Architecture::Arm64)
        );
        assert_eq!(
            instance_architecture("m7g.large"),
            Some(Architecture::Arm64)
        );
        assert_eq!(
            instance_architecture("c7gn.large"),
            Some(Architecture::Arm64)
        );
        assert_eq!(
            instance_architecture("t3.small"),
            Some(Architecture::X86_64)
        );
        assert_eq!(
            instance_architecture("m7a.large"),
            Some(Architecture::X86_64)
        );
        assert_eq!(
            instance_architecture("m6i.large"),
            Some(Architecture::X86_64)
        );
        assert_eq!(instance_architecture("bogus"), None);
    }
}
