// Test helper (used by test/runner.test.mjs). A tiny stand-in for `cargo lambda watch`: the Lambda Invoke API on 127.0.0.1, answering each
// function from a script. Function errors come back the way watch returns them: HTTP 500 with the
// runtime's error JSON {"errorType": ..., "errorMessage": ...}.
import http from 'node:http';

/** A function error, as the Rust runtime reports it. */
export function fnError(errorType, errorMessage) {
  return { status: 500, body: { errorType, errorMessage } };
}

/**
 * Scripted outputs for one execution. `overrides[functionName]` replaces the default answer; it
 * may be an array (one answer per call, the last one repeats) or a function (payload, n) => answer.
 * An answer is a JSON value (HTTP 200), or {status, body} / fnError(...).
 */
export function happyScript(overrides = {}) {
  const defaults = {
    'read-current-ami': { parameterName: '/golden-ami/current', parameterVersion: 1, amiId: 'ami-12345678' },
    notify: { messageId: 'm-1' },
    'start-bake': {
      automationExecutionId: 'x',
      sourceAmiId: 'ami-12345678',
      startedAt: '2024-01-01T00:00:00Z',
      pollSeconds: 120,
    },
    'check-bake': [
      { done: false, status: 'InProgress', step: 'launchInstance' },
      { done: false, status: 'InProgress', step: 'updateOs' },
      { done: true, status: 'Success', bakedAmiId: 'ami-0bake0000000000001' },
    ],
    'copy-image': { copiedAmiId: 'ami-0c0py000000000001', pollSeconds: 30 },
    'check-copy': [
      { done: false, state: 'pending' },
      { done: true, state: 'available' },
    ],
    'share-image': { sharedWith: ['o-abc123'], launchPermissionsAdded: 1 },
    'verify-image': { verified: true, checks: 6 },
    'publish-pointer': { parameterName: '/golden-ami/current', parameterVersion: 2, amiId: 'ami-0c0py000000000001' },
    cleanup: { deregistered: ['ami-0bake0000000000001'], deletedSnapshots: 1 },
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
