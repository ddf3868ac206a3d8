//! RequestApproval: the Lambda behind AwaitApproval, the optional approval gate.
//!
//! A gated family (its `approval` in the targets document) reaches AwaitApproval once every
//! region's golden copy is verified and the home copy booted. Step Functions invokes this
//! function with a task token and waits. The function stores the token, with what approving
//! publishes, at APPROVALS_PATH/<execution name>/<family> (the name in the form SSM accepts:
//! `rerun@dec` is a valid execution name, not a valid parameter name) and asks the people on the topic
//! for a decision: the change summary, the boot test, the deadline and the exact
//! `golden-ami approve` / `deny` commands. `golden-ami approve` answers SendTaskSuccess (the
//! family publishes), `deny` SendTaskFailure with ApprovalDenied; past the deadline the task
//! fails with States.Timeout. A denial or a timeout takes the family's failure path: nothing is
//! published and its copies are removed. Cleanup removes the stored request however the run
//! ends.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::ParameterType;
use golden_ami_core::naming::format_timestamp;
use golden_ami_core::{
    ApprovalInput, ApprovalRequest, Deps, PipelineState, RegionImage, StepError, classify_sdk_error,
};
use notify::PointerNow;
use serde::Serialize;

/// What the function did (Step Functions discards it: the task's result is the decision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequested {
    pub parameter_name: String,
    pub message_id: String,
    pub deadline: String,
}

pub async fn handler(deps: &Deps, input: ApprovalInput) -> Result<ApprovalRequested, StepError> {
    if input.task_token.trim().is_empty() {
        return Err(StepError::invalid_input(
            "taskToken is empty: AwaitApproval must pass \"taskToken.$\": \"$$.Task.Token\" with the lambda:invoke.waitForTaskToken resource",
        ));
    }
    let request = request(deps, &input)?;
    let name = ApprovalRequest::parameter_name(
        &deps.config.approvals_path,
        input.context.execution_name(),
        &request.family,
    );
    let value = serde_json::to_string(&request)
        .map_err(|error| StepError::invalid_input(format!("the request: {error}")))?;
    deps.clients
        .ssm()
        .put_parameter()
        .name(&name)
        .description(format!(
            "{} waits for approval in {}; removed when answered or when the run ends",
            request.family,
            input.context.execution_name()
        ))
        .r#type(ParameterType::String)
        .value(value)
        // A retried invocation gets a new token: the newest is the one Step Functions waits on.
        .overwrite(true)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ssm:PutParameter", error))?;
    let now = pointers_now(deps, &input.state).await;
    let message = notify::approval_message(&deps.config, &request, &input.state, &now);
    let message_id = notify::publish(deps, &message).await?;
    tracing::info!(parameter = %name, deadline = %request.deadline, "approval requested");
    Ok(ApprovalRequested {
        parameter_name: name,
        message_id,
        deadline: request.deadline,
    })
}

/// The request of the family in `input`: only for a gated family whose every region is
/// verified and whose boot test passed.
pub fn request(deps: &Deps, input: &ApprovalInput) -> Result<ApprovalRequest, StepError> {
    let state = &input.state;
    let family = state.require_family()?;
    let gate = family.approval.ok_or_else(|| {
        StepError::invalid_input(format!(
            "state.family.approval is missing: family {} is not gated, AwaitApproval runs only for a family whose targets entry asks for approval",
            family.name
        ))
    })?;
    let tested = state
        .test_status
        .as_ref()
        .is_some_and(|test| test.done && test.passed);
    if !tested {
        return Err(StepError::invalid_input(format!(
            "state.testStatus does not show a passed boot test: approval is asked only for an image that booted (family {})",
            family.name
        )));
    }
    let images = images(state)?;
    let deadline_in = std::time::Duration::from_secs(gate.timeout_seconds);
    // Whole seconds: people read these times, and type nothing from them.
    let now = deps.now().truncate_to_second();
    Ok(ApprovalRequest {
        execution_id: input.context.execution_id.clone(),
        family: family.name.clone(),
        task_token: input.task_token.clone(),
        requested_at: format_timestamp(now),
        deadline: format_timestamp(now + deadline_in),
        images,
        changes: state
            .bake_status
            .as_ref()
            .and_then(|status| status.updates.as_ref())
            .map(|updates| updates.headline()),
    })
}

/// What the family's pointer holds now in every region. Read now, not taken from the state:
/// the request may wait a day, and a pin or rollback since the run read the pointers decides
/// what approving can do there. A pointer that cannot be read is said so; the request still
/// goes out.
async fn pointers_now(deps: &Deps, state: &PipelineState) -> BTreeMap<String, PointerNow> {
    let mut now = BTreeMap::new();
    let Some(family) = state.family.as_ref() else {
        return now;
    };
    for region in &family.regions {
        let read = state
            .regions
            .iter()
            .filter_map(|result| result.target.as_ref())
            .find(|target| target.region == region.region);
        let ours: Vec<i64> = read.map(|t| t.parameter_version).into_iter().collect();
        let clients = deps.clients.region(&region.region);
        let pointer = notify::read_pointer_now(clients.ssm(), &family.pointer, &ours)
            .await
            .unwrap_or_else(|error| PointerNow::Unreadable(error.to_string()));
        now.insert(region.region.clone(), pointer);
    }
    now
}

/// The verified golden copy of every region of the family.
fn images(state: &PipelineState) -> Result<Vec<RegionImage>, StepError> {
    let family = state.require_family()?;
    family
        .regions
        .iter()
        .map(|spec| {
            let result = state
                .regions
                .iter()
                .find(|r| r.target.as_ref().is_some_and(|t| t.region == spec.region))
                .ok_or_else(|| {
                    StepError::invalid_input(format!(
                        "state.regions has no result for {}: every region is copied and verified before AwaitApproval",
                        spec.region
                    ))
                })?;
            Ok(RegionImage {
                region: spec.region.clone(),
                ami_id: result.verified_golden_image()?.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::Client as Sns;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryOutput;
    use aws_sdk_ssm::operation::put_parameter::{PutParameterError, PutParameterOutput};
    use aws_sdk_ssm::primitives::DateTime;
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use aws_sdk_ssm::types::{Parameter, ParameterHistory};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/request-approval/ok.json");
    const TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAR0ken";

    const OTHER: &str = "us-east-1";

    fn gated() -> ApprovalInput {
        testing::event(EVENT)
    }

    /// GetParameter of the pointer, answered once (the regions share the mock client: each
    /// asks once, home first).
    fn pointer_holds(value: &'static str, version: i64) -> Rule {
        mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(testing::POINTER))
            .sequence()
            .output(move || {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name(testing::POINTER)
                            .value(value)
                            .version(version)
                            .build(),
                    )
                    .build()
            })
            .build()
    }

    /// The gated family in its home region and OTHER, where the run read version 3 holding
    /// ami-0eeeeeeeeeeeeeeee and made the copy ami-0ffffffffffffffff.
    fn gated_in_two_regions() -> ApprovalInput {
        let mut input = gated();
        let family = input.state.family.as_mut().expect("a family");
        let mut other = family.regions[0].clone();
        other.region = OTHER.into();
        family.regions.push(other);
        let mut result = input.state.regions[0].clone();
        if let Some(target) = result.target.as_mut() {
            target.region = OTHER.into();
            target.parameter_version = 3;
            target.ami_id = Some("ami-0eeeeeeeeeeeeeeee".into());
        }
        for id in [
            result.copy.as_mut().map(|c| &mut c.golden_ami_id),
            result.share.as_mut().map(|s| &mut s.golden_ami_id),
            result.verify.as_mut().map(|v| &mut v.golden_ami_id),
        ]
        .into_iter()
        .flatten()
        {
            *id = "ami-0ffffffffffffffff".into();
        }
        input.state.regions.push(result);
        input
    }

    /// The message RequestApproval sends for `input`, with these SSM rules.
    async fn message_body(input: &ApprovalInput, ssm: Vec<&Rule>) -> String {
        let deps = MockClients {
            ssm,
            ..Default::default()
        }
        .deps();
        let request = request(&deps, input).unwrap();
        let now = pointers_now(&deps, &input.state).await;
        notify::approval_message(&deps.config, &request, &input.state, &now).body
    }

    #[tokio::test]
    async fn the_request_says_what_every_regions_pointer_holds_now() {
        let home = pointer_holds("ami-0123456789abcdef0", 7);
        // Someone moved the pointer in OTHER since the run read version 3 (a pin, say).
        let other = pointer_holds("ami-0dddddddddddddddd", 4);
        let history = mock!(Ssm::get_parameter_history)
            .match_requests(|r| r.name() == Some(testing::POINTER))
            .then_output(|| {
                GetParameterHistoryOutput::builder()
                    .parameters(
                        ParameterHistory::builder()
                            .name(testing::POINTER)
                            .value("ami-0dddddddddddddddd")
                            .version(4)
                            .last_modified_user(
                                "arn:aws:sts::111122223333:assumed-role/oncall/alice",
                            )
                            .last_modified_date(DateTime::from_secs(1_796_113_800))
                            .build(),
                    )
                    .build()
            });
        let body = message_body(&gated_in_two_regions(), vec![&home, &other, &history]).await;
        assert_eq!(
            (home.num_calls(), other.num_calls(), history.num_calls()),
            (1, 1, 1)
        );
        assert!(
            body.contains("- eu-west-1: ami-0ccccccccccccccc0 (now ami-0123456789abcdef0)\n"),
            "{body}"
        );
        assert!(
            body.contains("- us-east-1: ami-0ffffffffffffffff (now ami-0dddddddddddddddd, version 4: changed by arn:aws:sts::111122223333:assumed-role/oncall/alice at 2026-12-01T08:30:00Z since this run read ami-0eeeeeeeeeeeeeeee (version 3); approving will not overwrite it in this region: PointerChangedConcurrently)"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_region_without_a_pointer_or_one_unreadable_says_so() {
        let missing = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let denied = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::generic(testing::service_error(
                "AccessDeniedException",
                "not authorized to perform ssm:GetParameter",
            ))
        });
        // After the home region's single answer, these answer every other read.
        for (rule, words) in [
            (
                &missing,
                "- us-east-1: ami-0ffffffffffffffff (no pointer there yet: approving creates it and adds it to the region's pointer share)",
            ),
            (
                &denied,
                "- us-east-1: ami-0ffffffffffffffff (could not be read now: ",
            ),
        ] {
            let home = pointer_holds("ami-0123456789abcdef0", 7);
            let calls = rule.num_calls();
            let body = message_body(&gated_in_two_regions(), vec![&home, rule]).await;
            assert_eq!((home.num_calls(), rule.num_calls() - calls), (1, 1));
            assert!(body.contains(words), "{body}");
        }
        let home = pointer_holds("ami-0123456789abcdef0", 7);
        let body = message_body(&gated_in_two_regions(), vec![&home, &denied]).await;
        assert!(
            body.contains("ami-0eeeeeeeeeeeeeeee when the run read it)"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn stores_the_token_with_the_images_and_asks_with_the_exact_command() {
        let input = gated();
        let put = mock!(Ssm::put_parameter)
            .match_requests(|r| {
                let value: ApprovalRequest =
                    serde_json::from_str(r.value().unwrap_or_default()).unwrap();
                r.name() == Some("/golden-ami-pipeline/approvals/2026-12-01-monthly/default")
                    && r.overwrite() == Some(true)
                    && value.task_token == TOKEN
                    && value.deadline == "2026-12-02T08:05:00Z"
                    && value.images
                        == [RegionImage {
                            region: testing::REGION.into(),
                            ami_id: "ami-0ccccccccccccccc0".into(),
                        }]
            })
            .then_output(|| PutParameterOutput::builder().version(1).build());
        let publish = mock!(Sns::publish)
            .match_requests(|r| {
                let body = r.message().unwrap_or_default();
                r.subject().unwrap_or_default().contains("APPROVAL NEEDED: default ami-0ccccccccccccccc0")
                    && body.contains("To publish: golden-ami approve 2026-12-01-monthly --family default --stack golden-ami-pipeline --stack-region eu-west-1")
                    && body.contains("To refuse:  golden-ami deny 2026-12-01-monthly --family default")
                    && body.contains("waits for your approval until 2026-12-02T08:05:00Z")
                    && body.contains("Boot test: ")
                    && body.contains("- eu-west-1: ami-0ccccccccccccccc0 (now ami-0123456789abcdef0)")
                    && r.message_attributes().and_then(|a| a.get("event")).and_then(|v| v.string_value()) == Some("APPROVAL_REQUESTED")
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let pointer = pointer_holds("ami-0123456789abcdef0", 7);
        let deps = MockClients {
            ssm: vec![&put, &pointer],
            sns: vec![&publish],
            ..Default::default()
        }
        .deps();
        let done = handler(&deps, input).await.unwrap();
        assert_eq!(
            (put.num_calls(), pointer.num_calls(), publish.num_calls()),
            (1, 1, 1)
        );
        assert_eq!(done.deadline, "2026-12-02T08:05:00Z");
        assert_eq!(done.message_id, "m-1");
    }

    #[tokio::test]
    async fn a_run_named_what_ssm_refuses_stores_its_request_under_the_safe_form() {
        let mut input = gated();
        input.context.execution_id =
            "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:rerun@dec".into();
        let expected = format!(
            "/golden-ami-pipeline/approvals/{}/default",
            golden_ami_core::naming::parameter_segment("rerun@dec")
        );
        assert!(
            expected.starts_with("/golden-ami-pipeline/approvals/rerun_dec-"),
            "{expected}"
        );
        let name = expected.clone();
        let put = mock!(Ssm::put_parameter)
            .match_requests(move |r| {
                let value: ApprovalRequest =
                    serde_json::from_str(r.value().unwrap_or_default()).unwrap();
                // The request keeps the real name: status shows it, approve matches it.
                r.name() == Some(name.as_str())
                    && value.execution_id.ends_with(":rerun@dec")
                    && r.description().unwrap_or_default().contains("in rerun@dec")
            })
            .then_output(|| PutParameterOutput::builder().version(1).build());
        let publish = mock!(Sns::publish)
            .match_requests(|r| {
                r.message().unwrap_or_default().contains(
                    "To publish: golden-ami approve rerun@dec --family default --stack golden-ami-pipeline",
                )
            })
            .then_output(|| PublishOutput::builder().message_id("m-2").build());
        let pointer = pointer_holds("ami-0123456789abcdef0", 7);
        let deps = MockClients {
            ssm: vec![&put, &pointer],
            sns: vec![&publish],
            ..Default::default()
        }
        .deps();
        let done = handler(&deps, input).await.unwrap();
        assert_eq!((put.num_calls(), publish.num_calls()), (1, 1));
        assert_eq!(done.parameter_name, expected);
    }

    #[tokio::test]
    async fn refuses_an_ungated_family_an_untested_image_or_no_token_without_a_call() {
        let deps = MockClients::default().deps();
        let mut ungated = gated();
        ungated.state.family.as_mut().expect("a family").approval = None;
        let error = handler(&deps, ungated).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(
            error.to_string().contains("family default is not gated"),
            "{error}"
        );

        let mut untested = gated();
        untested.state.test_status = None;
        let error = handler(&deps, untested).await.unwrap_err();
        assert!(error.to_string().contains("passed boot test"), "{error}");

        let mut unverified = gated();
        unverified.state.regions[0].verify = None;
        let error = handler(&deps, unverified).await.unwrap_err();
        assert!(
            error.to_string().contains("state.verify is missing"),
            "{error}"
        );

        let mut tokenless = gated();
        tokenless.task_token = " ".into();
        let error = handler(&deps, tokenless).await.unwrap_err();
        assert!(error.to_string().contains("$$.Task.Token"), "{error}");
    }

    #[tokio::test]
    async fn a_denied_put_is_reported_and_nothing_is_sent() {
        let put = mock!(Ssm::put_parameter).then_error(|| {
            PutParameterError::generic(testing::service_error(
                "AccessDeniedException",
                "not authorized to perform ssm:PutParameter",
            ))
        });
        let publish = mock!(Sns::publish).then_output(|| PublishOutput::builder().build());
        let deps = MockClients {
            ssm: vec![&put],
            sns: vec![&publish],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, gated()).await.unwrap_err();
        assert!(error.to_string().contains("ssm:PutParameter"), "{error}");
        assert_eq!(publish.num_calls(), 0);
    }
}
