//! The JSON contract between the state machine and the steps.
//!
//! Every Task receives `{"context": ..., "state": $}`: the execution context and the whole state
//! of its level so far. Each step's result is stored by the state machine under one key of the
//! state (its `ResultPath`), so a later step - and the failure path - sees what every earlier
//! step did. All keys are camelCase. There are three levels, all read as a `PipelineState`:
//! - the run: `plan`, then `families` (one result per family);
//! - a family (a Map iteration): `family`, `current`, `bake`, `bakeStatus`, `regions` (one result
//!   per region), `test`, `testStatus`, `pointers` (one publication per region), `cleanup`;
//! - a region (an iteration of the family's region Maps): `family`, `target`, `copy`,
//!   `copyStatus`, `share`, `verify`, `publish`.
//!
//! A step gets the family and region it works on from its input, never from a global.

use serde::{Deserialize, Serialize};

use crate::error::StepError;
use crate::report::UpdateSummary;
use crate::runtime::EventShape;
use crate::targets::FamilyTarget;

/// How every shape below names the execution context.
macro_rules! context_shape {
    () => {
        r#""context": {"executionId": "<execution ARN>", "startedAt": "<RFC 3339 time>"}"#
    };
}

/// What the state machine tells every step about the execution (from the context object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionContext {
    /// The execution ARN (`$$.Execution.Id`): unique per run, the seed of every idempotency token.
    pub execution_id: String,
    /// When the execution started (`$$.Execution.StartTime`, RFC 3339).
    pub started_at: String,
}

impl ExecutionContext {
    /// The execution's name: the last segment of its ARN.
    pub fn execution_name(&self) -> &str {
        self.execution_id
            .rsplit(':')
            .next()
            .unwrap_or(&self.execution_id)
    }
}

/// The input of every step but notify and cleanup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepInput {
    pub context: ExecutionContext,
    #[serde(default)]
    pub state: PipelineState,
}

impl EventShape for StepInput {
    const SHAPE: &'static str = concat!(
        "{",
        context_shape!(),
        r#", "state": {<the run's state so far>}} as the state machine's Parameters build it"#
    );
}

/// Everything the run has found and made so far; each key is one step's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineState {
    /// The run: what PlanRun decided (the families, the lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// The run: one result per family (the family Map's output).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<PipelineState>,
    /// A family or region: the family it works on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<FamilyTarget>,
    /// A region: the region it works on, with its pointer as the run read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<RegionTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<CurrentImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<BakeStarted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_status: Option<BakeStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyStarted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_status: Option<CopyStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyResult>,
    /// A family: one result per region of the copy Map ({target, copy, share, verify,
    /// verified: true} or {target, failure, verified: false}).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<PipelineState>,
    /// A region's result: copied, shared and verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestStarted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_status: Option<TestStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishResult>,
    /// A region's publication result: its pointer moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<bool>,
    /// A gated family: who approved its publication (AwaitApproval's result, the output
    /// `golden-ami approve` sends); an ungated family's is `{}` (NoApprovalNeeded).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "no_decision_is_empty"
    )]
    pub approval: Option<ApprovalDecision>,
    /// A family: one publication result per region ({target, publish, published: true} or
    /// {target, failure, published: false}).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pointers: Vec<PipelineState>,
    /// A family whose pointers did not all move: the ones this run moved, put back
    /// (RestorePointers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupResult>,
    /// A published family: what Retain did to its older golden images (or its caught error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetainResult>,
    /// A family's result: PUBLISHED, UP_TO_DATE or FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Set by the failure path of each level: which state failed (and where), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Set by a Catch (`ResultPath: $.error`): Step Functions' own `Error` / `Cause` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    /// Set by the failure path when cleanup itself failed, so the notification can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<CaughtError>,
    /// The run: the lock released at the end (ReleaseLock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRelease>,
}

/// How a family's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Published,
    UpToDate,
    Failed,
}

/// The `failure.state` of a run that ended outside any state's Catch (stopped, timed out, an
/// error no Catch takes): the reaper's notice.
pub const EXECUTION_FAILURE_STATE: &str = "Execution";

/// Which state failed, where, and with what (Step Functions' caught error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub error: CaughtError,
}

/// PlanRun: what this run patches, and whether it may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub families: Vec<FamilyTarget>,
    /// The family Map's MaxConcurrency.
    pub max_concurrency: u32,
    /// The version of the targets parameter this run follows.
    pub targets_version: i64,
    /// This run holds the lock until this time (set when it took the lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockHolder>,
    /// Another run holds the lock: this one does nothing and ends SKIPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<LockHolder>,
    /// A stale lock (its holder's deadline passed) that this run broke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broke: Option<LockHolder>,
    /// Families an operator pinned (`golden-ami pin`): this run leaves them alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned: Vec<Pin>,
}

/// A pin: the family's pointer holds `ami_id` on purpose and runs skip the family until it is
/// removed. Stored as JSON in the parameter PINS_PATH/<family>.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pin {
    pub family: String,
    pub ami_id: String,
    pub region: String,
    /// Who pinned it (the caller's ARN) and when (RFC 3339).
    pub pinned_by: String,
    pub pinned_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The run lock's value: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    pub execution_id: String,
    /// RFC 3339; past it the lock is stale (its run cannot still be running) and is broken.
    pub expires: String,
    /// The version of the targets parameter the run follows: the Reaper sweeps exactly the
    /// families of that version when the run ends without its own failure path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets_version: Option<i64>,
}

/// ReleaseLock: whether this run's lock was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRelease {
    pub parameter_name: String,
    pub released: bool,
    /// Who holds it, if not this run (it was broken as stale, or never taken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<LockHolder>,
}

/// One region of a family: where the golden copy goes, under which key, and what the region's
/// pointer held when the run read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionTarget {
    pub region: String,
    pub kms_key_arn: String,
    pub parameter_name: String,
    /// The version read (0: the pointer does not exist in this region yet); PublishPointer
    /// refuses to overwrite a newer one.
    pub parameter_version: i64,
    /// What the pointer held; none when it does not exist yet (PublishPointer creates it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_id: Option<String>,
}

macro_rules! require {
    ($name:ident, $field:ident, $ty:ty, $producer:literal) => {
        #[doc = concat!("The `", stringify!($field), "` result, or InvalidInput naming the step that produces it.")]
        pub fn $name(&self) -> Result<&$ty, StepError> {
            self.$field.as_ref().ok_or_else(|| {
                StepError::InvalidInput(format!(
                    "state.{} is missing: {} must run before this step",
                    stringify!($field),
                    $producer
                ))
            })
        }
    };
}

impl PipelineState {
    /// The run's result for the family named `name` (the family Map's output), if it has one.
    pub fn family_result(&self, name: &str) -> Option<&PipelineState> {
        self.families
            .iter()
            .find(|result| result.family.as_ref().is_some_and(|f| f.name == name))
    }

    require!(require_plan, plan, Plan, "PlanRun");
    require!(
        require_family,
        family,
        FamilyTarget,
        "the family Map's ItemSelector"
    );
    require!(
        require_target,
        target,
        RegionTarget,
        "the region Map's ItemSelector"
    );
    require!(require_current, current, CurrentImage, "ReadCurrentAmi");
    require!(require_bake, bake, BakeStarted, "StartBake");
    require!(require_bake_status, bake_status, BakeStatus, "CheckBake");
    require!(require_copy, copy, CopyStarted, "CopyImage");
    require!(require_share, share, ShareResult, "ShareImage");
    require!(require_verify, verify, VerifyResult, "VerifyImage");
    require!(require_test, test, TestStarted, "StartTest");
    require!(require_publish, publish, PublishResult, "PublishPointer");

    /// The golden copy, only if VerifyImage passed for that very image.
    pub fn verified_golden_image(&self) -> Result<&str, StepError> {
        let copy = self.require_copy()?;
        let verify = self.verify.as_ref().ok_or_else(|| {
            StepError::invalid_input(format!(
                "state.verify is missing: an unverified image is never tested nor published ({} was not verified)",
                copy.golden_ami_id
            ))
        })?;
        if verify.golden_ami_id != copy.golden_ami_id {
            return Err(StepError::invalid_input(format!(
                "VerifyImage checked {} but the copy is {}: refusing to go on",
                verify.golden_ami_id, copy.golden_ami_id
            )));
        }
        Ok(&copy.golden_ami_id)
    }

    /// A region's golden copy, only if it was verified AND the family's boot test passed (it
    /// booted the home region's copy, which must be this one in the home region).
    pub fn tested_golden_image(&self) -> Result<&str, StepError> {
        let golden = self.verified_golden_image()?;
        let passed = self
            .test_status
            .as_ref()
            .filter(|status| status.done && status.passed)
            .ok_or_else(|| {
                StepError::invalid_input(format!(
                    "state.testStatus does not show a passed boot test: the pointer never moves to an image nobody has booted ({golden} was not tested)"
                ))
            })?;
        let home = match (&self.family, &self.target) {
            (Some(family), Some(target)) => target.region == family.home_region,
            _ => true,
        };
        if home && passed.golden_ami_id.as_deref() != Some(golden) {
            return Err(StepError::invalid_input(format!(
                "the boot test passed for {} but the golden image is {golden}: refusing to publish",
                passed.golden_ami_id.as_deref().unwrap_or("no image")
            )));
        }
        Ok(golden)
    }

    /// A family: the result of its home region in the copy Map (where it is tested).
    pub fn home_region_result(&self) -> Result<&PipelineState, StepError> {
        let family = self.require_family()?;
        self.regions
            .iter()
            .find(|region| {
                region
                    .target
                    .as_ref()
                    .is_some_and(|target| target.region == family.home_region)
            })
            .ok_or_else(|| {
                StepError::invalid_input(format!(
                    "state.regions has no result for the home region {}: CopyToRegions must run before this step",
                    family.home_region
                ))
            })
    }

    /// The bake's image id (the intermediate image, or a direct bake's golden image), once the
    /// bake has reported it.
    pub fn baked_ami_id(&self) -> Option<&str> {
        self.bake_status.as_ref()?.baked_ami_id.as_deref()
    }

    /// The intermediate image (under the account key, never shared), if the bake made one: a
    /// direct bake (targets::Encryption) makes the home region's golden image instead.
    pub fn intermediate_ami_id(&self) -> Option<&str> {
        let direct = self
            .family
            .as_ref()
            .is_some_and(|family| family.encryption == crate::targets::Encryption::Direct);
        if direct { None } else { self.baked_ami_id() }
    }

    /// The intermediate image id, or InvalidInput if the bake has not produced one yet.
    pub fn require_baked_ami_id(&self) -> Result<&str, StepError> {
        self.baked_ami_id().ok_or_else(|| {
            StepError::invalid_input(
                "state.bakeStatus.bakedAmiId is missing: CheckBake must report a finished bake before this step",
            )
        })
    }
}

/// ReadCurrentAmi: where a family's pointers stand at the start of the run. The top-level
/// fields are the home region's (the bake's source); `regions` has every target region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentImage {
    pub parameter_name: String,
    /// The parameter version read (0: the home pointer does not exist yet); PublishPointer
    /// refuses to overwrite a newer one.
    pub parameter_version: i64,
    /// The image the bake starts from: what the home pointer holds, or the family's base
    /// image on its first run.
    pub ami_id: String,
    /// Set on a family's first run: the baseImage the source came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_name: Option<String>,
    /// The source image's EBS devices, its root device first: a direct bake (see
    /// targets::Encryption) maps each to a volume under the golden key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ebs_devices: Vec<String>,
    /// Every target region of the family, home first: the items of the region Maps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionTarget>,
}

/// StartBake: the automation that bakes the intermediate image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BakeStarted {
    pub automation_execution_id: String,
    pub document_name: String,
    pub source_ami_id: String,
    pub target_ami_name: String,
    /// RFC 3339: past this, CheckBake stops the automation and fails with BakeTimedOut.
    pub deadline: String,
    /// How long the state machine waits before the first poll: most of the family's usual
    /// bake (crates/core/src/pacing.rs), or poll_seconds without history.
    #[serde(default)]
    pub first_wait_seconds: u64,
    /// How long the state machine waits between two polls (its Wait state reads this).
    pub poll_seconds: u64,
}

/// CheckBake: one poll of the automation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BakeStatus {
    pub done: bool,
    /// The automation's status as SSM reports it (InProgress, Success, ...).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baked_ami_id: Option<String>,
    /// The automation step running now, for progress output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// The bake ended without an image because no update was pending: the run ends SKIPPED.
    /// Always written: the state machine's Choice reads it.
    #[serde(default)]
    pub up_to_date: bool,
    /// What the update changed (from the bake's update report), once the bake is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates: Option<UpdateSummary>,
    /// How long the automation ran (its start to its end), once it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
}

/// CopyImage: the re-encrypted golden copy being made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyStarted {
    pub golden_ami_id: String,
    pub golden_ami_name: String,
    pub kms_key_arn: String,
    /// RFC 3339: past this, CheckCopy fails with CopyTimedOut.
    pub deadline: String,
    /// When CopyImage was called (RFC 3339), for the copy's duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// How long the state machine waits before the first poll (see BakeStarted).
    #[serde(default)]
    pub first_wait_seconds: u64,
    /// How long the state machine waits between two polls (its Wait state reads this).
    pub poll_seconds: u64,
}

/// CheckCopy: one poll of the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyStatus {
    pub done: bool,
    /// The image state as EC2 reports it (pending, available, ...).
    pub state: String,
    /// From CopyImage to the poll that found the copy available, once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
}

/// StartTest: the boot test of the golden copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestStarted {
    pub automation_execution_id: String,
    pub document_name: String,
    /// The image under test: the verified golden copy.
    pub golden_ami_id: String,
    /// RFC 3339: past this, CheckTest stops the automation and fails with TestTimedOut.
    pub deadline: String,
    /// How long the state machine waits before the first poll (see BakeStarted).
    #[serde(default)]
    pub first_wait_seconds: u64,
    /// How long the state machine waits between two polls (its Wait state reads this).
    pub poll_seconds: u64,
}

/// CheckTest: one poll of the boot test (a failed test is the TestFailed error, not a status).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestStatus {
    pub done: bool,
    /// The automation's status as SSM reports it.
    pub status: String,
    /// Every control passed on an instance launched from the golden copy.
    #[serde(default)]
    pub passed: bool,
    /// The automation step running now, for progress output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// The golden image the result is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_ami_id: Option<String>,
    /// The instance the test launched (terminated by the test document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub controls_passed: u32,
    #[serde(default)]
    pub controls_skipped: u32,
    /// Where the check's full output is (S3 URI of the key prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// How long the test automation ran, once it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
}

/// Who may launch the golden image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPrincipals {
    #[serde(default)]
    pub organization_arns: Vec<String>,
    #[serde(default)]
    pub organizational_unit_arns: Vec<String>,
    #[serde(default)]
    pub account_ids: Vec<String>,
}

impl LaunchPrincipals {
    pub fn is_empty(&self) -> bool {
        self.organization_arns.is_empty()
            && self.organizational_unit_arns.is_empty()
            && self.account_ids.is_empty()
    }

    /// Split into (missing from `existing`, already in `existing`): what ShareImage must add
    /// and what VerifyImage must find, decided the same way by both.
    pub fn partition_by(
        &self,
        existing: &[aws_sdk_ec2::types::LaunchPermission],
    ) -> (LaunchPrincipals, LaunchPrincipals) {
        use aws_sdk_ec2::types::LaunchPermission;
        let split = |values: &[String], pick: fn(&LaunchPermission) -> Option<&str>| {
            let (present, missing): (Vec<String>, Vec<String>) = values
                .iter()
                .cloned()
                .partition(|value| existing.iter().any(|p| pick(p) == Some(value.as_str())));
            (missing, present)
        };
        let (org_missing, org_present) =
            split(&self.organization_arns, LaunchPermission::organization_arn);
        let (ou_missing, ou_present) = split(
            &self.organizational_unit_arns,
            LaunchPermission::organizational_unit_arn,
        );
        let (account_missing, account_present) =
            split(&self.account_ids, LaunchPermission::user_id);
        (
            LaunchPrincipals {
                organization_arns: org_missing,
                organizational_unit_arns: ou_missing,
                account_ids: account_missing,
            },
            LaunchPrincipals {
                organization_arns: org_present,
                organizational_unit_arns: ou_present,
                account_ids: account_present,
            },
        )
    }

    /// Every principal, as a person reads it.
    pub fn describe(&self) -> Vec<String> {
        self.organization_arns
            .iter()
            .chain(&self.organizational_unit_arns)
            .chain(&self.account_ids)
            .cloned()
            .collect()
    }
}

/// ShareImage: the launch permission granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareResult {
    pub golden_ami_id: String,
    pub principals: LaunchPrincipals,
    /// Principals that already had the permission (a re-run): nothing was sent for them.
    #[serde(default)]
    pub already_shared: Vec<String>,
}

/// VerifyImage: what was checked (only produced when every check passed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResult {
    pub golden_ami_id: String,
    pub snapshot_ids: Vec<String>,
    pub kms_key_arn: String,
    pub checks: Vec<String>,
}

/// PublishPointer: the pointer moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishResult {
    pub parameter_name: String,
    pub region: String,
    pub version: i64,
    /// None: this run created the pointer (the family's first image in the region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_ami_id: Option<String>,
    pub new_ami_id: String,
    /// The pointer existed but was not associated with its region's AWS RAM share (consumers
    /// there got ParameterNotFound): this run associated it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reshared: bool,
}

/// What PublishPointer does: move this region's pointer (PublishPointer, the default), check
/// before the first pointer moves that every region's pointer is still what the run read
/// (CheckPointers), or put back the pointers this run moved when another region's did not move
/// (RestorePointers): a family is published in all of its regions or in none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PublishMode {
    #[default]
    Publish,
    Check,
    Restore,
}

/// The input of PublishPointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishInput {
    pub context: ExecutionContext,
    #[serde(default)]
    pub mode: PublishMode,
    #[serde(default)]
    pub state: PipelineState,
}

impl EventShape for PublishInput {
    const SHAPE: &'static str = concat!(
        "{",
        context_shape!(),
        r#", "mode": "PUBLISH" | "CHECK" | "RESTORE" (default PUBLISH), "state": {<the run's state so far>}}"#
    );
}

/// What PublishPointer answers in each mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PublishOutput {
    Published(PublishResult),
    Checked(PointersAsRead),
    Restored(RestoreResult),
}

/// CheckPointers: every region's pointer is what the run read, and the family is not pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PointersAsRead {
    pub regions: Vec<String>,
}

/// RestorePointers: each pointer this run moved, and whether it holds its previous value again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreResult {
    pub pointers: Vec<RestoredPointer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoredPointer {
    pub parameter_name: String,
    pub region: String,
    /// What this run had moved it to, and the version that write made.
    pub moved_to: String,
    pub moved_version: i64,
    /// Put back: the value it holds again, and the version the put-back made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_version: Option<i64>,
    /// Not put back: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_because: Option<String>,
}

/// Cleanup: what was removed and what was deliberately kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupResult {
    #[serde(default)]
    pub deregistered_images: Vec<String>,
    #[serde(default)]
    pub deleted_snapshots: Vec<String>,
    /// Automations stopped so their document terminates the temporary instance.
    #[serde(default)]
    pub stopped_automations: Vec<String>,
    /// Instances of this run's automations still alive after them (a terminate step failed).
    #[serde(default)]
    pub terminated_instances: Vec<String>,
    /// Images a create left untagged (it failed half way), tagged so they could be removed.
    #[serde(default)]
    pub tagged_untagged: Vec<String>,
    /// Images kept on purpose (published, or held by the pointer), with the reason.
    #[serde(default)]
    pub kept: Vec<String>,
    /// A gated family's approval requests (APPROVALS_PATH/<execution>/<family>) still stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn_approvals: Vec<String>,
    /// A published family: the history its next runs pace their polls by (pacing.rs), or why
    /// it could not be written (that never fails the family).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durations: Option<crate::pacing::Durations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durations_not_recorded: Option<String>,
}

/// Retain: what it did (or, in a dry run, would do) to a family's golden images per region.
/// After a caught error the state machine writes only `error`: the image is published anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetainResult {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionRetention>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
}

/// One region's retention: each list holds what was done, or what a dry run would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionRetention {
    pub region: String,
    /// Superseded images given a deprecation time (image id, RFC 3339 time).
    #[serde(default)]
    pub deprecated: Vec<Deprecation>,
    /// Images the pointer holds again (a rollback) whose deprecation was cancelled.
    #[serde(default)]
    pub undeprecated: Vec<String>,
    /// The current image and the rollback target: deregistration protection enabled.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Images that are neither any more: protection removed.
    #[serde(default)]
    pub unprotected: Vec<String>,
    /// Deregistered, with their snapshots.
    #[serde(default)]
    pub removed: Vec<RemovedImage>,
    /// Every other golden image of the family, and why it stays.
    #[serde(default)]
    pub kept: Vec<KeptImage>,
    /// What could not be done (the image is published all the same).
    #[serde(default)]
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deprecation {
    pub image_id: String,
    pub deprecate_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedImage {
    pub image_id: String,
    #[serde(default)]
    pub snapshot_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptImage {
    pub image_id: String,
    pub reason: String,
}

/// A caught error as Step Functions writes it (`ResultPath: $.error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl CaughtError {
    /// The cause as a person reads it: Lambda errors arrive as a JSON string whose
    /// `errorMessage` is the useful part.
    pub fn readable_cause(&self) -> String {
        let Some(cause) = self.cause.as_deref() else {
            return "(no cause given)".to_string();
        };
        serde_json::from_str::<serde_json::Value>(cause)
            .ok()
            .and_then(|value| {
                value
                    .get("errorMessage")
                    .and_then(|message| message.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| cause.to_string())
    }
}

/// The error a denied approval fails AwaitApproval with (SendTaskFailure's `error`).
pub const APPROVAL_DENIED: &str = "ApprovalDenied";

/// The input of RequestApproval: AwaitApproval's Payload, the family's state and the task
/// token Step Functions waits on (`$$.Task.Token`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalInput {
    pub context: ExecutionContext,
    pub task_token: String,
    #[serde(default)]
    pub state: PipelineState,
}

impl EventShape for ApprovalInput {
    const SHAPE: &'static str = concat!(
        "{",
        context_shape!(),
        r#", "taskToken": "<$$.Task.Token>", "state": {<the family's state after its boot test>}}"#
    );
}

/// A golden copy waiting for approval in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionImage {
    pub region: String,
    pub ami_id: String,
}

/// A family waiting for a person: stored as JSON at APPROVALS_PATH/<execution name>/<family>
/// by RequestApproval, read by `golden-ami approve` / `deny`, removed by them or by cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    pub execution_id: String,
    pub family: String,
    /// What SendTaskSuccess / SendTaskFailure answer.
    pub task_token: String,
    pub requested_at: String,
    /// Past this AwaitApproval fails with States.Timeout and nothing is published.
    pub deadline: String,
    /// What approving publishes: the verified, booted golden copy of every region.
    pub images: Vec<RegionImage>,
    /// The update's headline ("12 packages, 3 advisories: ..."), when the bake reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
}

/// `{}` (or null) is no decision: the family was not gated.
fn no_decision_is_empty<'de, D>(deserializer: D) -> Result<Option<ApprovalDecision>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        None => Ok(None),
        Some(serde_json::Value::Object(map)) if map.is_empty() => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl ApprovalRequest {
    /// Where a family's request of an execution is stored (RequestApproval writes it, cleanup
    /// and the reaper withdraw it, the CLI finds it from the name a person types):
    /// APPROVALS_PATH/<execution name>/<family>, the execution's name in the form SSM accepts
    /// ([`crate::naming::parameter_segment`]). The request's JSON keeps the real name.
    pub fn parameter_name(approvals_path: &str, execution_name: &str, family: &str) -> String {
        format!(
            "{}/{family}",
            Self::execution_path(approvals_path, execution_name)
        )
    }

    /// The level under APPROVALS_PATH that holds every request of an execution.
    pub fn execution_path(approvals_path: &str, execution_name: &str) -> String {
        format!(
            "{approvals_path}/{}",
            crate::naming::parameter_segment(execution_name)
        )
    }
}

/// What `golden-ami approve` sends with SendTaskSuccess: AwaitApproval's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalDecision {
    /// The caller's ARN (STS GetCallerIdentity) and when (RFC 3339).
    pub approved_by: String,
    pub approved_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which path cleanup is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CleanupMode {
    /// A family published: remove its intermediate image only.
    Success,
    /// A family failed: stop its bake or test if they still run, remove its intermediate image
    /// and its golden copies in every region unless a pointer holds them.
    Failure,
    /// The run failed outside any family (or ended without its state: aborted, timed out):
    /// find everything this execution created in every planned family and region by tags and
    /// deterministic names, and remove it the same way.
    Sweep,
}

/// The input of the cleanup step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupInput {
    pub context: ExecutionContext,
    pub mode: CleanupMode,
    #[serde(default)]
    pub state: PipelineState,
}

impl EventShape for CleanupInput {
    const SHAPE: &'static str = concat!(
        "{",
        context_shape!(),
        r#", "mode": "SUCCESS" | "FAILURE" | "SWEEP", "state": {<the run's state so far>}}"#
    );
}

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotifyEvent {
    Started,
    Succeeded,
    Failed,
    /// This run did nothing: another run holds the lock, or no family had an update pending.
    Skipped,
    /// The families' Map ended: the notice is SUCCEEDED, SKIPPED or FAILED, from their results.
    Finished,
    /// A gated family waits for `golden-ami approve` (sent by RequestApproval, not Notify).
    ApprovalRequested,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
            Self::Finished => "FINISHED",
            Self::ApprovalRequested => "APPROVAL_REQUESTED",
        }
    }
}

/// The input of the notify step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyInput {
    pub context: ExecutionContext,
    pub event: NotifyEvent,
    #[serde(default)]
    pub state: PipelineState,
}

impl EventShape for NotifyInput {
    const SHAPE: &'static str = concat!(
        "{",
        context_shape!(),
        r#", "event": "STARTED" | "FINISHED" | "FAILED" | "SKIPPED", "state": {<the run's state so far>}}"#
    );
}

/// The notify step's result: what it published (the state machine's RunFailed? reads `event`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyResult {
    pub message_id: String,
    pub subject: String,
    pub event: NotifyEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ungated_family_s_empty_approval_is_no_decision_and_a_decision_parses() {
        let state: PipelineState =
            serde_json::from_value(serde_json::json!({"approval": {}})).unwrap();
        assert_eq!(state.approval, None);
        let state: PipelineState = serde_json::from_value(serde_json::json!({
            "approval": {"approvedBy": "arn:aws:iam::111122223333:user/alice", "approvedAt": "2026-12-01T09:00:00Z"}
        }))
        .unwrap();
        assert_eq!(
            state.approval.unwrap().approved_by,
            "arn:aws:iam::111122223333:user/alice"
        );
        let error =
            serde_json::from_value::<PipelineState>(serde_json::json!({"approval": {"by": "x"}}))
                .unwrap_err();
        assert!(error.to_string().contains("approvedBy"), "{error}");
    }

    #[test]
    fn a_direct_bake_made_no_intermediate_image() {
        let mut state: PipelineState = serde_json::from_value(serde_json::json!({
            "family": {"name": "default", "pointer": "/golden-ami/current", "architecture": "x86_64",
                       "instanceType": "t3.small", "subnetId": "subnet-1", "instanceProfile": "p",
                       "homeRegion": "eu-west-1", "regions": []},
            "bakeStatus": {"done": true, "status": "Success", "bakedAmiId": "ami-0bbbbbbbbbbbbbbbb"}
        }))
        .unwrap();
        assert_eq!(state.intermediate_ami_id(), Some("ami-0bbbbbbbbbbbbbbbb"));
        if let Some(family) = state.family.as_mut() {
            family.encryption = crate::targets::Encryption::Direct;
        }
        assert_eq!(state.intermediate_ami_id(), None);
        assert_eq!(state.baked_ami_id(), Some("ami-0bbbbbbbbbbbbbbbb"));
    }

    #[test]
    fn an_approval_request_is_stored_under_the_execution_s_safe_name() {
        assert_eq!(
            ApprovalRequest::parameter_name("/p/approvals", "2026-12-01-monthly", "default"),
            "/p/approvals/2026-12-01-monthly/default"
        );
        let name = ApprovalRequest::parameter_name("/p/approvals", "rerun@dec", "arm64");
        assert_eq!(
            name,
            format!(
                "/p/approvals/{}/arm64",
                crate::naming::parameter_segment("rerun@dec")
            )
        );
        assert!(name.starts_with("/p/approvals/rerun_dec-"), "{name}");
        assert!(name.starts_with(&ApprovalRequest::execution_path(
            "/p/approvals",
            "rerun@dec"
        )));
    }

    #[test]
    fn state_round_trips_in_camel_case_and_keeps_step_functions_error_keys() {
        let json = serde_json::json!({
            "context": {"executionId": "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:run-1", "startedAt": "2026-12-01T08:00:00Z"},
            "state": {
                "current": {"parameterName": "/golden-ami/current", "parameterVersion": 4, "amiId": "ami-0123456789abcdef0"},
                "bakeStatus": {"done": true, "status": "Success", "bakedAmiId": "ami-0aaaaaaaaaaaaaaaa", "upToDate": false},
                "failure": {"state": "CopyImage", "region": "us-east-1", "error": {"Error": "KmsKeyUnusable", "Cause": "{\"errorType\":\"KmsKeyUnusable\",\"errorMessage\":\"key is disabled\"}"}},
                "error": {"Error": "KmsKeyUnusable", "Cause": "{\"errorType\":\"KmsKeyUnusable\",\"errorMessage\":\"key is disabled\"}"}
            }
        });
        let input: StepInput = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(input.context.execution_name(), "run-1");
        assert_eq!(input.state.require_current().unwrap().parameter_version, 4);
        assert_eq!(
            input.state.require_baked_ami_id().unwrap(),
            "ami-0aaaaaaaaaaaaaaaa"
        );
        let error = input.state.error.as_ref().unwrap();
        assert_eq!(error.readable_cause(), "key is disabled");
        assert_eq!(
            input.state.failure.as_ref().unwrap().region.as_deref(),
            Some("us-east-1")
        );
        assert_eq!(serde_json::to_value(&input).unwrap(), json);
    }

    #[test]
    fn principals_split_into_missing_and_present() {
        use aws_sdk_ec2::types::LaunchPermission;
        let wanted = LaunchPrincipals {
            organization_arns: vec!["arn:aws:organizations::1:organization/o-1".into()],
            organizational_unit_arns: vec!["arn:aws:organizations::1:ou/o-1/ou-a".into()],
            account_ids: vec!["111122223333".into(), "444455556666".into()],
        };
        let existing = [
            LaunchPermission::builder().user_id("444455556666").build(),
            // The same value under another kind of principal does not count.
            LaunchPermission::builder()
                .user_id("arn:aws:organizations::1:organization/o-1")
                .build(),
            LaunchPermission::builder()
                .organizational_unit_arn("arn:aws:organizations::1:ou/o-1/ou-a")
                .build(),
        ];
        let (missing, present) = wanted.partition_by(&existing);
        assert_eq!(missing.organization_arns, wanted.organization_arns);
        assert!(missing.organizational_unit_arns.is_empty());
        assert_eq!(missing.account_ids, ["111122223333"]);
        assert_eq!(
            present.describe(),
            ["arn:aws:organizations::1:ou/o-1/ou-a", "444455556666"]
        );
    }

    #[test]
    fn a_missing_result_names_the_step_that_produces_it() {
        let error = PipelineState::default().require_copy().unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("CopyImage must run before"));
    }

    #[test]
    fn a_cause_that_is_not_lambda_json_is_kept_as_is() {
        let error = CaughtError {
            error: "States.Timeout".into(),
            cause: Some("Task timed out after 30 seconds".into()),
        };
        assert_eq!(error.readable_cause(), "Task timed out after 30 seconds");
    }
}
