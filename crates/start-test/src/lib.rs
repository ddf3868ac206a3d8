//! StartTest: start the boot test of the verified golden copy.
//!
//! The test document launches an instance FROM the golden copy (under the org key: this also
//! proves EC2 can launch it), waits for Systems Manager and runs the baseline check on it. The
//! ClientToken derives from the execution and the step, so a retried invocation gets the same
//! test back instead of a second instance.

use std::collections::HashMap;

use golden_ami_core::automation::{parameters, run_parameters, start_automation};
use golden_ami_core::naming::{self, format_timestamp};
use golden_ami_core::pacing;
use golden_ami_core::{
    Config, Deps, ExecutionContext, FamilyTarget, StepError, StepInput, TestStarted,
};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<TestStarted, StepError> {
    let config = &deps.config;
    let family = input.state.require_family()?;
    // The test boots the home region's copy: the test document runs in the home region.
    let home = input.state.home_region_result()?;
    let golden_ami_id = home.verified_golden_image()?;
    let test_name = &home.require_copy()?.golden_ami_name;
    let automation_execution_id = start_automation(
        deps.clients.ssm(),
        &config.test_document_name,
        "TEST_DOCUMENT_NAME",
        test_parameters(config, &input.context, family, golden_ami_id, test_name),
        client_token(&input.context, family),
    )
    .await?;
    tracing::info!(%automation_execution_id, %golden_ami_id, "boot test started");
    let history = pacing::family_history(deps, &family.name).await;
    let pace = pacing::pace(&history.test, config.test_poll_seconds, config.test_timeout);
    Ok(TestStarted {
        automation_execution_id,
        document_name: config.test_document_name.clone(),
        golden_ami_id: golden_ami_id.to_string(),
        deadline: format_timestamp(deps.now() + config.test_timeout),
        first_wait_seconds: pace.first_wait_seconds,
        poll_seconds: pace.poll_seconds,
    })
}

/// The same token on every retry of this step of this execution for this family.
pub fn client_token(context: &ExecutionContext, family: &FamilyTarget) -> String {
    naming::target_token(&context.execution_id, "StartTest", &family.name, None)
}

/// The test document's parameters (infra/test-document.yaml).
pub fn test_parameters(
    config: &Config,
    context: &ExecutionContext,
    family: &FamilyTarget,
    golden_ami_id: &str,
    test_name: &str,
) -> HashMap<String, Vec<String>> {
    parameters(
        [
            ("ImageId", golden_ami_id),
            ("InstanceType", family.instance_type.as_str()),
            ("SubnetId", family.subnet_id.as_str()),
            ("SecurityGroupId", config.bake_security_group_id.as_str()),
            ("IamInstanceProfileName", family.instance_profile.as_str()),
            (
                "BaselineCheckDocumentName",
                config.baseline_check_document_name.as_str(),
            ),
            ("ReportBucketName", config.report_bucket_name.as_str()),
            ("TestName", test_name),
            (
                "AutomationAssumeRole",
                config.automation_assume_role_arn.as_str(),
            ),
        ]
        .into_iter()
        .chain(run_parameters(config, context, family)),
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::start_automation_execution::{
        StartAutomationExecutionError, StartAutomationExecutionOutput,
    };
    use aws_sdk_ssm::types::error::AutomationDefinitionNotFoundException;
    use golden_ami_core::testing::{self, MockClients, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/start-test/ok.json");
    const UNVERIFIED: &str = include_str!("../../../events/start-test/unverified.json");
    const GOLDEN: &str = "ami-0ccccccccccccccc0";

    #[tokio::test]
    async fn starts_the_test_document_on_the_golden_copy_with_a_stable_token() {
        let input: StepInput = testing::event(EVENT);
        let family = testing::family();
        let token = client_token(&input.context, &family);
        let expected = test_parameters(
            &testing::config(),
            &input.context,
            &family,
            GOLDEN,
            "golden-ami-2026-12-01-5e6f7a8b",
        );
        let start = mock!(Ssm::start_automation_execution)
            .match_requests(move |request| {
                request.document_name() == Some(testing::TEST_DOCUMENT)
                    && request.client_token() == Some(token.as_str())
                    && request.parameters() == Some(&expected)
            })
            .then_output(|| {
                StartAutomationExecutionOutput::builder()
                    .automation_execution_id("7a8b9c0d-2222-4333-8444-a55566667777")
                    .build()
            });
        let deps = MockClients {
            ssm: vec![&start, &testing::durations(None)],
            ..Default::default()
        }
        .deps();
        let test = handler(&deps, input).await.unwrap();
        assert_eq!(start.num_calls(), 1);
        assert_eq!(test.golden_ami_id, GOLDEN);
        assert_eq!(test.document_name, testing::TEST_DOCUMENT);
        // Fixed clock 08:05 + the default 45 minutes.
        assert_eq!(test.deadline, "2026-12-01T08:50:00Z");
        assert_eq!(test.poll_seconds, 60);
    }

    #[test]
    fn parameters_name_every_input_of_the_document() {
        let parameters = test_parameters(
            &testing::config(),
            &testing::context(),
            &testing::family(),
            GOLDEN,
            "golden-ami-x",
        );
        let document = include_str!("../../../infra/test-document.yaml");
        for (name, values) in &parameters {
            assert!(
                document.contains(&format!("\n  {name}:\n")),
                "{name} is not a parameter of the test document"
            );
            assert_eq!(values.len(), 1);
        }
        assert_eq!(parameters["ImageId"], [GOLDEN]);
        assert_eq!(
            parameters["BaselineCheckDocumentName"],
            [testing::BASELINE_CHECK_DOCUMENT]
        );
    }

    #[tokio::test]
    async fn an_unverified_image_is_never_tested() {
        let start = mock!(Ssm::start_automation_execution)
            .then_output(|| StartAutomationExecutionOutput::builder().build());
        let deps = MockClients {
            ssm: vec![&start, &testing::durations(None)],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(UNVERIFIED))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("state.verify is missing"));
        assert_eq!(start.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_missing_document_is_a_config_error_naming_the_variable() {
        let start = mock!(Ssm::start_automation_execution).then_error(|| {
            StartAutomationExecutionError::AutomationDefinitionNotFoundException(
                AutomationDefinitionNotFoundException::builder().build(),
            )
        });
        let deps = MockClients {
            ssm: vec![&start, &testing::durations(None)],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        assert!(error.to_string().contains("TEST_DOCUMENT_NAME"));
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let start =
            mock!(Ssm::start_automation_execution).then_http_response(|| testing::http_status(503));
        let deps = MockClients {
            ssm: vec![&start, &testing::durations(None)],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[tokio::test]
    async fn without_a_home_region_result_nothing_is_started() {
        let mut input: StepInput = testing::event(EVENT);
        input.state.regions.clear();
        let start = mock!(Ssm::start_automation_execution)
            .then_output(|| StartAutomationExecutionOutput::builder().build());
        let deps = MockClients {
            ssm: vec![&start, &testing::durations(None)],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(
            error.to_string().contains("home region eu-west-1"),
            "{error}"
        );
        assert_eq!(start.num_calls(), 0);
    }
}
