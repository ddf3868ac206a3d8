//! Notify: the run's notices, written for the person on call.
//!
//! STARTED when the work begins; at the end one notice for the whole run: SUCCEEDED, SKIPPED
//! (another run holds the lock, or no family had anything to patch) or FAILED (a family failed,
//! or the run itself). They share a topic; a message attribute `event` carries the type so
//! subscribers can filter (e.g. page only on FAILED). The end notice summarises every family
//! ("2 of 3 families published") with its old -> new image per region, and for a failed family
//! the state, region, error and cause. Where a failure leaves a pointer's state in doubt, the
//! pointer is read when the notice is written (untouched, moved by this run, or moved by
//! someone else during the run, with who and when from the parameter's history). Subjects
//! always keep the event word and the image ids; a long pipeline name is what gets shortened.

mod approval;
pub mod budget;
mod family;
mod subject;

use std::collections::BTreeMap;

pub use approval::approval_message;
use aws_sdk_sns::types::MessageAttributeValue;
use budget::{Notice, Section};
pub use family::pointer_status;
use family::{
    cleanup_line, failed_error, failed_where, family_lines, pin_line, published, started,
};
use golden_ami_core::naming;
use golden_ami_core::types::{EXECUTION_FAILURE_STATE, Outcome};
use golden_ami_core::{
    Deps, ExecutionContext, FamilyTarget, NotifyEvent, NotifyInput, NotifyResult, PipelineState,
    StepError, classify_sdk_error, read_pointer,
};
pub use subject::subject_line;
use time::OffsetDateTime;

pub async fn handler(deps: &Deps, input: NotifyInput) -> Result<NotifyResult, StepError> {
    let pointers = read_pointers(deps, &input).await?;
    let message = compose(deps, &input, deps.now(), &pointers)?;
    let message_id = publish(deps, &message).await?;
    Ok(NotifyResult {
        message_id,
        subject: message.subject,
        event: message.event,
    })
}

/// Publish a notice to the stack's topic, with its `event` and `pipeline` attributes; answers
/// the message id. A notice SNS refuses for what it is (InvalidParameter "Message too long",
/// or any other refusal that is not about the topic and not a throttle) is replaced by a short
/// one that says it could not be sent, why, and where the full details are: a run is never
/// left without its notice. Throttling stays the retryable Throttled error.
pub async fn publish(deps: &Deps, message: &Message) -> Result<String, StepError> {
    let refused = match send(deps, message, &message.body).await {
        Ok(id) => return Ok(id),
        Err(Publish::Fatal(error)) => return Err(error),
        Err(Publish::Refused(error)) => error,
    };
    tracing::warn!(error = %refused, bytes = message.body.len(), "the notice was refused; sending a short one instead");
    let body = budget::fallback_body(
        &message.subject,
        message.body.len(),
        &refused.to_string(),
        &message.details_at,
    );
    match send(deps, message, &body).await {
        Ok(id) => Ok(id),
        Err(Publish::Fatal(error)) => Err(error),
        Err(Publish::Refused(error)) => Err(StepError::NotificationFailed(format!(
            "the notice was refused ({refused}), and so was the short notice sent instead ({error})"
        ))),
    }
}

/// Why a Publish failed: the topic or the service (retry or fix the stack), or this message.
enum Publish {
    Fatal(StepError),
    Refused(StepError),
}

async fn send(deps: &Deps, message: &Message, body: &str) -> Result<String, Publish> {
    let output = deps
        .clients
        .sns()
        .publish()
        .topic_arn(&deps.config.notification_topic_arn)
        .subject(&message.subject)
        .message(body)
        .message_attributes(
            "event",
            string_attribute(message.event.as_str()).map_err(Publish::Fatal)?,
        )
        .message_attributes(
            "pipeline",
            string_attribute(&deps.config.pipeline_name).map_err(Publish::Fatal)?,
        )
        .send()
        .await
        .map_err(|error| match error.as_service_error() {
            Some(service) if service.is_not_found_exception() => {
                Publish::Fatal(StepError::NotificationFailed(format!(
                    "topic {} does not exist: check NOTIFICATION_TOPIC_ARN",
                    deps.config.notification_topic_arn
                )))
            }
            Some(service)
                // The topic's key: a shorter message fares no better.
                if service.is_authorization_error_exception()
                    || service.is_kms_access_denied_exception()
                    || service.is_kms_disabled_exception()
                    || service.is_kms_invalid_state_exception()
                    || service.is_kms_not_found_exception()
                    || service.is_kms_opt_in_required() =>
            {
                Publish::Fatal(StepError::NotificationFailed(format!(
                    "not allowed to publish to {}: {service}",
                    deps.config.notification_topic_arn
                )))
            }
            _ => match classify_sdk_error("sns:Publish", error) {
                error @ StepError::Throttled { .. } => Publish::Fatal(error),
                error => Publish::Refused(error),
            },
        })?;
    Ok(output.message_id().unwrap_or_default().to_string())
}

/// The message attributes of every notice (their bytes count towards SNS's limit).
pub(crate) fn attributes(
    config: &golden_ami_core::Config,
    event: NotifyEvent,
) -> [(&'static str, &str); 2] {
    [
        ("event", event.as_str()),
        ("pipeline", config.pipeline_name.as_str()),
    ]
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
    /// Not needed for this notice.
    NotRead,
}

/// What the pointers hold now, by (family, region).
pub type Pointers = BTreeMap<(String, String), PointerNow>;

/// The pointers a notice must state truthfully: every region of a failed family (and of every
/// planned family when the run itself failed). The others are known from the run's results.
async fn read_pointers(deps: &Deps, input: &NotifyInput) -> Result<Pointers, StepError> {
    let state = &input.state;
    let mut wanted: Vec<(&FamilyTarget, Option<&PipelineState>)> = Vec::new();
    match input.event {
        NotifyEvent::Finished => {
            for result in &state.families {
                if result.outcome != Some(Outcome::Published)
                    && result.outcome != Some(Outcome::UpToDate)
                    && let Some(family) = &result.family
                {
                    wanted.push((family, Some(result)));
                }
            }
        }
        NotifyEvent::Failed => {
            for family in state.plan.iter().flat_map(|plan| &plan.families) {
                let result = state.family_result(&family.name);
                wanted.push((family, result));
            }
        }
        NotifyEvent::Started
        | NotifyEvent::Succeeded
        | NotifyEvent::Skipped
        | NotifyEvent::ApprovalRequested => {}
    }
    let mut pointers = Pointers::new();
    for (family, result) in wanted {
        for region in &family.regions {
            let ours = ours(result, &region.region);
            let clients = deps.clients.region(&region.region);
            let ssm = clients.ssm();
            let now = read_pointer_now(ssm, &family.pointer, &ours).await?;
            pointers.insert((family.name.clone(), region.region.clone()), now);
        }
    }
    Ok(pointers)
}

/// The pointer versions this run knows: the one it read, the one it published.
fn ours(result: Option<&PipelineState>, region: &str) -> Vec<i64> {
    let Some(result) = result else {
        return Vec::new();
    };
    started(result, region)
        .map(|t| t.parameter_version)
        .into_iter()
        .chain(published(result, region).map(|p| p.version))
        .collect()
}

/// Read the pointer now; for a version this run did not make, find who made it and when. Only
/// a transient error fails the step (the state machine retries it): a notice that cannot read
/// the pointer still goes out and says so.
pub async fn read_pointer_now(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    ours: &[i64],
) -> Result<PointerNow, StepError> {
    let pointer = match read_pointer(ssm, parameter).await {
        Ok(pointer) => pointer,
        Err(StepError::PointerNotFound { .. }) => return Ok(PointerNow::Missing),
        Err(error @ StepError::Throttled { .. }) => return Err(error),
        Err(error) => return Ok(PointerNow::Unreadable(error.to_string())),
    };
    let (mut changed_by, mut changed_at) = (None, None);
    if !ours.contains(&pointer.version) {
        match version_history(ssm, parameter, pointer.version).await {
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
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    version: i64,
) -> Result<(Option<String>, Option<String>), StepError> {
    let mut pages = ssm
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
    /// What the notice announces (a FINISHED run is SUCCEEDED, SKIPPED or FAILED).
    pub event: NotifyEvent,
    /// Where the full details are, for the short notice sent if SNS refuses this one.
    pub details_at: String,
}

/// The subject and body of a notice.
pub fn compose(
    deps: &Deps,
    input: &NotifyInput,
    now: OffsetDateTime,
    pointers: &Pointers,
) -> Result<Message, StepError> {
    let config = &deps.config;
    let state = &input.state;
    let mut lines = Vec::new();
    let mut sections = Vec::new();
    let mut tail = Vec::new();
    let (event, detail) = match input.event {
        NotifyEvent::ApprovalRequested => {
            return Err(StepError::invalid_input(
                "event APPROVAL_REQUESTED is RequestApproval's notice (AwaitApproval), not Notify's: use STARTED, FINISHED, FAILED or SKIPPED",
            ));
        }
        NotifyEvent::Started => {
            let plan = state.require_plan()?;
            let regions: Vec<&str> = plan
                .families
                .iter()
                .flat_map(|f| f.regions.iter().map(|r| r.region.as_str()))
                .fold(Vec::new(), |mut all, r| {
                    if !all.contains(&r) {
                        all.push(r);
                    }
                    all
                });
            if plan.families.is_empty() {
                // Nothing to count or list: say why nothing runs, and whose pins hold it.
                let names: Vec<&str> = plan.pinned.iter().map(|p| p.family.as_str()).collect();
                let why = if names.is_empty() {
                    "the targets list no image family".to_string()
                } else {
                    format!(
                        "every image family is pinned ({}), by {}",
                        names.join(", "),
                        pinned_by(&plan.pinned)
                    )
                };
                lines.push(format!(
                    "The monthly patch of the golden images has started, but nothing runs: {why}. This run bakes, tests and publishes nothing; every pointer keeps what it holds."
                ));
                lines.extend(plan.pinned.iter().map(pin_line));
                let detail = if plan.pinned.is_empty() {
                    "no image family to patch".to_string()
                } else {
                    format!(
                        "nothing to patch, every family pinned ({})",
                        names.join(", ")
                    )
                };
                (NotifyEvent::Started, detail)
            } else {
                lines.push(format!(
                    "The monthly patch of the golden images has started: {} in {}.",
                    count(plan.families.len(), "image family", "image families"),
                    regions.join(", ")
                ));
                for family in &plan.families {
                    lines.push(format!(
                        "- {}: pointer {} ({}, {}), baked in {} with document {}",
                        family.name,
                        family.pointer,
                        family.architecture.as_str(),
                        family.instance_type,
                        family.home_region,
                        config.bake_document_name
                    ));
                }
                lines.push(
                    "Consumers keep getting the current images until each family's new image is verified in every region and has booted."
                        .to_string(),
                );
                lines.extend(plan.pinned.iter().map(pin_line));
                if let Some(stale) = &plan.broke {
                    lines.push(format!(
                        "A stale run lock of execution {} (expired {}) was broken.",
                        stale.execution_id, stale.expires
                    ));
                }
                let mut detail = match plan.families.as_slice() {
                    [family] => format!("patching {}", family.name),
                    families => format!("patching {} families", families.len()),
                };
                if !plan.pinned.is_empty() {
                    detail.push_str(&format!(", {} pinned", plan.pinned.len()));
                }
                (NotifyEvent::Started, detail)
            }
        }
        NotifyEvent::Skipped => {
            let plan = state.require_plan()?;
            let holder = plan.held_by.as_ref().ok_or_else(|| {
                StepError::invalid_input(
                    "state.plan.heldBy is missing: a SKIPPED notice is for a run that found the lock held",
                )
            })?;
            lines.push(format!(
                "Another run (execution {}) holds the run lock until {}; this run changed nothing.",
                holder.execution_id, holder.expires
            ));
            lines.push("No pointer was changed by this run.".to_string());
            (
                NotifyEvent::Skipped,
                "another run is in progress".to_string(),
            )
        }
        NotifyEvent::Finished | NotifyEvent::Succeeded => {
            let tally = Tally::of(&state.families);
            for result in &state.families {
                let mut detail = family_lines(result, pointers);
                let headline = (!detail.is_empty()).then(|| detail.remove(0));
                detail.push(String::new());
                sections.push(Section {
                    family: family_name(result).to_string(),
                    headline,
                    detail,
                    failed: !matches!(result.outcome, Some(Outcome::Published | Outcome::UpToDate)),
                });
            }
            if let Some(lock) = &state.lock
                && !lock.released
            {
                tail.push(format!(
                    "The run lock {} was not this run's to release{}.",
                    lock.parameter_name,
                    lock.held_by
                        .as_ref()
                        .map(|h| format!(" (held by {})", h.execution_id))
                        .unwrap_or_default()
                ));
            }
            let pinned = state
                .plan
                .as_ref()
                .map(|p| p.pinned.as_slice())
                .unwrap_or_default();
            tail.extend(pinned.iter().map(pin_line));
            tally.event_and_detail(&state.families, pinned.len())
        }
        NotifyEvent::Failed => {
            let failure = state.failure.as_ref();
            let (error, cause) = match failure {
                Some(failure) => (failure.error.error.clone(), failure.error.readable_cause()),
                None => (
                    "(no error recorded)".to_string(),
                    "(no cause recorded)".to_string(),
                ),
            };
            let failed_state = failure.map_or("(unknown state)", |f| f.state.as_str());
            if failed_state == EXECUTION_FAILURE_STATE {
                lines.push(format!(
                    "The execution ended with {error} without reaching its failure path; the reaper cleaned up after it."
                ));
            } else {
                lines.push(format!(
                    "The run failed in state {failed_state} with {error}."
                ));
            }
            lines.push(format!("Cause: {cause}"));
            for family in state.plan.iter().flat_map(|plan| &plan.families) {
                let result = state.family_result(&family.name);
                let detail = family
                    .regions
                    .iter()
                    .map(|region| {
                        let now = pointers
                            .get(&(family.name.clone(), region.region.clone()))
                            .unwrap_or(&PointerNow::NotRead);
                        pointer_status(
                            &family.pointer,
                            &region.region,
                            result.and_then(|r| started(r, &region.region)),
                            result.and_then(|r| published(r, &region.region)),
                            now,
                        )
                    })
                    .collect();
                sections.push(Section {
                    family: family.name.clone(),
                    headline: None,
                    detail,
                    failed: true,
                });
            }
            if state.plan.is_none() {
                tail.push(
                    "No pointer was changed: the run failed before it planned any work."
                        .to_string(),
                );
            }
            match (&state.cleanup, &state.cleanup_error) {
                (_, Some(cleanup_error)) => tail.push(format!(
                    "Cleanup FAILED ({}: {}); look for what is left of this execution by the names and tags it uses (its images are named after it and tagged golden-ami:execution).",
                    cleanup_error.error,
                    cleanup_error.readable_cause(),
                )),
                (Some(cleanup), None) => tail.push(cleanup_line(cleanup)),
                (None, None) => tail.push("Cleanup did not run.".to_string()),
            }
            (NotifyEvent::Failed, format!("at {failed_state}: {error}"))
        }
    };
    tail.push(String::new());
    tail.push(format!("Execution: {}", input.context.execution_id));
    if let Some(url) = console_url(&input.context) {
        tail.push(format!("Console: {url}"));
    }
    tail.push(format!(
        "Started {}; {} so far.",
        input.context.started_at,
        elapsed(&input.context, now)?
    ));
    let mut notice = Notice {
        head: lines,
        sections,
        tail,
        details_at: String::new(),
    };
    notice.details_at = run_details_at(config, &input.context, &notice);
    Ok(Message {
        subject: subject_line(
            &config.pipeline_name,
            &if detail.starts_with("at ") {
                format!("{} {detail}", event.as_str())
            } else {
                format!("{}: {detail}", event.as_str())
            },
        ),
        body: notice.render(budget::body_budget(&attributes(config, event))),
        event,
        details_at: notice.details_at,
    })
}

/// Where the full details of a run are: `golden-ami why`, and the report bucket when the
/// notice names reports in it.
fn run_details_at(
    config: &golden_ami_core::Config,
    context: &ExecutionContext,
    notice: &Notice,
) -> String {
    let why = format!("`golden-ami why {}`", shell_word(context.execution_name()));
    let bucket = format!("s3://{}/", config.report_bucket_name);
    let names_reports = notice
        .head
        .iter()
        .chain(
            notice
                .sections
                .iter()
                .flat_map(|s| s.headline.iter().chain(&s.detail)),
        )
        .chain(&notice.tail)
        .any(|line| line.contains(&bucket));
    if names_reports {
        format!("{why}, and the run's reports under {bucket}")
    } else {
        why
    }
}

/// A word a shell reads back as it is: quoted when it holds anything but the characters that
/// need none (an execution may be named `retry(2)`).
pub(crate) fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The family's name, as the results carry it.
fn family_name(result: &PipelineState) -> &str {
    result.family.as_ref().map_or("?", |f| f.name.as_str())
}

/// "90 minutes", "24 hours".
pub(crate) fn minutes(seconds: u64) -> String {
    match seconds / 60 {
        m if m % 60 == 0 => count((m / 60) as usize, "hour", "hours"),
        m => count(m as usize, "minute", "minutes"),
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The families of a run by how they ended.
struct Tally {
    published: usize,
    up_to_date: usize,
    failed: usize,
}

impl Tally {
    fn of(families: &[PipelineState]) -> Self {
        let of = |outcome| {
            families
                .iter()
                .filter(|f| f.outcome == Some(outcome))
                .count()
        };
        Self {
            published: of(Outcome::Published),
            up_to_date: of(Outcome::UpToDate),
            failed: of(Outcome::Failed),
        }
    }

    /// The notice a finished run sends, and its subject's detail. One family keeps the subjects
    /// a one-image setup always had: its failed state and region, its image up to date, or (in
    /// one region) its image ids.
    fn event_and_detail(&self, families: &[PipelineState], pinned: usize) -> (NotifyEvent, String) {
        let total = families.len() + pinned;
        let event = if self.failed > 0 {
            NotifyEvent::Failed
        } else if self.published == 0 {
            NotifyEvent::Skipped
        } else {
            NotifyEvent::Succeeded
        };
        if let ([only], 0) = (families, pinned) {
            let single_region = only.family.as_ref().is_some_and(|f| f.regions.len() == 1);
            let current = only.current.as_ref();
            let detail = match only.outcome {
                // Several regions: several image ids; the tally says it.
                Some(Outcome::Published) if !single_region => None,
                Some(Outcome::Published) => only
                    .pointers
                    .iter()
                    .find_map(|p| p.publish.as_ref())
                    .map(|p| match &p.previous_ami_id {
                        Some(previous) => format!("{previous} -> {}", p.new_ami_id),
                        None => format!("first image {}", p.new_ami_id),
                    }),
                Some(Outcome::UpToDate) => current.map(|c| format!("{} is up to date", c.ami_id)),
                _ => only
                    .failure
                    .as_ref()
                    .map(|f| format!("at {}: {}", failed_where(only, f), failed_error(only, f))),
            };
            if let Some(detail) = detail {
                return (event, detail);
            }
        }
        let mut parts = vec![format!("{} of {total} families published", self.published)];
        if self.failed > 0 {
            let failed: Vec<String> = families
                .iter()
                .filter(|f| f.outcome == Some(Outcome::Failed))
                .map(|f| {
                    f.family
                        .as_ref()
                        .map_or("?", |x| x.name.as_str())
                        .to_string()
                })
                .collect();
            parts.push(format!("{} failed ({})", self.failed, failed.join(", ")));
        }
        if self.up_to_date > 0 {
            parts.push(format!("{} up to date", self.up_to_date));
        }
        if pinned > 0 {
            parts.push(format!("{pinned} pinned"));
        }
        (event, parts.join(", "))
    }
}

/// Who pinned the families, each once ("alice", or "alice and bob").
fn pinned_by(pins: &[golden_ami_core::Pin]) -> String {
    let mut who: Vec<&str> = Vec::new();
    for pin in pins {
        if !who.contains(&pin.pinned_by.as_str()) {
            who.push(&pin.pinned_by);
        }
    }
    match who.as_slice() {
        [] => "nobody".to_string(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
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

#[cfg(test)]
mod tests {
    use aws_sdk_sns::Client as Sns;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_sdk_sns::types::error::{InvalidParameterException, NotFoundException};
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryOutput;
    use aws_sdk_ssm::primitives::DateTime;
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use aws_sdk_ssm::types::{Parameter, ParameterHistory};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};
    use golden_ami_core::types::{CaughtError, Failure};
    use golden_ami_core::{LockHolder, RegionSpec};

    use super::*;
    use crate::family::{leftovers, retention_lines};
    use golden_ami_core::types::{PublishResult, RegionTarget};

    fn retention(dry_run: bool) -> golden_ami_core::RetainResult {
        golden_ami_core::RetainResult {
            dry_run,
            regions: vec![golden_ami_core::RegionRetention {
                region: "eu-west-1".into(),
                protected: vec!["ami-new".into(), "ami-old".into()],
                deprecated: vec![golden_ami_core::Deprecation {
                    image_id: "ami-old".into(),
                    deprecate_at: "2026-12-31T08:05:00Z".into(),
                }],
                removed: vec![golden_ami_core::RemovedImage {
                    image_id: "ami-oldest".into(),
                    snapshot_ids: vec!["snap-1".into()],
                }],
                kept: vec![golden_ami_core::KeptImage {
                    image_id: "ami-old".into(),
                    reason: "the rollback target (the pointer's previous value)".into(),
                }],
                failed: vec!["could not remove ami-stuck: AccessDenied".into()],
                ..Default::default()
            }],
            error: None,
        }
    }

    #[test]
    fn retention_says_what_it_did_what_it_kept_and_what_it_could_not_do() {
        assert_eq!(
            retention_lines(&retention(false)),
            [
                "Retention in eu-west-1: protect ami-new, ami-old; deprecate ami-old (from 2026-12-31T08:05:00Z); remove ami-oldest and 1 snapshot(s).",
                "  kept ami-old: the rollback target (the pointer's previous value)",
                "  Retention could not remove ami-stuck: AccessDenied; the image is published all the same.",
            ]
        );
    }

    #[test]
    fn a_dry_run_says_what_it_would_do() {
        let lines = retention_lines(&retention(true));
        assert!(lines[0].starts_with(
            "Retention (dry run, nothing changed) in eu-west-1: would protect ami-new, ami-old; would deprecate ami-old"
        ), "{lines:?}");
        assert!(lines[0].contains("would remove ami-oldest"));
    }

    #[test]
    fn a_caught_retention_error_keeps_the_image_published() {
        let failed = golden_ami_core::RetainResult {
            error: Some(CaughtError {
                error: "Throttled".into(),
                cause: Some(
                    r#"{"errorType":"Throttled","errorMessage":"ec2:DescribeImages: slow down"}"#
                        .into(),
                ),
            }),
            ..Default::default()
        };
        assert_eq!(
            retention_lines(&failed),
            [
                "Retention could not run (Throttled: ec2:DescribeImages: slow down); the image is published, and older images are as they were."
            ]
        );
    }

    const STARTED: &str = include_str!("../../../events/notify/started.json");
    const SUCCEEDED: &str = include_str!("../../../events/notify/succeeded.json");
    const FAILED_BEFORE: &str = include_str!("../../../events/notify/failed-before-publish.json");
    const FAILED_AFTER: &str = include_str!("../../../events/notify/failed-after-publish.json");
    const FAILED_AT_START: &str = include_str!("../../../events/notify/failed-at-start.json");
    const SKIPPED: &str = include_str!("../../../events/notify/skipped.json");
    const SKIPPED_UP_TO_DATE: &str = include_str!("../../../events/notify/skipped-up-to-date.json");
    const OLD: &str = "ami-0123456789abcdef0";
    const NEW: &str = "ami-0ccccccccccccccc0";

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

    async fn send_input(input: NotifyInput, event: &'static str, ssm: Vec<&Rule>) -> Message {
        let rule = publish(event);
        let deps = MockClients {
            sns: vec![&rule],
            ssm,
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, input).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(result.message_id, "msg-1");
        assert_eq!(result.event.as_str(), event);
        assert!(result.subject.len() < 100);
        let body = PUBLISHED.with(|p| p.borrow().clone());
        Message {
            subject: result.subject,
            body,
            event: result.event,
            details_at: String::new(),
        }
    }

    async fn send_with(event_json: &str, event: &'static str, ssm: Vec<&Rule>) -> Message {
        send_input(testing::event(event_json), event, ssm).await
    }

    /// Send with the pointer as the run left it: its own value after publishing, untouched
    /// before.
    async fn send(event_json: &str, event: &'static str) -> Message {
        let input: NotifyInput = testing::event(event_json);
        let now = input.state.families.first().and_then(|family| {
            published(family, testing::REGION)
                .map(|p| (leak(&p.new_ami_id), p.version))
                .or_else(|| {
                    started(family, testing::REGION).and_then(|t| {
                        t.ami_id
                            .as_deref()
                            .map(|ami| (leak(ami), t.parameter_version))
                    })
                })
        });
        let get = pointer(now);
        send_with(event_json, event, vec![&get]).await
    }

    fn leak(text: &str) -> &'static str {
        Box::leak(text.to_string().into_boxed_str())
    }

    thread_local! {
        static PUBLISHED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }

    fn compose_now(input: &NotifyInput) -> Message {
        let deps = MockClients::default().deps();
        compose(&deps, input, testing::fixed_now(), &Pointers::new()).unwrap()
    }

    fn assert_contains(body: &str, expected: &[&str]) {
        for expected in expected {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
    }

    /// A second family, arm64, in the home region and us-east-1.
    fn arm_family() -> FamilyTarget {
        let mut family = testing::family();
        family.name = "arm64-minimal".into();
        family.pointer = "/golden-ami/arm64-minimal".into();
        family.architecture = golden_ami_core::targets::Architecture::Arm64;
        family.instance_type = "t4g.small".into();
        family.regions.push(RegionSpec {
            region: "us-east-1".into(),
            kms_key_arn: "arn:aws:kms:us-east-1:111122223333:key/mrk-1".into(),
        });
        family
    }

    /// The results of a three-family run: one published, one failed, one up to date.
    fn mixed_run() -> NotifyInput {
        let mut input: NotifyInput = testing::event(SUCCEEDED);
        let published = input.state.families[0].clone();
        let mut failed: PipelineState =
            testing::event::<NotifyInput>(FAILED_BEFORE).state.families[0].clone();
        failed.family = Some(arm_family());
        let mut up_to_date = testing::event::<NotifyInput>(SKIPPED_UP_TO_DATE)
            .state
            .families[0]
            .clone();
        if let Some(family) = up_to_date.family.as_mut() {
            family.name = "windows-less".into();
        }
        input.state.families = vec![published, failed, up_to_date];
        input
    }

    #[tokio::test]
    async fn started_names_every_family_and_region() {
        let message = send(STARTED, "STARTED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] STARTED: patching default"
        );
        assert_contains(
            &message.body,
            &[
                "1 image family in eu-west-1.",
                "- default: pointer /golden-ami/current (x86_64, t3.small), baked in eu-west-1 with document golden-ami-bake",
                testing::EXECUTION_ID,
                "5m00s so far",
            ],
        );

        let mut input: NotifyInput = testing::event(STARTED);
        if let Some(plan) = input.state.plan.as_mut() {
            plan.families.push(arm_family());
            plan.broke = Some(LockHolder {
                execution_id:
                    "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:crashed"
                        .into(),
                expires: "2026-12-01T07:00:00Z".into(),
                targets_version: None,
            });
        }
        let message = compose_now(&input);
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] STARTED: patching 2 families"
        );
        assert_contains(
            &message.body,
            &[
                "2 image families in eu-west-1, us-east-1.",
                "- arm64-minimal: pointer /golden-ami/arm64-minimal (arm64, t4g.small)",
                "A stale run lock of execution arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:crashed (expired 2026-12-01T07:00:00Z) was broken.",
            ],
        );
    }

    fn pin(family: &str, by: &str) -> golden_ami_core::Pin {
        golden_ami_core::Pin {
            family: family.into(),
            ami_id: "ami-0123456789abcdef0".into(),
            region: "eu-west-1".into(),
            pinned_by: by.into(),
            pinned_at: "2026-11-20T10:00:00Z".into(),
            reason: Some("kernel regression".into()),
        }
    }

    #[test]
    fn started_with_every_family_pinned_says_nothing_runs_and_who_pinned_them() {
        const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/oncall/alice";
        const BOB: &str = "arn:aws:sts::111122223333:assumed-role/oncall/bob";
        let mut input: NotifyInput = testing::event(STARTED);
        if let Some(plan) = input.state.plan.as_mut() {
            plan.families.clear();
            plan.pinned = vec![pin("default", ALICE), pin("arm64-minimal", BOB)];
        }
        let message = compose_now(&input);
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] STARTED: nothing to patch, every family pinned (default, arm64-minimal)"
        );
        assert_contains(
            &message.body,
            &[
                &format!(
                    "The monthly patch of the golden images has started, but nothing runs: every image family is pinned (default, arm64-minimal), by {ALICE} and {BOB}. This run bakes, tests and publishes nothing; every pointer keeps what it holds."
                ),
                &format!(
                    "Family default: pinned to ami-0123456789abcdef0 in eu-west-1 by {ALICE} since 2026-11-20T10:00:00Z (kernel regression)"
                ),
            ],
        );
        for wrong in ["0 image families", " in .", "Consumers keep getting"] {
            assert!(!message.body.contains(wrong), "{wrong}: {}", message.body);
        }
    }

    #[tokio::test]
    async fn succeeded_gives_old_and_new_image_version_and_rollback() {
        let message = send(SUCCEEDED, "SUCCEEDED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] SUCCEEDED: ami-0123456789abcdef0 -> ami-0ccccccccccccccc0"
        );
        assert_contains(
            &message.body,
            &[
                "Family default: published.",
                "- eu-west-1: ami-0123456789abcdef0 -> ami-0ccccccccccccccc0; the pointer /golden-ami/current is at version 8 and holds ami-0ccccccccccccccc0",
                testing::GOLDEN_KEY_ARN,
                testing::ORGANIZATION_ARN,
                "deregistered ami-0bbbbbbbbbbbbbbbb",
                "aws ssm put-parameter --region eu-west-1 --name /golden-ami/current --type String --data-type aws:ec2:image --overwrite --value ami-0123456789abcdef0",
                "What changed: 12 packages, 3 advisories: 1 Critical, 2 Important, 7 CVEs, kernel 6.1.112 -> 6.1.115.",
                "Advisories: ALAS2023-2024-745, ALAS2023-2024-751, ALAS2023-2024-760.",
                "Full update report: s3://golden-ami-reports-111122223333/updates/",
                "Boot test: 24 baseline controls passed (0 skipped) on instance i-0fedcba9876543210 launched from ami-0ccccccccccccccc0",
            ],
        );
    }

    #[tokio::test]
    async fn a_region_failure_names_the_state_region_and_cause_and_the_pointer_left_alone() {
        let message = send(FAILED_BEFORE, "FAILED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED at CheckCopy in eu-west-1: CopyFailed"
        );
        assert_contains(
            &message.body,
            &[
                "Family default FAILED at CheckCopy in eu-west-1 with CopyFailed.",
                "- CheckCopy in eu-west-1: copy failed: image ami-0ccccccccccccccc0 is failed",
                "The pointer /golden-ami/current in eu-west-1 still holds ami-0123456789abcdef0 (version 7), untouched since this run read it: consumers are not affected",
                "deregistered ami-0bbbbbbbbbbbbbbbb, ami-0ccccccccccccccc0",
            ],
        );
    }

    #[test]
    fn a_direct_bake_s_image_is_a_leftover_only_while_no_region_took_it() {
        let mut input: NotifyInput = testing::event(FAILED_AFTER);
        let mut state = input.state.families.pop().unwrap_or(input.state);
        state.family.get_or_insert_with(testing::family).encryption =
            golden_ami_core::Encryption::Direct;
        let baked = state.baked_ami_id().unwrap().to_string();
        state.regions.clear();
        assert!(
            leftovers(&state).contains(&format!(
                "baked image {baked} (the home region's golden image of a direct bake)"
            )),
            "{}",
            leftovers(&state)
        );
        assert!(!leftovers(&state).contains("intermediate image"));
    }

    #[tokio::test]
    async fn failed_after_publishing_says_the_pointer_already_moved_and_what_is_left() {
        let message = send(FAILED_AFTER, "FAILED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED at Cleanup: Throttled"
        );
        assert_contains(
            &message.body,
            &[
                "The pointer /golden-ami/current in eu-west-1 ALREADY holds the new image ami-0ccccccccccccccc0 (version 8)",
                "Cleanup FAILED (States.Timeout",
                "intermediate image ami-0bbbbbbbbbbbbbbbb",
            ],
        );
        // The published copy is never listed as something to remove.
        assert!(
            !message.body.contains("unpublished copy"),
            "{}",
            message.body
        );
    }

    #[tokio::test]
    async fn a_run_that_failed_before_planning_says_no_pointer_was_changed() {
        // No plan, so no pointer to read: the notice says why nothing changed.
        let message = send_with(FAILED_AT_START, "FAILED", vec![]).await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED at PlanRun: ConfigError"
        );
        assert_contains(
            &message.body,
            &[
                "The run failed in state PlanRun with ConfigError.",
                "the targets parameter /golden-ami-pipeline/targets does not exist",
                "No pointer was changed: the run failed before it planned any work.",
            ],
        );
    }

    #[tokio::test]
    async fn an_execution_that_ended_without_its_failure_path_says_so() {
        let mut input: NotifyInput = testing::event(FAILED_AT_START);
        let failure = input.state.failure.as_mut().unwrap();
        failure.state = EXECUTION_FAILURE_STATE.into();
        failure.error.error = "ExecutionAborted".into();
        let message = send_input(input, "FAILED", vec![]).await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED at Execution: ExecutionAborted"
        );
        assert_contains(
            &message.body,
            &[
                "The execution ended with ExecutionAborted without reaching its failure path; the reaper cleaned up after it.",
            ],
        );
        assert!(
            !message.body.contains("in state Execution"),
            "{}",
            message.body
        );
    }

    #[tokio::test]
    async fn the_reapers_notice_names_the_approval_request_it_withdrew() {
        const REQUEST: &str = "/golden-ami-pipeline/approvals/2026-12-01-monthly/default";
        // What the reaper sends after sweeping a gated run stopped while it waited for approval.
        let mut input: NotifyInput = testing::event(FAILED_AT_START);
        let failure = input.state.failure.as_mut().unwrap();
        failure.state = EXECUTION_FAILURE_STATE.into();
        failure.error.error = "ExecutionAborted".into();
        input.state.cleanup = Some(golden_ami_core::CleanupResult {
            deregistered_images: vec!["ami-0ccccccccccccccc0".into()],
            withdrawn_approvals: vec![REQUEST.into()],
            ..Default::default()
        });
        let message = send_input(input, "FAILED", vec![]).await;
        assert_contains(
            &message.body,
            &[&format!(
                "Cleanup: deregistered ami-0ccccccccccccccc0; withdrew the approval request {REQUEST} (the run that asked is over: there is nothing left to approve or deny)."
            )],
        );
    }

    #[tokio::test]
    async fn a_run_that_failed_outside_a_family_reads_every_planned_pointer() {
        let mut input: NotifyInput = testing::event(STARTED);
        input.event = NotifyEvent::Failed;
        input.state.failure = Some(Failure {
            state: "ForEachFamily".into(),
            region: None,
            error: CaughtError {
                error: "States.DataLimitExceeded".into(),
                cause: Some("The state/task returned a result with a size exceeding the maximum number of bytes service limit.".into()),
            },
        });
        let get = pointer(Some((OLD, 7)));
        let history = history(&[(
            OLD,
            7,
            "arn:aws:sts::111122223333:assumed-role/golden-ami-pipeline-PublishPointer/x",
        )]);
        let message = send_input(input, "FAILED", vec![&get, &history]).await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED at ForEachFamily: States.DataLimitExceeded"
        );
        assert_contains(
            &message.body,
            &[
                "The pointer /golden-ami/current in eu-west-1 holds ami-0123456789abcdef0 (version 7); this run did not change it.",
            ],
        );
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn skipped_names_the_run_that_holds_the_lock() {
        let message = send(SKIPPED, "SKIPPED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] SKIPPED: another run is in progress"
        );
        assert_contains(
            &message.body,
            &[
                "Another run (execution arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:manual-2026-12-01) holds the run lock until 2026-12-01T16:40:00Z",
                "No pointer was changed by this run.",
            ],
        );
    }

    #[tokio::test]
    async fn skipped_because_up_to_date_says_so_and_how_to_rebuild() {
        let message = send(SKIPPED_UP_TO_DATE, "SKIPPED").await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] SKIPPED: ami-0123456789abcdef0 is up to date"
        );
        assert_contains(
            &message.body,
            &[
                "is up to date: no pending update (kernel 6.1.115).",
                "without creating an image and terminated its instance",
                "RebuildWhenUpToDate=true",
            ],
        );
    }

    #[tokio::test]
    async fn a_mixed_run_tallies_every_family_and_reads_only_the_failed_ones_pointers() {
        let get = mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some("/golden-ami/arm64-minimal"))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name("/golden-ami/arm64-minimal")
                            .value(OLD)
                            .version(7)
                            .build(),
                    )
                    .build()
            });
        // us-east-1's pointer version is not one this run read: its history is looked up.
        let history = history(&[]);
        let message = send_input(mixed_run(), "FAILED", vec![&get, &history]).await;
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] FAILED: 1 of 3 families published, 1 failed (arm64-minimal), 1 up to date"
        );
        assert_contains(
            &message.body,
            &[
                "Family default: published.",
                "Family arm64-minimal FAILED at CheckCopy in eu-west-1 with CopyFailed.",
                "The pointer /golden-ami/arm64-minimal in eu-west-1 still holds",
                // The failed family's second region: read now, though the run never got there.
                "The pointer /golden-ami/arm64-minimal in us-east-1 holds ami-0123456789abcdef0 (version 7); this run did not change it.",
                "Family windows-less: ami-0123456789abcdef0 is up to date",
            ],
        );
        // One read per region of the failed family; none for the others.
        assert_eq!(get.num_calls(), 2);
    }

    #[test]
    fn a_run_where_every_family_was_up_to_date_is_skipped_and_one_published_is_succeeded() {
        let mut input = mixed_run();
        input.state.families.remove(1);
        let message = compose_now(&input);
        assert_eq!(message.event, NotifyEvent::Succeeded);
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] SUCCEEDED: 1 of 2 families published, 1 up to date"
        );
        input.state.families.remove(0);
        input.state.families.push(input.state.families[0].clone());
        let message = compose_now(&input);
        assert_eq!(message.event, NotifyEvent::Skipped);
        assert_eq!(
            message.subject,
            "[golden-ami-pipeline] SKIPPED: 0 of 2 families published, 2 up to date"
        );
    }

    #[test]
    fn a_success_without_a_change_summary_says_so() {
        let mut input: NotifyInput = testing::event(SUCCEEDED);
        if let Some(status) = input.state.families[0].bake_status.as_mut() {
            status.updates = None;
        }
        let message = compose_now(&input);
        assert!(message.body.contains("the bake reported no change summary"));
    }

    #[test]
    fn an_approved_family_says_who_approved_it() {
        let mut input: NotifyInput = testing::event(SUCCEEDED);
        input.state.families[0].approval = Some(golden_ami_core::ApprovalDecision {
            approved_by: "arn:aws:sts::111122223333:assumed-role/oncall/alice".into(),
            approved_at: "2026-12-01T09:10:00Z".into(),
            reason: Some("CAB-1234".into()),
        });
        let message = compose_now(&input);
        assert_contains(
            &message.body,
            &[
                "Approved by arn:aws:sts::111122223333:assumed-role/oncall/alice at 2026-12-01T09:10:00Z (CAB-1234).",
            ],
        );
    }

    #[test]
    fn a_denied_or_expired_approval_fails_the_family_with_a_readable_cause() {
        let mut input: NotifyInput = testing::event(FAILED_BEFORE);
        let family = &mut input.state.families[0];
        family.family.as_mut().expect("a family").approval =
            Some(golden_ami_core::targets::ApprovalGate {
                timeout_seconds: 86400,
            });
        family.failure = Some(golden_ami_core::Failure {
            state: "AwaitApproval".into(),
            region: None,
            error: golden_ami_core::CaughtError {
                error: "States.Timeout".into(),
                cause: None,
            },
        });
        let message = compose_now(&input);
        assert_contains(
            &message.body,
            &[
                "FAILED at AwaitApproval with States.Timeout",
                "Cause: nobody approved or denied it within its 24 hours deadline; nothing was published.",
            ],
        );
        input.state.families[0].failure = Some(golden_ami_core::Failure {
            state: "AwaitApproval".into(),
            region: None,
            error: golden_ami_core::CaughtError {
                error: golden_ami_core::APPROVAL_DENIED.into(),
                cause: Some(
                    r#"{"errorType":"ApprovalDenied","errorMessage":"denied by arn:aws:iam::111122223333:user/bob: kernel regression"}"#
                        .into(),
                ),
            },
        });
        let message = compose_now(&input);
        assert_contains(
            &message.body,
            &["Cause: denied by arn:aws:iam::111122223333:user/bob: kernel regression"],
        );
    }

    #[test]
    fn an_approval_request_is_not_a_notify_event() {
        let mut input: NotifyInput = testing::event(SUCCEEDED);
        input.event = NotifyEvent::ApprovalRequested;
        let deps = MockClients::default().deps();
        let error = compose(&deps, &input, testing::fixed_now(), &Pointers::new()).unwrap_err();
        assert!(
            error.to_string().contains("RequestApproval's notice"),
            "{error}"
        );
    }

    #[test]
    fn a_lock_this_run_could_not_release_is_named() {
        let mut input: NotifyInput = testing::event(SUCCEEDED);
        input.state.lock = Some(golden_ami_core::LockRelease {
            parameter_name: testing::LOCK_PARAMETER.into(),
            released: false,
            held_by: Some(LockHolder {
                execution_id:
                    "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:other"
                        .into(),
                expires: "2026-12-01T17:00:00Z".into(),
                targets_version: None,
            }),
        });
        let message = compose_now(&input);
        assert_contains(
            &message.body,
            &[
                "The run lock /golden-ami-pipeline/lock was not this run's to release (held by arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:other).",
            ],
        );
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
        // Retried by the state machine as it is: no short notice in its place.
        assert_eq!(throttled.num_calls(), 1);
        assert_eq!(missing.num_calls(), 1);
    }

    /// A finished run of `families` families in `regions` regions each, every region failed
    /// at CheckCopy with a cause of `cause_bytes`.
    fn many_failed(families: usize, regions: usize, cause_bytes: usize) -> NotifyInput {
        let mut input: NotifyInput = testing::event(FAILED_BEFORE);
        let template = input.state.families[0].clone();
        let region_template = template.regions[0].clone();
        let cause = format!(
            r#"{{"errorType":"CopyFailed","errorMessage":"copy failed: {}"}}"#,
            "Client.InternalError ".repeat(cause_bytes / 21)
        );
        input.state.families = (0..families)
            .map(|f| {
                let mut result = template.clone();
                let family = result.family.as_mut().expect("a family");
                family.name = format!("family-{f:02}");
                family.regions = (0..regions)
                    .map(|r| RegionSpec {
                        region: format!("xx-test-{r}"),
                        kms_key_arn: format!("arn:aws:kms:xx-test-{r}:111122223333:key/mrk-1"),
                    })
                    .collect();
                result.regions = family
                    .regions
                    .iter()
                    .map(|spec| {
                        let mut region = region_template.clone();
                        if let Some(target) = region.target.as_mut() {
                            target.region = spec.region.clone();
                        }
                        if let Some(failure) = region.failure.as_mut() {
                            failure.region = Some(spec.region.clone());
                            failure.error.cause = Some(cause.clone());
                        }
                        region
                    })
                    .collect();
                result
            })
            .collect();
        input
    }

    /// What SNS counts of a message: the body and every attribute's name, type and value.
    fn sns_bytes(message: &Message, deps: &Deps) -> usize {
        message.body.len()
            + attributes(&deps.config, message.event)
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
    }

    #[test]
    fn a_failed_notice_of_40_families_in_10_regions_with_long_causes_fits_and_names_every_family() {
        let input = many_failed(40, 10, 2000);
        let deps = MockClients::default().deps();
        let message = compose(&deps, &input, testing::fixed_now(), &Pointers::new()).unwrap();
        assert_eq!(message.event, NotifyEvent::Failed);
        assert!(
            sns_bytes(&message, &deps) <= budget::SNS_MESSAGE_MAX_BYTES,
            "{} bytes",
            sns_bytes(&message, &deps)
        );
        for f in 0..40 {
            assert_contains(
                &message.body,
                &[&format!(
                    "Family family-{f:02} FAILED at CheckCopy in xx-test-0 with CopyFailed."
                )],
            );
        }
        // Most families keep their detail; the rest are counted and named, with where to look.
        let summarised = message
            .body
            .lines()
            .find(|line| line.starts_with("This notice is summarised"))
            .expect("a summary line");
        assert!(
            summarised.contains("families (family-")
                && summarised.ends_with("The full details: `golden-ami why 2026-12-01-monthly`."),
            "{summarised}"
        );
        assert!(
            message
                .body
                .contains("- CheckCopy in xx-test-9: copy failed: Client.InternalError")
        );
        assert_contains(
            &message.body,
            &[&format!("Execution: {}", testing::EXECUTION_ID)],
        );
        // The same run's notice when it fits is whole.
        let small = compose(
            &deps,
            &many_failed(2, 2, 100),
            testing::fixed_now(),
            &Pointers::new(),
        )
        .unwrap();
        assert!(!small.body.contains("summarised"), "{}", small.body);
    }

    #[test]
    fn a_run_that_failed_with_a_huge_cause_in_many_families_still_fits() {
        let mut input = many_failed(40, 10, 10);
        input.event = NotifyEvent::Failed;
        input.state.plan.as_mut().expect("a plan").families = input
            .state
            .families
            .iter()
            .filter_map(|f| f.family.clone())
            .collect();
        input.state.failure = Some(Failure {
            state: "ForEachFamily".into(),
            region: None,
            error: CaughtError {
                error: "States.DataLimitExceeded".into(),
                cause: Some("x".repeat(300_000)),
            },
        });
        let deps = MockClients::default().deps();
        let message = compose(&deps, &input, testing::fixed_now(), &Pointers::new()).unwrap();
        assert!(sns_bytes(&message, &deps) <= budget::SNS_MESSAGE_MAX_BYTES);
        assert_contains(
            &message.body,
            &[
                "The run failed in state ForEachFamily with States.DataLimitExceeded.",
                "Cause: xxx",
                " ... (cut)",
                "the pointer /golden-ami/current in xx-test-9.",
                "Cleanup did not run.",
            ],
        );
    }

    #[tokio::test]
    async fn a_notice_sns_refuses_is_replaced_by_a_short_one_with_the_same_subject_and_event() {
        let input: NotifyInput = testing::event(FAILED_BEFORE);
        let get = pointer(Some((OLD, 7)));
        let refused = mock!(Sns::publish)
            .match_requests(|r| {
                let body = r.message().unwrap_or_default();
                body.contains("Family default FAILED at CheckCopy")
                    && !body.contains("could not be sent")
            })
            .then_error(|| {
                PublishError::InvalidParameterException(
                    InvalidParameterException::builder()
                        .message("Invalid parameter: Message too long")
                        .build(),
                )
            });
        let fallback = mock!(Sns::publish)
            .match_requests(|r| {
                let body = r.message().unwrap_or_default();
                r.subject() == Some("[golden-ami-pipeline] FAILED at CheckCopy in eu-west-1: CopyFailed")
                    && r.message_attributes()
                        .and_then(|a| a.get("event"))
                        .and_then(|v| v.string_value())
                        == Some("FAILED")
                    && body.starts_with("[golden-ami-pipeline] FAILED at CheckCopy in eu-west-1: CopyFailed\n\nThe full notice (")
                    && body.contains("bytes) could not be sent: sns:Publish failed")
                    && body.contains("Message too long")
                    && body.ends_with("The full details: `golden-ami why 2026-12-01-monthly`.")
            })
            .then_output(|| PublishOutput::builder().message_id("msg-short").build());
        let deps = MockClients {
            sns: vec![&refused, &fallback],
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, input).await.unwrap();
        assert_eq!((refused.num_calls(), fallback.num_calls()), (1, 1));
        assert_eq!(result.message_id, "msg-short");
        assert_eq!(result.event, NotifyEvent::Failed);

        // Refused twice: the step fails, naming both.
        let always = mock!(Sns::publish).then_error(|| {
            PublishError::InvalidParameterException(
                InvalidParameterException::builder()
                    .message("Invalid parameter: Message too long")
                    .build(),
            )
        });
        let deps = MockClients {
            sns: vec![&always],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(STARTED)).await.unwrap_err();
        assert_eq!(always.num_calls(), 2);
        assert_eq!(error.error_type(), "NotificationFailed");
        assert!(
            error.to_string().contains("and so was the short notice"),
            "{error}"
        );
    }

    #[test]
    fn an_approval_request_past_the_limit_keeps_its_commands_and_deadline() {
        let input: golden_ami_core::ApprovalInput =
            testing::event(include_str!("../../../events/request-approval/ok.json"));
        let mut state = input.state.clone();
        if let Some(test) = state.test_status.as_mut() {
            test.report = Some(format!("s3://golden-ami-reports/{}", "r".repeat(300_000)));
        }
        let request = golden_ami_core::ApprovalRequest {
            execution_id:
                "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:retry(2)"
                    .into(),
            family: "default".into(),
            task_token: "t".into(),
            requested_at: "2026-12-01T08:05:00Z".into(),
            deadline: "2026-12-02T08:05:00Z".into(),
            images: vec![golden_ami_core::RegionImage {
                region: testing::REGION.into(),
                ami_id: NEW.into(),
            }],
            changes: None,
        };
        let deps = MockClients::default().deps();
        let message = approval_message(&deps.config, &request, &state, &Default::default());
        assert!(sns_bytes(&message, &deps) <= budget::SNS_MESSAGE_MAX_BYTES);
        assert_contains(
            &message.body,
            &[
                "Boot test: 21 baseline controls passed",
                " ... (cut)",
                // A name a shell would misread is quoted.
                "To publish: golden-ami approve 'retry(2)' --family default --stack golden-ami-pipeline --stack-region eu-west-1",
                "To refuse:  golden-ami deny 'retry(2)' --family default",
                "Without a decision by 2026-12-02T08:05:00Z",
            ],
        );
        assert!(
            message
                .details_at
                .contains("to publish: golden-ami approve 'retry(2)'"),
            "{}",
            message.details_at
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_a_shell_would_misread_them() {
        assert_eq!(shell_word("2026-12-01-monthly"), "2026-12-01-monthly");
        assert_eq!(shell_word("rerun@dec"), "rerun@dec");
        assert_eq!(shell_word("retry+1"), "retry+1");
        assert_eq!(shell_word("it's(2)"), "'it'\\''s(2)'");
    }

    #[test]
    fn a_started_notice_without_a_plan_is_invalid_input() {
        let deps = MockClients::default().deps();
        let mut input: NotifyInput = testing::event(STARTED);
        input.state.plan = None;
        let error = compose(&deps, &input, testing::fixed_now(), &Pointers::new()).unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("plan"), "{error}");
    }

    #[tokio::test]
    async fn a_pointer_moved_by_someone_else_is_named_with_who_and_when() {
        let get = pointer(Some(("ami-0dddddddddddddddd", 8)));
        let history = history(&[
            (OLD, 7, "arn:aws:iam::111122223333:role/golden-ami-pipeline"),
            (
                "ami-0dddddddddddddddd",
                8,
                "arn:aws:sts::111122223333:assumed-role/Admin/jane",
            ),
        ]);
        let message = send_with(FAILED_BEFORE, "FAILED", vec![&get, &history]).await;
        assert_contains(
            &message.body,
            &[
                "The pointer /golden-ami/current in eu-west-1 was changed during this run by arn:aws:sts::111122223333:assumed-role/Admin/jane at 2026-12-01T08:30:00Z: it now holds ami-0dddddddddddddddd (version 8), not the ami-0123456789abcdef0 (version 7) this run started from; this run published nothing, so that change (a pin?) is respected.",
            ],
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
        let message = send_with(FAILED_BEFORE, "FAILED", vec![&denied]).await;
        assert_contains(
            &message.body,
            &["could not be read now (ssm:GetParameter failed with AccessDeniedException"],
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
    fn pointer_status_covers_every_case() {
        let target = RegionTarget {
            region: "eu-west-1".into(),
            kms_key_arn: testing::GOLDEN_KEY_ARN.into(),
            parameter_name: testing::POINTER.into(),
            parameter_version: 7,
            ami_id: Some(OLD.into()),
        };
        let publish = PublishResult {
            parameter_name: testing::POINTER.into(),
            region: "eu-west-1".into(),
            version: 8,
            previous_ami_id: Some(OLD.into()),
            new_ami_id: NEW.into(),
            reshared: false,
        };
        let status = |started, published, now: &PointerNow| {
            pointer_status(testing::POINTER, "eu-west-1", started, published, now)
        };
        let read = |value: &str, version| PointerNow::Read {
            value: value.into(),
            version,
            changed_by: None,
            changed_at: None,
        };
        assert!(status(Some(&target), None, &read(OLD, 7)).contains("untouched"));
        assert!(status(Some(&target), Some(&publish), &read(NEW, 8)).contains("ALREADY holds"));
        assert!(
            status(
                Some(&target),
                Some(&publish),
                &read("ami-0dddddddddddddddd", 9)
            )
            .contains(
                "this run had published ami-0ccccccccccccccc0 (version 8) before that change"
            )
        );
        assert!(status(Some(&target), None, &PointerNow::Missing).contains("does not exist now"));
        let new_region = RegionTarget {
            ami_id: None,
            parameter_version: 0,
            ..target.clone()
        };
        assert!(
            status(Some(&new_region), None, &PointerNow::Missing)
                .contains("does not exist yet (the family's first run there creates it")
        );
        assert!(
            status(None, Some(&publish), &PointerNow::NotRead)
                .contains("was set by this run to ami-0ccccccccccccccc0")
        );
        assert!(
            status(
                Some(&target),
                None,
                &PointerNow::Unreadable("denied".into())
            )
            .contains("could not be read now (denied); this run did not change it")
        );
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

    #[test]
    fn a_long_pipeline_name_is_shortened_and_every_event_keeps_its_word_and_images() {
        let long_name = "n".repeat(110);
        for (event_json, keep) in [
            (STARTED, "STARTED: patching default"),
            (
                SUCCEEDED,
                "SUCCEEDED: ami-0123456789abcdef0 -> ami-0ccccccccccccccc0",
            ),
            (
                FAILED_BEFORE,
                "FAILED at CheckCopy in eu-west-1: CopyFailed",
            ),
            (SKIPPED, "SKIPPED: another run is in progress"),
            (
                SKIPPED_UP_TO_DATE,
                "SKIPPED: ami-0123456789abcdef0 is up to date",
            ),
        ] {
            let mut deps = MockClients::default().deps();
            deps.config.pipeline_name = long_name.clone();
            let input: NotifyInput = testing::event(event_json);
            let message = compose(&deps, &input, testing::fixed_now(), &Pointers::new()).unwrap();
            assert!(message.subject.len() < 100, "{}", message.subject);
            assert!(message.subject.ends_with(keep), "{}", message.subject);
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
