// Step Functions' payload and history quotas in the local runner (lib/limits.mjs has the sources).
// Run: node --test local/runner/test/   (no Rust, no network)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startFakeLambda, happyScript, fnError } from '../lib/fake-lambda.mjs';
import { runStateMachine, parseArgs, RunnerError, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_HISTORY_EVENTS } from '../run.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUNNER = path.resolve(here, '..', 'run.mjs');
const REPO = path.resolve(here, '..', '..', '..');
const PIPELINE = path.join(REPO, 'statemachine', 'golden-ami-pipeline.asl.json');

const scripts = new Map();
let fake;
before(async () => {
  fake = await startFakeLambda((execution) => scripts.get(execution));
});
after(async () => {
  await fake.close();
});

function run(name, script, extra = {}) {
  scripts.set(name, script);
  return runStateMachine({ lambdaEndpoint: fake.url, executionName: name, stateMachineName: 'limits', log: null, ...extra });
}
const callsOf = (execution, fn) => fake.calls.filter((c) => c.execution === execution && (!fn || c.fn === fn));

/** The fake identifies an execution by the context every Task sends. */
const CONTEXT = { context: { 'executionId.$': '$$.Execution.Id' } };

/** A result whose JSON text, {"blob":"aaa..."}, is exactly `bytes` bytes long. */
const resultOf = (bytes) => ({ blob: 'a'.repeat(bytes - 11) });
const bytesOf = (value) => Buffer.byteLength(JSON.stringify(value), 'utf8');

/** One Lambda Task (function "big"), caught on States.ALL or not. */
function bigTask({ catchAll = true, resultPath, parameters = CONTEXT } = {}) {
  return {
    StartAt: 'Big',
    States: {
      Big: {
        Type: 'Task',
        Resource: '${BigFunctionArn}',
        Parameters: parameters,
        ...(resultPath ? { ResultPath: resultPath } : {}),
        ...(catchAll ? { Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Caught' }] } : {}),
        Next: 'Done',
      },
      ...(catchAll ? { Caught: { Type: 'Pass', End: true } } : {}),
      Done: { Type: 'Pass', End: true },
    },
  };
}

test('the quotas default to 262144 bytes and 25000 events, and the flags parse', () => {
  assert.equal(DEFAULT_MAX_PAYLOAD_BYTES, 262_144);
  assert.equal(DEFAULT_MAX_HISTORY_EVENTS, 25_000);
  const opts = parseArgs(['--definition', 'x.asl.json', '--max-payload-bytes', '1000', '--max-history-events=50']);
  assert.equal(opts.maxPayloadBytes, 1000);
  assert.equal(opts.maxHistoryEvents, 50);
  assert.throws(() => parseArgs(['--definition', 'x', '--max-payload-bytes', '0']), /--max-payload-bytes must be an integer >= 1/);
  assert.throws(() => parseArgs(['--definition', 'x', '--max-history-events', '1']), /--max-history-events must be an integer >= 2/);
});

test('a Task result of exactly 262144 bytes passes', async () => {
  const result = resultOf(DEFAULT_MAX_PAYLOAD_BYTES);
  const r = await run('lim-at-quota', { big: result }, { definition: bigTask() });
  assert.equal(r.status, 'SUCCEEDED', r.cause);
  assert.deepEqual(r.path, ['Big', 'Done']);
  assert.deepEqual(r.output, result);
  assert.equal(r.largestPayloadBytes, DEFAULT_MAX_PAYLOAD_BYTES);
});

test('a Task result one byte over the quota fails the attempt with States.DataLimitExceeded, which a Catch on States.ALL takes (as AWS does)', async () => {
  const r = await run('lim-result', { big: resultOf(DEFAULT_MAX_PAYLOAD_BYTES + 1) }, { definition: bigTask() });
  assert.equal(r.status, 'SUCCEEDED', r.cause);
  assert.deepEqual(r.path, ['Big', 'Caught']);
  assert.equal(r.output.error.Error, 'States.DataLimitExceeded');
  assert.match(r.output.error.Cause, /^The state\/task 'arn:aws:lambda:eu-west-1:123456789012:function:big' returned a result with a size exceeding the maximum number of bytes service limit\./);
  assert.match(r.output.error.Cause, /state Big, 262145 bytes > 262144/);
  assert.equal(r.largestPayloadBytes, DEFAULT_MAX_PAYLOAD_BYTES + 1);
  assert.equal(r.largestPayloadState, 'Big');
  // The 9 events AWS recorded for this case (LocalStack's validated snapshot, see lib/limits.mjs).
  assert.equal(r.historyEvents, 9);
  assert.deepEqual(r.historyEventTypes, {
    ExecutionStarted: 1,
    TaskStateEntered: 1,
    LambdaFunctionScheduled: 1,
    LambdaFunctionStarted: 1,
    LambdaFunctionFailed: 1,
    TaskStateExited: 1,
    PassStateEntered: 1,
    PassStateExited: 1,
    ExecutionSucceeded: 1,
  });
});

test('without a Catch, a Task result over the quota fails the execution with States.DataLimitExceeded', async () => {
  const r = await run('lim-result-uncaught', { big: resultOf(DEFAULT_MAX_PAYLOAD_BYTES + 1) }, { definition: bigTask({ catchAll: false }) });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.equal(r.endState, 'Big');
  // ExecutionStarted, TaskStateEntered, LambdaFunctionScheduled/Started/Failed, ExecutionFailed.
  assert.equal(r.historyEvents, 6);
});

test("a state's output over the quota fails the execution; its Catch on States.ALL does not take it", async () => {
  // The result (150000 bytes) and the input it is merged into (150010 bytes) are each under the
  // quota; the state's output after ResultPath is not.
  const input = { pad: 'x'.repeat(150_000) };
  const result = resultOf(150_000);
  const output = bytesOf({ ...input, result });
  assert.ok(output > DEFAULT_MAX_PAYLOAD_BYTES);
  const r = await run('lim-output', { big: result }, { definition: bigTask({ resultPath: '$.result' }), input });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.match(r.cause, /^The state\/task 'Big' returned a result with a size exceeding the maximum number of bytes service limit\./);
  assert.match(r.cause, new RegExp(`state Big, ${output} bytes > 262144`));
  assert.deepEqual(r.path, ['Big'], 'neither Caught nor Done is entered');
  assert.equal(r.largestPayloadState, 'Big');
  // No TaskStateExited: the execution fails as the state would exit.
  assert.equal(r.historyEvents, 6);
  assert.equal(r.historyEventTypes.LambdaFunctionSucceeded, 1);
  assert.equal(r.historyEventTypes.TaskStateExited, undefined);
});

test("a Task's input after Parameters over the quota fails the execution before the function runs", async () => {
  // The state input (262110 bytes) is under the quota; Parameters adds the context around it.
  const r = await run('lim-params', { big: 'never' }, {
    definition: bigTask({ parameters: { ...CONTEXT, 'state.$': '$' } }),
    input: { pad: 'x'.repeat(262_100) },
  });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.match(r.cause, /'Big' has an input, after Parameters, with a size exceeding/);
  assert.deepEqual(r.path, ['Big']);
  assert.equal(callsOf('lim-params').length, 0);
});

test('an execution input over the quota is refused like StartExecution refuses it (runner error, nothing runs)', async () => {
  await assert.rejects(
    run('lim-input', {}, { definition: bigTask(), input: { pad: 'x'.repeat(DEFAULT_MAX_PAYLOAD_BYTES) } }),
    (err) => err instanceof RunnerError && /execution input is 262154 bytes.*StartExecution would reject it/.test(err.message),
  );
  assert.equal(callsOf('lim-input').length, 0);
});

test('the history of a small definition has exactly the events derived by hand from the model', async () => {
  const definition = {
    StartAt: 'Prepare',
    States: {
      Prepare: { Type: 'Pass', Result: [1, 2], ResultPath: '$.items', Next: 'Work' },
      Work: {
        Type: 'Task',
        Resource: '${WorkFunctionArn}',
        Parameters: CONTEXT,
        ResultPath: '$.work',
        Retry: [{ ErrorEquals: ['Throttled'], IntervalSeconds: 1, MaxAttempts: 2 }],
        Next: 'Ready?',
      },
      'Ready?': { Type: 'Choice', Choices: [{ Variable: '$.work.ok', BooleanEquals: true, Next: 'Pause' }], Default: 'Broken' },
      Pause: { Type: 'Wait', Seconds: 5, Next: 'Each' },
      Each: {
        Type: 'Map',
        ItemsPath: '$.items',
        ItemProcessor: { StartAt: 'One', States: { One: { Type: 'Pass', End: true } } },
        ResultPath: '$.each',
        Next: 'Done',
      },
      Done: { Type: 'Succeed' },
      Broken: { Type: 'Fail', Error: 'Broken' },
    },
  };
  const r = await run('lim-count', { work: [fnError('Throttled', 'slow down'), { ok: true }] }, { definition });
  assert.equal(r.status, 'SUCCEEDED', r.cause);
  assert.equal(callsOf('lim-count', 'work').length, 2);
  // ExecutionStarted                                                             1
  // Prepare: PassStateEntered, PassStateExited                                   2
  // Work: TaskStateEntered, 2 attempts x (LambdaFunctionScheduled, Started,
  //       Failed | Succeeded), TaskStateExited                                   8
  // Ready?: ChoiceStateEntered, ChoiceStateExited                                2
  // Pause: WaitStateEntered, WaitStateExited                                     2
  // Each: MapStateEntered, MapStateStarted, 2 x (MapIterationStarted,
  //       PassStateEntered, PassStateExited, MapIterationSucceeded),
  //       MapStateSucceeded, MapStateExited                                     12
  // Done: SucceedStateEntered, SucceedStateExited                                2
  // ExecutionSucceeded                                                           1
  assert.equal(r.historyEvents, 30);
  assert.deepEqual(r.historyEventTypes, {
    ExecutionStarted: 1,
    PassStateEntered: 3,
    PassStateExited: 3,
    TaskStateEntered: 1,
    LambdaFunctionScheduled: 2,
    LambdaFunctionStarted: 2,
    LambdaFunctionFailed: 1,
    LambdaFunctionSucceeded: 1,
    TaskStateExited: 1,
    ChoiceStateEntered: 1,
    ChoiceStateExited: 1,
    WaitStateEntered: 1,
    WaitStateExited: 1,
    MapStateEntered: 1,
    MapStateStarted: 1,
    MapIterationStarted: 2,
    MapIterationSucceeded: 2,
    MapStateSucceeded: 1,
    MapStateExited: 1,
    SucceedStateEntered: 1,
    SucceedStateExited: 1,
    ExecutionSucceeded: 1,
  });
});

/** A polling loop that never ends: Poll (Task), Done? (Choice), Later (Wait), Poll ... */
const ENDLESS_POLL = {
  StartAt: 'Poll',
  States: {
    Poll: { Type: 'Task', Resource: '${PollFunctionArn}', Parameters: CONTEXT, ResultPath: '$.poll', Next: 'Done?' },
    'Done?': { Type: 'Choice', Choices: [{ Variable: '$.poll.done', BooleanEquals: true, Next: 'Finished' }], Default: 'Later' },
    Later: { Type: 'Wait', Seconds: 60, Next: 'Poll' },
    Finished: { Type: 'Succeed' },
  },
};

test('a loop that reaches the history quota fails with States.Runtime, and no function runs past it', async () => {
  // Event 1 ExecutionStarted; loop n writes 9 events (TaskStateEntered, LambdaFunctionScheduled,
  // Started, Succeeded, TaskStateExited, ChoiceStateEntered/Exited, WaitStateEntered/Exited):
  // events 2..46 are loops 1-5, 47 is the 6th TaskStateEntered; the 6th LambdaFunctionScheduled
  // would be event 48, so event 48 is the ExecutionFailed and the 6th poll never runs.
  const r = await run('lim-loop', { poll: { done: false } }, { definition: ENDLESS_POLL, maxHistoryEvents: 48 });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.Runtime');
  assert.equal(r.cause, 'The execution reached the maximum number of history events (48).');
  assert.equal(r.historyEvents, 48);
  assert.equal(r.historyEventTypes.ExecutionFailed, 1);
  assert.equal(callsOf('lim-loop', 'poll').length, 5);
});

test('a loop whose last event is number N (ExecutionSucceeded) passes the quota N; at N-1 it fails', async () => {
  // 5 polls: 1 + 5 x 5 (Task) + 5 x 2 (Choice) + 4 x 2 (Wait) + 2 (Succeed) + 1 = 47 events.
  const polls = [{ done: false }, { done: false }, { done: false }, { done: false }, { done: true }];
  const ok = await run('lim-loop-47', { poll: polls }, { definition: ENDLESS_POLL, maxHistoryEvents: 47 });
  assert.equal(ok.status, 'SUCCEEDED', ok.cause);
  assert.equal(ok.historyEvents, 47);
  const over = await run('lim-loop-46', { poll: polls }, { definition: ENDLESS_POLL, maxHistoryEvents: 46 });
  assert.equal(over.status, 'FAILED');
  assert.equal(over.error, 'States.Runtime');
  assert.equal(over.cause, 'The execution reached the maximum number of history events (46).');
  assert.equal(over.historyEvents, 46);
});

test('the real ASL: the happy path writes 177 history events; a quota of 176 fails it', async () => {
  // 50 states entered (see HAPPY_PATH in runner.test.mjs), each Entered + Exited = 100; 21 Lambda
  // attempts x (Scheduled, Started, Succeeded) = 63; 3 Map states x (Started, Succeeded) = 6;
  // 3 Map iterations x (Started, Succeeded) = 6; ExecutionStarted + ExecutionSucceeded = 2.
  const opts = { definitionPath: PIPELINE, stateMachineName: undefined, input: { dryRun: false } };
  const r = await run('lim-happy', happyScript(), opts);
  assert.equal(r.status, 'SUCCEEDED', r.cause);
  assert.equal(r.path.length, 50);
  assert.equal(r.invocations.length, 21);
  assert.equal(r.historyEvents, 177);
  assert.ok(r.largestPayloadBytes > 1000 && r.largestPayloadBytes < DEFAULT_MAX_PAYLOAD_BYTES, `${r.largestPayloadBytes}`);
  const exact = await run('lim-happy-177', happyScript(), { ...opts, maxHistoryEvents: 177 });
  assert.equal(exact.status, 'SUCCEEDED', exact.cause);
  const over = await run('lim-happy-176', happyScript(), { ...opts, maxHistoryEvents: 176 });
  assert.equal(over.status, 'FAILED');
  assert.equal(over.error, 'States.Runtime');
  assert.equal(over.historyEvents, 176);
});

test('CLI: --max-payload-bytes and --max-history-events, and the --json line reports historyEvents and the largest payload', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-limits-'));
  try {
    // A Pass state whose Result is over the quota: AWS writes PassStateEntered, then ExecutionFailed.
    const big = path.join(dir, 'big-pass.asl.json');
    fs.writeFileSync(big, JSON.stringify({ StartAt: 'Grow', States: { Grow: { Type: 'Pass', Result: { blob: 'b'.repeat(200) }, End: true } } }));
    const cli = (args) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [RUNNER, ...args, '--json', '--quiet'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, json: JSON.parse(stdout.trim().split('\n').pop()) }));
      });
    const failed = await cli(['--definition', big, '--max-payload-bytes', '100']);
    assert.equal(failed.code, 2);
    assert.equal(failed.json.error, 'States.DataLimitExceeded');
    assert.match(failed.json.cause, /'Grow' returned a result with a size exceeding/);
    assert.equal(failed.json.historyEvents, 3);
    assert.equal(failed.json.largestPayloadBytes, 211); // {"blob":"bbb..."}
    assert.equal(failed.json.largestPayloadState, 'Grow');
    const passed = await cli(['--definition', big]);
    assert.equal(passed.code, 0);
    assert.equal(passed.json.status, 'SUCCEEDED');
    assert.equal(passed.json.historyEvents, 4);
    // A Pass/Choice loop: 1 + 4 per turn; event 11 would be the 3rd PassStateExited.
    const loop = path.join(dir, 'loop.asl.json');
    fs.writeFileSync(
      loop,
      JSON.stringify({
        StartAt: 'Spin',
        States: {
          Spin: { Type: 'Pass', Next: 'Again?' },
          'Again?': { Type: 'Choice', Choices: [{ Variable: '$.stop', IsPresent: true, Next: 'Stop' }], Default: 'Spin' },
          Stop: { Type: 'Succeed' },
        },
      }),
    );
    const spun = await cli(['--definition', loop, '--max-history-events', '11']);
    assert.equal(spun.code, 2);
    assert.equal(spun.json.error, 'States.Runtime');
    assert.equal(spun.json.cause, 'The execution reached the maximum number of history events (11).');
    assert.equal(spun.json.historyEvents, 11);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
