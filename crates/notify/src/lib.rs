//! Notify: one SNS message per event of a run, written for the person on call.
//!
//! STARTED, SUCCEEDED, FAILED and SKIPPED share a topic; a message attribute `event` carries the
//! type so subscribers can filter (e.g. page only on FAILED). Every FAILED message says where
//! the pointer stands, because that is the first thing a person needs to know.

use aws_sdk_sns::types::MessageAttributeValue;
use golden_ami_core::naming;
use golden_ami_core::{
    Deps, ExecutionContext, NotifyEvent, NotifyInput, NotifyResult, PipelineState, StepError,
    classify_sdk_error,
};
use time::OffsetDateTime;

/// SNS rejects subjects of 100 characters or more.
const SUBJECT_MAX: usize = 99;

pub async fn handler(deps: &Deps, input: NotifyInput) -> Result<NotifyResult, StepError> {
    let message = compose(deps, &input, deps.now())?;
    let output = deps
        .clients
        .sns
        .publish()
        .topic_arn(&deps.config.notification_topic_arn)
        .subject(&message.subject)
        .message(&message.body)
        .message_attributes("event", string_attribute(input.event.as_str())?)
        .message_attributes("pipeline", string_attribute(&deps.config.pipeline_name)?)
        .send()
        .await
        .map_err(|error| match error.as_service_error() {
            Some(service) if service.is_not_found_exception() => {
                StepError::NotificationFailed(format!(
                    "topic {} does not exist: check NOTIFICATION_TOPIC_ARN",
                    deps.config.notification_topic_arn
                ))
            }
            Some(service)
                if service.is_authorization_error_exception()
                    || service.is_kms_access_denied_exception() =>
            {
                StepError::NotificationFailed(format!(
                    "not allowed to publish to {}: {service}",
                    deps.config.notification_topic_arn
                ))
            }
            _ => classify_sdk_error("sns:Publish", error),
        })?;
    Ok(NotifyResult {
        message_id: output.message_id().unwrap_or_default().to_string(),
        subject: message.subject,
    })
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, StepError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|error| StepError::invalid_input(format!("message attribute: {error}")))
}

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

/// The subject and body of a notification.
pub fn compose(
    deps: &Deps,
    input: &NotifyInput,
    now: OffsetDateTime,
) -> Result<Message, StepError> {
    let config = &deps.config;
    let state = &input.state;
    let pipeline = &config.pipeline_name;
    let pointer = &config.pointer_parameter_name;
    let current = state.current.as_ref();
    let old_ami = current.map_or("(unknown)", |c| c.ami_id.as_str());
    let mut lines = Vec::new();
    let subject = match input.event {
        NotifyEvent::Started => {
            let current = state.require_current()?;
            lines.push(format!(
                "The monthly patch of the golden AMI has started: baking {} with document {}.",
                current.ami_id, config.bake_document_name
            ));
            lines.push(format!(
                "Consumers keep getting {} from {pointer} (version {}) until the new image is verified.",
                current.ami_id, current.parameter_version
            ));
            format!("[{pipeline}] STARTED: patching {}", current.ami_id)
        }
        NotifyEvent::Succeeded => {
            let publish = state.require_publish()?;
            lines.push(format!(
                "The golden AMI is patched: {} -> {}.",
                publish.previous_ami_id, publish.new_ami_id
            ));
            lines.push(format!(
                "The pointer {} is at version {} and holds {}; consumers get it on their next deploy.",
                publish.parameter_name, publish.version, publish.new_ami_id
            ));
            if let Some(copy) = &state.copy {
                lines.push(format!(
                    "Encrypted under {} as {}.",
                    copy.kms_key_arn, copy.golden_ami_name
                ));
            }
            if let Some(share) = &state.share {
                lines.push(format!(
                    "Launch permission: {}.",
                    share.principals.describe().join(", ")
                ));
            }
            if let Some(cleanup) = &state.cleanup {
                lines.push(cleanup_line(cleanup));
            }
            lines.push(format!(
                "To roll back: aws ssm put-parameter --name {} --type String --data-type aws:ec2:image --overwrite --value {}",
                publish.parameter_name, publish.previous_ami_id
            ));
            format!(
                "[{pipeline}] SUCCEEDED: {} -> {}",
                publish.previous_ami_id, publish.new_ami_id
            )
        }
        NotifyEvent::Skipped => {
            let current = state.require_current()?;
            let other = current.bake_in_progress.as_deref().unwrap_or("(unknown)");
            lines.push(format!(
                "Another run is baking (automation {other}); this run changed nothing."
            ));
            lines.push(format!(
                "The pointer {pointer} still holds {} (version {}).",
                current.ami_id, current.parameter_version
            ));
            format!("[{pipeline}] SKIPPED: another bake is in progress")
        }
        NotifyEvent::Failed => {
            let failed_state = state.failed_state.as_deref().unwrap_or("(unknown state)");
            let (error, cause) = match &state.error {
                Some(caught) => (caught.error.clone(), caught.readable_cause()),
                None => (
                    "(no error recorded)".to_string(),
                    "(no cause recorded)".to_string(),
                ),
            };
            lines.push(format!(
                "The run failed in state {failed_state} with {error}."
            ));
            lines.push(format!("Cause: {cause}"));
            lines.push(pointer_status(state, pointer, old_ami));
            match (&state.cleanup, &state.cleanup_error) {
                (_, Some(cleanup_error)) => lines.push(format!(
                    "Cleanup FAILED ({}: {}); remove by hand what is left: {}.",
                    cleanup_error.error,
                    cleanup_error.readable_cause(),
                    leftovers(state)
                )),
                (Some(cleanup), None) => lines.push(cleanup_line(cleanup)),
                (None, None) => lines.push("Cleanup did not run.".to_string()),
            }
            format!("[{pipeline}] FAILED at {failed_state}: {error}")
        }
    };
    lines.push(String::new());
    lines.push(format!("Execution: {}", input.context.execution_id));
    if let Some(url) = console_url(&input.context) {
        lines.push(format!("Console: {url}"));
    }
    lines.push(format!(
        "Started {}; {} so far.",
        input.context.started_at,
        elapsed(&input.context, now)?
    ));
    Ok(Message {
        subject: subject_line(&subject),
        body: lines.join("\n"),
    })
}

/// Where the pointer stands after a failure: the sentence every FAILED message carries.
pub fn pointer_status(state: &PipelineState, pointer: &str, old_ami: &str) -> String {
    match (&state.publish, &state.current) {
        (Some(publish), _) => format!(
            "The pointer {pointer} ALREADY holds the new image {} (version {}): the failure came after publishing, so consumers get the new image.",
            publish.new_ami_id, publish.version
        ),
        (None, Some(current)) => format!(
            "The pointer {pointer} was left at the previous image {old_ami} (version {}): consumers are not affected.",
            current.parameter_version
        ),
        (None, None) => format!("The pointer {pointer} was not changed by this run."),
    }
}

fn cleanup_line(cleanup: &golden_ami_core::CleanupResult) -> String {
    let mut parts = Vec::new();
    if !cleanup.stopped_automations.is_empty() {
        parts.push(format!(
            "stopped bake {}",
            cleanup.stopped_automations.join(", ")
        ));
    }
    if !cleanup.deregistered_images.is_empty() {
        parts.push(format!(
            "deregistered {}",
            cleanup.deregistered_images.join(", ")
        ));
    }
    if !cleanup.deleted_snapshots.is_empty() {
        parts.push(format!(
            "deleted snapshots {}",
            cleanup.deleted_snapshots.join(", ")
        ));
    }
    if !cleanup.kept.is_empty() {
        parts.push(format!("kept {}", cleanup.kept.join("; ")));
    }
    if parts.is_empty() {
        "Cleanup: nothing to remove.".to_string()
    } else {
        format!("Cleanup: {}.", parts.join("; "))
    }
}

/// What this run may have left behind when its cleanup failed.
fn leftovers(state: &PipelineState) -> String {
    let mut items = Vec::new();
    if let Some(bake) = &state.bake {
        items.push(format!(
            "automation {} and image named {}",
            bake.automation_execution_id, bake.target_ami_name
        ));
    }
    if let Some(id) = state.baked_ami_id() {
        items.push(format!("intermediate image {id}"));
    }
    if let (Some(copy), None) = (&state.copy, &state.publish) {
        items.push(format!(
            "unpublished copy {} ({})",
            copy.golden_ami_id, copy.golden_ami_name
        ));
    }
    if items.is_empty() {
        "nothing was created before the failure".to_string()
    } else {
        items.join(", ")
    }
}

/// The Step Functions console page of the execution (the region is in its ARN).
fn console_url(context: &ExecutionContext) -> Option<String> {
    let region = context
        .execution_id
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}",
        context.execution_id
    ))
}

fn elapsed(context: &ExecutionContext, now: OffsetDateTime) -> Result<String, StepError> {
    let seconds = (now - naming::started_at(context)?).whole_seconds().max(0);
    Ok(format!("{}m{:02}s", seconds / 60, seconds % 60))
}

/// SNS subjects: printable ASCII, no line breaks, under 100 characters.
pub fn subject_line(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= SUBJECT_MAX {
        clean
    } else {
        format!("{}...", &clean[..SUBJECT_MAX - 3])
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::Client as Sns;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_sdk_sns::types::error::NotFoundException;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const STARTED: &str = include_str!("../../../events/notify/started.json");
    const SUCCEEDED: &str = include_str!("../../../events/notify/succeeded.json");
    const FAILED_BEFORE: &str = include_str!("../../../events/notify/failed-before-publish.json");
    const FAILED_AFTER: &str = include_str!("../../../events/notify/failed-after-publish.json");
    const FAILED_AT_START: &str = include_str!("../../../events/notify/failed-at-start.json");
    const SKIPPED: &str = include_str!("../../../events/notify/skipped.json");

    fn publish(event: &'static str) -> Rule {
        mock!(Sns::publish)
            .match_requests(move |request| {
                request.topic_arn() == Some(testing::TOPIC_ARN)
                    && request
                        .message_attributes()
                        .and_then(|attributes| attributes.get("event"))
                        .and_then(|value| value.string_value())
                        == Some(event)
            })
            .then_output(|| PublishOutput::builder().message_id("msg-1").build())
    }

    async fn send(event_json: &str, event: &'static str) -> (NotifyResult, Message) {
        let rule = publish(event);
        let deps = MockClients {
            sns: vec![&rule],
            ..Default::default()
        }
        .deps();
        let input: NotifyInput = testing::event(event_json);
        let message = compose(&deps, &input, testing::fixed_now()).unwrap();
        let result = handler(&deps, input).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(result.subject, message.subject);
        assert_eq!(result.message_id, "msg-1");
        assert!(message.subject.len() < 100);
        (result, message)
    }

    #[tokio::test]
    async fn started_names_the_image_being_patched() {
        let (_, message) = send(STARTED, "STARTED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] STARTED: patching ami-0123456789abcdef0"
        );
        assert!(message.body.contains("/golden-ami/current (version 7)"));
        assert!(message.body.contains(testing::EXECUTION_ID));
        assert!(message.body.contains("5m00s so far"));
    }

    #[tokio::test]
    async fn succeeded_gives_old_and_new_image_version_and_rollback() {
        let (_, message) = send(SUCCEEDED, "SUCCEEDED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] SUCCEEDED: ami-0123456789abcdef0 -> ami-0ccccccccccccccc0"
        );
        for expected in [
            "is at version 8 and holds ami-0ccccccccccccccc0",
            testing::GOLDEN_KEY_ARN,
            testing::ORGANIZATION_ARN,
            "deregistered ami-0bbbbbbbbbbbbbbbb",
            "--value ami-0123456789abcdef0",
        ] {
            assert!(
                message.body.contains(expected),
                "missing {expected:?} in\n{}",
                message.body
            );
        }
    }

    #[tokio::test]
    async fn failed_before_publishing_says_the_pointer_was_left_alone() {
        let (_, message) = send(FAILED_BEFORE, "FAILED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED at CheckCopy: CopyFailed"
        );
        assert!(
            message
                .body
                .contains("Cause: copy failed: image ami-0ccccccccccccccc0 is failed")
        );
        assert!(message.body.contains(
            "left at the previous image ami-0123456789abcdef0 (version 7): consumers are not affected"
        ));
        assert!(
            message
                .body
                .contains("deregistered ami-0bbbbbbbbbbbbbbbb, ami-0ccccccccccccccc0")
        );
    }

    #[tokio::test]
    async fn failed_after_publishing_says_the_pointer_already_moved_and_what_is_left() {
        let (_, message) = send(FAILED_AFTER, "FAILED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED at Cleanup: Throttled"
        );
        assert!(
            message
                .body
                .contains("ALREADY holds the new image ami-0ccccccccccccccc0 (version 8)")
        );
        assert!(message.body.contains("Cleanup FAILED (States.Timeout"));
        assert!(
            message
                .body
                .contains("intermediate image ami-0bbbbbbbbbbbbbbbb")
        );
        // The published copy is never listed as something to remove.
        assert!(!message.body.contains("unpublished copy"));
    }

    #[tokio::test]
    async fn failed_at_the_start_says_the_pointer_was_not_changed() {
        let (_, message) = send(FAILED_AT_START, "FAILED").await;
        assert!(
            message
                .body
                .contains("The pointer /golden-ami/current was not changed by this run.")
        );
        assert!(
            message
                .body
                .contains("the pointer parameter /golden-ami/current does not exist")
        );
    }

    #[tokio::test]
    async fn skipped_names_the_other_bake() {
        let (_, message) = send(SKIPPED, "SKIPPED").await;
        assert!(
            message
                .body
                .contains("9f8e7d6c-0000-4000-8000-000000000042")
        );
        assert!(message.subject.contains("SKIPPED"));
    }

    #[tokio::test]
    async fn a_missing_topic_is_notification_failed_and_throttling_is_retryable() {
        let missing = mock!(Sns::publish)
            .then_error(|| PublishError::NotFoundException(NotFoundException::builder().build()));
        let deps = MockClients {
            sns: vec![&missing],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(STARTED)).await.unwrap_err();
        assert_eq!(error.error_type(), "NotificationFailed");
        assert!(error.to_string().contains("NOTIFICATION_TOPIC_ARN"));

        let throttled = mock!(Sns::publish).then_http_response(|| testing::http_status(503));
        let deps = MockClients {
            sns: vec![&throttled],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(STARTED)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[test]
    fn a_success_message_without_a_publish_result_is_invalid_input() {
        let deps = MockClients::default().deps();
        let mut input: NotifyInput = testing::event(SUCCEEDED);
        input.state.publish = None;
        let error = compose(&deps, &input, testing::fixed_now()).unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
    }

    #[test]
    fn subjects_are_printable_ascii_under_100_characters() {
        let long = format!("[p] FAILED at X: {}\nline two é", "y".repeat(200));
        let subject = subject_line(&long);
        assert_eq!(subject.len(), 99);
        assert!(subject.ends_with("..."));
        assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert_eq!(subject_line("ok é\n"), "ok ??");
    }
}
