//! Reading the pointer parameter: the one read every step that cares about it does the same way;
//! and waiting for a write of it to become visible.
//!
//! A pointer is a parameter of data type `aws:ec2:image`. For that data type "a successful HTTP
//! 200 response does not guarantee that your parameter was successfully created or updated. The
//! aws:ec2:image value is validated asynchronously, and the PutParameter call returns before the
//! validation is complete. If you submit an invalid AMI value, the PutParameter operation will
//! return success, but the asynchronous validation will fail and the parameter will not be
//! created or updated" (PutParameter API reference, DataType:
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html). So
//! whoever writes a pointer reads it until the write shows ([`await_pointer_write`]), telling
//! apart a write still being validated, one someone else's write overtook, and one that never
//! showed (failed validation: the caller says why).

use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::error::{StepError, classify_sdk_error};

/// What the pointer holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerValue {
    pub value: String,
    pub version: i64,
}

/// GetParameter of the pointer; a missing parameter is PointerNotFound.
pub async fn read_pointer(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<PointerValue, StepError> {
    let output = ssm
        .get_parameter()
        .name(parameter)
        .send()
        .await
        .map_err(|error| {
            if error
                .as_service_error()
                .is_some_and(|service| service.is_parameter_not_found())
            {
                StepError::PointerNotFound {
                    parameter: parameter.to_string(),
                }
            } else {
                classify_sdk_error("ssm:GetParameter", error)
            }
        })?;
    let found = output.parameter().ok_or_else(|| StepError::AwsError {
        operation: "ssm:GetParameter".into(),
        code: "EmptyResponse".into(),
        message: format!("no parameter in the response for {parameter}"),
    })?;
    Ok(PointerValue {
        value: found.value().unwrap_or_default().trim().to_string(),
        version: found.version(),
    })
}

/// What one read of the pointer says about a write of `written` made when it was `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteSeen {
    /// The write is visible, at this version.
    Visible(i64),
    /// The pointer is still as it was: SSM is still validating the write (or it failed).
    Pending,
    /// Someone else's write (or a deletion) came first: the pointer is now this.
    Changed(Option<PointerValue>),
}

/// Judge one read (`now`; None: the parameter does not exist) of a pointer that held `before`
/// (None: it did not exist) when `written` was put.
pub fn classify_write(
    before: Option<&PointerValue>,
    written: &str,
    now: Option<&PointerValue>,
) -> WriteSeen {
    match (before, now) {
        (_, Some(now))
            if now.value == written && before.is_none_or(|before| now.version > before.version) =>
        {
            WriteSeen::Visible(now.version)
        }
        (None, None) => WriteSeen::Pending,
        (Some(before), Some(now)) if before == now => WriteSeen::Pending,
        (_, now) => WriteSeen::Changed(now.cloned()),
    }
}

/// How a wait for a pointer write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Visible(i64),
    Changed(Option<PointerValue>),
    /// Still as it was when the wait ended: the validation failed, or is slower than the wait.
    NotVisible,
}

/// Read the pointer until the write of `written` (made when it held `before`) shows, someone
/// else's write shows instead, or `wait` has passed. The pauses between reads grow from a
/// tenth of `poll` to `poll`.
pub async fn await_pointer_write(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    before: Option<&PointerValue>,
    written: &str,
    wait: std::time::Duration,
    poll: std::time::Duration,
) -> Result<WriteOutcome, StepError> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = poll / 10;
    loop {
        let now = match read_pointer(ssm, parameter).await {
            Ok(now) => Some(now),
            Err(StepError::PointerNotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        match classify_write(before, written, now.as_ref()) {
            WriteSeen::Visible(version) => return Ok(WriteOutcome::Visible(version)),
            WriteSeen::Changed(now) => return Ok(WriteOutcome::Changed(now)),
            WriteSeen::Pending if std::time::Instant::now() >= deadline => {
                return Ok(WriteOutcome::NotVisible);
            }
            WriteSeen::Pending => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2)
            .min(poll)
            .max(std::time::Duration::from_millis(1));
    }
}

/// The pointer's values, newest version first: what Retain protects as the rollback target is
/// what `golden-ami rollback` puts back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointerHistory {
    pub values: Vec<String>,
}

impl PointerHistory {
    /// From (version, value) pairs in any order.
    pub fn from_versions(mut versions: Vec<(i64, String)>) -> Self {
        versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        Self {
            values: versions.into_iter().map(|(_, value)| value).collect(),
        }
    }

    pub fn current(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }

    /// The rollback target: the newest value that is not the current one.
    pub fn previous(&self) -> Option<&str> {
        let current = self.current()?;
        self.values
            .iter()
            .map(String::as_str)
            .find(|value| *value != current)
    }

    /// Whether `image` was the pointer's value in one of its newest `keep` versions.
    pub fn held_within(&self, image: &str, keep: usize) -> bool {
        self.values.iter().take(keep).any(|value| value == image)
    }
}

/// Every version of the pointer (GetParameterHistory, all pages); the caller says what a
/// missing parameter or another error means.
pub async fn read_pointer_history(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<PointerHistory, SdkError<GetParameterHistoryError, HttpResponse>> {
    let mut versions = Vec::new();
    let mut pages = ssm
        .get_parameter_history()
        .name(parameter)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for found in page?.parameters() {
            if let Some(value) = found.value() {
                versions.push((found.version(), value.to_string()));
            }
        }
    }
    Ok(PointerHistory::from_versions(versions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(value: &str, version: i64) -> PointerValue {
        PointerValue {
            value: value.into(),
            version,
        }
    }

    #[test]
    fn a_write_is_visible_only_as_a_newer_version_holding_the_value() {
        let old = value("ami-old", 7);
        assert_eq!(
            classify_write(Some(&old), "ami-new", Some(&value("ami-new", 8))),
            WriteSeen::Visible(8)
        );
        // Still validating: the pointer reads as before.
        assert_eq!(
            classify_write(Some(&old), "ami-new", Some(&old)),
            WriteSeen::Pending
        );
        // Another write came first, with another value or the same one at the old version.
        assert_eq!(
            classify_write(Some(&old), "ami-new", Some(&value("ami-other", 8))),
            WriteSeen::Changed(Some(value("ami-other", 8)))
        );
        assert_eq!(
            classify_write(Some(&old), "ami-new", Some(&value("ami-old", 8))),
            WriteSeen::Changed(Some(value("ami-old", 8)))
        );
        assert_eq!(
            classify_write(Some(&old), "ami-new", None),
            WriteSeen::Changed(None)
        );
    }

    #[test]
    fn a_create_is_pending_while_the_parameter_does_not_exist() {
        assert_eq!(classify_write(None, "ami-new", None), WriteSeen::Pending);
        assert_eq!(
            classify_write(None, "ami-new", Some(&value("ami-new", 1))),
            WriteSeen::Visible(1)
        );
        assert_eq!(
            classify_write(None, "ami-new", Some(&value("ami-other", 1))),
            WriteSeen::Changed(Some(value("ami-other", 1)))
        );
    }
}
