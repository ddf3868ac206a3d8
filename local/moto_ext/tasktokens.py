"""Task tokens of the Step Functions callback pattern (Resource ...:lambda:invoke.waitForTaskToken).

In AWS, a Task state with the callback pattern hands a task token to a function and then waits
until someone answers it with states:SendTaskSuccess (its output, a JSON string, becomes the
task's result) or states:SendTaskFailure (the task fails with that error and cause, which a
Catch can take), or until the state's timeout passes (the task fails with States.Timeout and the
token is dead: SendTask* then answers TaskTimedOut). SendTaskHeartbeat keeps a task alive.

What moto 5.2.5 does on its own (read from its source): SendTaskSuccess, SendTaskFailure and
SendTaskHeartbeat answer 200 for any token and remember nothing (its backend methods are `pass`;
SendTaskFailure even drops `cause`). The local runner (local/runner/run.mjs), which runs the
ASL outside moto, needs somewhere the token's answer is kept, so this piece is only a token
registry; it is not an emulator of Step Functions (no executions, no timers, no heartbeat
timeout: the runner owns the task and its timeout):

- The runner issues a token: POST /_golden/task-tokens {"token": T} -> status WAITING.
- The pipeline (the approval function, an operator, a test) answers it with the stepfunctions
  API against this server, exactly as against AWS:
    SendTaskSuccess   a WAITING token becomes SUCCEEDED with the output; the output must parse
                      as JSON, else InvalidOutput (400) and the token stays WAITING.
    SendTaskFailure   a WAITING token becomes FAILED with its error and cause (both kept, either
                      may be absent: null).
    SendTaskHeartbeat a WAITING token's heartbeat count goes up; its status does not change.
  A TIMED_OUT token answers TaskTimedOut (400); an unknown token, or one answered already
  (SUCCEEDED / FAILED), answers TaskDoesNotExist (400). Errors are the JSON protocol's
  ({"__type", "message"} + x-amzn-ErrorType), so boto3 / the AWS SDKs see the right code.
  (AWS's API reference words TaskTimedOut as "the token has expired or its task has already been
  closed"; this registry answers TaskDoesNotExist for an answered token, as the local pipeline
  was specified. Code that only needs "the token is dead" should accept either.)
- The runner polls it: POST /_golden/task-tokens/poll {"token": T}.
- When the task's timeout passes (locally: the runner's --callback-timeout-ms), the runner
  expires it: POST /_golden/task-tokens/expire {"token": T} -> TIMED_OUT, if still WAITING. The
  runner also expires the token of a task that ended otherwise (its function failed, the
  execution stopped), so a late answer is refused as it would be in AWS.

Every admin answer is the token's view: {"token", "status": WAITING|SUCCEEDED|FAILED|TIMED_OUT,
"heartbeats": N} plus "output" (the JSON string sent) when SUCCEEDED, "error" and "cause" when
FAILED. An unknown token is a 404 {"error": "..."} for poll and expire; registering a token twice
is a 400. Tokens are opaque strings, one registry for all accounts and regions; they live in the
extension's STATE, so POST /_golden/reset clears them, and GET /_golden/state lists them.

Pages followed (operation, field or behaviour, URL):
- SendTaskSuccess (output must be JSON: InvalidOutput; TaskDoesNotExist, TaskTimedOut),
  SendTaskFailure (error, cause), SendTaskHeartbeat:
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskHeartbeat.html
- The callback pattern (.waitForTaskToken, States.Timeout):
  https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token
- Not documented; our choice: TaskDoesNotExist (not TaskTimedOut) for a token answered already.
"""

import json
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions.responses import StepFunctionResponse

from .state import LOCK, STATE

WAITING, SUCCEEDED, FAILED, TIMED_OUT = "WAITING", "SUCCEEDED", "FAILED", "TIMED_OUT"


class TaskDoesNotExist(AWSError):
    TYPE = "TaskDoesNotExist"
    STATUS = 400


class TaskTimedOut(AWSError):
    TYPE = "TaskTimedOut"
    STATUS = 400


class InvalidOutput(AWSError):
    TYPE = "InvalidOutput"
    STATUS = 400


class UnknownTaskToken(Exception):
    """A token the admin API does not know (admin.py answers 404)."""


# ---- admin: POST /_golden/task-tokens[/poll|/expire] ---------------------------------------

def _token_of(body: dict[str, Any]) -> str:
    unknown = sorted(set(body) - {"token"})
    token = body.get("token")
    if unknown or not isinstance(token, str) or not token:
        raise ValueError(f'expected {{"token": "<a non-empty string>"}}, got {json.dumps(body)}')
    return token


def _view(record: dict[str, Any]) -> dict[str, Any]:
    view = {"token": record["token"], "status": record["status"], "heartbeats": record["heartbeats"]}
    if record["status"] == SUCCEEDED:
        view["output"] = record["output"]
    elif record["status"] == FAILED:
        view.update(error=record["error"], cause=record["cause"])
    return view


def _known(token: str) -> dict[str, Any]:
    record = STATE.task_tokens.get(token)
    if record is None:
        raise UnknownTaskToken(f"unknown task token {token!r}: it was never registered "
                               f"(POST /_golden/task-tokens), or POST /_golden/reset forgot it")
    return record


def register(body: dict[str, Any]) -> dict[str, Any]:
    """{"token"} -> the new WAITING token's view. ValueError (-> 400) if it exists already."""
    token = _token_of(body)
    with LOCK:
        if token in STATE.task_tokens:
            raise ValueError(f"task token {token!r} is registered already "
                             f"({STATE.task_tokens[token]['status']}); tokens are issued once")
        record = {"token": token, "status": WAITING, "heartbeats": 0, "output": None,
                  "error": None, "cause": None}
        STATE.task_tokens[token] = record
        return _view(record)


def poll(body: dict[str, Any]) -> dict[str, Any]:
    """{"token"} -> its view. UnknownTaskToken (-> 404) if it was never registered."""
    token = _token_of(body)
    with LOCK:
        return _view(_known(token))


def expire(body: dict[str, Any]) -> dict[str, Any]:
    """{"token"} -> its view after the timeout: a WAITING token becomes TIMED_OUT; an answered
    one keeps its answer (whichever came first wins). UnknownTaskToken (-> 404) if unknown."""
    token = _token_of(body)
    with LOCK:
        record = _known(token)
        if record["status"] == WAITING:
            record["status"] = TIMED_OUT
        return _view(record)


def admin_view() -> list[dict[str, Any]]:
    with LOCK:
        return [_view(r) for r in STATE.task_tokens.values()]


# ---- API actions: SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat ----------------------

def _waiting(token: Any) -> dict[str, Any]:
    """The WAITING record of this token, or the error AWS gives for a dead one. Call under LOCK."""
    record = STATE.task_tokens.get(token) if isinstance(token, str) else None
    if record is None:
        raise TaskDoesNotExist(f"Task Token does not exist: {token!r} (it was never issued)")
    if record["status"] == TIMED_OUT:
        raise TaskTimedOut(f"Task Timed Out: the task of token {token!r} has timed out")
    if record["status"] != WAITING:
        raise TaskDoesNotExist(f"Task Token does not exist: the task of token {token!r} has been "
                               f"answered already ({record['status']})")
    return record


def send_task_success(self: StepFunctionResponse) -> ActionResult:
    token = self._get_param("taskToken")
    output = self._get_param("output")
    with LOCK:
        record = _waiting(token)
        try:
            json.loads(output)
        except (TypeError, ValueError) as exc:
            raise InvalidOutput(f"Invalid Output: the output is not valid JSON: {exc}") from None
        record.update(status=SUCCEEDED, output=output)
    return EmptyResult()


def send_task_failure(self: StepFunctionResponse) -> ActionResult:
    token = self._get_param("taskToken")
    error, cause = self._get_param("error"), self._get_param("cause")
    with LOCK:
        _waiting(token).update(status=FAILED, error=error, cause=cause)
    return EmptyResult()


def send_task_heartbeat(self: StepFunctionResponse) -> ActionResult:
    token = self._get_param("taskToken")
    with LOCK:
        _waiting(token)["heartbeats"] += 1
    return EmptyResult()


def install() -> None:
    StepFunctionResponse.send_task_success = send_task_success
    StepFunctionResponse.send_task_failure = send_task_failure
    StepFunctionResponse.send_task_heartbeat = send_task_heartbeat
