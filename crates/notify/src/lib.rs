//! Notify: one SNS message per event of a run, written for the person on call.
//!
//! STARTED, SUCCEEDED, FAILED and SKIPPED share a topic; a message attribute `event` carries the
//! type so subscribers can filter (e.g. page only on FAILED). Every FAILED and SKIPPED message
//! says where the pointer stands, read when the message is written (not inferred from what the
//! run read at its start): untouched, moved by this run, or moved by someone else during the run
//! (with who and when, from the parameter's history). Subjects always keep the event word and
//! the image ids; a long pipeline name is what gets shortened.

use aws_sdk_sns::types::MessageAttributeValue;
use golden_ami_core::naming;
use golden_ami_core::{
    Deps, ExecutionContext, NotifyEvent, NotifyInput, NotifyResult, PipelineState, StepError,
    TestStatus, classify_sdk_error, read_pointer,
};
use time::OffsetDateTime;

/// SNS rejects subjects of 100 characters or more.
const SUBJECT_MAX: usize = 99;

pub async fn handler(deps: &Deps, input: NotifyInput) -> Result<NotifyResult, StepError> {
    let pointer = match input.event {
        NotifyEvent::Failed | NotifyEvent::Skipped => {
            read_pointer_now(deps, &deps.config.pointer_parameter_name, &input.state).await?
        }
        NotifyEvent::Started | NotifyEvent::Succeeded => PointerNow::NotRead,
    };
    let message = compose(deps, &input, deps.now(), &pointer)?;
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

/// The pointer as it is when the message is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerNow {
    Read {
        value: String,
        version: i64,
        /// Who made that version and when (from the parameter's history), if this run did not.
        changed_by: Option<String>,
        changed_at: Option<String>,
    },
    Missing,
    /// It could not be read (e.g. access denied); the reason.
    Unreadable(String),
    /// Not needed for this event.
    NotRead,
}

/// Read the pointer now; for a version this run did not make, find who made it and when. Only
/// a transient error fails the step (the state machine retries it): a notice that cannot read
/// the pointer still goes out and says so.
pub async fn read_pointer_now(
    deps: &Deps,
    parameter: &str,
    state: &PipelineState,
) -> Result<PointerNow, StepError> {
    let pointer = match read_pointer(&deps.clients.ssm, parameter).await {
        Ok(pointer) => pointer,
        Err(StepError::PointerNotFound { .. }) => return Ok(PointerNow::Missing),
        Err(error @ StepError::Throttled { .. }) => return Err(error),
        Err(error) => return Ok(PointerNow::Unreadable(error.to_string())),
    };
    let ours = [
        state.current.as_ref().map(|c| c.parameter_version),
        state.publish.as_ref().map(|p| p.version),
    ];
    let (mut changed_by, mut changed_at) = (None, None);
    if !ours.contains(&Some(pointer.version)) {
        match version_history(deps, parameter, pointer.version).await {
            Ok(found) => (changed_by, changed_at) = found,
            Err(error @ StepError::Throttled { .. }) => return Err(error),
            Err(error) => changed_by = Some(format!("(history unreadable: {error})")),
        }
    }
    Ok(PointerNow::Read {
        value: pointer.value,
        version: pointer.version,
        changed_by,
        changed_at,
    })
}

/// Who made `version` of the parameter, and when (GetParameterHistory, oldest first).
async fn version_history(
    deps: &Deps,
    parameter: &str,
    version: i64,
) -> Result<(Option<String>, Option<String>), StepError> {
    let mut pages = deps
        .clients
        .ssm
        .get_parameter_history()
        .name(parameter)
        .max_results(50)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| classify_sdk_error("ssm:GetParameterHistory", error))?;
        if let Some(entry) = page
            .parameters()
            .iter()
            .find(|entry| entry.version() == version)
        {
            let at = entry.last_modified_date().and_then(|date| {
                OffsetDateTime::from_unix_timestamp(date.secs())
                    .ok()
                    .map(naming::format_timestamp)
            });
            return Ok((entry.last_modified_user().map(str::to_string), at));
        }
    }
    Ok((None, None))
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
    pointer_now: &PointerNow,
) -> Result<Message, StepError> {
    let config = &deps.config;
    let state = &input.state;
    let pipeline = &config.pipeline_name;
    let pointer = &config.pointer_parameter_name;
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
            format!("STARTED: patching {}", current.ami_id)
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
            lines.extend(change_lines(state));
            if let Some(test) = &state.test_status {
                lines.push(test_line(test));
            }
            if let Some(cleanup) = &state.cleanup {
                lines.push(cleanup_line(cleanup));
            }
            lines.push(format!(
                "To roll back: aws ssm put-parameter --name {} --type String --data-type aws:ec2:image --overwrite --value {}",
                publish.parameter_name, publish.previous_ami_id
            ));
            format!(
                "SUCCEEDED: {} -> {}",
                publish.previous_ami_id, publish.new_ami_id
            )
        }
        NotifyEvent::Skipped => {
            let current = state.require_current()?;
            let subject = match state
                .bake_status
                .as_ref()
                .filter(|status| status.up_to_date)
            {
                Some(status) => {
                    let headline = status
                        .updates
                        .as_ref()
                        .map_or_else(|| "no pending update".to_string(), |u| u.headline());
                    lines.push(format!(
                        "{} is up to date: {headline}. The bake stopped without creating an image and terminated its instance.",
                        current.ami_id
                    ));
                    lines.push(
                        "To bake anyway (e.g. after a baseline change), set the stack parameter RebuildWhenUpToDate=true."
                            .to_string(),
                    );
                    format!("SKIPPED: {} is up to date", current.ami_id)
                }
                None => {
                    let other = current.bake_in_progress.as_deref().unwrap_or("(unknown)");
                    lines.push(format!(
                        "Another run is baking (automation {other}); this run changed nothing."
                    ));
                    "SKIPPED: another bake is in progress".to_string()
                }
            };
            lines.push(pointer_status(state, pointer, pointer_now));
            subject
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
            lines.push(pointer_status(state, pointer, pointer_now));
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
            format!("FAILED at {failed_state}: {error}")
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
        subject: subject_line(pipeline, &subject),
        body: lines.join("\n"),
    })
}

/// Where the pointer stands, as read when the message is written: the sentence every FAILED
/// and SKIPPED message carries. Three cases: untouched since the run read it, moved by this
/// run, moved by someone else during the run.
pub fn pointer_status(state: &PipelineState, pointer: &str, now: &PointerNow) -> String {
    let started_from = state
        .current
        .as_ref()
        .map(|current| format!("{} (version {})", current.ami_id, current.parameter_version));
    let published = state.publish.as_ref();
    match now {
        PointerNow::Read { value, version, .. }
            if published.is_some_and(|p| &p.new_ami_id == value && p.version == *version) =>
        {
            format!(
                "The pointer {pointer} ALREADY holds the new image {value} (version {version}), published by this run: the failure came after publishing, so consumers get the new image."
            )
        }
        PointerNow::Read { value, version, .. }
            if state
                .current
                .as_ref()
                .is_some_and(|c| &c.ami_id == value && c.parameter_version == *version) =>
        {
            format!(
                "The pointer {pointer} still holds {value} (version {version}), untouched since this run read it: consumers are not affected."
            )
        }
        PointerNow::Read {
            value,
            version,
            changed_by,
            changed_at,
        } => match (&started_from, published) {
            (None, None) => format!(
                "The pointer {pointer} holds {value} (version {version}); this run did not change it."
            ),
            (started, published) => {
                let who = changed_by
                    .as_deref()
                    .unwrap_or("someone (the history names nobody)");
                let when = changed_at
                    .as_deref()
                    .map(|at| format!(" at {at}"))
                    .unwrap_or_default();
                let ours = match published {
                    Some(p) => format!(
                        "this run had published {} (version {}) before that change, which now stands",
                        p.new_ami_id, p.version
                    ),
                    None => "this run published nothing, so that change (a pin?) is respected"
                        .to_string(),
                };
                format!(
                    "The pointer {pointer} was changed during this run by {who}{when}: it now holds {value} (version {version}), not the {} this run started from; {ours}.",
                    started.as_deref().unwrap_or("value")
                )
            }
        },
        PointerNow::Missing => format!(
            "The pointer {pointer} does not exist now; this run did not delete it (it started from {}).",
            started_from.as_deref().unwrap_or("no value")
        ),
        PointerNow::Unreadable(reason) => match published {
            Some(p) => format!(
                "The pointer {pointer} could not be read now ({reason}); this run published {} (version {}) to it.",
                p.new_ami_id, p.version
            ),
            None => format!(
                "The pointer {pointer} could not be read now ({reason}); this run did not change it (it started from {}).",
                started_from.as_deref().unwrap_or("no value")
            ),
        },
        PointerNow::NotRead => match (published, &started_from) {
            (Some(p), _) => format!(
                "The pointer {pointer} was set by this run to {} (version {}).",
                p.new_ami_id, p.version
            ),
            (None, Some(started)) => {
                format!("This run did not change the pointer {pointer}; it started from {started}.")
            }
            (None, None) => format!("This run did not change the pointer {pointer}."),
        },
    }
}

/// What the update changed, from the bake's report.
fn change_lines(state: &PipelineState) -> Vec<String> {
    let Some(updates) = state
        .bake_status
        .as_ref()
        .and_then(|status| status.updates.as_ref())
    else {
        return vec!["What changed: the bake reported no change summary.".to_string()];
    };
    let mut lines = vec![format!("What changed: {}.", updates.headline())];
    if !updates.advisory_ids.is_empty() {
        lines.push(format!("Advisories: {}.", updates.advisory_list()));
    }
    if let Some(report) = &updates.report {
        lines.push(format!("Full update report: {report}"));
    }
    lines
}

/// The boot test's result.
fn test_line(test: &TestStatus) -> String {
    format!(
        "Boot test: {} baseline controls passed ({} skipped) on instance {} launched from {}; check output: {}",
        test.controls_passed,
        test.controls_skipped,
        test.instance_id.as_deref().unwrap_or("(unknown)"),
        test.golden_ami_id.as_deref().unwrap_or("(unknown)"),
        test.report.as_deref().unwrap_or("(not recorded)")
    )
}

fn cleanup_line(cleanup: &golden_ami_core::CleanupResult) -> String {
    let mut parts = Vec::new();
    if !cleanup.stopped_automations.is_empty() {
        parts.push(format!(
            "stopped automation {} (its instance is terminated)",
            cleanup.stopped_automations.join(", ")
        ));
    }
    if !cleanup.terminated_instances.is_empty() {
        parts.push(format!(
            "terminated instances {}",
            cleanup.terminated_instances.join(", ")
        ));
    }
    if !cleanup.tagged_untagged.is_empty() {
        parts.push(format!(
            "tagged {} (left untagged by a create that failed half way) to remove it",
            cleanup.tagged_untagged.join(", ")
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
    if let Some(test) = &state.test {
        items.push(format!(
            "boot test automation {} and its instance",
            test.automation_execution_id
        ));
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

/// The fewest characters of the pipeline's name a shortened subject keeps.
const NAME_MIN: usize = 8;

/// `[pipeline] EVENT: detail` as an SNS subject (printable ASCII, no line breaks, under 100
/// characters). The event word and the detail (image ids) matter most: a long pipeline name is
/// shortened first, and only a detail too long on its own is cut, at its end.
pub fn subject_line(pipeline: &str, detail: &str) -> String {
    let (name, detail) = (printable(pipeline), printable(detail));
    let room = SUBJECT_MAX.saturating_sub(detail.len() + 3); // "[" + "] "
    let name = if name.len() <= room.max(NAME_MIN + 3) {
        name
    } else {
        let keep = room.max(NAME_MIN + 3) - 3;
        format!("{}...", &name[..keep.min(name.len())])
    };
    let subject = format!("[{name}] {detail}");
    if subject.len() <= SUBJECT_MAX {
        subject
    } else {
        format!("{}...", &subject[..SUBJECT_MAX - 3])
    }
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::Client as Sns;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_sdk_sns::types::error::NotFoundException;
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryOutput;
    use aws_sdk_ssm::primitives::DateTime;
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use aws_sdk_ssm::types::{Parameter, ParameterHistory};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const STARTED: &str = include_str!("../../../events/notify/started.json");
    const SUCCEEDED: &str = include_str!("../../../events/notify/succeeded.json");
    const FAILED_BEFORE: &str = include_str!("../../../events/notify/failed-before-publish.json");
    const FAILED_AFTER: &str = include_str!("../../../events/notify/failed-after-publish.json");
    const FAILED_AT_START: &str = include_str!("../../../events/notify/failed-at-start.json");
    const SKIPPED: &str = include_str!("../../../events/notify/skipped.json");
    const SKIPPED_UP_TO_DATE: &str = include_str!("../../../events/notify/skipped-up-to-date.json");

    fn publish(event: &'static str) -> Rule {
        mock!(Sns::publish)
            .match_requests(move |request| {
                PUBLISHED
                    .with(|p| *p.borrow_mut() = request.message().unwrap_or_default().to_string());
                request.topic_arn() == Some(testing::TOPIC_ARN)
                    && request
                        .message_attributes()
                        .and_then(|attributes| attributes.get("event"))
                        .and_then(|value| value.string_value())
                        == Some(event)
            })
            .then_output(|| PublishOutput::builder().message_id("msg-1").build())
    }

    /// The pointer as GetParameter answers it now: (value, version), or absent.
    fn pointer(now: Option<(&'static str, i64)>) -> Rule {
        match now {
            Some((value, version)) => mock!(Ssm::get_parameter)
                .match_requests(|request| request.name() == Some(testing::POINTER))
                .then_output(move || {
                    GetParameterOutput::builder()
                        .parameter(
                            Parameter::builder()
                                .name(testing::POINTER)
                                .value(value)
                                .version(version)
                                .build(),
                        )
                        .build()
                }),
            None => mock!(Ssm::get_parameter).then_error(|| {
                GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
            }),
        }
    }

    /// The parameter's history: one entry per (value, version, user).
    fn history(entries: &'static [(&'static str, i64, &'static str)]) -> Rule {
        mock!(Ssm::get_parameter_history).then_output(move || {
            GetParameterHistoryOutput::builder()
                .set_parameters(Some(
                    entries
                        .iter()
                        .map(|(value, version, user)| {
                            ParameterHistory::builder()
                                .name(testing::POINTER)
                                .value(*value)
                                .version(*version)
                                .last_modified_user(*user)
                                .last_modified_date(DateTime::from_secs(1_796_113_800))
                                .build()
                        })
                        .collect(),
                ))
                .build()
        })
    }

    async fn send_with(
        event_json: &str,
        event: &'static str,
        ssm: Vec<&Rule>,
    ) -> (NotifyResult, Message) {
        let rule = publish(event);
        let deps = MockClients {
            sns: vec![&rule],
            ssm,
            ..Default::default()
        }
        .deps();
        let input: NotifyInput = testing::event(event_json);
        let result = handler(&deps, input).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(result.message_id, "msg-1");
        assert!(result.subject.len() < 100);
        let body = PUBLISHED.with(|p| p.borrow().clone());
        (
            result.clone(),
            Message {
                subject: result.subject,
                body,
            },
        )
    }

    async fn send(event_json: &str, event: &'static str) -> (NotifyResult, Message) {
        // The pointer as the run left it: untouched before publishing, its own value after.
        let input: NotifyInput = testing::event(event_json);
        let now = match (&input.state.publish, &input.state.current) {
            (Some(p), _) => Some((leak(&p.new_ami_id), p.version)),
            (None, Some(c)) => Some((leak(&c.ami_id), c.parameter_version)),
            (None, None) => None,
        };
        let get = pointer(now);
        send_with(event_json, event, vec![&get]).await
    }

    fn leak(text: &str) -> &'static str {
        Box::leak(text.to_string().into_boxed_str())
    }

    thread_local! {
        static PUBLISHED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
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
            "What changed: 12 packages, 3 advisories: 1 Critical, 2 Important, 7 CVEs, kernel 6.1.112 -> 6.1.115.",
            "Advisories: ALAS2023-2024-745, ALAS2023-2024-751, ALAS2023-2024-760.",
            "Full update report: s3://golden-ami-reports-111122223333/updates/",
            "Boot test: 24 baseline controls passed (0 skipped) on instance i-0fedcba9876543210 launched from ami-0ccccccccccccccc0",
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
            "still holds ami-0123456789abcdef0 (version 7), untouched since this run read it: consumers are not affected"
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
            message.body.contains(
                "The pointer /golden-ami/current does not exist now; this run did not delete it"
            ),
            "{}",
            message.body
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
    async fn skipped_because_up_to_date_says_so_and_how_to_rebuild() {
        let (_, message) = send(SKIPPED_UP_TO_DATE, "SKIPPED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] SKIPPED: ami-0123456789abcdef0 is up to date"
        );
        for expected in [
            "is up to date: no pending update (kernel 6.1.115).",
            "without creating an image and terminated its instance",
            "RebuildWhenUpToDate=true",
            "still holds ami-0123456789abcdef0 (version 7)",
        ] {
            assert!(
                message.body.contains(expected),
                "{expected:?} in\n{}",
                message.body
            );
        }
    }

    #[tokio::test]
    async fn a_success_without_a_change_summary_says_so() {
        let deps = MockClients::default().deps();
        let mut input: NotifyInput = testing::event(SUCCEEDED);
        if let Some(status) = input.state.bake_status.as_mut() {
            status.updates = None;
        }
        let message = compose(&deps, &input, testing::fixed_now(), &PointerNow::NotRead).unwrap();
        assert!(message.body.contains("the bake reported no change summary"));
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
        let error = compose(&deps, &input, testing::fixed_now(), &PointerNow::NotRead).unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
    }

    #[tokio::test]
    async fn a_pointer_moved_by_someone_else_is_named_with_who_and_when() {
        let get = pointer(Some(("ami-0dddddddddddddddd", 8)));
        let history = history(&[
            (
                "ami-0123456789abcdef0",
                7,
                "arn:aws:iam::111122223333:role/golden-ami-pipeline",
            ),
            (
                "ami-0dddddddddddddddd",
                8,
                "arn:aws:sts::111122223333:assumed-role/Admin/jane",
            ),
        ]);
        let (_, message) = send_with(FAILED_BEFORE, "FAILED", vec![&get, &history]).await;
        assert!(
            message.body.contains(
                "The pointer /golden-ami/current was changed during this run by arn:aws:sts::111122223333:assumed-role/Admin/jane at 2026-12-01T08:30:00Z: it now holds ami-0dddddddddddddddd (version 8), not the ami-0123456789abcdef0 (version 7) this run started from; this run published nothing, so that change (a pin?) is respected."
            ),
            "{}",
            message.body
        );
        assert!(!message.body.contains("untouched"));
        assert_eq!(history.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_pointer_that_cannot_be_read_is_said_so() {
        let denied = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::generic(testing::service_error(
                "AccessDeniedException",
                "not authorized",
            ))
        });
        let (_, message) = send_with(FAILED_BEFORE, "FAILED", vec![&denied]).await;
        assert!(
            message.body.contains(
                "could not be read now (ssm:GetParameter failed with AccessDeniedException"
            ),
            "{}",
            message.body
        );
    }

    #[tokio::test]
    async fn a_throttled_read_of_the_pointer_is_retried_by_the_state_machine() {
        let throttled = mock!(Ssm::get_parameter).then_http_response(|| testing::http_status(503));
        let rule = publish("FAILED");
        let deps = MockClients {
            sns: vec![&rule],
            ssm: vec![&throttled],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(FAILED_BEFORE))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
        assert_eq!(rule.num_calls(), 0);
    }

    #[test]
    fn subjects_are_printable_ascii_under_100_characters() {
        let subject = subject_line(
            "p",
            &format!("FAILED at X: {}\nline two é", "y".repeat(200)),
        );
        assert_eq!(subject.len(), 99);
        assert!(subject.starts_with("[p] FAILED at X: yyy"));
        assert!(subject.ends_with("..."));
        assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert_eq!(subject_line("p", "ok é\n"), "[p] ok ??");
    }

    #[tokio::test]
    async fn a_long_pipeline_name_is_shortened_and_every_event_keeps_its_word_and_images() {
        let long_name = "n".repeat(110);
        for (event_json, event, keep) in [
            (
                STARTED,
                "STARTED",
                "STARTED: patching ami-0123456789abcdef0",
            ),
            (
                SUCCEEDED,
                "SUCCEEDED",
                "SUCCEEDED: ami-0123456789abcdef0 -> ami-0ccccccccccccccc0",
            ),
            (FAILED_BEFORE, "FAILED", "FAILED at CheckCopy: CopyFailed"),
            (SKIPPED, "SKIPPED", "SKIPPED: another bake is in progress"),
            (
                SKIPPED_UP_TO_DATE,
                "SKIPPED",
                "SKIPPED: ami-0123456789abcdef0 is up to date",
            ),
        ] {
            let mut deps = MockClients::default().deps();
            deps.config.pipeline_name = long_name.clone();
            let input: NotifyInput = testing::event(event_json);
            let message =
                compose(&deps, &input, testing::fixed_now(), &PointerNow::NotRead).unwrap();
            assert!(message.subject.len() < 100, "{event}: {}", message.subject);
            assert!(
                message.subject.ends_with(keep),
                "{event}: {}",
                message.subject
            );
            assert!(
                message.subject.starts_with("[nnnnnnnn"),
                "{}",
                message.subject
            );
            assert!(message.subject.contains("...]"), "{}", message.subject);
        }
        // A long detail (a long state name) still keeps the event word and the start.
        let subject = subject_line(
            &long_name,
            &format!("FAILED at {}: Throttled", "S".repeat(120)),
        );
        assert!(
            subject.starts_with("[nnnnnnnn...] FAILED at SSS"),
            "{subject}"
        );
        assert_eq!(subject.len(), 99);
    }
}
