//! Reaper: what the failure path would have done, for an execution that never reached it.
//!
//! StopExecution (the console's Stop, an operator's `aws stepfunctions stop-execution`), the
//! state machine's own TimeoutSeconds, and a failure no Catch can take (States.Runtime,
//! States.DataLimitExceeded) end a run without CleanupAfterFailure or NotifyFailure. EventBridge
//! delivers the execution's "Step Functions Execution Status Change" event here; the reaper
//! then, for that execution:
//!
//! 1. waits until REAPER_SETTLE_SECONDS after the stop, so a Task invocation still in flight
//!    (StopExecution does not stop a running Lambda) has finished what it started;
//! 2. plans what the run could have created: the targets at the version the run planned with
//!    (the run lock records it) or, if the lock is gone, the current targets;
//! 3. sweeps every planned family and region exactly as the failure path does (cleanup's SWEEP:
//!    running automations stopped, leftover instances terminated, intermediate images and
//!    unpublished golden copies deregistered with their snapshots, found by the execution's
//!    deterministic names and tags), never touching what a pointer holds;
//! 4. releases the run lock if the execution holds it;
//! 5. sends one FAILED notice saying how the run ended and what was removed.
//!
//! A FAILED execution that ended in the state machine's own Fail state (error
//! GoldenAmiPipelineFailed) already cleaned up and notified: it is ignored, as are statuses that
//! are not an end (RUNNING) or not a failure (SUCCEEDED).

use golden_ami_core::naming::format_timestamp;
use golden_ami_core::types::{
    CaughtError, EXECUTION_FAILURE_STATE, Failure, LockRelease, NotifyEvent, NotifyResult, Plan,
};
use golden_ami_core::{
    CleanupInput, CleanupMode, CleanupResult, Deps, EventShape, ExecutionContext, NotifyInput,
    PipelineState, StepError,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The error of the state machine's own Fail state: that run has already sent its notice.
pub const PIPELINE_FAILED_ERROR: &str = "GoldenAmiPipelineFailed";

const DETAIL_TYPE: &str = "Step Functions Execution Status Change";
const SOURCE: &str = "aws.states";

/// The EventBridge event, as Step Functions documents it (only what the reaper reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: Detail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub execution_arn: String,
    #[serde(default)]
    pub state_machine_arn: Option<String>,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED (and PENDING_REDRIVE).
    pub status: String,
    /// Epoch milliseconds.
    pub start_date: i64,
    #[serde(default)]
    pub stop_date: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

impl EventShape for StatusChange {
    const SHAPE: &'static str = r#"{"detail-type": "Step Functions Execution Status Change", "source": "aws.states", "detail": {"executionArn": "<execution ARN>", "status": "ABORTED" | "TIMED_OUT" | "FAILED" | ..., "startDate": <epoch ms>, "error": <string or null>, "cause": <string or null>}} as EventBridge delivers it"#;
}

/// What the reaper did about one status change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReapResult {
    pub execution_id: String,
    pub status: String,
    /// REAPED, or IGNORED with the reason.
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<CaughtError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRelease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<NotifyResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    Reaped,
    Ignored,
}

/// How an execution ended, as far as the reaper is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It ended without its failure path: clean up and notify with this error.
    Unhandled(CaughtError),
    /// Nothing to do, and why.
    Handled(String),
}

/// Decide from the event alone whether the run's own failure path ran.
pub fn ending(detail: &Detail) -> Result<Ending, StepError> {
    let error = |name: &str, cause: String| {
        Ending::Unhandled(CaughtError {
            error: name.to_string(),
            cause: Some(cause),
        })
    };
    let reported = detail.cause.as_deref().filter(|c| !c.is_empty());
    Ok(match detail.status.as_str() {
        "ABORTED" => error(
            "ExecutionAborted",
            reported.map_or_else(
                || "the execution was stopped (StopExecution) before it finished; no Catch runs for a stopped execution".to_string(),
                |cause| format!("the execution was stopped (StopExecution): {cause}"),
            ),
        ),
        "TIMED_OUT" => error(
            "ExecutionTimedOut",
            "the execution ran past the state machine's TimeoutSeconds; no Catch runs for a timed-out execution".to_string(),
        ),
        "FAILED" => match detail.error.as_deref() {
            Some(PIPELINE_FAILED_ERROR) => Ending::Handled(format!(
                "the execution ended in its own Fail state ({PIPELINE_FAILED_ERROR}): its failure path already cleaned up and notified"
            )),
            other => error(
                other.filter(|e| !e.is_empty()).unwrap_or("ExecutionFailed"),
                format!(
                    "the execution failed outside any Catch: {}",
                    reported.unwrap_or("(Step Functions gave no cause)")
                ),
            ),
        },
        "RUNNING" | "SUCCEEDED" | "PENDING_REDRIVE" => Ending::Handled(format!(
            "status {}: not a failure the reaper handles",
            detail.status
        )),
        other => {
            return Err(StepError::invalid_input(format!(
                "detail.status is {other:?}, expected one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE"
            )));
        }
    })
}

/// The context the run's own steps saw: its ARN and start time (the names it gave its images
/// are made from them).
pub fn context_of(detail: &Detail) -> Result<ExecutionContext, StepError> {
    if !detail.execution_arn.starts_with("arn:") || !detail.execution_arn.contains(":execution:") {
        return Err(StepError::invalid_input(format!(
            "detail.executionArn is {:?}, expected an execution ARN (arn:aws:states:<region>:<account>:execution:<state machine>:<name>)",
            detail.execution_arn
        )));
    }
    let started =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(detail.start_date) * 1_000_000)
            .map_err(|error| {
                StepError::invalid_input(format!(
                    "detail.startDate is {}, expected epoch milliseconds ({error})",
                    detail.start_date
                ))
            })?;
    Ok(ExecutionContext {
        execution_id: detail.execution_arn.clone(),
        started_at: format_timestamp(started),
    })
}

pub async fn handler(deps: &Deps, event: StatusChange) -> Result<ReapResult, StepError> {
    if event.detail_type != DETAIL_TYPE || event.source != SOURCE {
        return Err(StepError::invalid_input(format!(
            "an event with detail-type {:?} from {:?}; the reaper takes {DETAIL_TYPE:?} events from {SOURCE:?} (its EventBridge rule's pattern)",
            event.detail_type, event.source
        )));
    }
    let detail = &event.detail;
    let context = context_of(detail)?;
    let mut result = ReapResult {
        execution_id: context.execution_id.clone(),
        status: detail.status.clone(),
        action: Action::Ignored,
        reason: None,
        cleanup: None,
        cleanup_error: None,
        lock: None,
        notice: None,
    };
    let error = match ending(detail)? {
        Ending::Handled(reason) => {
            tracing::info!(execution = %context.execution_id, %reason, "nothing to reap");
            result.reason = Some(reason);
            return Ok(result);
        }
        Ending::Unhandled(error) => error,
    };
    tracing::warn!(execution = %context.execution_id, status = %detail.status, "reaping an execution that ended without its failure path");
    result.action = Action::Reaped;
    settle(deps, detail).await;

    let mut state = PipelineState {
        failure: Some(Failure {
            state: EXECUTION_FAILURE_STATE.to_string(),
            region: None,
            error,
        }),
        ..PipelineState::default()
    };
    // Everything below is best effort in order: a step that fails is named in the notice, and
    // the notice is still sent.
    match plan_of(deps, &context).await {
        Ok(plan) => {
            let input = CleanupInput {
                context: context.clone(),
                mode: CleanupMode::Sweep,
                state: PipelineState {
                    plan: Some(plan.clone()),
                    ..PipelineState::default()
                },
            };
            state.plan = Some(plan);
            match cleanup::handler(deps, input).await {
                Ok(cleanup) => state.cleanup = Some(cleanup),
                Err(error) => state.cleanup_error = Some(caught(&error)),
            }
        }
        Err(error) => {
            state.cleanup_error = Some(CaughtError {
                error: error.error_type().to_string(),
                cause: Some(format!(
                    "the reaper could not read the targets to know what to sweep: {error}"
                )),
            });
        }
    }
    match release_lock::release(deps, &context.execution_id).await {
        Ok(lock) => {
            state.lock = Some(lock.clone());
            result.lock = Some(lock);
        }
        Err(error) => {
            tracing::error!(%error, "could not release the run lock; the next run breaks it once it expires")
        }
    }
    result.cleanup = state.cleanup.clone();
    result.cleanup_error = state.cleanup_error.clone();
    // A failed notice fails the invocation: Lambda retries it (the sweep is idempotent).
    let notice = notify::handler(
        deps,
        NotifyInput {
            context,
            event: NotifyEvent::Failed,
            state,
        },
    )
    .await?;
    result.notice = Some(notice);
    Ok(result)
}

/// Wait until REAPER_SETTLE_SECONDS after the execution stopped: a Task's Lambda invocation in
/// flight at that moment runs to its end (StartBake may still start an automation, CopyImage a
/// copy), and the sweep must come after it.
async fn settle(deps: &Deps, detail: &Detail) {
    let now_ms = i64::try_from(deps.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    if let Some(wait) = settle_wait(detail.stop_date, deps.config.reaper_settle_seconds, now_ms) {
        tracing::info!(wait_ms = %wait.as_millis(), "letting in-flight invocations of the stopped run finish");
        tokio::time::sleep(wait).await;
    }
}

/// How long to wait now (epoch ms) to be `settle_seconds` past the stop, if at all.
pub fn settle_wait(
    stopped_ms: Option<i64>,
    settle_seconds: u64,
    now_ms: i64,
) -> Option<std::time::Duration> {
    let settle_ms = i64::try_from(settle_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let until_ms = stopped_ms?.saturating_add(settle_ms);
    u64::try_from(until_ms.saturating_sub(now_ms))
        .ok()
        .filter(|wait| *wait > 0)
        .map(std::time::Duration::from_millis)
}

fn caught(error: &StepError) -> CaughtError {
    CaughtError {
        error: error.error_type().to_string(),
        cause: Some(error.to_string()),
    }
}

/// What the run planned: the targets version its lock records, else the current targets.
async fn plan_of(deps: &Deps, context: &ExecutionContext) -> Result<Plan, StepError> {
    let version = match plan_run::read_lock(deps).await? {
        Some(holder) if holder.execution_id == context.execution_id => holder.targets_version,
        _ => None,
    };
    match plan_run::plan_at(deps, version).await {
        Ok(plan) => Ok(plan),
        // That version is gone or no longer valid: the current targets are the best guess.
        Err(error) if version.is_some() => {
            tracing::warn!(%error, "the run's targets version is unusable; sweeping the current targets");
            plan_run::plan_at(deps, None).await
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use golden_ami_core::testing::{self, MockClients};

    use super::*;

    const ABORTED: &str = include_str!("../../../events/reaper/aborted.json");
    const TIMED_OUT: &str = include_str!("../../../events/reaper/timed-out.json");
    const FAILED_HANDLED: &str = include_str!("../../../events/reaper/failed-after-notice.json");
    const FAILED_RUNTIME: &str = include_str!("../../../events/reaper/failed-runtime.json");

    fn event(json: &str) -> StatusChange {
        testing::event(json)
    }

    #[test]
    fn the_documented_event_shapes_parse() {
        let aborted = event(ABORTED);
        assert_eq!(aborted.detail.status, "ABORTED");
        assert!(
            aborted
                .detail
                .execution_arn
                .ends_with(":2026-12-01-monthly")
        );
        assert!(aborted.detail.error.is_none());
        assert_eq!(event(TIMED_OUT).detail.status, "TIMED_OUT");
    }

    #[test]
    fn aborted_timed_out_and_uncaught_failures_are_reaped_with_their_own_error() {
        let name = |json: &str| match ending(&event(json).detail) {
            Ok(Ending::Unhandled(error)) => (error.error, error.cause.unwrap_or_default()),
            other => panic!("expected Unhandled, got {other:?}"),
        };
        let (error, cause) = name(ABORTED);
        assert_eq!(error, "ExecutionAborted");
        assert!(cause.contains("StopExecution"), "{cause}");
        let (error, cause) = name(TIMED_OUT);
        assert_eq!(error, "ExecutionTimedOut");
        assert!(cause.contains("TimeoutSeconds"), "{cause}");
        let (error, cause) = name(FAILED_RUNTIME);
        assert_eq!(error, "States.DataLimitExceeded");
        assert!(cause.contains("exceeding the maximum"), "{cause}");
    }

    #[test]
    fn a_run_that_ended_in_its_fail_state_or_did_not_fail_is_left_alone() {
        assert!(matches!(
            ending(&event(FAILED_HANDLED).detail),
            Ok(Ending::Handled(reason)) if reason.contains("already cleaned up and notified")
        ));
        for status in ["RUNNING", "SUCCEEDED", "PENDING_REDRIVE"] {
            let mut detail = event(ABORTED).detail;
            detail.status = status.into();
            assert!(
                matches!(ending(&detail), Ok(Ending::Handled(_))),
                "{status}"
            );
        }
        let mut detail = event(ABORTED).detail;
        detail.status = "EXPLODED".into();
        let error = ending(&detail).unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("EXPLODED"));
    }

    #[test]
    fn the_context_is_the_one_the_run_saw() {
        let context = context_of(&event(ABORTED).detail).unwrap();
        assert_eq!(
            context.execution_id,
            "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:2026-12-01-monthly"
        );
        // 1796112000123 ms = 2026-12-01T08:00:00.123Z: the same patch date as the run's names.
        assert_eq!(context.started_at, "2026-12-01T08:00:00.123Z");
        let mut detail = event(ABORTED).detail;
        detail.execution_arn = "not-an-arn".into();
        assert!(
            context_of(&detail)
                .unwrap_err()
                .to_string()
                .contains("executionArn")
        );
    }

    #[test]
    fn the_sweep_waits_for_invocations_in_flight_at_the_stop() {
        use std::time::Duration;
        let stop = 1_796_113_500_000;
        // Stopped 10 s ago with 90 s to settle: 80 s more.
        assert_eq!(
            settle_wait(Some(stop), 90, stop + 10_000),
            Some(Duration::from_secs(80))
        );
        // Long enough ago, no settle time, or no stop date: at once.
        assert_eq!(settle_wait(Some(stop), 90, stop + 90_000), None);
        assert_eq!(settle_wait(Some(stop), 0, stop), None);
        assert_eq!(settle_wait(None, 90, stop), None);
    }

    #[tokio::test]
    async fn ignored_events_touch_nothing() {
        // No mock rules: any AWS call would fail the test.
        let deps = MockClients::default().deps();
        let result = handler(&deps, event(FAILED_HANDLED)).await.unwrap();
        assert_eq!(result.action, Action::Ignored);
        assert!(result.notice.is_none() && result.cleanup.is_none() && result.lock.is_none());
        let mut succeeded = event(ABORTED);
        succeeded.detail.status = "SUCCEEDED".into();
        assert_eq!(
            handler(&deps, succeeded).await.unwrap().action,
            Action::Ignored
        );
    }

    #[tokio::test]
    async fn an_event_from_elsewhere_is_invalid_input() {
        let deps = MockClients::default().deps();
        let mut other = event(ABORTED);
        other.detail_type = "EC2 Instance State-change Notification".into();
        let error = handler(&deps, other).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(
            error
                .to_string()
                .contains("Step Functions Execution Status Change")
        );
    }
}
