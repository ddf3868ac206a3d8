//! Configuration, read once from the environment when a function starts.
//!
//! Every variable is validated here, so a misconfigured stack fails at its first cold start with
//! a message naming the variable, instead of in the middle of a monthly run.

use std::time::Duration;

use crate::error::StepError;
use crate::naming;

/// The state machine's TimeoutSeconds (statemachine/golden-ami-pipeline.asl.json, written by
/// scripts/build-asl.py): 8 hours of bake, copy and test plus the longest approval deadline (72
/// hours). The template passes the same value as STATE_MACHINE_TIMEOUT_SECONDS; tests/ hold the
/// ASL, the template and this default equal.
pub const STATE_MACHINE_TIMEOUT_SECONDS: u64 = 288_000;

/// How long a run's lock outlives its state machine's timeout: a Task invoked just before the
/// execution timed out may still run for its Lambda timeout (15 minutes at most on Lambda).
pub const LOCK_MARGIN: Duration = Duration::from_secs(15 * 60);

/// Who the golden image is shared with, as configured (the organization ARN may instead be
/// looked up with DescribeOrganization).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareConfig {
    pub organization_arn: Option<String>,
    pub organizational_unit_arns: Vec<String>,
    pub account_ids: Vec<String>,
    /// Share with the whole organization (looked up if not configured). Off only when the
    /// image must go to selected OUs or accounts alone.
    pub share_with_organization: bool,
}

/// A comma-separated list (the stack's list parameters), its items trimmed, empty ones left out.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

impl ShareConfig {
    /// Who the image is shared with: the organization (configured, else `looked_up`) unless
    /// sharing with it is off, plus the configured OUs and accounts. What ShareImage grants and
    /// what `golden-ami pin` requires of a pinned image.
    pub fn principals(&self, looked_up: Option<String>) -> crate::types::LaunchPrincipals {
        let organization_arns = if self.share_with_organization {
            self.organization_arn.clone().or(looked_up)
        } else {
            None
        };
        crate::types::LaunchPrincipals {
            organization_arns: organization_arns.into_iter().collect(),
            organizational_unit_arns: self.organizational_unit_arns.clone(),
            account_ids: self.account_ids.clone(),
        }
    }
}

/// The typed configuration of every step.
/// What Retain keeps, deprecates and removes of a family's golden images in each region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The newest this many golden images, and every value of the pointer's newest this many
    /// versions, are never removed (RETAIN_KEEP, 1-100, default 3).
    pub keep: usize,
    /// Younger images are never removed (RETAIN_MIN_AGE_DAYS, default 90).
    pub min_age_days: u32,
    /// Images launched within this many days are never removed (RETAIN_UNUSED_DAYS, default 30).
    pub unused_days: u32,
    /// A superseded image is deprecated this many days after Retain first sees it superseded
    /// (DEPRECATE_AFTER_DAYS, default 30; 0 deprecates at once).
    pub deprecate_after_days: u32,
    /// Only report what would be done (RETAIN_DRY_RUN).
    pub dry_run: bool,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            keep: 3,
            min_age_days: 90,
            unused_days: 30,
            deprecate_after_days: 30,
            dry_run: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// AWS_REGION (set by Lambda): the home region, where every family is baked and tested.
    pub home_region: String,
    /// TARGETS_PARAMETER_NAME: the SSM parameter that holds the image families and target
    /// regions (crates/core/src/targets.rs); PlanRun reads and validates it at every run.
    pub targets_parameter_name: String,
    /// POINTER_PREFIX: every family's pointer is under it (the functions may write only there).
    pub pointer_prefix: String,
    /// GOLDEN_KMS_KEY_ARN (optional): the stack's golden key in the home region. A target
    /// region without its own kmsKeyArn uses this multi-Region key's replica there.
    pub golden_kms_key_arn: Option<String>,
    /// POINTER_SHARE_NAME: the AWS RAM share (one per region, same name) that a pointer the
    /// pipeline creates is added to, so the organization can read it. Default:
    /// PIPELINE_NAME-pointers.
    pub pointer_share_name: String,
    /// LOCK_PARAMETER_NAME: the run lock (an SSM parameter created with Overwrite=false).
    pub lock_parameter_name: String,
    /// How long a lock holds before it counts as stale: STATE_MACHINE_TIMEOUT_SECONDS (the
    /// state machine's own TimeoutSeconds, which the template sets from the same value as the
    /// ASL; a contract test holds the two equal) plus [`LOCK_MARGIN`]. No execution can still be
    /// running then, so a live run's lock is never broken, however many families it has.
    pub lock_ttl: Duration,
    /// REAPER_SETTLE_SECONDS: how long after an execution stopped the reaper waits before it
    /// sweeps, so a Lambda invocation still in flight when it stopped (StopExecution does not
    /// stop it) has finished and what it started is found.
    pub reaper_settle_seconds: u64,
    /// BAKE_DOCUMENT_NAME: the SSM Automation document that bakes the intermediate image.
    pub bake_document_name: String,
    /// AUTOMATION_ASSUME_ROLE_ARN: the role the bake automation runs as.
    pub automation_assume_role_arn: String,
    /// BAKE_SUBNET_ID: where the temporary instance runs (no public IP).
    pub bake_subnet_id: String,
    /// BAKE_SECURITY_GROUP_ID: the temporary instances' security group (egress 443 only).
    pub bake_security_group_id: String,
    /// BAKE_INSTANCE_PROFILE_NAME: the temporary instance's profile (SSM managed instance core).
    pub bake_instance_profile_name: String,
    /// UPDATE_REPORT_DOCUMENT_NAME: the Command document that lists the pending updates.
    pub update_report_document_name: String,
    /// BASELINE_APPLY_DOCUMENT_NAME: the Command document that applies the hardening baseline.
    pub baseline_apply_document_name: String,
    /// BASELINE_CHECK_DOCUMENT_NAME: the Command document that checks the hardening baseline.
    pub baseline_check_document_name: String,
    /// TEST_DOCUMENT_NAME: the Automation document of the boot test.
    pub test_document_name: String,
    /// REPORT_BUCKET_NAME: where the bake's update report and the test's check output go.
    pub report_bucket_name: String,
    /// REBUILD_WHEN_UP_TO_DATE: bake an image even when no update is pending (default false).
    pub rebuild_when_up_to_date: bool,
    /// BAKE_TIMEOUT_MINUTES: how long a bake may run before it is stopped.
    pub bake_timeout: Duration,
    /// COPY_TIMEOUT_MINUTES: how long the re-encrypted copy may stay pending.
    pub copy_timeout: Duration,
    /// TEST_TIMEOUT_MINUTES: how long the boot test may run before it is stopped.
    pub test_timeout: Duration,
    /// TEST_POLL_SECONDS: the wait between two polls of the boot test.
    pub test_poll_seconds: u64,
    /// BAKE_POLL_SECONDS: the wait between two polls of the bake.
    pub bake_poll_seconds: u64,
    /// COPY_POLL_SECONDS: the wait between two polls of the copy.
    pub copy_poll_seconds: u64,
    /// POINTER_WAIT_SECONDS: how long PublishPointer waits for SSM to make a pointer write
    /// visible (an aws:ec2:image value is validated asynchronously) and for AWS RAM to
    /// associate a pointer with its share (asynchronous too), each.
    pub pointer_wait: Duration,
    /// POINTER_POLL_MILLISECONDS: the longest pause between two reads while it waits (the first
    /// reads come sooner).
    pub pointer_poll: Duration,
    /// IMAGE_NAME_PREFIX: the start of every image name this pipeline makes.
    pub image_name_prefix: String,
    /// SHARE_ORGANIZATION_ARN, SHARE_WITH_ORGANIZATION, SHARE_OU_ARNS, SHARE_ACCOUNT_IDS.
    pub share: ShareConfig,
    /// NOTIFICATION_TOPIC_ARN: the SNS topic for STARTED / SUCCEEDED / FAILED.
    pub notification_topic_arn: String,
    /// PIPELINE_NAME: how notifications name this pipeline.
    pub pipeline_name: String,
    /// RETAIN_*, DEPRECATE_AFTER_DAYS: what Retain keeps of a family's older golden images.
    pub retention: RetentionPolicy,
    /// PINS_PATH: the parameter path of the pins (`golden-ami pin`), one parameter per family
    /// (default /PIPELINE_NAME/pins).
    pub pins_path: String,
    /// APPROVALS_PATH: where a gated family's approval request (its task token) waits,
    /// APPROVALS_PATH/<execution name>/<family> (default /PIPELINE_NAME/approvals).
    pub approvals_path: String,
    /// DURATIONS_PATH: per family, what its last runs' bake, copy and boot test took
    /// (crates/core/src/pacing.rs; default /PIPELINE_NAME/durations).
    pub durations_path: String,
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, StepError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StepError> {
        let env = Env(&lookup);
        let home_region = env
            .optional("AWS_REGION")
            .or_else(|| env.optional("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                StepError::ConfigError(
                    "environment variable AWS_REGION is missing: Lambda sets it; set it when running a function elsewhere".into(),
                )
            })?;
        let pointer_prefix = env
            .optional("POINTER_PREFIX")
            .unwrap_or_else(|| "/golden-ami/".to_string());
        if !pointer_prefix.starts_with('/') || !pointer_prefix.ends_with('/') {
            return Err(env.malformed(
                "POINTER_PREFIX",
                &pointer_prefix,
                "a parameter path such as /golden-ami/ (leading and trailing slash)",
            ));
        }
        let bake_subnet_id = env.required("BAKE_SUBNET_ID")?;
        if !bake_subnet_id.starts_with("subnet-") {
            return Err(env.malformed(
                "BAKE_SUBNET_ID",
                &bake_subnet_id,
                "a subnet id (subnet-...)",
            ));
        }
        let bake_security_group_id = env.required("BAKE_SECURITY_GROUP_ID")?;
        if !bake_security_group_id.starts_with("sg-") {
            return Err(env.malformed(
                "BAKE_SECURITY_GROUP_ID",
                &bake_security_group_id,
                "a security group id (sg-...)",
            ));
        }
        let automation_assume_role_arn = env.required("AUTOMATION_ASSUME_ROLE_ARN")?;
        if !is_role_arn(&automation_assume_role_arn) {
            return Err(env.malformed(
                "AUTOMATION_ASSUME_ROLE_ARN",
                &automation_assume_role_arn,
                "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            ));
        }
        let image_name_prefix = env
            .optional("IMAGE_NAME_PREFIX")
            .unwrap_or_else(|| "golden-ami".to_string());
        if !naming::is_valid_image_name_prefix(&image_name_prefix) {
            return Err(env.malformed(
                "IMAGE_NAME_PREFIX",
                &image_name_prefix,
                "1-60 characters of letters, digits and ( ) [ ] . / - ' @ _",
            ));
        }
        let golden_kms_key_arn = env.optional("GOLDEN_KMS_KEY_ARN");
        if let Some(arn) = &golden_kms_key_arn
            && !naming::is_kms_key_arn(arn)
        {
            return Err(env.malformed(
                "GOLDEN_KMS_KEY_ARN",
                arn,
                "a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)",
            ));
        }
        let pipeline_name = env
            .optional("PIPELINE_NAME")
            .unwrap_or_else(|| "golden-ami-pipeline".to_string());
        let path = |name: &str, leaf: &str| {
            let path = env
                .optional(name)
                .unwrap_or_else(|| format!("/{pipeline_name}/{leaf}"));
            if !path.starts_with('/') || path.ends_with('/') {
                return Err(env.malformed(
                    name,
                    &path,
                    &format!("a parameter path such as /golden-ami-pipeline/{leaf} (leading slash, no trailing slash)"),
                ));
            }
            Ok(path)
        };
        let pins_path = path("PINS_PATH", "pins")?;
        let approvals_path = path("APPROVALS_PATH", "approvals")?;
        let durations_path = path("DURATIONS_PATH", "durations")?;
        Ok(Self {
            home_region,
            targets_parameter_name: env.required("TARGETS_PARAMETER_NAME")?,
            pointer_prefix,
            golden_kms_key_arn,
            pointer_share_name: env
                .optional("POINTER_SHARE_NAME")
                .unwrap_or_else(|| format!("{pipeline_name}-pointers")),
            lock_parameter_name: env.required("LOCK_PARAMETER_NAME")?,
            lock_ttl: Duration::from_secs(env.timeout_seconds(
                "STATE_MACHINE_TIMEOUT_SECONDS",
                STATE_MACHINE_TIMEOUT_SECONDS,
            )?) + LOCK_MARGIN,
            reaper_settle_seconds: env.seconds("REAPER_SETTLE_SECONDS", 90)?,
            bake_document_name: env.required("BAKE_DOCUMENT_NAME")?,
            automation_assume_role_arn,
            bake_subnet_id,
            bake_security_group_id,
            bake_instance_profile_name: env.required("BAKE_INSTANCE_PROFILE_NAME")?,
            update_report_document_name: env.required("UPDATE_REPORT_DOCUMENT_NAME")?,
            baseline_apply_document_name: env.required("BASELINE_APPLY_DOCUMENT_NAME")?,
            baseline_check_document_name: env.required("BASELINE_CHECK_DOCUMENT_NAME")?,
            test_document_name: env.required("TEST_DOCUMENT_NAME")?,
            report_bucket_name: env.required("REPORT_BUCKET_NAME")?,
            rebuild_when_up_to_date: env.boolean("REBUILD_WHEN_UP_TO_DATE", false)?,
            bake_timeout: env.minutes("BAKE_TIMEOUT_MINUTES", 120)?,
            copy_timeout: env.minutes("COPY_TIMEOUT_MINUTES", 90)?,
            test_timeout: env.minutes("TEST_TIMEOUT_MINUTES", 45)?,
            test_poll_seconds: env.seconds("TEST_POLL_SECONDS", 60)?,
            bake_poll_seconds: env.seconds("BAKE_POLL_SECONDS", 120)?,
            copy_poll_seconds: env.seconds("COPY_POLL_SECONDS", 60)?,
            pointer_wait: Duration::from_secs(env.seconds("POINTER_WAIT_SECONDS", 60)?),
            pointer_poll: env.milliseconds("POINTER_POLL_MILLISECONDS", 2_000)?,
            image_name_prefix,
            share: env.share()?,
            notification_topic_arn: env.required("NOTIFICATION_TOPIC_ARN")?,
            pipeline_name,
            retention: env.retention()?,
            pins_path,
            approvals_path,
            durations_path,
        })
    }
}

fn is_role_arn(value: &str) -> bool {
    value.starts_with("arn:") && value.contains(":iam::") && value.contains(":role/")
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    }

    fn required(&self, name: &str) -> Result<String, StepError> {
        self.optional(name).ok_or_else(|| {
            StepError::ConfigError(format!(
                "environment variable {name} is missing or empty: set it in the function's environment (the SAM template does)"
            ))
        })
    }

    fn malformed(&self, name: &str, value: &str, expected: &str) -> StepError {
        StepError::ConfigError(format!(
            "environment variable {name} is {value:?}, expected {expected}"
        ))
    }

    fn minutes(&self, name: &str, default: u64) -> Result<Duration, StepError> {
        match self.optional(name) {
            None => Ok(Duration::from_secs(default * 60)),
            Some(value) => match value.parse::<u64>() {
                Ok(minutes) if (1..=10_080).contains(&minutes) => {
                    Ok(Duration::from_secs(minutes * 60))
                }
                _ => Err(self.malformed(name, &value, "a whole number of minutes from 1 to 10080")),
            },
        }
    }

    /// A Step Functions TimeoutSeconds: 1 s to one year (the longest a Standard execution runs).
    fn timeout_seconds(&self, name: &str, default: u64) -> Result<u64, StepError> {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => match value.parse::<u64>() {
                Ok(seconds) if (1..=31_536_000).contains(&seconds) => Ok(seconds),
                _ => Err(self.malformed(
                    name,
                    &value,
                    "a whole number of seconds from 1 to 31536000",
                )),
            },
        }
    }

    fn seconds(&self, name: &str, default: u64) -> Result<u64, StepError> {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => match value.parse::<u64>() {
                // Zero is allowed: the local stack polls without waiting.
                Ok(seconds) if seconds <= 3_600 => Ok(seconds),
                _ => Err(self.malformed(name, &value, "a whole number of seconds from 0 to 3600")),
            },
        }
    }

    fn milliseconds(&self, name: &str, default: u64) -> Result<Duration, StepError> {
        match self.optional(name) {
            None => Ok(Duration::from_millis(default)),
            Some(value) => match value.parse::<u64>() {
                // Zero is allowed: the local stack reads again without pausing.
                Ok(millis) if millis <= 60_000 => Ok(Duration::from_millis(millis)),
                _ => Err(self.malformed(
                    name,
                    &value,
                    "a whole number of milliseconds from 0 to 60000",
                )),
            },
        }
    }

    fn number(
        &self,
        name: &str,
        default: u32,
        range: (u32, u32),
        unit: &str,
    ) -> Result<u32, StepError> {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => match value.parse::<u32>() {
                Ok(n) if (range.0..=range.1).contains(&n) => Ok(n),
                _ => Err(self.malformed(
                    name,
                    &value,
                    &format!("a whole number of {unit} from {} to {}", range.0, range.1),
                )),
            },
        }
    }

    fn retention(&self) -> Result<RetentionPolicy, StepError> {
        let defaults = RetentionPolicy::default();
        Ok(RetentionPolicy {
            keep: self.number("RETAIN_KEEP", 3, (1, 100), "images")? as usize,
            min_age_days: self.number(
                "RETAIN_MIN_AGE_DAYS",
                defaults.min_age_days,
                (0, 3650),
                "days",
            )?,
            unused_days: self.number(
                "RETAIN_UNUSED_DAYS",
                defaults.unused_days,
                (0, 3650),
                "days",
            )?,
            deprecate_after_days: self.number(
                "DEPRECATE_AFTER_DAYS",
                defaults.deprecate_after_days,
                (0, 3650),
                "days",
            )?,
            dry_run: self.boolean("RETAIN_DRY_RUN", false)?,
        })
    }

    fn boolean(&self, name: &str, default: bool) -> Result<bool, StepError> {
        match self.optional(name).as_deref() {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(self.malformed(name, v, "true or false")),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|value| split_list(&value))
            .unwrap_or_default()
    }

    fn share(&self) -> Result<ShareConfig, StepError> {
        let organization_arn = self.optional("SHARE_ORGANIZATION_ARN");
        if let Some(arn) = organization_arn
            .as_ref()
            .filter(|arn| !naming::is_organization_arn(arn))
        {
            return Err(self.malformed(
                "SHARE_ORGANIZATION_ARN",
                arn,
                "arn:aws:organizations::MANAGEMENT-ACCOUNT:organization/o-...",
            ));
        }
        let organizational_unit_arns = self.list("SHARE_OU_ARNS");
        if let Some(bad) = organizational_unit_arns
            .iter()
            .find(|arn| !naming::is_organizational_unit_arn(arn))
        {
            return Err(self.malformed(
                "SHARE_OU_ARNS",
                bad,
                "comma-separated arn:aws:organizations::ACCOUNT:ou/o-.../ou-...",
            ));
        }
        let account_ids = self.list("SHARE_ACCOUNT_IDS");
        if let Some(bad) = account_ids
            .iter()
            .find(|id| id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(self.malformed(
                "SHARE_ACCOUNT_IDS",
                bad,
                "comma-separated 12-digit account ids",
            ));
        }
        let share_with_organization = self.boolean("SHARE_WITH_ORGANIZATION", true)?;
        if !share_with_organization && organizational_unit_arns.is_empty() && account_ids.is_empty()
        {
            return Err(StepError::ConfigError(
                "SHARE_WITH_ORGANIZATION is false and neither SHARE_OU_ARNS nor SHARE_ACCOUNT_IDS is set: the golden image would be shared with nobody".into(),
            ));
        }
        Ok(ShareConfig {
            organization_arn,
            organizational_unit_arns,
            account_ids,
            share_with_organization,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("AWS_REGION", "eu-west-1"),
            ("TARGETS_PARAMETER_NAME", "/golden-ami-pipeline/targets"),
            ("LOCK_PARAMETER_NAME", "/golden-ami-pipeline/lock"),
            ("BAKE_DOCUMENT_NAME", "golden-ami-bake"),
            (
                "AUTOMATION_ASSUME_ROLE_ARN",
                "arn:aws:iam::111122223333:role/golden-ami-automation",
            ),
            ("BAKE_SUBNET_ID", "subnet-0123456789abcdef0"),
            ("BAKE_INSTANCE_PROFILE_NAME", "golden-ami-bake-instance"),
            ("BAKE_SECURITY_GROUP_ID", "sg-0123456789abcdef0"),
            ("UPDATE_REPORT_DOCUMENT_NAME", "golden-ami-update-report"),
            ("BASELINE_APPLY_DOCUMENT_NAME", "golden-ami-baseline-apply"),
            ("BASELINE_CHECK_DOCUMENT_NAME", "golden-ami-baseline-check"),
            ("TEST_DOCUMENT_NAME", "golden-ami-test"),
            ("REPORT_BUCKET_NAME", "golden-ami-reports-111122223333"),
            (
                "NOTIFICATION_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:111122223333:golden-ami",
            ),
        ])
    }

    fn load(vars: &HashMap<&str, &str>) -> Result<Config, StepError> {
        Config::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_fill_the_optional_variables() {
        let config = load(&base()).unwrap();
        assert_eq!(config.home_region, "eu-west-1");
        assert_eq!(config.pointer_prefix, "/golden-ami/");
        // The state machine's 80 hours and a quarter of an hour for a Task still in flight.
        assert_eq!(config.lock_ttl, Duration::from_secs(288_000 + 900));
        assert_eq!(config.reaper_settle_seconds, 90);
        assert_eq!(config.bake_timeout, Duration::from_secs(7200));
        assert_eq!(config.image_name_prefix, "golden-ami");
        assert!(config.share.share_with_organization);
        assert_eq!(config.share.organization_arn, None);
        assert!(!config.rebuild_when_up_to_date);
        assert_eq!(config.test_timeout, Duration::from_secs(45 * 60));
        assert_eq!(config.test_poll_seconds, 60);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut vars = base();
        vars.remove("BAKE_DOCUMENT_NAME");
        let error = load(&vars).unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        assert!(error.to_string().contains("BAKE_DOCUMENT_NAME is missing"));
    }

    #[test]
    fn a_missing_region_or_a_bad_prefix_is_named() {
        let mut vars = base();
        vars.remove("AWS_REGION");
        assert!(load(&vars).unwrap_err().to_string().contains("AWS_REGION"));
        let mut vars = base();
        vars.insert("POINTER_PREFIX", "golden-ami");
        assert!(
            load(&vars)
                .unwrap_err()
                .to_string()
                .contains("POINTER_PREFIX")
        );
    }

    #[test]
    fn malformed_lists_and_numbers_are_named() {
        for (name, value) in [
            ("SHARE_ACCOUNT_IDS", "111122223333,12345"),
            ("SHARE_OU_ARNS", "ou-abcd-12345678"),
            ("BAKE_TIMEOUT_MINUTES", "two hours"),
            ("SHARE_WITH_ORGANIZATION", "yes"),
            ("BAKE_SUBNET_ID", "sg-1234"),
            ("BAKE_SECURITY_GROUP_ID", "subnet-1234"),
            ("REBUILD_WHEN_UP_TO_DATE", "always"),
            ("TEST_TIMEOUT_MINUTES", "0"),
        ] {
            let mut vars = base();
            vars.insert(name, value);
            let error = load(&vars).unwrap_err();
            assert!(error.to_string().contains(name), "{name}: {error}");
        }
    }

    #[test]
    fn sharing_with_nobody_is_refused() {
        let mut vars = base();
        vars.insert("SHARE_WITH_ORGANIZATION", "false");
        assert!(load(&vars).is_err());
        vars.insert("SHARE_ACCOUNT_IDS", "444455556666, 777788889999");
        let config = load(&vars).unwrap();
        assert_eq!(config.share.account_ids, ["444455556666", "777788889999"]);
    }
}
