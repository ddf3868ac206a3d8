//! Reading the pointer parameter: the one read every step that cares about it does the same way.

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
