//! ReadCurrentAmi: where the pointer stands at the start of a run.
//!
//! Reads the pointer parameter, checks that the image it holds exists and is available (it is
//! the source of the bake), and reports a bake of another run still in progress so the state
//! machine can end this run without doing anything.

use aws_sdk_ec2::types::{Image, ImageState};
use aws_sdk_ssm::types::{
    AutomationExecutionFilter, AutomationExecutionFilterKey, AutomationExecutionMetadata,
};
use golden_ami_core::naming::is_ami_id;
use golden_ami_core::{
    CurrentImage, Deps, PointerValue, StepError, StepInput, classify_sdk_error, read_pointer,
};

/// Automation statuses that mean a bake is still running (or about to).
const ACTIVE_STATUSES: &[&str] = &["Pending", "InProgress", "Waiting", "Cancelling"];

pub async fn handler(deps: &Deps, _input: StepInput) -> Result<CurrentImage, StepError> {
    let parameter = &deps.config.pointer_parameter_name;
    let PointerValue {
        value: ami_id,
        version: parameter_version,
    } = read_pointer(&deps.clients.ssm, parameter).await?;
    if !is_ami_id(&ami_id) {
        return Err(StepError::InvalidInput(format!(
            "parameter {parameter} holds {ami_id:?}, which is not an AMI id: put the current golden AMI id (ami-...) in it"
        )));
    }
    let image = describe_image(deps, &ami_id)
        .await
        .map_err(|error| match error {
            StepError::AwsError { code, message, .. } if code.starts_with("InvalidAMIID.") => {
                source_not_found(&ami_id, parameter, format!("{code}: {message}"))
            }
            other => other,
        })?;
    let image = check_source_image(image.as_ref(), &ami_id, parameter)?;
    let bake_in_progress = bake_in_progress(deps).await?;
    if let Some(id) = &bake_in_progress {
        tracing::warn!(automation_execution_id = %id, "another bake is in progress; this run will do nothing");
    }
    Ok(CurrentImage {
        parameter_name: parameter.clone(),
        parameter_version,
        ami_id,
        ami_name: image.name().map(str::to_string),
        bake_in_progress,
    })
}

async fn describe_image(deps: &Deps, ami_id: &str) -> Result<Option<Image>, StepError> {
    let output = deps
        .clients
        .ec2
        .describe_images()
        .image_ids(ami_id)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:DescribeImages", error))?;
    Ok(output.images().first().cloned())
}

fn source_not_found(ami_id: &str, parameter: &str, reason: String) -> StepError {
    StepError::SourceImageNotFound {
        image_id: ami_id.to_string(),
        parameter: parameter.to_string(),
        reason,
    }
}

/// The image the pointer holds must exist and be available to be baked from.
pub fn check_source_image<'a>(
    image: Option<&'a Image>,
    ami_id: &str,
    parameter: &str,
) -> Result<&'a Image, StepError> {
    let image = image.ok_or_else(|| {
        source_not_found(
            ami_id,
            parameter,
            "it does not exist or is not visible to this account (deregistered?): set the parameter back to a valid golden AMI".into(),
        )
    })?;
    match image.state() {
        Some(ImageState::Available) => Ok(image),
        state => Err(source_not_found(
            ami_id,
            parameter,
            format!(
                "it is {}, not available",
                state.map_or("in an unknown state", |s| s.as_str())
            ),
        )),
    }
}

/// The id of an automation of the bake document still running, if any.
async fn bake_in_progress(deps: &Deps) -> Result<Option<String>, StepError> {
    let document = &deps.config.bake_document_name;
    let output = deps
        .clients
        .ssm
        .describe_automation_executions()
        .filters(filter(
            AutomationExecutionFilterKey::DocumentNamePrefix,
            [document.as_str()],
        )?)
        .filters(filter(
            AutomationExecutionFilterKey::ExecutionStatus,
            ACTIVE_STATUSES.iter().copied(),
        )?)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ssm:DescribeAutomationExecutions", error))?;
    Ok(first_active_bake(
        output.automation_execution_metadata_list(),
        document,
    ))
}

fn filter<'a>(
    key: AutomationExecutionFilterKey,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<AutomationExecutionFilter, StepError> {
    AutomationExecutionFilter::builder()
        .key(key)
        .set_values(Some(values.into_iter().map(str::to_string).collect()))
        .build()
        .map_err(|error| StepError::invalid_input(format!("automation filter: {error}")))
}

/// The prefix filter also matches other documents (golden-ami-bake-v2): keep exact names only.
pub fn first_active_bake(
    executions: &[AutomationExecutionMetadata],
    document: &str,
) -> Option<String> {
    executions
        .iter()
        .filter(|execution| execution.document_name() == Some(document))
        .filter(|execution| {
            execution
                .automation_execution_status()
                .is_some_and(|status| ACTIVE_STATUSES.contains(&status.as_str()))
        })
        .find_map(|execution| execution.automation_execution_id().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::describe_automation_executions::DescribeAutomationExecutionsOutput;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use aws_sdk_ssm::types::{AutomationExecutionStatus, Parameter};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/read-current-ami/ok.json");
    const AMI: &str = "ami-0123456789abcdef0";

    fn pointer(value: &str, version: i64) -> Rule {
        let value = value.to_string();
        mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(testing::POINTER))
            .then_output(move || {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name(testing::POINTER)
                            .value(value.clone())
                            .version(version)
                            .data_type("aws:ec2:image")
                            .build(),
                    )
                    .build()
            })
    }

    fn image(state: ImageState) -> Rule {
        mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [AMI])
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(
                        Image::builder()
                            .image_id(AMI)
                            .name("golden-ami-2026-11-01-1a2b3c4d")
                            .state(state.clone())
                            .build(),
                    )
                    .build()
            })
    }

    fn automations(list: Vec<AutomationExecutionMetadata>) -> Rule {
        mock!(Ssm::describe_automation_executions)
            .match_requests(|request| {
                request.filters().iter().any(|f| {
                    f.key() == &AutomationExecutionFilterKey::DocumentNamePrefix
                        && f.values() == [testing::BAKE_DOCUMENT]
                })
            })
            .then_output(move || {
                DescribeAutomationExecutionsOutput::builder()
                    .set_automation_execution_metadata_list(Some(list.clone()))
                    .build()
            })
    }

    fn automation(
        document: &str,
        status: AutomationExecutionStatus,
    ) -> AutomationExecutionMetadata {
        AutomationExecutionMetadata::builder()
            .automation_execution_id("a1b2c3d4-0000-4000-8000-000000000001")
            .document_name(document)
            .automation_execution_status(status)
            .build()
    }

    #[tokio::test]
    async fn reads_the_pointer_and_checks_the_image() {
        let get = pointer(AMI, 7);
        let describe = image(ImageState::Available);
        let list = automations(vec![]);
        let deps = MockClients {
            ssm: vec![&get, &list],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let current = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(current.ami_id, AMI);
        assert_eq!(current.parameter_version, 7);
        assert_eq!(current.parameter_name, testing::POINTER);
        assert_eq!(
            current.ami_name.as_deref(),
            Some("golden-ami-2026-11-01-1a2b3c4d")
        );
        assert_eq!(current.bake_in_progress, None);
        assert_eq!(
            (get.num_calls(), describe.num_calls(), list.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn reports_another_bake_in_progress() {
        let get = pointer(AMI, 7);
        let describe = image(ImageState::Available);
        let list = automations(vec![
            automation("golden-ami-bake-v2", AutomationExecutionStatus::Inprogress),
            automation(
                testing::BAKE_DOCUMENT,
                AutomationExecutionStatus::Inprogress,
            ),
        ]);
        let deps = MockClients {
            ssm: vec![&get, &list],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let current = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(
            current.bake_in_progress.as_deref(),
            Some("a1b2c3d4-0000-4000-8000-000000000001")
        );
    }

    #[tokio::test]
    async fn a_missing_parameter_is_pointer_not_found() {
        let get = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let deps = MockClients {
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerNotFound");
        assert!(error.to_string().contains(testing::POINTER));
    }

    #[tokio::test]
    async fn a_value_that_is_not_an_ami_id_is_invalid_input() {
        let get = pointer("latest", 3);
        let deps = MockClients {
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("\"latest\""), "{error}");
        assert!(error.to_string().contains(testing::POINTER), "{error}");
    }

    #[tokio::test]
    async fn an_unknown_image_is_source_image_not_found() {
        let get = pointer(AMI, 7);
        let describe = mock!(Ec2::describe_images).then_error(|| {
            DescribeImagesError::generic(testing::service_error(
                "InvalidAMIID.NotFound",
                "The image id '[ami-0123456789abcdef0]' does not exist",
            ))
        });
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "SourceImageNotFound");
        let message = error.to_string();
        assert!(
            message.contains(AMI) && message.contains(testing::POINTER),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_deregistered_or_pending_image_is_source_image_not_found() {
        for state in [ImageState::Deregistered, ImageState::Pending] {
            let get = pointer(AMI, 7);
            let describe = image(state.clone());
            let deps = MockClients {
                ssm: vec![&get],
                ec2: vec![&describe],
                ..Default::default()
            }
            .deps();
            let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
            assert_eq!(error.error_type(), "SourceImageNotFound");
            assert!(error.to_string().contains(state.as_str()), "{error}");
        }
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let get = mock!(Ssm::get_parameter).then_http_response(|| testing::http_status(503));
        let deps = MockClients {
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[test]
    fn no_image_means_not_visible() {
        let error = check_source_image(None, AMI, testing::POINTER).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("does not exist or is not visible")
        );
    }
}
