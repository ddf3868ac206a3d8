//! Stopping a bake automation: CheckBake past its deadline and the failure path do it alike.

use aws_sdk_ssm::types::StopType;

use crate::error::{StepError, classify_sdk_error};

/// StopAutomationExecution (Cancel), so the document's onCancel route terminates the temporary
/// instance. An automation that ended between the caller's look and the stop is fine.
pub async fn stop_automation(ssm: &aws_sdk_ssm::Client, id: &str) -> Result<(), StepError> {
    let result = ssm
        .stop_automation_execution()
        .automation_execution_id(id)
        .r#type(StopType::Cancel)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_invalid_automation_status_update_exception()) =>
        {
            Ok(())
        }
        Err(error) => Err(classify_sdk_error("ssm:StopAutomationExecution", error)),
    }
}
