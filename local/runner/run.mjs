#!/usr/bin/env node
// Local Step Functions runner for golden-ami-pipeline.
//
// Runs the REAL ASL definition with the npm package aws-local-stepfunctions and routes every Task
// state to the Lambda Invoke API served by `cargo lambda watch`
// (POST <endpoint>/2015-03-31/functions/<function-name>/invocations, function = binary name).
// Task states with the callback pattern (arn:aws:states:::lambda:invoke.waitForTaskToken) invoke
// their function the same way, then wait for the task token's answer (SendTaskSuccess /
// SendTaskFailure), which local/moto_ext keeps (--moto-endpoint; see runStateMachine below).
//
//   node local/runner/run.mjs --definition statemachine/golden-ami-pipeline.asl.json \
//     --lambda-endpoint http://127.0.0.1:9000 --input '{}' \
//     [--moto-endpoint http://127.0.0.1:5000] [--callback-timeout-ms N] \
//     [--execution-name NAME] [--events FILE.jsonl] [--json]
//
// Exit codes: 0 execution SUCCEEDED, 2 execution FAILED (Fail state, uncaught error, timeout),
// 1 runner error (bad arguments, unfillable placeholder, invalid definition, ...).
//
// The module can also be imported: `runStateMachine(options)` runs one execution and resolves to
// a result object (see below); nothing is kept in module-level state, so several executions can
// run at once, in one process or in separate processes.

import './lib/polyfill.mjs'; // must stay the first import: the library needs Promise.withResolvers
import { StateMachine, ExecutionError, ExecutionTimeoutError } from 'aws-local-stepfunctions';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_MAX_HISTORY_EVENTS,
  DATA_LIMIT_ERROR,
  HISTORY_LIMIT_ERROR,
  HistoryCounter,
  historyLimitCause,
  payloadBytes,
} from './lib/limits.mjs';

export { DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_HISTORY_EVENTS } from './lib/limits.mjs';

export const DEFAULT_REGION = 'eu-west-1';
export const DEFAULT_ACCOUNT = '123456789012';
export const DEFAULT_LAMBDA_ENDPOINT = 'http://127.0.0.1:9000';
/** The Resource of a Lambda Task with the callback pattern (the only callback the runner knows). */
export const CALLBACK_RESOURCE = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
/** What `$$.Task.Token` resolves to; a callback Task's handler swaps it for a fresh token. */
export const TASK_TOKEN_PLACEHOLDER = 'golden-ami-local-runner:task-token';
/** How long a callback Task waits for its token's answer (stands in for TimeoutSeconds[Path]). */
export const DEFAULT_CALLBACK_TIMEOUT_MS = 600_000;
const MAX_CALLBACK_TIMEOUT_MS = 2_000_000_000; // Node timers cap at 2^31-1 ms
const CALLBACK_POLL_MS = 100;

/** An error of the runner itself (exit code 1), as opposed to a failed execution (exit code 2). */
export class RunnerError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RunnerError';
  }
}

// ---------------------------------------------------------------------------------------------
// Definition preparation
// ---------------------------------------------------------------------------------------------

/** "ReadCurrentAmi" -> "read-current-ami" (also "CopyAMIImage" -> "copy-ami-image"). */
export function kebabCase(name) {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

/** "${ReadCurrentAmiFunctionArn}" placeholder name -> binary / function name "read-current-ami". */
export function placeholderToFunctionName(placeholder) {
  const m = /^([A-Za-z0-9]+)FunctionArn$/.exec(placeholder);
  if (!m) return null;
  return kebabCase(m[1]);
}

export function lambdaArn(functionName, { region = DEFAULT_REGION, account = DEFAULT_ACCOUNT } = {}) {
  return `arn:aws:lambda:${region}:${account}:function:${functionName}`;
}

/**
 * Replaces every ${XxxFunctionArn} placeholder (in any string of the definition) with a fake Lambda
 * ARN. Throws a RunnerError listing every placeholder it cannot fill.
 */
export function fillPlaceholders(definition, { region = DEFAULT_REGION, account = DEFAULT_ACCOUNT } = {}) {
  const filled = new Map();
  const unfillable = new Set();
  const walk = (value) => {
    if (typeof value === 'string') {
      return value.replace(/\$\{([^}]*)\}/g, (whole, name) => {
        const fn = placeholderToFunctionName(name);
        if (!fn) {
          unfillable.add(whole);
          return whole;
        }
        filled.set(name, fn);
        return lambdaArn(fn, { region, account });
      });
    }
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [walk(k), walk(v)]));
    }
    return value;
  };
  const out = walk(definition);
  if (unfillable.size > 0) {
    throw new RunnerError(
      `cannot fill placeholder(s) ${[...unfillable].join(', ')}: only \${XxxFunctionArn} placeholders are known ` +
        '(mapped to the Lambda binary xxx in kebab-case)',
    );
  }
  return { definition: out, placeholders: filled };
}

const LAMBDA_ARN_RE = /^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([A-Za-z0-9_-]+)(?::[A-Za-z0-9$_-]+)?$/;

/** Walks one States map (Parallel branches / Map processors too) and collects what the runner needs. */
function collectStates(states, acc) {
  for (const [name, state] of Object.entries(states)) {
    if (acc.all.has(name)) {
      throw new RunnerError(`state name ${name} is used twice (nested state machines): not supported by this runner`);
    }
    acc.all.set(name, state);
    if (state.Type === 'Task' && state.Resource === CALLBACK_RESOURCE) {
      const functionArn = state.Parameters?.FunctionName;
      const m = LAMBDA_ARN_RE.exec(typeof functionArn === 'string' ? functionArn : '');
      if (!m) {
        throw new RunnerError(
          `Task ${name}: Resource ${CALLBACK_RESOURCE} needs Parameters.FunctionName to be a Lambda function ARN ` +
            `(or a \${XxxFunctionArn} placeholder), got ${JSON.stringify(functionArn)}`,
        );
      }
      acc.tasks.set(name, m[1]);
      acc.callbacks.add(name);
    } else if (state.Type === 'Task') {
      const m = LAMBDA_ARN_RE.exec(state.Resource ?? '');
      if (!m) {
        throw new RunnerError(
          `Task ${name}: Resource ${JSON.stringify(state.Resource)} is not a Lambda function ARN; ` +
            `this runner only routes Lambda function ARNs (and ${CALLBACK_RESOURCE}) to cargo lambda watch`,
        );
      }
      acc.tasks.set(name, m[1]);
    }
    if (state.Type === 'Wait') acc.waits.add(name);
    if (Array.isArray(state.Retry) && state.Retry.length > 0) acc.retryable.add(name);
    for (const branch of state.Branches ?? []) collectStates(branch.States, acc);
    const nested = state.ItemProcessor ?? state.Iterator;
    if (nested) collectStates(nested.States, acc);
  }
}

function successors(state) {
  const next = [];
  if (state.Next) next.push(state.Next);
  if (state.Default) next.push(state.Default);
  for (const c of state.Choices ?? []) if (c.Next) next.push(c.Next);
  for (const c of state.Catch ?? []) if (c.Next) next.push(c.Next);
  return next;
}

/** Names of the states that lie on a cycle (polling loops), so their iterations get numbered. */
function loopStates(states) {
  const result = new Set();
  for (const start of Object.keys(states)) {
    const seen = new Set();
    const stack = successors(states[start]);
    while (stack.length) {
      const n = stack.pop();
      if (n === start) {
        result.add(start);
        break;
      }
      if (seen.has(n) || !states[n]) continue;
      seen.add(n);
      stack.push(...successors(states[n]));
    }
  }
  // The polling loops of the Map processors (and Parallel branches) are numbered too.
  for (const state of Object.values(states)) {
    const nested = [...(state.Branches ?? []), ...[state.ItemProcessor ?? state.Iterator].filter(Boolean)];
    for (const machine of nested) for (const name of loopStates(machine.States)) result.add(name);
  }
  return result;
}

export function analyseDefinition(definition) {
  if (!definition || typeof definition !== 'object' || !definition.States || !definition.StartAt) {
    throw new RunnerError('the definition has no States/StartAt: is it an ASL file?');
  }
  const acc = { all: new Map(), tasks: new Map(), callbacks: new Set(), waits: new Set(), retryable: new Set() };
  collectStates(definition.States, acc);
  return { ...acc, loops: loopStates(definition.States) };
}

/**
 * The definition as the library runs it: a callback Task's TimeoutSeconds / TimeoutSecondsPath
 * give way to the runner's own timeout (callbackTimeoutMs), the way waitTimeOverrides replace Wait
 * times. The library would otherwise time the task out itself, and it reads TimeoutSecondsPath
 * from the effective input (after Parameters) where Step Functions reads the state input. Its
 * timer stays, a minute behind the runner's, as a backstop.
 */
function libraryDefinition(definition, callbacks, callbackTimeoutMs) {
  if (callbacks.size === 0) return definition;
  const timeoutSeconds = Math.ceil(callbackTimeoutMs / 1000) + 60;
  const rewrite = (states) =>
    Object.fromEntries(
      Object.entries(states).map(([name, state]) => {
        let out = state;
        if (callbacks.has(name)) {
          const { TimeoutSecondsPath, ...rest } = state;
          out = { ...rest, TimeoutSeconds: timeoutSeconds };
        }
        if (out.Branches) out = { ...out, Branches: out.Branches.map((b) => ({ ...b, States: rewrite(b.States) })) };
        for (const key of ['ItemProcessor', 'Iterator']) {
          if (out[key]) out = { ...out, [key]: { ...out[key], States: rewrite(out[key].States) } };
        }
        return [name, out];
      }),
    );
  return { ...definition, States: rewrite(definition.States) };
}

/** A copy of `value` with TASK_TOKEN_PLACEHOLDER replaced by `token` in every string. */
function withTaskToken(value, token) {
  if (typeof value === 'string') return value.split(TASK_TOKEN_PLACEHOLDER).join(token);
  if (Array.isArray(value)) return value.map((v) => withTaskToken(v, token));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withTaskToken(v, token)]));
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Lambda Invoke over HTTP (cargo lambda watch)
// ---------------------------------------------------------------------------------------------

/** An error as Step Functions reports it: Catch puts {Error: name, Cause: message} at ResultPath. */
export function stepFunctionsError(errorName, cause, { retryable = true, catchable = true } = {}) {
  const err = new Error(cause);
  err.name = errorName;
  // aws-local-stepfunctions reads these (defaulting to true) to decide whether Retry/Catch apply.
  err.isRetryable = retryable;
  err.isCatchable = catchable;
  return err;
}

function postJson(url, payload, agent) {
  const body = Buffer.from(JSON.stringify(payload ?? null));
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'x-amz-invocation-type': 'RequestResponse',
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function parseJson(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * Invokes one function the way Step Functions' Lambda integration does and maps the outcome:
 * - HTTP 200 (no X-Amz-Function-Error): the JSON payload is the task result;
 * - a function error (cargo lambda watch: HTTP 500 with the runtime's error JSON; AWS: 200 with
 *   X-Amz-Function-Error): Error = errorType, Cause = the error payload as a JSON string, exactly
 *   like Step Functions ({"errorType":"...","errorMessage":"..."});
 * - the endpoint cannot be reached: Lambda.SdkClientException (retried by the ASL);
 * - an HTTP error without a function error body: Lambda.ServiceException (5xx),
 *   Lambda.TooManyRequestsException (429), Lambda.ResourceNotFoundException (404),
 *   Lambda.AWSLambdaException (other 4xx).
 */
export async function invokeLambda(endpoint, functionName, payload, agent) {
  const url = new URL(`2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`, endpoint.replace(/\/*$/, '/'));
  let res;
  try {
    res = await postJson(url, payload, agent);
  } catch (err) {
    throw stepFunctionsError(
      'Lambda.SdkClientException',
      `Unable to invoke ${functionName} at ${url.origin}: ${err.code ?? err.message} (is cargo lambda watch running?)`,
    );
  }
  const text = res.text.trim();
  const parsed = parseJson(text);
  const functionError = res.headers['x-amz-function-error'];
  if (res.status === 200 && !functionError) {
    if (text === '') return null;
    if (!parsed.ok) {
      throw stepFunctionsError('States.Runtime', `${functionName} returned a payload that is not JSON: ${text.slice(0, 500)}`, {
        retryable: false,
        catchable: false,
      });
    }
    return parsed.value;
  }
  const body = parsed.ok ? parsed.value : null;
  if (body && typeof body === 'object' && !Array.isArray(body) && (typeof body.errorType === 'string' || functionError)) {
    const errorType = typeof body.errorType === 'string' && body.errorType !== '' ? body.errorType : 'Lambda.Unknown';
    throw stepFunctionsError(errorType, text);
  }
  const name =
    res.status === 429
      ? 'Lambda.TooManyRequestsException'
      : res.status === 404
        ? 'Lambda.ResourceNotFoundException'
        : res.status >= 500
          ? 'Lambda.ServiceException'
          : 'Lambda.AWSLambdaException';
  throw stepFunctionsError(name, `HTTP ${res.status} from ${url.href}: ${text.slice(0, 1000)}`);
}

/**
 * POSTs {"token"} to local/moto_ext's task token admin API (what: task-tokens, task-tokens/poll or
 * task-tokens/expire) and resolves to the token's view {token, status, heartbeats, output |
 * error+cause}; rejects unless the answer is 2xx JSON.
 */
async function taskTokenCall(motoEndpoint, what, token) {
  const url = new URL(`_golden/${what}`, motoEndpoint.replace(/\/*$/, '/'));
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status} from POST ${url.href}: ${text.slice(0, 500)}`);
  const parsed = parseJson(text);
  if (!parsed.ok || typeof parsed.value?.status !== 'string') throw new Error(`POST ${url.href} answered ${text.slice(0, 500)}`);
  return parsed.value;
}

/** POSTs an on-enter hook's JSON body; rejects unless the answer is 2xx. */
async function fireHook({ url, body }) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}: ${text.slice(0, 500)}`);
  return text;
}

/** "STATE=URL:JSON" (the JSON starts at the first "{" after the "=") -> {state, url, body}. */
export function parseOnEnter(spec) {
  const eq = spec.indexOf('=');
  const brace = spec.indexOf('{', eq + 1);
  if (eq <= 0 || brace < 0) throw new RunnerError(`--on-enter ${JSON.stringify(spec)}: expected STATE=URL:JSON`);
  const state = spec.slice(0, eq);
  const url = spec.slice(eq + 1, brace).replace(/:$/, '');
  try {
    new URL(url);
  } catch {
    throw new RunnerError(`--on-enter ${state}: ${JSON.stringify(url)} is not a URL`);
  }
  let body;
  try {
    body = JSON.parse(spec.slice(brace));
  } catch (err) {
    throw new RunnerError(`--on-enter ${state}: the body is not JSON: ${err.message}`);
  }
  return { state, url, body };
}

// ---------------------------------------------------------------------------------------------
// Progress and event records
// ---------------------------------------------------------------------------------------------

/** Resolves a simple JSONPath ($, $.a.b, $.a[0]); returns {found, value}; null if too complex. */
function simplePath(pathExpr, json) {
  if (pathExpr === '$') return { found: true, value: json };
  if (!/^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])+$/.test(pathExpr)) return null;
  let cur = json;
  for (const part of pathExpr.slice(1).match(/\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]/g)) {
    const key = part.startsWith('.') ? part.slice(1) : Number(part.slice(1, -1));
    if (cur === null || typeof cur !== 'object' || !(key in cur)) return { found: false };
    cur = cur[key];
  }
  return { found: true, value: cur };
}

function short(value, max = 60) {
  let s = typeof value === 'string' ? value : JSON.stringify(value);
  if (s === undefined) s = String(value);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** "done=false (status=InProgress, step=updateOs)" for a task result. */
export function summariseResult(result) {
  if (result === null || result === undefined) return 'null';
  if (typeof result !== 'object' || Array.isArray(result)) return short(result, 100);
  const scalars = Object.entries(result).filter(([, v]) => v === null || typeof v !== 'object');
  const others = Object.entries(result).filter(([, v]) => v !== null && typeof v === 'object');
  const head = scalars.find(([k]) => k === 'done');
  const rest = scalars.filter(([k]) => k !== 'done').slice(0, 5).map(([k, v]) => `${k}=${short(v, 48)}`);
  if (others.length) rest.push(...others.slice(0, 3).map(([k]) => `${k}={…}`));
  if (head) return rest.length ? `done=${head[1]} (${rest.join(', ')})` : `done=${head[1]}`;
  return rest.length ? rest.join(', ') : '{}';
}

function retryDelayText(retrier, attempt) {
  const interval = retrier.IntervalSeconds ?? 1;
  const backoff = retrier.BackoffRate ?? 2;
  let delay = interval * Math.pow(backoff, attempt - 1);
  if (retrier.MaxDelaySeconds !== undefined) delay = Math.min(delay, retrier.MaxDelaySeconds);
  const jitter = (retrier.JitterStrategy ?? 'NONE') === 'FULL';
  return `${jitter ? 'up to ' : ''}${Math.round(delay * 1000) / 1000} s`;
}

// ---------------------------------------------------------------------------------------------
// One execution
// ---------------------------------------------------------------------------------------------

/**
 * Runs one execution. Options:
 *   definition | definitionPath  the ASL (object, or a path to the .asl.json file)
 *   lambdaEndpoint               base URL of cargo lambda watch (default http://127.0.0.1:9000)
 *   input                        execution input (JSON value, default {})
 *   executionName                default local-<time>-<random>
 *   stateMachineName             default: definition file name without .asl.json
 *   region, account              used for the fake ARNs (default eu-west-1 / 123456789012)
 *   eventsFile                   write one JSON line per event there
 *   log                          function(line) for progress lines (default: stderr); null = quiet
 *   waitMs, retryMs              what every Wait / Retry interval becomes (default 0 ms)
 *   signal                       an AbortSignal that aborts the execution
 *   onEnter                      [{state, url, body}]: before the FIRST invocation of Task `state`,
 *                                POST `body` (JSON) to `url` and wait for a 2xx answer; used to
 *                                inject a fault exactly while that state runs (local/moto_ext's
 *                                POST /_golden/faults). A failed POST fails the execution.
 *   motoEndpoint                 base URL of local/moto_ext, which keeps the task tokens of
 *                                callback Tasks; needed only when one runs (States.Runtime if not)
 *   callbackTimeoutMs            how long a callback Task waits for its token's answer before it
 *                                fails with States.Timeout (default 600000; stands in for the
 *                                state's TimeoutSeconds / TimeoutSecondsPath)
 *   maxPayloadBytes              Step Functions' payload quota (default 262144 bytes of UTF-8 JSON)
 *   maxHistoryEvents             Step Functions' execution history quota (default 25000 events)
 *
 * Limits (lib/limits.mjs has the sources and the history counting model): an input over
 * maxPayloadBytes is a RunnerError (StartExecution would reject it). A Task result over it fails
 * that attempt with States.DataLimitExceeded, which Retry/Catch see like any task error (as AWS
 * does; the guide says States.ALL cannot catch it). A state's input (entering it, or a Task's
 * input after Parameters) or output over it fails the execution with States.DataLimitExceeded,
 * no Catch applies. The history is counted as AWS writes it; when event number maxHistoryEvents
 * would not be ExecutionSucceeded, the execution fails with States.Runtime, "The execution reached
 * the maximum number of history events (N)." The result has historyEvents (with the terminal
 * event), historyEventTypes {type: count}, largestPayloadBytes and largestPayloadState.
 *
 * Callback Tasks (Resource arn:aws:states:::lambda:invoke.waitForTaskToken, Parameters.FunctionName
 * a Lambda ARN): `$$.Task.Token` resolves to TASK_TOKEN_PLACEHOLDER; each attempt replaces it in
 * the Payload with a fresh token, registers the token (POST <moto>/_golden/task-tokens), invokes
 * the function with the Payload like any Task, then polls POST <moto>/_golden/task-tokens/poll every
 * 100 ms: SUCCEEDED -> the task result is JSON.parse(output); FAILED -> the task fails with the
 * error and cause sent (Retry/Catch apply); past callbackTimeoutMs -> POST .../expire and the task
 * fails with States.Timeout. If the task ends otherwise (function error, the execution stops), its
 * token is expired too, so a late answer gets TaskTimedOut.
 * Resolves to { executionArn, name, status, startDate, stopDate, wallMs, output | error+cause,
 *   endState, path: [state names entered, in order], records: [event records], invocations: [...] }.
 * Rejects with RunnerError for runner problems (exit code 1 on the command line).
 */
export async function runStateMachine(options = {}) {
  const region = options.region ?? DEFAULT_REGION;
  const account = options.account ?? DEFAULT_ACCOUNT;
  const endpoint = options.lambdaEndpoint ?? DEFAULT_LAMBDA_ENDPOINT;
  const waitMs = options.waitMs ?? 0;
  const retryMs = options.retryMs ?? 0;
  const motoEndpoint = options.motoEndpoint ?? null;
  const callbackTimeoutMs = options.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const maxHistoryEvents = options.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  const log = options.log === undefined ? (line) => process.stderr.write(`${line}\n`) : options.log ?? (() => {});

  let rawDefinition = options.definition;
  let stateMachineName = options.stateMachineName;
  if (!rawDefinition) {
    if (!options.definitionPath) throw new RunnerError('no definition given (--definition FILE)');
    let text;
    try {
      text = fs.readFileSync(options.definitionPath, 'utf8');
    } catch (err) {
      throw new RunnerError(`cannot read the definition ${options.definitionPath}: ${err.message}`);
    }
    try {
      rawDefinition = JSON.parse(text);
    } catch (err) {
      throw new RunnerError(`the definition ${options.definitionPath} is not JSON: ${err.message}`);
    }
    stateMachineName ??= path.basename(options.definitionPath).replace(/\.asl\.json$|\.json$/, '');
  }
  stateMachineName ??= 'golden-ami-pipeline';
  try {
    new URL(endpoint);
  } catch {
    throw new RunnerError(`--lambda-endpoint ${JSON.stringify(endpoint)} is not a URL`);
  }
  if (motoEndpoint !== null) {
    try {
      new URL(motoEndpoint);
    } catch {
      throw new RunnerError(`--moto-endpoint ${JSON.stringify(motoEndpoint)} is not a URL`);
    }
  }
  if (!Number.isInteger(callbackTimeoutMs) || callbackTimeoutMs < 0 || callbackTimeoutMs > MAX_CALLBACK_TIMEOUT_MS) {
    throw new RunnerError(`--callback-timeout-ms must be an integer from 0 to ${MAX_CALLBACK_TIMEOUT_MS}`);
  }
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) throw new RunnerError('--max-payload-bytes must be an integer >= 1');
  // Two events at least: ExecutionStarted and the terminal one.
  if (!Number.isInteger(maxHistoryEvents) || maxHistoryEvents < 2) throw new RunnerError('--max-history-events must be an integer >= 2');
  const inputBytes = payloadBytes(options.input ?? {});
  if (inputBytes > maxPayloadBytes) {
    // StartExecution's input is limited to 262144 bytes: AWS rejects the call, no execution starts.
    // https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
    throw new RunnerError(
      `the execution input is ${inputBytes} bytes, over the ${maxPayloadBytes}-byte payload quota: StartExecution would reject it`,
    );
  }

  const { definition } = fillPlaceholders(rawDefinition, { region, account });
  const info = analyseDefinition(definition);
  const onEnter = new Map(); // Task state name -> [{url, body}] not yet fired
  for (const hook of options.onEnter ?? []) {
    if (!info.tasks.has(hook.state)) {
      throw new RunnerError(`--on-enter ${hook.state}: no Task state of that name (known: ${[...info.tasks.keys()].join(', ')})`);
    }
    if (!onEnter.has(hook.state)) onEnter.set(hook.state, []);
    onEnter.get(hook.state).push(hook);
  }

  const name = options.executionName ?? `local-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${crypto.randomBytes(3).toString('hex')}`;
  // StartExecution's rule (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html,
  // name): 1-80 characters, no white space, brackets < > { } [ ], wildcards ? *, special characters
  // " # % \ ^ | ~ ` $ & , ; : / or control characters. Names such as rerun@dec or retry+1 are
  // allowed, and the pipeline must cope with them.
  if (!/^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f\ufffe\uffff]{1,80}$/u.test(name)) {
    throw new RunnerError(`execution name ${JSON.stringify(name)} must be 1-80 characters without white space, < > { } [ ] ? * " # % \\ ^ | ~ \` $ & , ; : / or control characters (StartExecution's rule)`);
  }
  const stateMachineArn = `arn:aws:states:${region}:${account}:stateMachine:${stateMachineName}`;
  const executionArn = `arn:aws:states:${region}:${account}:execution:${stateMachineName}:${name}`;

  let stateMachine;
  try {
    stateMachine = new StateMachine(libraryDefinition(definition, info.callbacks, callbackTimeoutMs), { awsConfig: { region } });
  } catch (err) {
    throw new RunnerError(err.message);
  }

  // Per-execution state only (no module-level mutable state).
  const agent = new (new URL(endpoint).protocol === 'https:' ? https : http).Agent({ keepAlive: true });
  const taskResults = new Map(); // state name -> FIFO of results, consumed by StateExited
  const invocations = [];
  let violation = null; // the execution failed outside the library: a path problem hidden by an override, a limit
  let stopCalls = false;

  /** Fails the execution where the library cannot: no Retry or Catch applies (first one wins). */
  const failExecution = (v) => {
    if (violation) return;
    violation = v;
    history.freeze();
    stopCalls = true;
    execution.abort();
  };

  // Step Functions' limits (lib/limits.mjs).
  const history = new HistoryCounter({
    max: maxHistoryEvents,
    onLimit: () => failExecution({ Error: HISTORY_LIMIT_ERROR, Cause: historyLimitCause(maxHistoryEvents), limit: 'history' }),
  });
  const largest = { bytes: inputBytes, state: null }; // null: the execution input
  /** Measures a payload; returns its size if over the quota, else null. */
  const overQuota = (value, stateName) => {
    const bytes = payloadBytes(value);
    if (bytes > largest.bytes) Object.assign(largest, { bytes, state: stateName });
    return bytes > maxPayloadBytes ? bytes : null;
  };
  const dataLimitCause = (what, bytes, stateName) =>
    `The state/task '${what}' returned a result with a size exceeding the maximum number of bytes service limit. ` +
    `(local runner: state ${stateName}, ${bytes} bytes > ${maxPayloadBytes})`;

  const taskTokens = new Map(); // callback Task state name -> tokens issued so far
  const stopping = () => stepFunctionsError('States.Runtime', 'execution is stopping', { retryable: false, catchable: false });

  /** Expires a token whose task ended without an answer (best effort: nothing waits for it). */
  const closeToken = async (token) => {
    try {
      await taskTokenCall(motoEndpoint, 'task-tokens/expire', token);
    } catch {
      // moto gone, or the token forgotten (reset): nothing left to close
    }
  };

  /** Polls the token until it is answered or its time is up; resolves to the task result. */
  const awaitCallback = async (stateName, token, deadline) => {
    const call = async (what) => {
      try {
        return await taskTokenCall(motoEndpoint, what, token);
      } catch (err) {
        throw stepFunctionsError('States.Runtime', `${stateName}: task token ${token}: ${err.message}`, { retryable: false, catchable: false });
      }
    };
    for (;;) {
      if (stopCalls) {
        await closeToken(token);
        throw stopping();
      }
      let view = await call('task-tokens/poll');
      if (view.status === 'WAITING' && Date.now() >= deadline) view = await call('task-tokens/expire');
      if (view.status === 'WAITING') {
        await sleep(CALLBACK_POLL_MS);
        continue;
      }
      if (view.status === 'SUCCEEDED') {
        const parsed = parseJson(view.output);
        if (!parsed.ok) {
          throw stepFunctionsError('States.Runtime', `${stateName}: the SendTaskSuccess output is not JSON: ${short(view.output, 300)}`, {
            retryable: false,
            catchable: false,
          });
        }
        log(`${rel(Date.now())} ** ${stateName}: SendTaskSuccess for ${token}`);
        return parsed.value;
      }
      if (view.status === 'FAILED') {
        log(`${rel(Date.now())} ** ${stateName}: SendTaskFailure for ${token}: ${view.error}`);
        throw stepFunctionsError(view.error ?? '', view.cause ?? '');
      }
      if (view.status === 'TIMED_OUT') {
        throw stepFunctionsError(
          'States.Timeout',
          `${stateName}: no SendTaskSuccess or SendTaskFailure for task token ${token} within ${callbackTimeoutMs} ms ` +
            "(--callback-timeout-ms, standing in for the state's TimeoutSeconds/TimeoutSecondsPath)",
        );
      }
      throw stepFunctionsError('States.Runtime', `${stateName}: task token ${token} has status ${JSON.stringify(view.status)}`, {
        retryable: false,
        catchable: false,
      });
    }
  };

  const taskResourceLocalHandlers = {};
  for (const [stateName, functionName] of info.tasks) {
    const callback = info.callbacks.has(stateName);
    const resource = info.all.get(stateName).Resource;
    taskResourceLocalHandlers[stateName] = async (input) => {
      // The library logs events as it goes and the consumer below reads them a few microtasks
      // later: let it catch up, so that a limit reached before this attempt stops it here.
      await new Promise((resolve) => setImmediate(resolve));
      if (stopCalls) throw stopping();
      if (callback && motoEndpoint === null) {
        throw stepFunctionsError(
          'States.Runtime',
          `Task ${stateName} uses the callback pattern (${CALLBACK_RESOURCE}) and its task token needs local/moto_ext: ` +
            'run with --moto-endpoint URL',
          { retryable: false, catchable: false },
        );
      }
      // The effective input (after InputPath and Parameters) is what the Task sends.
      const inBytes = overQuota(input, stateName);
      if (inBytes !== null) {
        failExecution({
          Error: DATA_LIMIT_ERROR,
          Cause:
            `The state/task '${stateName}' has an input, after Parameters, with a size exceeding the maximum number of bytes ` +
            `service limit. (local runner: ${inBytes} bytes > ${maxPayloadBytes})`,
          state: stateName,
          limit: 'payload',
        });
        throw stopping();
      }
      const hooks = onEnter.get(stateName);
      if (hooks) {
        onEnter.delete(stateName); // once: the first invocation of the state only
        for (const hook of hooks) {
          try {
            await fireHook(hook);
            log(`${rel(Date.now())} ** ${stateName}: on-enter POST ${hook.url} ${short(hook.body, 200)}`);
          } catch (err) {
            throw stepFunctionsError('States.Runtime', `on-enter hook of ${stateName} failed: ${err.message}`, { retryable: false, catchable: false });
          }
        }
      }
      const attempt = history.taskAttemptStarted(stateName, callback ? 'callback' : 'lambda');
      if (attempt.stopped) throw stopping(); // the history quota: no invocation
      const started = Date.now();
      let payload = input;
      let token = null;
      if (callback) {
        // A fresh token per attempt (a retry gets a new one, as in Step Functions).
        const n = (taskTokens.get(stateName) ?? 0) + 1;
        taskTokens.set(stateName, n);
        token = `local-${name}-${stateName.replace(/[^A-Za-z0-9_-]/g, '_')}-${n}-${crypto.randomBytes(4).toString('hex')}`;
        payload = withTaskToken(input?.Payload, token);
        if (!JSON.stringify(payload ?? null).includes(token)) {
          log(`${rel(Date.now())} ** ${stateName}: warning: its Payload does not carry $$.Task.Token, so nobody can answer it`);
        }
        try {
          await taskTokenCall(motoEndpoint, 'task-tokens', token);
        } catch (err) {
          throw stepFunctionsError('States.Runtime', `${stateName}: cannot register its task token: ${err.message}`, { retryable: false, catchable: false });
        }
        log(`${rel(Date.now())} ** ${stateName}: task token ${token} issued; waiting up to ${callbackTimeoutMs} ms for its answer`);
        emit({ type: 'TaskTokenIssued', ts: Date.now(), state: stateName, stateType: 'Task', token });
      }
      const rec = { state: stateName, functionName, startTs: started, input: payload, ...(token ? { taskToken: token } : {}) };
      invocations.push(rec);
      let result;
      try {
        result = await invokeLambda(endpoint, functionName, payload, agent);
        rec.endTs = Date.now();
        rec.output = result;
      } catch (err) {
        rec.endTs = Date.now();
        rec.error = err.name;
        rec.cause = err.message;
        if (err.isCatchable !== false) history.taskAttemptEnded(attempt, 'failed');
        if (token) await closeToken(token);
        throw err;
      }
      // The callback's answer, not the function's, is the task result (Step Functions ignores it).
      if (token) {
        if (!history.taskAttemptSubmitted(attempt)) {
          await closeToken(token);
          throw stopping();
        }
        try {
          result = await awaitCallback(stateName, token, started + callbackTimeoutMs);
        } catch (err) {
          if (err.name === 'States.Timeout') history.taskAttemptEnded(attempt, 'timedOut');
          else if (err.isCatchable !== false) history.taskAttemptEnded(attempt, 'failed');
          throw err;
        }
      }
      // A result over the quota fails the attempt (LambdaFunctionFailed / TaskFailed in AWS's
      // history), and Retry/Catch see it like any task error: see lib/limits.mjs.
      const outBytes = overQuota(result, stateName);
      if (outBytes !== null) {
        history.taskAttemptEnded(attempt, 'failed');
        throw stepFunctionsError(DATA_LIMIT_ERROR, dataLimitCause(callback ? 'lambda' : resource, outBytes, stateName));
      }
      history.taskAttemptEnded(attempt, 'succeeded');
      if (!taskResults.has(stateName)) taskResults.set(stateName, []);
      taskResults.get(stateName).push(result);
      return result;
    };
  }
  const waitTimeOverrides = Object.fromEntries([...info.waits].map((n) => [n, waitMs]));
  const retryIntervalOverrides = Object.fromEntries([...info.retryable].map((n) => [n, retryMs]));

  let eventsFd = null;
  if (options.eventsFile) {
    try {
      eventsFd = fs.openSync(options.eventsFile, 'w');
    } catch (err) {
      throw new RunnerError(`cannot open --events ${options.eventsFile}: ${err.message}`);
    }
  }

  const records = [];
  const pathTaken = [];
  const t0 = Date.now();
  const rel = (ts) => `[${((ts - t0) / 1000).toFixed(3).padStart(8)}s]`;
  const emit = (rec) => {
    rec.execution = name;
    records.push(rec);
    if (eventsFd !== null) fs.writeSync(eventsFd, `${JSON.stringify(rec)}\n`);
  };

  const execution = stateMachine.run(options.input ?? {}, {
    overrides: { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides },
    // The library fills Execution.Input and Execution.StartTime (new Date().toISOString()) itself.
    context: {
      Execution: { Id: executionArn, Name: name, RoleArn: `arn:aws:iam::${account}:role/${stateMachineName}-local` },
      StateMachine: { Id: stateMachineArn, Name: stateMachineName },
      // $$.Task.Token: every callback Task's handler swaps it for a fresh token of its own.
      Task: { Token: TASK_TOKEN_PLACEHOLDER },
    },
    noThrowOnAbort: true,
  });
  const onAbort = () => {
    stopCalls = true;
    execution.abort();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  // Progress from the library's event log.
  const entries = new Map(); // state name -> number of times entered
  const open = new Map(); // state name -> { enteredTs, attemptTs, iteration }
  const lastFailure = new Map(); // state name -> { Error, Cause }
  let firstCaught = null;
  let executionEvent = null;
  let startedAt = null;

  const consume = (async () => {
    for await (const ev of execution.eventLogs) {
      const st = ev.state;
      const endedBefore = violation !== null;
      // Step Functions' limits: a state's output as it leaves (a state over the quota writes no
      // Exited event: the execution fails there), the history, a state's input as it enters.
      if (!violation && ev.type === 'StateExited') {
        const bytes = overQuota(st.output, st.name);
        if (bytes !== null) failExecution({ Error: DATA_LIMIT_ERROR, Cause: dataLimitCause(st.name, bytes, st.name), state: st.name, limit: 'payload' });
      }
      history.onLibraryEvent(ev); // nothing once the execution has failed outside the library
      if (!violation && ev.type === 'StateEntered') {
        const bytes = overQuota(st.input, st.name);
        if (bytes !== null) {
          failExecution({
            Error: DATA_LIMIT_ERROR,
            Cause:
              `The state/task '${st.name}' has an input with a size exceeding the maximum number of bytes service limit. ` +
              `(local runner: ${bytes} bytes > ${maxPayloadBytes})`,
            state: st.name,
            limit: 'payload',
          });
        }
      }
      // Once the execution has failed outside the library, what the library still runs before it
      // sees the abort is no part of it (in Step Functions it ended there): no path, records or
      // progress for it. A state over the quota as it exits does not exit.
      if (!ev.type.startsWith('Execution') && (endedBefore || (violation && ev.type === 'StateExited'))) continue;
      switch (ev.type) {
        case 'ExecutionStarted':
          startedAt = ev.timestamp;
          log(`${rel(ev.timestamp)} execution ${executionArn} started (Lambda endpoint ${endpoint})`);
          emit({ type: ev.type, ts: ev.timestamp, executionArn });
          break;
        case 'StateEntered': {
          const n = (entries.get(st.name) ?? 0) + 1;
          entries.set(st.name, n);
          open.set(st.name, { enteredTs: ev.timestamp, attemptTs: ev.timestamp, iteration: n });
          pathTaken.push(st.name);
          const def = info.all.get(st.name) ?? {};
          const iter = info.loops.has(st.name) ? ` #${n}` : '';
          let extra = '';
          if (st.type === 'Wait') {
            let asked = null;
            if (def.Seconds !== undefined) asked = `${def.Seconds} s`;
            else if (def.SecondsPath) {
              const r = simplePath(def.SecondsPath, st.input);
              if (r && (!r.found || !Number.isInteger(r.value) || r.value < 0)) {
                // With a wait override the library never reads SecondsPath; real Step Functions
                // would fail the execution with States.Runtime here, so the runner does too.
                failExecution({
                  Error: 'States.Runtime',
                  Cause: r.found
                    ? `Wait ${st.name}: ${def.SecondsPath} is ${JSON.stringify(r.value)}, not a non-negative integer`
                    : `Wait ${st.name}: path expression '${def.SecondsPath}' does not point to a value`,
                  state: st.name,
                });
              }
              asked = r?.found ? `${JSON.stringify(r.value)} s from ${def.SecondsPath}` : `${def.SecondsPath}`;
            } else if (def.Timestamp) asked = `until ${def.Timestamp}`;
            else if (def.TimestampPath) asked = `until ${def.TimestampPath}`;
            extra = ` (ASL waits ${asked}; overridden to ${waitMs} ms)`;
          } else if (info.callbacks.has(st.name)) {
            let asked = 'its default';
            if (def.TimeoutSeconds !== undefined) asked = `${def.TimeoutSeconds} s`;
            else if (def.TimeoutSecondsPath) {
              const r = simplePath(def.TimeoutSecondsPath, st.input);
              if (r && (!r.found || !Number.isInteger(r.value) || r.value < 1)) {
                // The library never reads it (the runner's timeout replaces it); Step Functions
                // would fail the execution with States.Runtime here, so the runner does too.
                failExecution({
                  Error: 'States.Runtime',
                  Cause: r.found
                    ? `Task ${st.name}: ${def.TimeoutSecondsPath} is ${JSON.stringify(r.value)}, not a positive integer`
                    : `Task ${st.name}: path expression '${def.TimeoutSecondsPath}' does not point to a value`,
                  state: st.name,
                });
              }
              asked = r?.found ? `${JSON.stringify(r.value)} s from ${def.TimeoutSecondsPath}` : `${def.TimeoutSecondsPath}`;
            }
            extra = ` (callback; ASL times out after ${asked}; overridden to ${callbackTimeoutMs} ms)`;
          }
          log(`${rel(ev.timestamp)} -> ${st.name}${iter} [${st.type}]${extra}`);
          emit({ type: ev.type, ts: ev.timestamp, state: st.name, stateType: st.type, iteration: n });
          break;
        }
        case 'StateExited': {
          const o = open.get(st.name) ?? { enteredTs: ev.timestamp, iteration: entries.get(st.name) ?? 1 };
          open.delete(st.name);
          const iter = info.loops.has(st.name) ? ` #${o.iteration}` : '';
          const ms = ev.timestamp - o.enteredTs;
          let summary = '';
          let caught = false;
          let output; // a Task's result, for the events file
          if (st.type === 'Task') {
            if (o.caught) {
              caught = true;
              summary = ` -> caught ${o.caught.Error}`;
            } else {
              const q = taskResults.get(st.name);
              output = q && q.length ? q.shift() : undefined;
              summary = ` -> ${output === undefined ? '?' : summariseResult(output)}`;
            }
          } else if (st.type === 'Pass' && o.caught === undefined) {
            const def = info.all.get(st.name) ?? {};
            if (def.Result !== undefined) summary = ` -> ${def.ResultPath ?? '$'} = ${short(def.Result)}`;
          }
          log(`${rel(ev.timestamp)} <- ${st.name}${iter} ${ms} ms${summary}`);
          emit({
            type: ev.type,
            ts: ev.timestamp,
            state: st.name,
            stateType: st.type,
            iteration: o.iteration,
            startTs: o.enteredTs,
            endTs: ev.timestamp,
            durationMs: ms,
            ...(caught ? { error: o.caught.Error, cause: o.caught.Cause } : {}),
            ...(output !== undefined ? { output } : {}),
          });
          break;
        }
        case 'StateFailed': {
          const o = open.get(st.name);
          const attemptMs = o ? ev.timestamp - o.attemptTs : 0;
          lastFailure.set(st.name, { Error: ev.Error, Cause: ev.Cause });
          if (st.type === 'Fail') {
            log(`${rel(ev.timestamp)} xx ${st.name} [Fail] Error=${ev.Error} Cause=${short(ev.Cause, 200)}`);
          } else {
            log(`${rel(ev.timestamp)} !! ${st.name} failed after ${attemptMs} ms: ${ev.Error}: ${short(ev.Cause, 200)}`);
          }
          emit({
            type: ev.type,
            ts: ev.timestamp,
            state: st.name,
            stateType: st.type,
            iteration: o?.iteration,
            startTs: o?.attemptTs,
            endTs: ev.timestamp,
            durationMs: attemptMs,
            error: ev.Error,
            cause: typeof ev.Cause === 'string' ? ev.Cause : String(ev.Cause),
          });
          break;
        }
        case 'StateRetried': {
          const o = open.get(st.name);
          if (o) o.attemptTs = ev.timestamp;
          const r = ev.retry.retrier;
          const err = lastFailure.get(st.name)?.Error;
          log(
            `${rel(ev.timestamp)} .. ${st.name} retry ${ev.retry.attempt}/${r.MaxAttempts ?? 3} after ${err} ` +
              `(ASL would wait ${retryDelayText(r, ev.retry.attempt)}; overridden to ${retryMs} ms)`,
          );
          emit({ type: ev.type, ts: ev.timestamp, state: st.name, stateType: st.type, iteration: o?.iteration, attempt: ev.retry.attempt, maxAttempts: r.MaxAttempts ?? 3, error: err });
          break;
        }
        case 'StateCaught': {
          const o = open.get(st.name);
          const f = lastFailure.get(st.name) ?? {};
          if (o) o.caught = f;
          firstCaught ??= { state: st.name, ...f };
          const c = ev.catch.catcher;
          log(`${rel(ev.timestamp)} => ${st.name} caught ${f.Error} -> ${c.Next} (ResultPath ${c.ResultPath === undefined ? '$' : c.ResultPath})`);
          emit({ type: ev.type, ts: ev.timestamp, state: st.name, stateType: st.type, iteration: o?.iteration, error: f.Error, cause: f.Cause, next: c.Next, resultPath: c.ResultPath ?? '$' });
          break;
        }
        case 'ExecutionSucceeded':
        case 'ExecutionFailed':
        case 'ExecutionAborted':
        case 'ExecutionTimeout':
          executionEvent = ev;
          break;
        default:
          emit({ type: ev.type, ts: ev.timestamp });
      }
    }
  })();

  let output;
  let thrown;
  try {
    output = await execution.result;
  } catch (err) {
    thrown = err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    // A callback Task the library left behind (execution timeout, abort) stops polling.
    stopCalls = true;
  }
  await consume;
  agent.destroy();

  const stop = Date.now();
  const result = {
    executionArn,
    stateMachineArn,
    name,
    status: 'SUCCEEDED',
    startDate: new Date(startedAt ?? t0).toISOString(),
    stopDate: new Date(stop).toISOString(),
    wallMs: stop - (startedAt ?? t0),
    endState: pathTaken[pathTaken.length - 1] ?? null,
    path: pathTaken,
    invocations,
    records,
  };
  if (violation) {
    Object.assign(result, { status: 'FAILED', error: violation.Error, cause: violation.Cause });
  } else if (thrown instanceof ExecutionTimeoutError) {
    Object.assign(result, { status: 'TIMED_OUT', error: 'States.Timeout', cause: 'the execution exceeded its TimeoutSeconds' });
  } else if (thrown instanceof ExecutionError) {
    const inner = thrown.cause ?? {};
    Object.assign(result, { status: 'FAILED', error: inner.name, cause: inner.message });
  } else if (thrown) {
    if (eventsFd !== null) fs.closeSync(eventsFd);
    throw new RunnerError(`the library failed: ${thrown.stack ?? thrown}`);
  } else if (executionEvent?.type === 'ExecutionAborted') {
    Object.assign(result, { status: 'ABORTED', error: 'ExecutionAborted', cause: 'aborted by the runner' });
  } else {
    result.output = output;
  }
  const terminal = { SUCCEEDED: 'ExecutionSucceeded', FAILED: 'ExecutionFailed', TIMED_OUT: 'ExecutionTimedOut', ABORTED: 'ExecutionAborted' }[result.status];
  if (history.finish(terminal) && !violation && result.status !== 'ABORTED') {
    // The terminal event is event number maxHistoryEvents and not ExecutionSucceeded: AWS reports
    // the history quota there (lib/limits.mjs, bp-history-limit).
    delete result.output;
    Object.assign(result, { status: 'FAILED', error: HISTORY_LIMIT_ERROR, cause: historyLimitCause(maxHistoryEvents) });
  }
  Object.assign(result, {
    historyEvents: history.count,
    historyEventTypes: history.byType,
    largestPayloadBytes: largest.bytes,
    largestPayloadState: largest.state,
  });
  if (result.status !== 'SUCCEEDED') {
    const endDef = info.all.get(result.endState);
    result.failedInFailState = endDef?.Type === 'Fail' && !violation;
    if (firstCaught) result.rootCause = firstCaught;
  }

  emit({
    type: `Execution${result.status === 'SUCCEEDED' ? 'Succeeded' : result.status === 'FAILED' ? 'Failed' : result.status === 'TIMED_OUT' ? 'TimedOut' : 'Aborted'}`,
    ts: stop,
    startTs: startedAt ?? t0,
    endTs: stop,
    durationMs: result.wallMs,
    status: result.status,
    endState: result.endState,
    historyEvents: result.historyEvents,
    ...(result.error ? { error: result.error, cause: result.cause } : {}),
  });
  if (eventsFd !== null) fs.closeSync(eventsFd);

  // Per-state time summary, then the final line.
  const perState = new Map();
  for (const r of records) {
    if (r.type !== 'StateExited') continue;
    const s = perState.get(r.state) ?? { count: 0, ms: 0 };
    s.count += 1;
    s.ms += r.durationMs;
    perState.set(r.state, s);
  }
  const width = Math.max(0, ...[...perState.keys()].map((k) => k.length));
  log(`${rel(stop)} time per state:`);
  for (const [state, s] of perState) log(`             ${state.padEnd(width)}  ${String(s.ms).padStart(7)} ms  x${s.count}`);
  if (result.status === 'SUCCEEDED') {
    log(
      `${rel(stop)} SUCCEEDED at ${result.endState} in ${result.wallMs} ms (${pathTaken.length} states, ${invocations.length} Lambda invocations, ` +
        `${result.historyEvents} history events, largest payload ${result.largestPayloadBytes} bytes)`,
    );
  } else {
    const where = result.failedInFailState ? `in Fail state ${result.endState}` : `at ${result.endState}`;
    log(`${rel(stop)} ${result.status} ${where} in ${result.wallMs} ms (${result.historyEvents} history events)`);
    log(`             Error: ${result.error}`);
    log(`             Cause: ${result.cause}`);
    if (firstCaught) log(`             first caught error: ${firstCaught.state}: ${firstCaught.Error}: ${short(firstCaught.Cause, 300)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

const USAGE = `usage: node local/runner/run.mjs --definition FILE.asl.json [--lambda-endpoint URL] [--input JSON|@FILE]
         [--execution-name NAME] [--events FILE.jsonl] [--json] [--quiet]
         [--wait-ms N] [--retry-ms N] [--region R] [--account ID] [--state-machine-name NAME]
         [--on-enter STATE=URL:JSON ...] [--moto-endpoint URL] [--callback-timeout-ms N]
         [--max-payload-bytes N] [--max-history-events N]
  --lambda-endpoint  cargo lambda watch base URL (default ${DEFAULT_LAMBDA_ENDPOINT})
  --input            execution input as JSON, or @file (default {})
  --events           write one JSON line per event (state, type, startTs/endTs/durationMs, error)
  --json             print the final result (output, or error and cause) as the last stdout line
  --quiet            no progress lines on stderr
  --wait-ms/--retry-ms  what every Wait / Retry interval becomes (default 0)
  --on-enter         before the first invocation of Task STATE, POST JSON to URL (e.g. a fault to
                     local/moto_ext's /_golden/faults); repeatable
  --moto-endpoint    local/moto_ext base URL: it keeps the task tokens of callback Tasks
                     (${CALLBACK_RESOURCE}); needed once such a Task runs
  --callback-timeout-ms  how long a callback Task waits for SendTaskSuccess/SendTaskFailure before it
                     fails with States.Timeout; stands in for its TimeoutSeconds/TimeoutSecondsPath
                     (default ${DEFAULT_CALLBACK_TIMEOUT_MS})
  --max-payload-bytes  Step Functions' payload quota: a Task result over it fails the task with
                     States.DataLimitExceeded, a state input/output over it fails the execution
                     (default ${DEFAULT_MAX_PAYLOAD_BYTES})
  --max-history-events  Step Functions' history quota: the execution fails with States.Runtime when
                     event number N would not be ExecutionSucceeded (default ${DEFAULT_MAX_HISTORY_EVENTS})
exit codes: 0 succeeded, 2 execution failed (Fail state, uncaught error, timeout), 1 runner error`;

export function parseArgs(argv) {
  const opts = { json: false, quiet: false, onEnter: [] };
  const valueFlags = {
    '--definition': 'definitionPath',
    '--lambda-endpoint': 'lambdaEndpoint',
    '--input': 'input',
    '--execution-name': 'executionName',
    '--events': 'eventsFile',
    '--wait-ms': 'waitMs',
    '--retry-ms': 'retryMs',
    '--region': 'region',
    '--account': 'account',
    '--state-machine-name': 'stateMachineName',
    '--moto-endpoint': 'motoEndpoint',
    '--callback-timeout-ms': 'callbackTimeoutMs',
    '--max-payload-bytes': 'maxPayloadBytes',
    '--max-history-events': 'maxHistoryEvents',
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === '--json') opts.json = true;
    else if (arg === '--quiet') opts.quiet = true;
    else if (arg === '--help' || arg === '-h') opts.help = true;
    else if (arg === '--on-enter') {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new RunnerError(`${arg} needs a value`);
        value = argv[++i];
      }
      opts.onEnter.push(parseOnEnter(value));
    }
    else if (valueFlags[arg]) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new RunnerError(`${arg} needs a value`);
        value = argv[++i];
      }
      opts[valueFlags[arg]] = value;
    } else throw new RunnerError(`unknown argument ${arg}\n${USAGE}`);
  }
  if (opts.help) return opts;
  if (!opts.definitionPath) throw new RunnerError(`--definition is required\n${USAGE}`);
  let inputText = opts.input ?? '{}';
  if (inputText.startsWith('@')) {
    try {
      inputText = fs.readFileSync(inputText.slice(1), 'utf8');
    } catch (err) {
      throw new RunnerError(`cannot read --input ${opts.input}: ${err.message}`);
    }
  }
  try {
    opts.input = JSON.parse(inputText);
  } catch (err) {
    throw new RunnerError(`--input is not JSON: ${err.message}`);
  }
  const numbers = {
    waitMs: ['--wait-ms', 0, Infinity],
    retryMs: ['--retry-ms', 0, Infinity],
    callbackTimeoutMs: ['--callback-timeout-ms', 0, MAX_CALLBACK_TIMEOUT_MS],
    maxPayloadBytes: ['--max-payload-bytes', 1, Infinity],
    maxHistoryEvents: ['--max-history-events', 2, Infinity],
  };
  for (const [k, [flag, min, max]] of Object.entries(numbers)) {
    if (opts[k] !== undefined) {
      const n = Number(opts[k]);
      if (opts[k] === '' || !Number.isInteger(n) || n < min || n > max) {
        throw new RunnerError(`${flag} must be an integer >= ${min}${max === Infinity ? '' : ` and <= ${max}`}`);
      }
      opts[k] = n;
    }
  }
  return opts;
}

export async function main(argv = process.argv.slice(2)) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`run.mjs: ${err.message}\n`);
    return 1;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await runStateMachine({
      ...opts,
      log: opts.quiet ? null : undefined,
      signal: controller.signal,
    });
    if (opts.json) {
      const { executionArn, name, status, startDate, stopDate, wallMs, endState, historyEvents, largestPayloadBytes, largestPayloadState } = result;
      const out = { executionArn, name, status, startDate, stopDate, wallMs, endState, historyEvents, largestPayloadBytes, largestPayloadState };
      if (status === 'SUCCEEDED') out.output = result.output;
      else Object.assign(out, { error: result.error, cause: result.cause, rootCause: result.rootCause });
      process.stdout.write(`${JSON.stringify(out)}\n`);
    }
    return result.status === 'SUCCEEDED' ? 0 : 2;
  } catch (err) {
    process.stderr.write(`run.mjs: ${err instanceof RunnerError ? err.message : err.stack ?? err}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify({ status: 'RUNNER_ERROR', error: err.name, cause: err.message })}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`run.mjs: ${err.stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
