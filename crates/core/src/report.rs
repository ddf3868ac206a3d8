//! What the scripts that run inside the image report, read the same way by every step.
//!
//! - The change summary: the first line of infra/baseline/updates.sh's output, a compact JSON
//!   object that the bake document returns as `listUpdates.Output`. It travels in the state,
//!   becomes tags on the golden image and lines of the SUCCEEDED notice.
//! - The baseline check: infra/baseline/check.sh prints `PASS|FAIL|SKIP <control> <evidence>`
//!   per control and a final `SUMMARY pass=N fail=N skip=N`; the boot test returns that text.

use serde::{Deserialize, Serialize};

/// Tag keys of the change summary on the golden image.
pub const TAG_PACKAGES: &str = "golden-ami:packages";
pub const TAG_ADVISORIES: &str = "golden-ami:advisories";
pub const TAG_CVES: &str = "golden-ami:cves";
pub const TAG_KERNEL: &str = "golden-ami:kernel";
pub const TAG_UPDATE_REPORT: &str = "golden-ami:update-report";

/// EC2 tag values hold at most 256 characters.
const TAG_VALUE_MAX: usize = 256;

/// Advisories by the severity (or type) Amazon Linux gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severities {
    #[serde(rename = "Critical", default)]
    pub critical: u32,
    #[serde(rename = "Important", default)]
    pub important: u32,
    #[serde(rename = "Medium", default)]
    pub medium: u32,
    #[serde(rename = "Low", default)]
    pub low: u32,
    #[serde(rename = "Bugfix", default)]
    pub bugfix: u32,
    #[serde(rename = "Enhancement", default)]
    pub enhancement: u32,
}

impl Severities {
    /// "1 Critical, 2 Important" (the non-zero ones, most severe first).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.critical, "Critical"),
            (self.important, "Important"),
            (self.medium, "Medium"),
            (self.low, "Low"),
            (self.bugfix, "bugfix"),
            (self.enhancement, "enhancement"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, name)| format!("{count} {name}"))
        .collect();
        parts.join(", ")
    }
}

/// What the OS update of a bake changes (computed before the update, on the instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSummary {
    /// Nothing was pending: the bake stops without an image unless a rebuild is asked for.
    pub up_to_date: bool,
    pub packages: u32,
    pub advisories: u32,
    #[serde(default)]
    pub severities: Severities,
    pub cves: u32,
    pub kernel_before: String,
    pub kernel_after: String,
    /// Sorted; cut short (with `truncated`) to fit the automation's output field.
    #[serde(default)]
    pub advisory_ids: Vec<String>,
    #[serde(default)]
    pub truncated: bool,
    /// Where the full report is (S3 URI of the key prefix), filled in by CheckBake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

impl UpdateSummary {
    /// The summary from the first line of the update report's output.
    pub fn from_output(output: &str) -> Result<Self, String> {
        let first = output.lines().next().unwrap_or_default().trim();
        if first.is_empty() {
            return Err("the update report printed nothing".to_string());
        }
        serde_json::from_str(first).map_err(|error| {
            let shown: String = first.chars().take(120).collect();
            format!("its first line is not the JSON summary ({error}): {shown}")
        })
    }

    /// "12 packages, 3 advisories: 1 Critical, 2 Important, 7 CVEs, kernel 6.1.112 -> 6.1.115".
    pub fn headline(&self) -> String {
        if self.up_to_date {
            return format!(
                "no pending update (kernel {})",
                short_kernel(&self.kernel_before)
            );
        }
        let advisories = match self.severities.describe() {
            severities if severities.is_empty() => format!("{} advisories", self.advisories),
            severities => format!("{} advisories: {severities}", self.advisories),
        };
        format!(
            "{} packages, {advisories}, {} CVEs, {}",
            self.packages,
            self.cves,
            self.kernel_change()
        )
    }

    /// "kernel 6.1.112 -> 6.1.115", or "kernel 6.1.115 (unchanged)".
    pub fn kernel_change(&self) -> String {
        let (before, after) = (
            short_kernel(&self.kernel_before),
            short_kernel(&self.kernel_after),
        );
        if self.kernel_before == self.kernel_after {
            format!("kernel {after} (unchanged)")
        } else {
            format!("kernel {before} -> {after}")
        }
    }

    /// The advisory ids as a person reads them, noting a cut list.
    pub fn advisory_list(&self) -> String {
        let mut text = self.advisory_ids.join(", ");
        if self.truncated {
            let shown = self.advisory_ids.len();
            text.push_str(&format!(
                " (and {} more: see the full report)",
                (self.advisories as usize).saturating_sub(shown)
            ));
        }
        text
    }

    /// The summary tags of the golden image.
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        let mut advisories = self.advisories.to_string();
        let severities = self.severities.describe();
        if !severities.is_empty() {
            advisories.push_str(&format!(" ({severities})"));
        }
        let mut tags = vec![
            (TAG_PACKAGES, self.packages.to_string()),
            (TAG_ADVISORIES, advisories),
            (TAG_CVES, self.cves.to_string()),
            (TAG_KERNEL, self.kernel_after.clone()),
        ];
        if let Some(report) = &self.report {
            tags.push((TAG_UPDATE_REPORT, report.clone()));
        }
        tags.into_iter()
            .map(|(key, value)| (key, value.chars().take(TAG_VALUE_MAX).collect()))
            .collect()
    }
}

/// "6.1.115-126.197.amzn2023.x86_64" -> "6.1.115".
fn short_kernel(release: &str) -> &str {
    release.split('-').next().unwrap_or(release)
}

/// One control of the baseline check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlResult {
    pub control: String,
    pub outcome: Outcome,
    pub evidence: String,
}

/// The check's output, read line by line; lines that are not the check's are ignored (the
/// text may come wrapped in an SSM failure message).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub results: Vec<ControlResult>,
    /// The SUMMARY line's (pass, fail, skip), if the output reached it.
    pub summary: Option<(u32, u32, u32)>,
}

impl CheckReport {
    pub fn parse(text: &str) -> Self {
        let mut report = CheckReport::default();
        for line in text.lines().map(str::trim) {
            // SSM wraps a failed command's output as "Output=[PASS ...": find the verb anywhere.
            let line = ["PASS ", "FAIL ", "SKIP ", "SUMMARY "]
                .iter()
                .filter_map(|verb| line.find(verb).map(|at| &line[at..]))
                .min_by_key(|rest| std::cmp::Reverse(rest.len()))
                .unwrap_or(line);
            if let Some(rest) = line.strip_prefix("SUMMARY ") {
                report.summary = parse_summary(rest);
                continue;
            }
            let mut parts = line.splitn(3, ' ');
            let outcome = match parts.next() {
                Some("PASS") => Outcome::Pass,
                Some("FAIL") => Outcome::Fail,
                Some("SKIP") => Outcome::Skip,
                _ => continue,
            };
            let Some(control) = parts.next().filter(|c| is_control_id(c)) else {
                continue;
            };
            let evidence = parts
                .next()
                .unwrap_or_default()
                .trim_end_matches([']', ','])
                .to_string();
            if !report.results.iter().any(|r| r.control == control) {
                report.results.push(ControlResult {
                    control: control.to_string(),
                    outcome,
                    evidence,
                });
            }
        }
        report
    }

    pub fn failed(&self) -> Vec<&ControlResult> {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Fail)
            .collect()
    }

    pub fn count(&self, outcome: Outcome) -> u32 {
        self.results.iter().filter(|r| r.outcome == outcome).count() as u32
    }

    /// Every failed control with its evidence, for TestFailed.
    pub fn failures(&self) -> Vec<String> {
        self.failed()
            .into_iter()
            .map(|r| format!("control {} failed: {}", r.control, r.evidence))
            .collect()
    }
}

fn is_control_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// "pass=20 fail=0 skip=0" -> (20, 0, 0).
fn parse_summary(text: &str) -> Option<(u32, u32, u32)> {
    let mut counts = [None; 3];
    for part in text.split_whitespace() {
        let (key, value) = part.split_once('=')?;
        let value = value.trim_end_matches([']', ',']).parse().ok()?;
        match key {
            "pass" => counts[0] = Some(value),
            "fail" => counts[1] = Some(value),
            "skip" => counts[2] = Some(value),
            _ => {}
        }
    }
    Some((counts[0]?, counts[1]?, counts[2]?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PENDING: &str = r#"{"upToDate":false,"packages":12,"advisories":3,"severities":{"Critical":1,"Important":2,"Medium":0,"Low":0,"Bugfix":0,"Enhancement":0},"cves":7,"kernelBefore":"6.1.112-122.189.amzn2023.x86_64","kernelAfter":"6.1.115-126.197.amzn2023.x86_64","advisoryIds":["ALAS2023-2024-745","ALAS2023-2024-751","ALAS2023-2024-760"],"truncated":false}
--- full report ---
== dnf updateinfo list --updates
"#;

    #[test]
    fn the_summary_is_the_first_line_and_reads_as_a_headline() {
        let summary = UpdateSummary::from_output(PENDING).unwrap();
        assert!(!summary.up_to_date);
        assert_eq!(
            summary.headline(),
            "12 packages, 3 advisories: 1 Critical, 2 Important, 7 CVEs, kernel 6.1.112 -> 6.1.115"
        );
        assert_eq!(
            summary.advisory_list(),
            "ALAS2023-2024-745, ALAS2023-2024-751, ALAS2023-2024-760"
        );
    }

    #[test]
    fn an_up_to_date_summary_says_so() {
        let summary = UpdateSummary::from_output(
            r#"{"upToDate":true,"packages":0,"advisories":0,"severities":{},"cves":0,"kernelBefore":"6.1.115-126.197.amzn2023.x86_64","kernelAfter":"6.1.115-126.197.amzn2023.x86_64","advisoryIds":[],"truncated":false}"#,
        )
        .unwrap();
        assert!(summary.up_to_date);
        assert_eq!(summary.headline(), "no pending update (kernel 6.1.115)");
        assert_eq!(summary.kernel_change(), "kernel 6.1.115 (unchanged)");
    }

    #[test]
    fn a_cut_advisory_list_says_how_many_are_left_out() {
        let mut summary = UpdateSummary::from_output(PENDING).unwrap();
        summary.advisories = 40;
        summary.truncated = true;
        assert!(
            summary
                .advisory_list()
                .ends_with("(and 37 more: see the full report)")
        );
    }

    #[test]
    fn output_that_is_not_the_summary_is_an_error_naming_it() {
        let error = UpdateSummary::from_output("Error: Failed to download metadata\n").unwrap_err();
        assert!(error.contains("Failed to download metadata"), "{error}");
        assert!(UpdateSummary::from_output("").is_err());
    }

    #[test]
    fn tags_carry_the_summary_and_stay_within_ec2_limits() {
        let mut summary = UpdateSummary::from_output(PENDING).unwrap();
        summary.report = Some(format!("s3://bucket/updates/{}/", "x".repeat(300)));
        let tags = summary.tags();
        assert!(tags.contains(&(TAG_PACKAGES, "12".to_string())));
        assert!(tags.contains(&(TAG_ADVISORIES, "3 (1 Critical, 2 Important)".to_string())));
        assert!(tags.contains(&(TAG_CVES, "7".to_string())));
        assert!(tags.contains(&(TAG_KERNEL, "6.1.115-126.197.amzn2023.x86_64".to_string())));
        assert!(tags.iter().all(|(_, value)| value.chars().count() <= 256));
    }

    #[test]
    fn the_check_output_is_read_per_control() {
        let report = CheckReport::parse(
            "PASS selinux-config SELINUX=enforcing (/etc/selinux/config)\n\
             FAIL ssh-ciphers Ciphers aes128-cbc,aes256-ctr allows aes128-cbc\n\
             SKIP selinux-runtime runtime check; root is /tmp/x, not /\n\
             SUMMARY pass=1 fail=1 skip=1\n",
        );
        assert_eq!(report.summary, Some((1, 1, 1)));
        assert_eq!(report.count(Outcome::Pass), 1);
        assert_eq!(
            report.failures(),
            ["control ssh-ciphers failed: Ciphers aes128-cbc,aes256-ctr allows aes128-cbc"]
        );
    }

    #[test]
    fn the_check_output_is_found_inside_an_ssm_failure_message() {
        let message = "Step fails when it is Poll action status:Failed. Command 1a2b returns unexpected invocation result: \n{Status=[Failed], ResponseCode=[1], Output=[PASS selinux-config SELINUX=enforcing\nFAIL time-sync no server 169.254.169.123 line\nSUMMARY pass=1 fail=1 skip=0\n], CommandId=[1a2b]}.";
        let report = CheckReport::parse(message);
        assert_eq!(
            report.failures(),
            ["control time-sync failed: no server 169.254.169.123 line"]
        );
        assert_eq!(report.summary, Some((1, 1, 0)));
    }

    #[test]
    fn lines_that_are_not_the_checks_are_ignored() {
        let report = CheckReport::parse("PASSWORD reset\nFAIL Bad Id here\nhello\n");
        assert!(report.results.is_empty());
        assert_eq!(report.summary, None);
    }
}
