//! Reading the pointer parameter: the one read every step that cares about it does the same way.

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
