// Test helper (used by test/runner.test.mjs). A tiny stand-in for `cargo lambda watch`: the Lambda Invoke API on 127.0.0.1, answering each
// function from a script. Function errors come back the way watch returns them: HTTP 500 with the
// runtime's error JSON {"errorType": ..., "errorMessage": ...}.
import http from 'node:http';

/** A function error, as the Rust runtime reports it. */
export function fnError(errorType, errorMessage) {
  return { status: 500, body: { errorType, errorMessage } };
}

const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab';

/** One image family with one region: the default targets, as plan-run answers them. */
export const FAMILY = {
  name: 'default',
  pointer: '/golden-ami/current',
  architecture: 'x86_64',
  instanceType: 't3.small',
  homeRegion: 'eu-west-1',
  regions: [{ region: 'eu-west-1', kmsKeyArn: KEY }],
};

/** What notify answers: the event it sent; for FINISHED, FAILED when any family failed. */
function notifyAnswer(payload) {
  let event = payload?.event;
  if (event === 'FINISHED') {
    const outcomes = (payload.state?.families ?? []).map((f) => f.outcome);
    event = outcomes.includes('FAILED') ? 'FAILED' : outcomes.every((o) => o === 'UP_TO_DATE') ? 'SKIPPED' : 'SUCCEEDED';
  }
  return { messageId: 'm-1', subject: `[golden-ami-pipeline] ${event}`, event };
}

/**
 * Scripted outputs for one execution. `overrides[functionName]` replaces the default answer; it
 * may be an array (one answer per call, the last one repeats) or a function (payload, n) => answer.
 * An answer is a JSON value (HTTP 200), or {status, body} / fnError(...). The defaults follow the
 * state contract of the functions (crates/core/src/types.rs) for one family in one region.
 */
export function happyScript(overrides = {}) {
  const defaults = {
    'plan-run': (payload) => ({
      families: [FAMILY],
      maxConcurrency: 2,
      targetsVersion: 1,
      lock: { executionId: payload.context.executionId, expires: '2026-12-01T17:00:00Z' },
    }),
    'read-current-ami': {
      parameterName: '/golden-ami/current',
      parameterVersion: 1,
      amiId: 'ami-12345678',
      regions: [{ region: 'eu-west-1', kmsKeyArn: KEY, parameterName: '/golden-ami/current', parameterVersion: 1, amiId: 'ami-12345678' }],
    },
    notify: notifyAnswer,
    'start-bake': {
      automationExecutionId: 'x',
      documentName: 'golden-ami-pipeline-bake',
      sourceAmiId: 'ami-12345678',
      targetAmiName: 'golden-ami-pipeline-default-happy',
      deadline: '2024-01-01T03:00:00Z',
      firstWaitSeconds: 120,
      pollSeconds: 120,
    },
    'check-bake': [
      { done: false, status: 'InProgress', currentStep: 'launchInstance', upToDate: false },
      { done: false, status: 'InProgress', currentStep: 'updateOs', upToDate: false },
      { done: true, status: 'Success', bakedAmiId: 'ami-0bake0000000000001', upToDate: false },
    ],
    'copy-image': {
      goldenAmiId: 'ami-0c0py000000000001',
      goldenAmiName: 'golden-ami-pipeline-default-happy',
      kmsKeyArn: KEY,
      deadline: '2024-01-01T04:00:00Z',
      firstWaitSeconds: 30,
      pollSeconds: 30,
    },
    'check-copy': [
      { done: false, state: 'pending' },
      { done: true, state: 'available' },
    ],
    'share-image': { goldenAmiId: 'ami-0c0py000000000001', principals: { organizationArns: ['arn:aws:organizations::123456789012:organization/o-abc123'] } },
    'verify-image': { goldenAmiId: 'ami-0c0py000000000001', snapshotIds: ['snap-1'], kmsKeyArn: KEY, checks: ['state', 'encryption', 'launch permission', 'tags'] },
    'start-test': {
      automationExecutionId: 't',
      documentName: 'golden-ami-pipeline-boot-test',
      goldenAmiId: 'ami-0c0py000000000001',
      deadline: '2024-01-01T05:00:00Z',
      firstWaitSeconds: 60,
      pollSeconds: 60,
    },
    'check-test': [
      { done: false, status: 'InProgress', passed: false, currentStep: 'runChecks' },
      { done: true, status: 'Success', passed: true, goldenAmiId: 'ami-0c0py000000000001', controlsPassed: 30 },
    ],
    'publish-pointer': { parameterName: '/golden-ami/current', region: 'eu-west-1', version: 2, previousAmiId: 'ami-12345678', newAmiId: 'ami-0c0py000000000001' },
    cleanup: { deregisteredImages: ['ami-0bake0000000000001'], deletedSnapshots: ['snap-0bake'] },
    retain: { dryRun: false, regions: [{ region: 'eu-west-1', protected: ['ami-0golden000000001'], deprecated: [], undeprecated: [], unprotected: [], removed: [], kept: [], failed: [] }] },
    'release-lock': { parameterName: '/golden-ami-pipeline/run-lock', released: true },
  };
  return { ...defaults, ...overrides };
}

/**
 * Starts the fake server. `scriptFor(executionName)` returns the script for an execution (the
 * execution is identified by payload.context.executionId, so concurrent executions stay apart).
 * Resolves to { url, calls, close }; calls is the list of {fn, execution, payload, status}.
 */
export async function startFakeLambda(scriptFor) {
  const calls = [];
  const counters = new Map();
  const server = http.createServer((req, res) => {
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (req.method !== 'POST' || !m) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      const fn = decodeURIComponent(m[1]);
      let payload = null;
      try {
        payload = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
      } catch {
        res.writeHead(400);
        res.end('bad json');
        return;
      }
      const executionId = payload?.context?.executionId ?? '';
      const execution = executionId.split(':').pop();
      const key = `${execution}/${fn}`;
      const n = (counters.get(key) ?? 0) + 1;
      counters.set(key, n);
      const script = scriptFor(execution) ?? {};
      let answer = script[fn];
      if (typeof answer === 'function') answer = await answer(payload, n);
      else if (Array.isArray(answer)) answer = answer[Math.min(n, answer.length) - 1];
      if (answer === undefined) answer = fnError('NotScripted', `no scripted answer for ${fn}`);
      const isWrapped = answer && typeof answer === 'object' && 'status' in answer && 'body' in answer;
      const status = isWrapped ? answer.status : 200;
      const body = isWrapped ? answer.body : answer;
      calls.push({ fn, execution, n, payload, status, body });
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
