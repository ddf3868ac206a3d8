// Step Functions' execution limits, as the runner enforces them: the payload size quota and the
// execution history quota. This file is the one place that says how an execution's history is
// counted; run.mjs feeds it the library's events and the runner's own Task attempts.
//
// Sources (Standard workflows):
// - Quotas, "Maximum input or output size for a task, state, or execution": 262,144 bytes of data
//   as a UTF-8 encoded string, for task results, state and execution output, and input data when
//   scheduling a task, entering a state or starting an execution; "Maximum execution history
//   size": 25,000 events, "If the execution history reaches this quota, the execution will fail".
//   https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
// - Avoid reaching the history quota: "When an execution reaches 24,999 events, it waits for the
//   next event to happen. If the event number 25,000 is ExecutionSucceeded, the execution finishes
//   successfully. If the event number 25,000 isn't ExecutionSucceeded, the ExecutionFailed event is
//   logged and the state machine execution fails because of reaching the history limit."
//   https://docs.aws.amazon.com/step-functions/latest/dg/bp-history-limit.html
//   The page names no error; AWS writes error States.Runtime, cause "The execution reached the
//   maximum number of history events (25000).", as event 25,000 (reports from real executions:
//   https://github.com/loads/ardere/issues/86, https://github.com/floci-io/floci/issues/2734).
// - Error handling, States.DataLimitExceeded: reported when the output of a connector, the output
//   of a state, or the input of a state after Parameters is larger than the payload quota; the
//   page calls it "a terminal error that can't be caught by the States.ALL error type".
//   https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
//   Real executions differ for a Task's result (a connector's output): AWS writes it as the
//   attempt's failure (LambdaFunctionFailed / TaskFailed, error States.DataLimitExceeded, cause
//   "The state/task '<function ARN>' returned a result with a size exceeding the maximum number
//   of bytes service limit.") and a Catch on States.ALL DOES take it; a state whose own output is
//   too large (a Pass state's Result) fails the execution right after it was entered (no Exited
//   event), with the same error. Recorded against AWS on 2024-03-21 in LocalStack's validated
//   snapshots: https://github.com/localstack/localstack/blob/main/tests/aws/services/stepfunctions/v2/error_handling/test_states_errors.snapshot.json
//   (tests test_task_lambda_catch_state_all_data_limit_exceeded_on_large_utf8_response and
//   test_start_large_input). The runner follows what AWS does (run.mjs: the Task handler and the
//   event consumer).
// - Event types: https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html
//   (GetExecutionHistory: https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html).
//   Which events each state type writes, and in which order, is not tabulated in the guide; the
//   model below follows histories recorded from AWS: the guide's Step Functions Local example
//   (TaskStateEntered, LambdaFunctionScheduled, LambdaFunctionStarted, LambdaFunctionSucceeded,
//   TaskStateExited for a Lambda ARN Resource:
//   https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-test-sm-exec.html) and
//   LocalStack's AWS-validated snapshots (tests/aws/services/stepfunctions/v2/: services/
//   test_lambda_task, error_handling/test_task_lambda, callback/test_callback, scenarios/
//   test_base_scenarios for Map, base/test_wait).

/** Step Functions' payload quota: bytes of the UTF-8 encoded JSON text. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 262_144;
/** Step Functions' execution history quota (Standard workflows), in events. */
export const DEFAULT_MAX_HISTORY_EVENTS = 25_000;

export const DATA_LIMIT_ERROR = 'States.DataLimitExceeded';
export const HISTORY_LIMIT_ERROR = 'States.Runtime';

/** The cause AWS gives when an execution reaches the history quota. */
export function historyLimitCause(max) {
  return `The execution reached the maximum number of history events (${max}).`;
}

/** Size of a JSON value as Step Functions measures it: its UTF-8 encoded JSON text. */
export function payloadBytes(value) {
  return Buffer.byteLength(JSON.stringify(value === undefined ? null : value), 'utf8');
}

/**
 * The History event model, per state type. An execution writes ExecutionStarted first and one
 * terminal event last (ExecutionSucceeded | ExecutionFailed | ExecutionTimedOut | ExecutionAborted).
 * In between, each state visit writes:
 *
 *   Task, Resource a Lambda function ARN:
 *     TaskStateEntered, then per attempt (first try and every Retry) LambdaFunctionScheduled,
 *     LambdaFunctionStarted, LambdaFunctionSucceeded | LambdaFunctionFailed | LambdaFunctionTimedOut,
 *     then TaskStateExited when the state succeeds or a Catch takes its error (none when the
 *     error ends the execution). A function that cannot be invoked (no such function, service
 *     errors) still writes Scheduled, Started, Failed.
 *   Task, Resource arn:aws:states:::lambda:invoke.waitForTaskToken:
 *     TaskStateEntered; per attempt TaskScheduled, TaskStarted, TaskSubmitted (the invoke call
 *     returned), TaskSucceeded | TaskFailed | TaskTimedOut (a failed invoke: TaskFailed right
 *     after TaskStarted); TaskStateExited as above.
 *   Pass: PassStateEntered, PassStateExited.   Wait: WaitStateEntered, WaitStateExited.
 *   Choice: ChoiceStateEntered, ChoiceStateExited (no match: only Entered).
 *   Succeed: SucceedStateEntered, SucceedStateExited.   Fail: FailStateEntered.
 *   Map (inline): MapStateEntered, MapStateStarted, per item MapIterationStarted, the iteration's
 *     own events, MapIterationSucceeded | MapIterationFailed; then MapStateSucceeded,
 *     MapStateExited; or MapStateFailed (+ MapStateExited when caught). A Retry starts a new
 *     attempt with MapStateStarted (no MapStateFailed for the failed attempt).
 *   Parallel: ParallelStateEntered, ParallelStateStarted, the branches' events (no per-branch
 *     events), ParallelStateSucceeded, ParallelStateExited; failures as for Map.
 *
 * Not counted: the *StateAborted and MapIterationAborted events AWS writes for the work an
 * uncaught error stops inside a Map or Parallel. The runner's library does not report which
 * iterations it stopped; in this pipeline only errors no Catch takes (States.Runtime, a terminal
 * States.DataLimitExceeded, the history quota itself) fail a Map iteration, and they end the
 * execution anyway. Distributed Maps (MapRun*) are not supported by the runner.
 */
export const STATE_EVENTS = {
  Task: { entered: 'TaskStateEntered', exited: 'TaskStateExited' },
  Pass: { entered: 'PassStateEntered', exited: 'PassStateExited' },
  Wait: { entered: 'WaitStateEntered', exited: 'WaitStateExited' },
  Choice: { entered: 'ChoiceStateEntered', exited: 'ChoiceStateExited' },
  Succeed: { entered: 'SucceedStateEntered', exited: 'SucceedStateExited' },
  Fail: { entered: 'FailStateEntered' },
  Map: { entered: 'MapStateEntered', started: 'MapStateStarted', succeeded: 'MapStateSucceeded', failed: 'MapStateFailed', exited: 'MapStateExited' },
  Parallel: {
    entered: 'ParallelStateEntered',
    started: 'ParallelStateStarted',
    succeeded: 'ParallelStateSucceeded',
    failed: 'ParallelStateFailed',
    exited: 'ParallelStateExited',
  },
};

/** The events of one Task attempt, by the kind of Resource. */
export const TASK_ATTEMPT_EVENTS = {
  lambda: { scheduled: 'LambdaFunctionScheduled', started: 'LambdaFunctionStarted', submitted: null, succeeded: 'LambdaFunctionSucceeded', failed: 'LambdaFunctionFailed', timedOut: 'LambdaFunctionTimedOut' },
  callback: { scheduled: 'TaskScheduled', started: 'TaskStarted', submitted: 'TaskSubmitted', succeeded: 'TaskSucceeded', failed: 'TaskFailed', timedOut: 'TaskTimedOut' },
};

/**
 * Counts one execution's history the way Step Functions writes it, and says when it reaches the
 * quota. Events 1..max-1 can be anything; event `max` must be ExecutionSucceeded, otherwise the
 * execution fails there (that ExecutionFailed is event `max`).
 *
 * `onLimit()` is called once, when a non-terminal event would be event `max`: the caller fails the
 * execution (HISTORY_LIMIT_ERROR, historyLimitCause(max)). After that, or after `freeze()` (the
 * execution ended for another reason), nothing more is counted but the terminal event.
 */
export class HistoryCounter {
  constructor({ max = DEFAULT_MAX_HISTORY_EVENTS, onLimit = () => {} } = {}) {
    this.max = max;
    this.onLimit = onLimit;
    this.count = 0;
    this.byType = {};
    this.exceeded = false;
    this.frozen = false;
    this.finished = false;
    this.caughtPending = new Map(); // Map/Parallel state name -> StateCaught not yet exited
    this.openAttempts = new Map(); // Task state name -> [attempt] the runner has not closed
  }

  /** Appends one non-terminal event; false once the history is closed (limit reached, or frozen). */
  add(type) {
    if (this.exceeded || this.frozen || this.finished) return false;
    if (this.count + 1 >= this.max) {
      this.exceeded = true;
      this.count = this.max; // event `max` is the ExecutionFailed
      this.byType.ExecutionFailed = (this.byType.ExecutionFailed ?? 0) + 1;
      this.onLimit();
      return false;
    }
    this.count += 1;
    this.byType[type] = (this.byType[type] ?? 0) + 1;
    return true;
  }

  /** Takes back the last event of `type` (a Map attempt that is retried writes no MapStateFailed). */
  remove(type) {
    if (this.exceeded || this.frozen || this.finished || !this.byType[type]) return;
    this.count -= 1;
    this.byType[type] -= 1;
  }

  /** The execution has ended (a terminal error): later library events are not history. */
  freeze() {
    this.frozen = true;
  }

  /**
   * The terminal event. Event `max` that is not ExecutionSucceeded means the quota was reached
   * (bp-history-limit): returns true then, and the caller reports the history limit error.
   */
  finish(type) {
    if (this.finished) return this.exceeded;
    this.finished = true;
    if (this.exceeded) return true;
    this.count += 1;
    this.byType[type] = (this.byType[type] ?? 0) + 1;
    if (type !== 'ExecutionSucceeded' && this.count >= this.max) {
      this.exceeded = true;
      return true;
    }
    return false;
  }

  // --- The runner's Task attempts (it invokes the functions, so it sees each attempt) ---------

  /** A Task attempt begins: Scheduled, Started. Returns the attempt; `attempt.stopped` if the quota was reached. */
  taskAttemptStarted(stateName, kind) {
    const events = TASK_ATTEMPT_EVENTS[kind];
    const attempt = { stateName, events, closed: false, stopped: false };
    attempt.stopped = !this.add(events.scheduled) || !this.add(events.started);
    if (!this.openAttempts.has(stateName)) this.openAttempts.set(stateName, []);
    this.openAttempts.get(stateName).push(attempt);
    return attempt;
  }

  /** TaskSubmitted (callback Tasks: the invoke call returned); false if the quota was reached. */
  taskAttemptSubmitted(attempt) {
    return attempt.events.submitted ? this.add(attempt.events.submitted) : true;
  }

  /** The attempt ends: outcome 'succeeded' | 'failed' | 'timedOut'. Once per attempt. */
  taskAttemptEnded(attempt, outcome) {
    if (attempt.closed) return;
    attempt.closed = true;
    const open = this.openAttempts.get(attempt.stateName) ?? [];
    const i = open.indexOf(attempt);
    if (i >= 0) open.splice(i, 1);
    this.add(attempt.events[outcome]);
  }

  // --- The library's events (aws-local-stepfunctions eventLogs) -------------------------------

  /** Counts what one library event stands for (see STATE_EVENTS). */
  onLibraryEvent(ev) {
    const st = ev.state;
    const model = st ? STATE_EVENTS[st.type] : undefined;
    switch (ev.type) {
      case 'ExecutionStarted':
        this.add('ExecutionStarted');
        break;
      case 'StateEntered':
        if (!model) break;
        this.add(model.entered);
        if (model.started) this.add(model.started);
        break;
      case 'StateExited': {
        if (!model || !model.exited) break;
        if (model.succeeded) {
          const caught = this.caughtPending.get(st.name) ?? 0;
          if (caught > 0) this.caughtPending.set(st.name, caught - 1);
          else this.add(model.succeeded);
        }
        this.add(model.exited);
        break;
      }
      case 'StateFailed':
        if (st.type === 'Task' && ev.Error === 'States.Timeout') {
          // The library timed the attempt out (TimeoutSeconds) while the runner still waited.
          const open = this.openAttempts.get(st.name) ?? [];
          if (open.length > 0) this.taskAttemptEnded(open[0], 'timedOut');
        } else if (model?.failed) {
          this.add(model.failed);
        }
        break;
      case 'StateRetried':
        if (model?.started) {
          this.remove(model.failed);
          this.add(model.started);
        }
        break;
      case 'StateCaught':
        if (model?.succeeded) this.caughtPending.set(st.name, (this.caughtPending.get(st.name) ?? 0) + 1);
        break;
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed':
        this.add(ev.type);
        break;
      default:
        // ParallelBranch*: no history events of their own. Execution*: the caller's finish().
        break;
    }
  }
}
