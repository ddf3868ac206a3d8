// Self-test of the local runner: the REAL statemachine/golden-ami-pipeline.asl.json, run by
// aws-local-stepfunctions, with every Task answered by an in-process fake of cargo lambda watch.
// Run: node --test local/runner/test/   (no Rust, no network)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startFakeLambda, happyScript, fnError, FAMILY } from '../lib/fake-lambda.mjs';
import {
  runStateMachine,
  fillPlaceholders,
  placeholderToFunctionName,
  analyseDefinition,
  parseArgs,
  RunnerError,
  TASK_TOKEN_PLACEHOLDER,
} from '../run.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUNNER = path.resolve(here, '..', 'run.mjs');
const REPO = path.resolve(here, '..', '..', '..');
const DEFINITION = path.join(REPO, 'statemachine', 'golden-ami-pipeline.asl.json');

// One fake server for all tests; each test uses its own execution name and script.
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
  return runStateMachine({
    definitionPath: DEFINITION,
    lambdaEndpoint: fake.url,
    executionName: name,
    log: null,
    ...extra,
  });
}

const callsOf = (execution, fn) => fake.calls.filter((c) => c.execution === execution && (!fn || c.fn === fn));
// PublishPointer's per-region calls (CheckPointers and RestorePointers call it with a mode).
const publishCalls = (execution) => callsOf(execution, 'publish-pointer').filter((c) => !c.payload.mode);

function runCli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const HAPPY_PATH = [
  'PlanRun',
  'AnotherRunHoldsTheLock?',
  'NotifyStart',
  'ForEachFamily',
  'ReadCurrentAmi',
  'StartBake',
  ...['ExpectBake', 'CheckBake', 'BakeDone?'],
  ...['WaitForBake', 'CheckBake', 'BakeDone?'],
  ...['WaitForBake', 'CheckBake', 'BakeDone?'],
  'CopyToRegions',
  'CopyImage',
  ...['ExpectCopy', 'CheckCopy', 'CopyDone?'],
  ...['WaitForCopy', 'CheckCopy', 'CopyDone?'],
  'ShareImage',
  'VerifyImage',
  'RegionVerified',
  'CopyToRegionsChecked',
  'CopyToRegionsSucceeded?',
  'StartTest',
  ...['ExpectTest', 'CheckTest', 'TestDone?'],
  ...['WaitForTest', 'CheckTest', 'TestDone?'],
  'ApprovalRequired?',
  'NoApprovalNeeded',
  'CheckPointers',
  'PublishPointers',
  'PublishPointer',
  'PointerPublished',
  'PublishPointersChecked',
  'PublishPointersSucceeded?',
  'Cleanup',
  'Retain',
  'FamilyPublished',
  'ReleaseLock',
  'NotifyRun',
  'RunFailed?',
  'Succeeded',
];

// What a family's failure looks like after the failed state, up to the end of the run.
const FAMILY_FAILED_TAIL = ['FamilyCleanupAfterFailure', 'FamilyFailed', 'ReleaseLock', 'NotifyRun', 'RunFailed?', 'PipelineFailed'];

const FUNCTIONS = [
  'check-bake',
  'check-copy',
  'check-test',
  'cleanup',
  'copy-image',
  'notify',
  'plan-run',
  'publish-pointer',
  'read-current-ami',
  'release-lock',
  'request-approval',
  'retain',
  'share-image',
  'start-bake',
  'start-test',
  'verify-image',
];

const sorted = (xs) => [...xs].sort();

test('placeholders map to kebab-case binary names; unknown placeholders fail loudly', () => {
  assert.equal(placeholderToFunctionName('ReadCurrentAmiFunctionArn'), 'read-current-ami');
  assert.equal(placeholderToFunctionName('PublishPointerFunctionArn'), 'publish-pointer');
  assert.equal(placeholderToFunctionName('NotifyFunctionArn'), 'notify');
  assert.equal(placeholderToFunctionName('AlarmTopicArn'), null);
  const def = JSON.parse(fs.readFileSync(DEFINITION, 'utf8'));
  const { definition, placeholders } = fillPlaceholders(def);
  // Placeholders inside the Map processors are filled too.
  const family = definition.States.ForEachFamily.ItemProcessor.States;
  assert.equal(family.CheckBake.Resource, 'arn:aws:lambda:eu-west-1:123456789012:function:check-bake');
  assert.equal(family.CopyToRegions.ItemProcessor.States.CopyImage.Resource, 'arn:aws:lambda:eu-west-1:123456789012:function:copy-image');
  assert.deepEqual([...new Set(placeholders.values())].sort(), FUNCTIONS);
  assert.ok(!JSON.stringify(definition).includes('${'));
  assert.throws(() => fillPlaceholders({ ...def, Comment: '${AlarmTopicArn}' }), RunnerError);
});

test('a Retain error is recorded in the family result and the family is still PUBLISHED', async () => {
  const r = await run('retain-failed', happyScript({ retain: fnError('Throttled', 'ec2:DescribeImages: Rate exceeded') }));
  assert.equal(r.status, 'SUCCEEDED');
  const retained = r.path.indexOf('Retain');
  assert.deepEqual(r.path.slice(retained, retained + 3), ['Retain', 'RetainFailed', 'FamilyPublished']);
  assert.ok(!r.path.includes('FamilyCleanupAfterFailure'));
  const [family] = r.output.families;
  assert.equal(family.outcome, 'PUBLISHED');
  assert.equal(family.retention.error.Error, 'Throttled');
  assert.ok(callsOf('retain-failed', 'retain').length > 1, 'Throttled is retried first');
});

test('happy path: states in order through both Maps, polling loops loop, context object resolves, succeeded', async () => {
  const r = await run('happy', happyScript(), { input: { dryRun: false } });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.path, HAPPY_PATH);
  assert.equal(r.endState, 'Succeeded');
  assert.equal(callsOf('happy', 'check-bake').length, 3);
  assert.equal(callsOf('happy', 'check-copy').length, 2);
  assert.equal(callsOf('happy', 'check-test').length, 2);
  // $$.Execution.Id / $$.Execution.StartTime resolved for every Task, inside the Maps too.
  for (const c of callsOf('happy')) {
    assert.equal(c.payload.context.executionId, 'arn:aws:states:eu-west-1:123456789012:execution:golden-ami-pipeline:happy');
    assert.match(c.payload.context.startedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  }
  assert.deepEqual(callsOf('happy', 'plan-run')[0].payload.state, { dryRun: false });
  // Each family's steps get the family from their input (the Map item), each region step its target.
  assert.equal(callsOf('happy', 'read-current-ami')[0].payload.state.family.name, 'default');
  assert.equal(callsOf('happy', 'copy-image')[0].payload.state.target.region, 'eu-west-1');
  assert.equal(publishCalls('happy')[0].payload.state.target.region, 'eu-west-1');
  assert.equal(publishCalls('happy')[0].payload.state.verify.goldenAmiId, 'ami-0c0py000000000001');
  assert.deepEqual(callsOf('happy', 'publish-pointer').map((c) => c.payload.mode), ['CHECK', undefined]);
  const notify = callsOf('happy', 'notify').map((c) => c.payload.event);
  assert.deepEqual(notify, ['STARTED', 'FINISHED']);
  assert.equal(callsOf('happy', 'cleanup')[0].payload.mode, 'SUCCESS');
  assert.equal(callsOf('happy', 'release-lock').length, 1);
  // The family's result is what FamilyPublished keeps; NotifyRun's answer decides the end.
  const [family] = r.output.families;
  assert.equal(family.outcome, 'PUBLISHED');
  assert.equal(family.current.amiId, 'ami-12345678');
  assert.equal(family.bakeStatus.bakedAmiId, 'ami-0bake0000000000001');
  assert.equal(family.pointers[0].publish.newAmiId, 'ami-0c0py000000000001');
  assert.equal(r.output.notice.event, 'SUCCEEDED');
  // Waits were overridden: the whole run (120, 30 and 60 s polls in the ASL) takes well under 5 s.
  assert.ok(r.wallMs < 5000, `took ${r.wallMs} ms`);
  // Event records: every state entered has a StateExited record with a duration (a Map exits
  // after its iterations, so the orders differ; the multisets do not).
  const exited = r.records.filter((e) => e.type === 'StateExited');
  assert.deepEqual(sorted(exited.map((e) => e.state)), sorted(HAPPY_PATH));
  assert.deepEqual(
    exited.filter((e) => e.state === 'CheckBake').map((e) => e.iteration),
    [1, 2, 3],
  );
  for (const e of exited) assert.ok(e.endTs >= e.startTs && e.durationMs === e.endTs - e.startTs);
  // A Task's record carries its result; other states' do not.
  const started = exited.find((e) => e.state === 'StartBake');
  assert.deepEqual(started.output, happyScript()['start-bake']);
  assert.equal(exited.find((e) => e.state === 'BakeDone?').output, undefined);
});

test('Throttled is retried (MaxAttempts honoured, no delay) and the run succeeds', async () => {
  const r = await run(
    'throttled',
    happyScript({
      'start-bake': [fnError('Throttled', 'Rate exceeded'), fnError('Throttled', 'Rate exceeded'), happyScript()['start-bake']],
    }),
  );
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(callsOf('throttled', 'start-bake').length, 3);
  const retried = r.records.filter((e) => e.type === 'StateRetried');
  assert.deepEqual(
    retried.map((e) => [e.state, e.attempt, e.error]),
    [
      ['StartBake', 1, 'Throttled'],
      ['StartBake', 2, 'Throttled'],
    ],
  );
  assert.ok(r.wallMs < 5000);
});

test('Throttled beyond MaxAttempts (5 retries) in a region is caught there and fails the family', async () => {
  const r = await run('throttled-forever', happyScript({ 'share-image': fnError('Throttled', 'Rate exceeded') }));
  assert.equal(r.status, 'FAILED');
  assert.equal(callsOf('throttled-forever', 'share-image').length, 6); // 1 + MaxAttempts 5
  const i = r.path.indexOf('ShareImage');
  assert.deepEqual(r.path.slice(i), [
    'ShareImage',
    'ShareImageFailed',
    'RegionNotVerified',
    'CopyToRegionsChecked',
    'CopyToRegionsSucceeded?',
    'CopyToRegionsFailedInARegion',
    ...FAMILY_FAILED_TAIL,
  ]);
  // Nothing is tested or published once a region failed.
  assert.equal(callsOf('throttled-forever', 'start-test').length, 0);
  assert.equal(callsOf('throttled-forever', 'publish-pointer').length, 0);
  const finished = callsOf('throttled-forever', 'notify').pop().payload;
  assert.equal(finished.event, 'FINISHED');
  const [family] = finished.state.families;
  assert.equal(family.outcome, 'FAILED');
  assert.equal(family.regions[0].verified, false);
  assert.deepEqual([family.regions[0].failure.state, family.regions[0].failure.region], ['ShareImage', 'eu-west-1']);
  assert.equal(family.regions[0].failure.error.Error, 'Throttled');
});

test('CopyFailed routes to CopyImageFailed, the family cleans up (FAILURE), and the run ends in PipelineFailed', async () => {
  const r = await run('copy-failed', happyScript({ 'copy-image': fnError('CopyFailed', 'KMS key alias/golden-ami not usable') }));
  assert.equal(r.status, 'FAILED');
  assert.equal(r.failedInFailState, true);
  assert.equal(r.error, 'GoldenAmiPipelineFailed');
  assert.match(r.cause, /The run failed/);
  const i = r.path.indexOf('CopyImage');
  assert.deepEqual(r.path.slice(i, i + 3), ['CopyImage', 'CopyImageFailed', 'RegionNotVerified']);
  assert.deepEqual(r.path.slice(-FAMILY_FAILED_TAIL.length), FAMILY_FAILED_TAIL);
  assert.equal(callsOf('copy-failed', 'copy-image').length, 1, 'CopyFailed is not retried');
  assert.equal(callsOf('copy-failed', 'check-copy').length, 0);
  const cleanup = callsOf('copy-failed', 'cleanup');
  assert.equal(cleanup.length, 1);
  assert.equal(cleanup[0].payload.mode, 'FAILURE');
  assert.equal(cleanup[0].payload.state.failure.error.Error, 'RegionFailed');
  assert.equal(cleanup[0].payload.state.regions[0].failure.error.Error, 'CopyFailed');
  assert.equal(callsOf('copy-failed', 'release-lock').length, 1, 'the lock is released on a family failure too');
  const notify = callsOf('copy-failed', 'notify');
  assert.deepEqual(notify.map((c) => c.payload.event), ['STARTED', 'FINISHED']);
  const region = notify[1].payload.state.families[0].regions[0];
  assert.equal(region.failure.state, 'CopyImage');
  // Cause is the Lambda error payload as a JSON string, as Step Functions puts it.
  assert.deepEqual(JSON.parse(region.failure.error.Cause), { errorType: 'CopyFailed', errorMessage: 'KMS key alias/golden-ami not usable' });
  assert.deepEqual(r.rootCause && [r.rootCause.state, r.rootCause.Error], ['CopyImage', 'CopyFailed']);
  const caught = r.records.find((e) => e.type === 'StateCaught');
  assert.deepEqual([caught.state, caught.error, caught.next, caught.resultPath], ['CopyImage', 'CopyFailed', 'CopyImageFailed', '$.error']);
});

test('two families in two regions: one fails in one region, cleans up alone, and the other publishes', async () => {
  const twoRegions = (family) => ({
    ...FAMILY,
    name: family,
    pointer: `/golden-ami/${family}`,
    regions: [FAMILY.regions[0], { region: 'us-east-1', kmsKeyArn: FAMILY.regions[0].kmsKeyArn.replace('eu-west-1', 'us-east-1') }],
  });
  const familyOf = (payload) => payload.state.family.name;
  const r = await run(
    'matrix',
    happyScript({
      'plan-run': (payload) => ({
        families: [twoRegions('al2023-x86_64'), twoRegions('al2023-arm64')],
        maxConcurrency: 2,
        targetsVersion: 3,
        lock: { executionId: payload.context.executionId, expires: '2026-12-01T17:00:00Z' },
      }),
      'read-current-ami': (payload) => ({
        parameterName: payload.state.family.pointer,
        parameterVersion: 1,
        amiId: 'ami-12345678',
        regions: payload.state.family.regions.map((t) => ({ ...t, parameterName: payload.state.family.pointer, parameterVersion: 1, amiId: 'ami-12345678' })),
      }),
      'copy-image': (payload) =>
        familyOf(payload) === 'al2023-arm64' && payload.state.target.region === 'us-east-1'
          ? fnError('CopyFailed', 'key not usable in us-east-1')
          : { ...happyScript()['copy-image'], kmsKeyArn: payload.state.target.kmsKeyArn },
      'check-copy': { done: true, state: 'available' },
      'check-bake': { done: true, status: 'Success', bakedAmiId: 'ami-0bake0000000000001', upToDate: false },
      'check-test': { done: true, status: 'Success', passed: true },
      'publish-pointer': (payload) => payload.mode === 'CHECK' ? { regions: [] } : ({
        parameterName: payload.state.family.pointer,
        region: payload.state.target.region,
        version: 2,
        previousAmiId: 'ami-12345678',
        newAmiId: 'ami-0c0py000000000001',
      }),
    }),
  );
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'GoldenAmiPipelineFailed');
  const byFamily = (fn) => callsOf('matrix', fn).map((c) => `${familyOf(c.payload)}${c.payload.state.target ? `@${c.payload.state.target.region}` : ''}`);
  assert.deepEqual(sorted(byFamily('copy-image')), ['al2023-arm64@eu-west-1', 'al2023-arm64@us-east-1', 'al2023-x86_64@eu-west-1', 'al2023-x86_64@us-east-1']);
  // Only the healthy family is tested and published, in both its regions.
  assert.deepEqual(byFamily('start-test'), ['al2023-x86_64']);
  // CheckPointers once for the family, then each region.
  assert.deepEqual(sorted(byFamily('publish-pointer')), ['al2023-x86_64', 'al2023-x86_64@eu-west-1', 'al2023-x86_64@us-east-1']);
  // Each family cleans up its own work: SUCCESS for one, FAILURE for the other.
  assert.deepEqual(sorted(callsOf('matrix', 'cleanup').map((c) => `${familyOf(c.payload)}:${c.payload.mode}`)), ['al2023-arm64:FAILURE', 'al2023-x86_64:SUCCESS']);
  // One notice for the run, with both families' outcomes in it.
  const notices = callsOf('matrix', 'notify').map((c) => c.payload);
  assert.deepEqual(notices.map((n) => n.event), ['STARTED', 'FINISHED']);
  assert.deepEqual(sorted(notices[1].state.families.map((f) => `${(f.family ?? {}).name}:${f.outcome}`)), ['al2023-arm64:FAILED', 'al2023-x86_64:PUBLISHED']);
  assert.equal(callsOf('matrix', 'release-lock').length, 1);
});

test('a lock held by another run routes to NotifySkipped and ends succeeded without any family work', async () => {
  const r = await run(
    'skipped',
    happyScript({
      'plan-run': {
        families: [FAMILY],
        maxConcurrency: 2,
        targetsVersion: 1,
        heldBy: { executionId: 'arn:aws:states:eu-west-1:123456789012:execution:golden-ami-pipeline:other', expires: '2026-12-01T17:00:00Z' },
      },
    }),
  );
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.path, ['PlanRun', 'AnotherRunHoldsTheLock?', 'NotifySkipped', 'SkippedAnotherRunInProgress']);
  assert.deepEqual(callsOf('skipped').map((c) => c.fn), ['plan-run', 'notify']);
  assert.equal(callsOf('skipped', 'notify')[0].payload.event, 'SKIPPED');
});

test('a run-wide failure (PlanRun) sweeps, releases the lock, and sends one FAILED notice', async () => {
  const r = await run('bad-targets', happyScript({ 'plan-run': fnError('InvalidTargets', 'families[1].architecture: expected x86_64 or arm64') }));
  assert.equal(r.status, 'FAILED');
  assert.deepEqual(r.path, ['PlanRun', 'PlanRunFailed', 'CleanupAfterFailure', 'ReleaseLockAfterFailure', 'NotifyFailure', 'PipelineFailed']);
  assert.equal(callsOf('bad-targets', 'cleanup')[0].payload.mode, 'SWEEP');
  const notify = callsOf('bad-targets', 'notify');
  assert.deepEqual(notify.map((c) => c.payload.event), ['FAILED']);
  assert.equal(notify[0].payload.state.failure.state, 'PlanRun');
  assert.equal(notify[0].payload.state.failure.error.Error, 'InvalidTargets');
});

test('an unreachable Lambda endpoint gives Lambda.SdkClientException, retried, then the failure path', async () => {
  // A port that was just free: nothing listens there.
  const probe = await startFakeLambda(() => ({}));
  const deadUrl = probe.url;
  await probe.close();
  const r = await runStateMachine({ definitionPath: DEFINITION, lambdaEndpoint: deadUrl, executionName: 'dead', log: null });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.endState, 'PipelineFailed');
  const first = r.records.find((e) => e.type === 'StateFailed');
  assert.equal(first.error, 'Lambda.SdkClientException');
  assert.equal(r.records.filter((e) => e.type === 'StateRetried' && e.state === 'PlanRun').length, 5);
});

test('a Wait SecondsPath that resolves to nothing fails the execution (States.Runtime) even though waits are overridden', async () => {
  const { firstWaitSeconds, ...noFirstWait } = happyScript()['start-bake'];
  const r = await run('no-first-wait', happyScript({ 'start-bake': noFirstWait }));
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.Runtime');
  assert.match(r.cause, /\$\.bake\.firstWaitSeconds/);
  assert.equal(callsOf('no-first-wait', 'check-bake').length, 0);

  // The loop's own Wait, after the first poll.
  const { pollSeconds, ...noPoll } = happyScript()['start-bake'];
  const p = await run('no-poll', happyScript({ 'start-bake': noPoll }));
  assert.equal(p.status, 'FAILED');
  assert.equal(p.error, 'States.Runtime');
  assert.match(p.cause, /\$\.bake\.pollSeconds/);
  assert.equal(callsOf('no-poll', 'check-bake').length, 1);
});

test('CLI: --json and --events; exit 0 on success, 2 on a Fail state, 1 on runner errors', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-test-'));
  try {
    scripts.set('cli-ok', happyScript());
    const events = path.join(tmp, 'ok.jsonl');
    const ok = await runCli(['--definition', DEFINITION, '--lambda-endpoint', fake.url, '--input', '{}', '--execution-name', 'cli-ok', '--events', events, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const last = JSON.parse(ok.stdout.trim().split('\n').pop());
    assert.equal(last.status, 'SUCCEEDED');
    assert.equal(last.output.families[0].pointers[0].publish.newAmiId, 'ami-0c0py000000000001');
    assert.match(ok.stderr, /<- CheckBake #2 \d+ ms -> done=false \(status=InProgress, currentStep=updateOs, upToDate=false\)/);
    assert.match(ok.stderr, /<- CheckBake #3 \d+ ms -> done=true/);
    assert.match(ok.stderr, /SUCCEEDED at Succeeded in \d+ ms/);
    const lines = fs.readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines[0].type, 'ExecutionStarted');
    assert.equal(lines.at(-1).type, 'ExecutionSucceeded');
    assert.ok(lines.filter((l) => l.type === 'StateExited').every((l) => typeof l.durationMs === 'number' && l.state));

    scripts.set('cli-fail', happyScript({ 'verify-image': fnError('VerificationFailed', 'snapshot not encrypted') }));
    const failed = await runCli(['--definition', DEFINITION, '--lambda-endpoint', fake.url, '--execution-name', 'cli-fail', '--json']);
    assert.equal(failed.code, 2, failed.stderr);
    const lastF = JSON.parse(failed.stdout.trim().split('\n').pop());
    assert.equal(lastF.status, 'FAILED');
    assert.equal(lastF.error, 'GoldenAmiPipelineFailed');
    assert.equal(lastF.rootCause.Error, 'VerificationFailed');
    assert.match(failed.stderr, /Error: GoldenAmiPipelineFailed/);
    assert.match(failed.stderr, /Cause: The run failed/);

    const badDef = path.join(tmp, 'bad.asl.json');
    const def = JSON.parse(fs.readFileSync(DEFINITION, 'utf8'));
    def.States.NotifyStart.Resource = '${AlarmTopicArn}';
    fs.writeFileSync(badDef, JSON.stringify(def));
    const bad = await runCli(['--definition', badDef, '--lambda-endpoint', fake.url]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot fill placeholder\(s\) \$\{AlarmTopicArn\}/);

    const noArgs = await runCli([]);
    assert.equal(noArgs.code, 1);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('two executions run concurrently as two processes', async () => {
  scripts.set('conc-a', happyScript());
  scripts.set('conc-b', happyScript({ 'check-copy': fnError('CopyTimedOut', 'copy still pending after deadline') }));
  const [a, b] = await Promise.all([
    runCli(['--definition', DEFINITION, '--lambda-endpoint', fake.url, '--execution-name', 'conc-a', '--json', '--quiet']),
    runCli(['--definition', DEFINITION, '--lambda-endpoint', fake.url, '--execution-name', 'conc-b', '--json', '--quiet']),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 2, b.stderr);
  assert.equal(JSON.parse(a.stdout.trim()).executionArn, 'arn:aws:states:eu-west-1:123456789012:execution:golden-ami-pipeline:conc-a');
  const bOut = JSON.parse(b.stdout.trim());
  assert.equal(bOut.rootCause.state, 'CheckCopy');
  assert.equal(bOut.rootCause.Error, 'CopyTimedOut');
  assert.equal(callsOf('conc-a', 'check-bake').length, 3);
  assert.equal(callsOf('conc-b', 'check-bake').length, 3);
});

test('--on-enter: POSTs once, before the first invocation of the Task, and is parsed from the CLI form', async () => {
  const { parseOnEnter } = await import('../run.mjs');
  const http = await import('node:http');
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      // What the Task had already been asked when the hook arrived: nothing, for CheckBake.
      seen.push({ url: req.url, body: JSON.parse(body), checkBakeCalls: callsOf('onenter', 'check-bake').length });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/_golden/faults`;
  try {
    const hook = parseOnEnter(`CheckBake=${url}:{"apiFail":{"service":"ssm","action":"GetAutomationExecution"}}`);
    assert.deepEqual(hook, { state: 'CheckBake', url, body: { apiFail: { service: 'ssm', action: 'GetAutomationExecution' } } });
    const r = await run('onenter', happyScript(), { onEnter: [hook] });
    assert.equal(r.status, 'SUCCEEDED');
    assert.equal(seen.length, 1, 'fired once although CheckBake ran three times');
    assert.equal(seen[0].url, '/_golden/faults');
    assert.equal(seen[0].checkBakeCalls, 0);
    await assert.rejects(run('onenter-bad', happyScript(), { onEnter: [{ state: 'WaitForBake', url, body: {} }] }), RunnerError);
    assert.throws(() => parseOnEnter('CheckBake=not a url:{}'), RunnerError);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

// ---------------------------------------------------------------------------------------------
// Callback Tasks (lambda:invoke.waitForTaskToken) against a fake of local/moto_ext's token API
// ---------------------------------------------------------------------------------------------

/**
 * A stand-in for local/moto_ext's task token admin API (local/moto_ext/tasktokens.py): POST
 * /_golden/task-tokens, /_golden/task-tokens/poll, /_golden/task-tokens/expire, all {"token"}.
 * `answer(token, outcome)` is what SendTaskSuccess / SendTaskFailure do to a WAITING token.
 */
async function startFakeMoto() {
  const tokens = new Map();
  const requests = [];
  const view = (t) => {
    const v = { token: t.token, status: t.status, heartbeats: t.heartbeats };
    if (t.status === 'SUCCEEDED') v.output = t.output;
    if (t.status === 'FAILED') Object.assign(v, { error: t.error, cause: t.cause });
    return v;
  };
  const http = await import('node:http');
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const send = (status, payload) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const what = req.url.replace(/^\/_golden\//, '');
      const { token } = JSON.parse(body || '{}');
      requests.push({ what, token });
      const known = tokens.get(token);
      if (what === 'task-tokens') {
        if (known) return send(400, { error: `task token ${token} is registered already` });
        const t = { token, status: 'WAITING', heartbeats: 0 };
        tokens.set(token, t);
        return send(200, view(t));
      }
      if (!['task-tokens/poll', 'task-tokens/expire'].includes(what)) return send(404, { error: `no POST ${req.url}` });
      if (!known) return send(404, { error: `unknown task token ${token}` });
      if (what === 'task-tokens/expire' && known.status === 'WAITING') known.status = 'TIMED_OUT';
      return send(200, view(known));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    tokens,
    requests,
    answer(token, outcome) {
      const t = tokens.get(token);
      assert.ok(t, `the runner registered ${token} before invoking the function`);
      if (t.status === 'WAITING') Object.assign(t, outcome);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

let moto;
before(async () => {
  moto = await startFakeMoto();
});
after(async () => {
  await moto.close();
});

/** The approval gate on its own: AwaitApproval, then Approved or (Catch States.ALL) Rejected. */
const CALLBACK_DEFINITION = {
  StartAt: 'AwaitApproval',
  States: {
    AwaitApproval: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: {
        FunctionName: '${RequestApprovalFunctionArn}',
        Payload: { context: { 'executionId.$': '$$.Execution.Id' }, 'taskToken.$': '$$.Task.Token', 'state.$': '$' },
      },
      TimeoutSecondsPath: '$.family.approval.timeoutSeconds',
      ResultPath: '$.approval',
      Retry: [{ ErrorEquals: ['Lambda.ServiceException'], IntervalSeconds: 2, MaxAttempts: 2 }],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Rejected' }],
      Next: 'Approved',
    },
    Approved: { Type: 'Pass', End: true },
    Rejected: { Type: 'Pass', End: true },
  },
};
const GATED = { family: { name: 'default', approval: { timeoutSeconds: 3600 } } };

/** Runs the gate; `approver(payload, n)` is the request-approval function (it may answer the token). */
function runGate(name, approver, extra = {}) {
  return run(name, { 'request-approval': approver }, { definition: CALLBACK_DEFINITION, input: GATED, motoEndpoint: moto.url, ...extra });
}

const tokenOf = (execution) => callsOf(execution, 'request-approval').map((c) => c.payload.taskToken);

test('callback Task: the function gets a fresh registered token, and SendTaskSuccess output lands at ResultPath', async () => {
  const decision = { approved: true, by: 'ops@example.com' };
  const r = await runGate('cb-ok', (payload) => {
    // The operator answers later, while the runner polls.
    setTimeout(() => moto.answer(payload.taskToken, { status: 'SUCCEEDED', output: JSON.stringify(decision) }), 250);
    return { requested: true }; // ignored: the token's answer is the task result
  });
  assert.equal(r.status, 'SUCCEEDED', r.cause);
  assert.deepEqual(r.path, ['AwaitApproval', 'Approved']);
  assert.deepEqual(r.output, { ...GATED, approval: decision });
  const [token] = tokenOf('cb-ok');
  assert.match(token, /^local-cb-ok-AwaitApproval-1-[0-9a-f]{8}$/);
  assert.ok(!JSON.stringify(callsOf('cb-ok')).includes(TASK_TOKEN_PLACEHOLDER));
  assert.deepEqual(callsOf('cb-ok', 'request-approval')[0].payload.state, GATED);
  assert.equal(moto.requests.find((q) => q.token === token).what, 'task-tokens', 'registered first');
  assert.ok(moto.requests.filter((q) => q.token === token && q.what === 'task-tokens/poll').length >= 2, 'polled');
  // Recorded like other Tasks, plus the token.
  assert.deepEqual(r.invocations.map((i) => [i.state, i.functionName, i.taskToken]), [['AwaitApproval', 'request-approval', token]]);
  const { ts, ...issued } = r.records.find((e) => e.type === 'TaskTokenIssued');
  assert.deepEqual(issued, { type: 'TaskTokenIssued', state: 'AwaitApproval', stateType: 'Task', token, execution: 'cb-ok' });
  const exited = r.records.find((e) => e.type === 'StateExited' && e.state === 'AwaitApproval');
  assert.ok(exited.durationMs >= 200, `waited for the answer (${exited.durationMs} ms)`);
  // History as AWS writes a waitForTaskToken Task (lib/limits.mjs): 1 + 6 + 2 + 1 events.
  assert.equal(r.historyEvents, 10);
  assert.deepEqual(
    ['TaskStateEntered', 'TaskScheduled', 'TaskStarted', 'TaskSubmitted', 'TaskSucceeded', 'TaskStateExited'].map((t) => r.historyEventTypes[t]),
    [1, 1, 1, 1, 1, 1],
  );
});

test('callback Task: SendTaskFailure fails the task with its error and cause, which Catch takes', async () => {
  const r = await runGate('cb-rejected', (payload) => {
    moto.answer(payload.taskToken, { status: 'FAILED', error: 'Rejected', cause: 'change freeze until Monday' });
    return {};
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.path, ['AwaitApproval', 'Rejected']);
  assert.deepEqual(r.output.error, { Error: 'Rejected', Cause: 'change freeze until Monday' });
  const caught = r.records.find((e) => e.type === 'StateCaught');
  assert.deepEqual([caught.state, caught.error, caught.next], ['AwaitApproval', 'Rejected', 'Rejected']);
});

test('callback Task: no answer within --callback-timeout-ms expires the token and fails with States.Timeout', async () => {
  const started = Date.now();
  const r = await runGate('cb-timeout', () => ({}), { callbackTimeoutMs: 300 });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.path, ['AwaitApproval', 'Rejected']);
  assert.equal(r.output.error.Error, 'States.Timeout');
  assert.match(r.output.error.Cause, /within 300 ms/);
  assert.ok(Date.now() - started >= 300);
  const [token] = tokenOf('cb-timeout');
  assert.equal(moto.tokens.get(token).status, 'TIMED_OUT');
  assert.ok(moto.requests.some((q) => q.token === token && q.what === 'task-tokens/expire'));
});

test('callback Task: a function error closes the attempt\'s token; the retry gets a fresh one', async () => {
  const r = await runGate('cb-retry', (payload, n) => {
    if (n === 1) return fnError('Lambda.ServiceException', 'try again');
    moto.answer(payload.taskToken, { status: 'SUCCEEDED', output: '{"approved":true}' });
    return {};
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.output.approval, { approved: true });
  const [first, second] = tokenOf('cb-retry');
  assert.match(first, /-AwaitApproval-1-/);
  assert.match(second, /-AwaitApproval-2-/);
  assert.equal(moto.tokens.get(first).status, 'TIMED_OUT', 'a late answer to the failed attempt is refused');
  assert.equal(moto.tokens.get(second).status, 'SUCCEEDED');
});

test('callback Task without --moto-endpoint: States.Runtime naming the flag, not caught, function not invoked', async () => {
  const r = await run('cb-no-moto', { 'request-approval': {} }, { definition: CALLBACK_DEFINITION, input: GATED });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.Runtime');
  assert.match(r.cause, /--moto-endpoint/);
  assert.deepEqual(r.path, ['AwaitApproval']);
  assert.equal(callsOf('cb-no-moto').length, 0);
});

test('callback Task: a TimeoutSecondsPath that resolves to nothing fails the execution (States.Runtime)', async () => {
  const r = await run('cb-no-timeout', { 'request-approval': {} }, { definition: CALLBACK_DEFINITION, input: { family: { name: 'x' } }, motoEndpoint: moto.url });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.Runtime');
  assert.match(r.cause, /\$\.family\.approval\.timeoutSeconds/);
});

test('callback Task: only lambda:invoke.waitForTaskToken with a Lambda ARN; other Resources still fail; the flags parse', () => {
  const { definition } = fillPlaceholders(CALLBACK_DEFINITION);
  const info = analyseDefinition(definition);
  assert.equal(info.tasks.get('AwaitApproval'), 'request-approval');
  assert.ok(info.callbacks.has('AwaitApproval'));
  const withTask = (task) => ({ ...definition, States: { ...definition.States, AwaitApproval: { ...definition.States.AwaitApproval, ...task } } });
  assert.throws(() => analyseDefinition(withTask({ Parameters: { FunctionName: 'request-approval' } })), /needs Parameters\.FunctionName to be a Lambda function ARN/);
  assert.throws(() => analyseDefinition(withTask({ Resource: 'arn:aws:states:::sns:publish.waitForTaskToken' })), /is not a Lambda function ARN/);
  assert.throws(() => analyseDefinition(withTask({ Resource: 'arn:aws:states:::lambda:invoke' })), /is not a Lambda function ARN/);
  const opts = parseArgs(['--definition', 'x.asl.json', '--moto-endpoint', 'http://127.0.0.1:5000', '--callback-timeout-ms=1500']);
  assert.deepEqual([opts.motoEndpoint, opts.callbackTimeoutMs], ['http://127.0.0.1:5000', 1500]);
  assert.throws(() => parseArgs(['--definition', 'x', '--callback-timeout-ms', 'soon']), /--callback-timeout-ms must be an integer/);
});

test('the real ASL: a family with an approval waits at AwaitApproval and publishes once approved', async () => {
  const gated = { ...FAMILY, approval: { timeoutSeconds: 86400 } };
  const r = await run(
    'cb-real',
    happyScript({
      'plan-run': (payload) => ({ families: [gated], maxConcurrency: 2, targetsVersion: 1, lock: { executionId: payload.context.executionId, expires: '2026-12-01T17:00:00Z' } }),
      'request-approval': (payload) => {
        moto.answer(payload.taskToken, { status: 'SUCCEEDED', output: '{"approved":true,"by":"ops@example.com"}' });
        return {};
      },
    }),
    { motoEndpoint: moto.url },
  );
  assert.equal(r.status, 'SUCCEEDED', r.cause);
  assert.deepEqual(r.path, HAPPY_PATH.map((s) => (s === 'NoApprovalNeeded' ? 'AwaitApproval' : s)));
  const [call] = callsOf('cb-real', 'request-approval');
  assert.match(call.payload.taskToken, /^local-cb-real-AwaitApproval-1-/);
  assert.equal(call.payload.state.family.approval.timeoutSeconds, 86400);
  assert.equal(publishCalls('cb-real').length, 1);
});
