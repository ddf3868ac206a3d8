//! CheckCopy: one poll of the golden copy.
//!
//! The state machine waits `copy.pollSeconds` between polls and loops until `done`; this step
//! bounds the loop: past the copy's deadline a copy that is still pending fails with
//! CopyTimedOut, and the failure path deregisters it.

use std::time::Duration;

use aws_sdk_ec2::types::{Image, ImageState};
use golden_ami_core::naming::parse_timestamp;
use golden_ami_core::{
    CopyStarted, CopyStatus, Deps, StepError, StepInput, classify_sdk_error, error_code,
};
use time::OffsetDateTime;

/// What this step sees of the copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed<'a> {
    /// DescribeImages returned the image.
    Image(&'a Image),
    /// DescribeImages answered InvalidAMIID.NotFound.
    NotYetVisible,
    /// DescribeImages returned no image.
    Missing,
}

pub async fn handler(deps: &Deps, input: StepInput) -> Result<CopyStatus, StepError> {
    let copy = input.state.require_copy()?;
    let region = deps.clients.region(&input.state.require_target()?.region);
    let result = region
        .ec2()
        .describe_images()
        .image_ids(&copy.golden_ami_id)
        .send()
        .await;
    let images = match result {
        Ok(output) => Some(output.images().to_vec()),
        Err(error) if error_code(&error) == Some("InvalidAMIID.NotFound") => None,
        Err(error) => return Err(classify_sdk_error("ec2:DescribeImages", error)),
    };
    let observed = match &images {
        None => Observed::NotYetVisible,
        Some(images) => images
            .iter()
            .find(|image| image.image_id() == Some(copy.golden_ami_id.as_str()))
            .map_or(Observed::Missing, Observed::Image),
    };
    let status = copy_status(observed, copy, deps.now(), deps.config.copy_timeout)?;
    tracing::info!(golden_ami_id = %copy.golden_ami_id, state = %status.state, done = status.done, "copy polled");
    Ok(status)
}

/// The copy's status, or why the run must stop.
pub fn copy_status(
    observed: Observed<'_>,
    copy: &CopyStarted,
    now: OffsetDateTime,
    timeout: Duration,
) -> Result<CopyStatus, StepError> {
    let image_id = &copy.golden_ami_id;
    let state = match observed {
        Observed::Image(image) => match image.state() {
            Some(ImageState::Available) => {
                // Up to one poll late: the copy's end is seen, not reported.
                let duration_seconds = copy
                    .started_at
                    .as_deref()
                    .and_then(|at| parse_timestamp("state.copy.startedAt", at).ok())
                    .and_then(|started| u64::try_from((now - started).whole_seconds()).ok());
                return Ok(CopyStatus {
                    done: true,
                    state: ImageState::Available.as_str().to_string(),
                    duration_seconds,
                });
            }
            Some(
                state @ (ImageState::Failed
                | ImageState::Invalid
                | ImageState::Error
                | ImageState::Deregistered
                | ImageState::Disabled),
            ) => {
                let reason = image
                    .state_reason()
                    .and_then(|reason| reason.message())
                    .unwrap_or("EC2 gave no reason");
                return Err(StepError::CopyFailed(format!(
                    "the golden image {image_id} is {}: {reason}",
                    state.as_str()
                )));
            }
            // pending, transient, or a state this SDK does not know yet: keep polling until
            // the deadline decides.
            Some(state) => state.as_str().to_string(),
            None => "unknown".to_string(),
        },
        // EC2 is eventually consistent: right after CopyImage, DescribeImages may not know the
        // new id yet. That is not a failure until the deadline says so.
        Observed::NotYetVisible => "not-yet-visible".to_string(),
        Observed::Missing => {
            return Err(StepError::CopyFailed(format!(
                "the golden image {image_id} no longer exists (deregistered while copying?)"
            )));
        }
    };
    let deadline = parse_timestamp("state.copy.deadline", &copy.deadline)?;
    if now > deadline {
        return Err(StepError::CopyTimedOut(format!(
            "the golden image {image_id} is still {state} after {} minutes (deadline {}): cleanup will deregister it; raise COPY_TIMEOUT_MINUTES if large images need longer",
            timeout.as_secs() / 60,
            copy.deadline
        )));
    }
    Ok(CopyStatus {
        done: false,
        state,
        duration_seconds: None,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
    use aws_sdk_ec2::types::StateReason;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/check-copy/pending.json");
    const GOLDEN: &str = "ami-0c0ffee0123456789";

    fn image(state: ImageState, reason: Option<&'static str>) -> Rule {
        mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [GOLDEN])
            .then_output(move || {
                let mut image = Image::builder().image_id(GOLDEN).state(state.clone());
                if let Some(message) = reason {
                    image = image.state_reason(
                        StateReason::builder()
                            .code("Client.CopyFailed")
                            .message(message)
                            .build(),
                    );
                }
                DescribeImagesOutput::builder()
                    .images(image.build())
                    .build()
            })
    }

    fn not_found() -> Rule {
        mock!(Ec2::describe_images).then_error(|| {
            DescribeImagesError::generic(testing::service_error(
                "InvalidAMIID.NotFound",
                "The image id '[ami-0c0ffee0123456789]' does not exist",
            ))
        })
    }

    /// The event as it is when the clock has passed the copy's deadline.
    fn past_deadline() -> StepInput {
        let mut input: StepInput = testing::event(EVENT);
        if let Some(copy) = input.state.copy.as_mut() {
            copy.deadline = "2026-12-01T08:04:59Z".into();
        }
        input
    }

    async fn run(rule: &Rule, input: StepInput) -> Result<CopyStatus, StepError> {
        let deps = MockClients {
            ec2: vec![rule],
            ..Default::default()
        }
        .deps();
        handler(&deps, input).await
    }

    #[tokio::test]
    async fn a_pending_copy_is_not_done() {
        let describe = image(ImageState::Pending, None);
        let status = run(&describe, testing::event(EVENT)).await.unwrap();
        assert_eq!(
            status,
            CopyStatus {
                done: false,
                state: "pending".into(),
                duration_seconds: None,
            }
        );
        assert_eq!(describe.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_available_copy_is_done_even_past_the_deadline() {
        for input in [testing::event(EVENT), past_deadline()] {
            let describe = image(ImageState::Available, None);
            let status = run(&describe, input).await.unwrap();
            assert_eq!(
                status,
                CopyStatus {
                    done: true,
                    state: "available".into(),
                    // From the event's startedAt (07:50) to the fixed clock (08:05).
                    duration_seconds: Some(900),
                }
            );
        }
    }

    #[tokio::test]
    async fn a_failed_copy_carries_the_state_reason() {
        for state in [
            ImageState::Failed,
            ImageState::Invalid,
            ImageState::Error,
            ImageState::Deregistered,
            ImageState::Disabled,
        ] {
            let describe = image(
                state.clone(),
                Some("Snapshot copy failed: KMS key disabled"),
            );
            let error = run(&describe, testing::event(EVENT)).await.unwrap_err();
            assert_eq!(error.error_type(), "CopyFailed");
            let message = error.to_string();
            assert!(
                message.contains(GOLDEN)
                    && message.contains(state.as_str())
                    && message.contains("KMS key disabled"),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_image_is_a_failed_copy() {
        let describe =
            mock!(Ec2::describe_images).then_output(|| DescribeImagesOutput::builder().build());
        let error = run(&describe, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "CopyFailed");
        assert!(error.to_string().contains("no longer exists"), "{error}");
    }

    #[tokio::test]
    async fn not_found_right_after_the_copy_is_still_pending() {
        let describe = not_found();
        let status = run(&describe, testing::event(EVENT)).await.unwrap();
        assert!(!status.done);
        assert_eq!(status.state, "not-yet-visible");
    }

    #[tokio::test]
    async fn past_the_deadline_a_pending_or_invisible_copy_times_out() {
        for describe in [image(ImageState::Pending, None), not_found()] {
            let error = run(&describe, past_deadline()).await.unwrap_err();
            assert_eq!(error.error_type(), "CopyTimedOut");
            let message = error.to_string();
            assert!(
                message.contains(GOLDEN)
                    && message.contains("90 minutes")
                    && message.contains("cleanup will deregister it"),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let describe = mock!(Ec2::describe_images).then_error(|| {
            DescribeImagesError::generic(testing::service_error(
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ))
        });
        let error = run(&describe, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[tokio::test]
    async fn a_missing_copy_is_invalid_input() {
        let mut input: StepInput = testing::event(EVENT);
        input.state.copy = None;
        let describe = image(ImageState::Available, None);
        let error = run(&describe, input).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert_eq!(describe.num_calls(), 0);
    }

    #[test]
    fn a_malformed_deadline_is_invalid_input() {
        let input: StepInput = testing::event(EVENT);
        let mut copy = input.state.copy.unwrap();
        copy.deadline = "soon".into();
        let image = Image::builder().state(ImageState::Pending).build();
        let error = copy_status(
            Observed::Image(&image),
            &copy,
            testing::fixed_now(),
            Duration::from_secs(5400),
        )
        .unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("state.copy.deadline"), "{error}");
    }
}
