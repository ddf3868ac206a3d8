//! The one error type of every step, and how AWS SDK errors become it.
//!
//! Step Functions matches a Lambda failure by its `errorType`. `lambda_runtime` would report a
//! Rust type name there; instead each variant carries a stable PascalCase name that the state
//! machine's `ErrorEquals` lists (a contract test holds the two together).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

/// Everything a step can fail with. The `Display` text is the Step Functions `Cause`: it names
/// what is wrong and, where a person can act, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The event the state machine sent is not what this step needs.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// An environment variable is missing or malformed.
    #[error("configuration error: {0}")]
    ConfigError(String),

    /// The pointer parameter does not exist.
    #[error(
        "the pointer parameter {parameter} does not exist: create it (the SAM stack does) with the current golden AMI id"
    )]
    PointerNotFound { parameter: String },

    /// The image the pointer holds cannot be the source of a bake.
    #[error("source image {image_id} (from parameter {parameter}) cannot be baked: {reason}")]
    SourceImageNotFound {
        image_id: String,
        parameter: String,
        reason: String,
    },

    /// The bake automation ended in a state other than Success.
    #[error("bake failed: {0}")]
    BakeFailed(String),

    /// The bake automation did not end before its deadline (it has been stopped).
    #[error("bake timed out: {0}")]
    BakeTimedOut(String),

    /// The golden KMS key cannot encrypt the copy.
    #[error("KMS key unusable: {0}")]
    KmsKeyUnusable(String),

    /// The re-encrypted copy failed.
    #[error("copy failed: {0}")]
    CopyFailed(String),

    /// The copy did not become available before its deadline.
    #[error("copy timed out: {0}")]
    CopyTimedOut(String),

    /// Sharing the golden image with the organization failed.
    #[error("share failed: {0}")]
    ShareFailed(String),

    /// The golden image does not pass verification; every failed check is listed.
    #[error("verification failed: {}", .0.join("; "))]
    VerificationFailed(Vec<String>),

    /// The boot test of the golden copy failed: every failed control (or step) is listed.
    #[error("boot test failed: {}", .0.join("; "))]
    TestFailed(Vec<String>),

    /// The boot test did not end before its deadline (it has been stopped).
    #[error("boot test timed out: {0}")]
    TestTimedOut(String),

    /// The pointer moved since the run read it (a manual pin or rollback): not overwritten.
    #[error(
        "pointer {parameter} changed during the run (read at version {expected}, now version {found} = {found_value}); not overwriting it: re-run the pipeline if the change was not a deliberate pin"
    )]
    PointerChangedConcurrently {
        parameter: String,
        expected: i64,
        found: i64,
        found_value: String,
    },

    /// An operator pinned the family (`golden-ami pin`) during the run: none of its pointers
    /// moves, in any region, whatever image the pin names.
    #[error(
        "family {family} was pinned to {ami_id} by {pinned_by} at {pinned_at}{reason} during the run: its pointers stay as the pin left them; `golden-ami unpin --family {family}` lets the next run patch it"
    )]
    FamilyPinned {
        family: String,
        ami_id: String,
        pinned_by: String,
        pinned_at: String,
        /// " (reason)" or empty.
        reason: String,
    },

    /// `golden-ami pin` was given an image that is not a golden image of the family in that
    /// region (the checks of VerifyImage, golden::inspect): every failed check is listed.
    #[error(
        "cannot pin {image_id}: it is not a golden image of {family} in {region}: {}; pin an image a run published for {family} in {region} (`golden-ami status` shows what each pointer holds; the family's golden images are tagged golden-ami:family={family})",
        .problems.join("; ")
    )]
    NotPinnable {
        family: String,
        region: String,
        image_id: String,
        problems: Vec<String>,
    },

    /// SSM never made a pointer write visible: it validates an aws:ec2:image value
    /// asynchronously after PutParameter succeeded, and a value that fails validation is never
    /// written (PutParameter API reference, DataType).
    #[error(
        "pointer {parameter} in {region} does not hold {image_id}: SSM accepted the write but {reason}; check that {image_id} is available to this account in {region} (ec2 describe-images), and the EventBridge \"Parameter Store Change\" events or CloudTrail for the failed validation; the pointer holds what it held before"
    )]
    PointerValidationFailed {
        parameter: String,
        region: String,
        image_id: String,
        reason: String,
    },

    /// The pointer could not be added to the region's AWS RAM share (the association FAILED,
    /// or did not become ASSOCIATED in time): the organization cannot read it.
    #[error(
        "pointer {parameter} is not shared: its association with the AWS RAM share {share} {reason}; consumers there get ParameterNotFound until it is ASSOCIATED: check the share in the RAM console (aws ram get-resource-share-associations --association-type RESOURCE --resource-arn {parameter}) and re-run the pipeline, which repairs the association"
    )]
    PointerShareFailed {
        parameter: String,
        share: String,
        reason: String,
    },

    /// Cleanup was asked to remove an image that must be kept.
    #[error("cleanup refused: {0}")]
    CleanupRefused(String),

    /// The SNS notification could not be sent.
    #[error("notification failed: {0}")]
    NotificationFailed(String),

    /// Throttling, a 5xx or a network failure: worth retrying as is.
    #[error("transient AWS error in {operation}: {message}")]
    Throttled { operation: String, message: String },

    /// Any other AWS error, with the operation and the service's code.
    #[error("{operation} failed with {code}: {message}")]
    AwsError {
        operation: String,
        code: String,
        message: String,
    },
}

/// The Step Functions error names of every variant, for contract tests against the ASL.
pub const ERROR_NAMES: &[&str] = &[
    "InvalidInput",
    "ConfigError",
    "PointerNotFound",
    "SourceImageNotFound",
    "BakeFailed",
    "BakeTimedOut",
    "KmsKeyUnusable",
    "CopyFailed",
    "CopyTimedOut",
    "ShareFailed",
    "VerificationFailed",
    "TestFailed",
    "TestTimedOut",
    "PointerChangedConcurrently",
    "FamilyPinned",
    "NotPinnable",
    "PointerValidationFailed",
    "PointerShareFailed",
    "CleanupRefused",
    "NotificationFailed",
    "Throttled",
    "AwsError",
];

/// The names the state machine retries (everything else goes to the failure path).
pub const RETRYABLE_ERROR_NAMES: &[&str] = &["Throttled"];

impl StepError {
    /// The stable name Step Functions sees as the error (the Lambda `errorType`).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "InvalidInput",
            Self::ConfigError(_) => "ConfigError",
            Self::PointerNotFound { .. } => "PointerNotFound",
            Self::SourceImageNotFound { .. } => "SourceImageNotFound",
            Self::BakeFailed(_) => "BakeFailed",
            Self::BakeTimedOut(_) => "BakeTimedOut",
            Self::KmsKeyUnusable(_) => "KmsKeyUnusable",
            Self::CopyFailed(_) => "CopyFailed",
            Self::CopyTimedOut(_) => "CopyTimedOut",
            Self::ShareFailed(_) => "ShareFailed",
            Self::VerificationFailed(_) => "VerificationFailed",
            Self::TestFailed(_) => "TestFailed",
            Self::TestTimedOut(_) => "TestTimedOut",
            Self::PointerChangedConcurrently { .. } => "PointerChangedConcurrently",
            Self::FamilyPinned { .. } => "FamilyPinned",
            Self::NotPinnable { .. } => "NotPinnable",
            Self::PointerValidationFailed { .. } => "PointerValidationFailed",
            Self::PointerShareFailed { .. } => "PointerShareFailed",
            Self::CleanupRefused(_) => "CleanupRefused",
            Self::NotificationFailed(_) => "NotificationFailed",
            Self::Throttled { .. } => "Throttled",
            Self::AwsError { .. } => "AwsError",
        }
    }

    /// Whether the state machine retries this error.
    pub fn is_retryable(&self) -> bool {
        RETRYABLE_ERROR_NAMES.contains(&self.error_type())
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl From<StepError> for Diagnostic {
    fn from(error: StepError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

/// Error codes that AWS services use for throttling (the SDKs' own list, plus EC2's spellings).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// The service's error code of an SDK error, if the service sent one.
pub fn error_code<E, R>(error: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Turn an SDK error into a step error: throttling, 5xx, timeouts and network failures are
/// the retryable `Throttled`; anything else is an `AwsError` naming the operation and code.
/// Handlers match the codes they understand (e.g. `InvalidAMIID.NotFound`) before calling this.
pub fn classify_sdk_error<E>(operation: &str, error: SdkError<E, HttpResponse>) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let operation = operation.to_string();
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => StepError::Throttled {
            operation,
            message: describe(&error),
        },
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("Unknown").to_string();
            let message = service
                .err()
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| describe(&error));
            if THROTTLING_CODES.contains(&code.as_str()) || status == 429 || status >= 500 {
                StepError::Throttled {
                    operation,
                    message: format!("{code} (HTTP {status}): {message}"),
                }
            } else {
                StepError::AwsError {
                    operation,
                    code,
                    message,
                }
            }
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            if status >= 500 {
                StepError::Throttled {
                    operation,
                    message: format!("HTTP {status}: {}", describe(&error)),
                }
            } else {
                StepError::AwsError {
                    operation,
                    code: format!("HTTP{status}"),
                    message: describe(&error),
                }
            }
        }
        _ => StepError::AwsError {
            operation,
            code: "ClientError".to_string(),
            message: describe(&error),
        },
    }
}

/// The full chain of an error's sources on one line (the SDK's top-level text is terse).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_name_is_listed_and_unique() {
        let samples = [
            StepError::InvalidInput(String::new()),
            StepError::ConfigError(String::new()),
            StepError::PointerNotFound {
                parameter: String::new(),
            },
            StepError::SourceImageNotFound {
                image_id: String::new(),
                parameter: String::new(),
                reason: String::new(),
            },
            StepError::BakeFailed(String::new()),
            StepError::BakeTimedOut(String::new()),
            StepError::KmsKeyUnusable(String::new()),
            StepError::CopyFailed(String::new()),
            StepError::CopyTimedOut(String::new()),
            StepError::ShareFailed(String::new()),
            StepError::VerificationFailed(vec![]),
            StepError::TestFailed(vec![]),
            StepError::TestTimedOut(String::new()),
            StepError::PointerChangedConcurrently {
                parameter: String::new(),
                expected: 0,
                found: 0,
                found_value: String::new(),
            },
            StepError::FamilyPinned {
                family: String::new(),
                ami_id: String::new(),
                pinned_by: String::new(),
                pinned_at: String::new(),
                reason: String::new(),
            },
            StepError::NotPinnable {
                family: String::new(),
                region: String::new(),
                image_id: String::new(),
                problems: vec![],
            },
            StepError::PointerValidationFailed {
                parameter: String::new(),
                region: String::new(),
                image_id: String::new(),
                reason: String::new(),
            },
            StepError::PointerShareFailed {
                parameter: String::new(),
                share: String::new(),
                reason: String::new(),
            },
            StepError::CleanupRefused(String::new()),
            StepError::NotificationFailed(String::new()),
            StepError::Throttled {
                operation: String::new(),
                message: String::new(),
            },
            StepError::AwsError {
                operation: String::new(),
                code: String::new(),
                message: String::new(),
            },
        ];
        let names: Vec<&str> = samples.iter().map(StepError::error_type).collect();
        assert_eq!(names, ERROR_NAMES);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn diagnostic_carries_the_stable_name_and_the_message() {
        let diagnostic = Diagnostic::from(StepError::VerificationFailed(vec![
            "snapshot snap-1 is encrypted under aws/ebs".into(),
            "launch permission lacks arn:aws:organizations::1:organization/o-1".into(),
        ]));
        assert_eq!(diagnostic.error_type, "VerificationFailed");
        assert_eq!(
            diagnostic.error_message,
            "verification failed: snapshot snap-1 is encrypted under aws/ebs; launch permission lacks arn:aws:organizations::1:organization/o-1"
        );
    }

    #[test]
    fn only_throttled_is_retryable() {
        assert!(
            StepError::Throttled {
                operation: "X".into(),
                message: "y".into()
            }
            .is_retryable()
        );
        assert!(!StepError::BakeFailed("x".into()).is_retryable());
    }
}
