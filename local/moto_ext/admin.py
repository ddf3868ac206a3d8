"""WSGI middleware in front of moto: the /_golden admin API and API fault injection.

The admin API is the test harness's, not an AWS API. The errors it injects take the shapes and
codes AWS documents:
- EC2's XML error response, and RequestLimitExceeded for throttling:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html and
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html
- JSON protocols (SSM, RAM, KMS, Step Functions): the __type body and ThrottlingException:
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html
- query protocols (SNS, STS, IAM, CloudFormation): ErrorResponse XML and Throttling:
  https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html

Admin API (JSON in, JSON out):
  POST /_golden/faults  {"automationStepFail": {"step": "updateOs", "message": "...", "times": 1,
                                               "document": "golden-ami-test",
                                               "nameContains": "arm64"}}
                            (document, nameContains (TargetAmiName / TestName): optional)
                        {"automationStepFail": {"step": "createImage", "halfway": true}}
                            (createImage leaves an untagged image, then fails)
                        {"baselineFail": {"controls": ["ssh-ciphers"]}}  (the boot test's disk)
                        {"updates": {"scenario": "none"}}  (what the update report finds)
                        {"apiFail": {"service": "ec2", "action": "CopyImage", "code": "InternalError",
                                     "status": 500, "message": "...", "times": 1}}
                        {"apiFail": {"service": "ssm", "action": "GetParameter", "throttle": true}}
                        {"apiFail": {"service": "ec2", "action": "CopyImage", "region": "us-east-1"}}
                            (region: only requests signed for that region)
                        {"apiBarrier": {"service": "ssm", "action": "PutParameter", "count": 2,
                                        "timeout": 30}}
                            (the first `count` matching requests wait for each other, then all
                            go on to moto together: two runs held at the same call and released
                            at once; after `timeout` seconds a waiting request goes on alone and
                            the barrier says timedOut)
                        {"ramAssociationFail": {"resourceArnContains": "/golden-ami/arm64",
                                                "message": "...", "times": 1}}
                            (the next AssociateResourceShare of a resource whose ARN contains
                            the text goes ASSOCIATING -> FAILED with that statusMessage; see
                            ram.py)
                        (several keys may be given at once; each POST adds faults; times defaults to 1)
  POST /_golden/config  {"pendingDescribes": N, "automationPollsPerStep": N,
                         "parameterValidationReads": N (default 1; ssm_params.py),
                         "ramAssociationReads": N (default 1; ram.py)}
  POST /_golden/images  {"ImageId": "ami-...", "creationDate": "2026-01-01T00:00:00.000Z",
                         "lastLaunchedTime": "2026-03-01T00:00:00Z" | null}
                            (seeds an image's age, for any account's own image, any region;
                            either time may be left out, null = never launched; answers
                            {"ImageId", "OwnerId", "Region", "creationDate", "lastLaunchedTime"}
                            as DescribeImages shows them; see lifecycle.py)
  POST /_golden/task-tokens         {"token": T}  registers T as issued by a callback Task
                                                  (waitForTaskToken): status WAITING
  POST /_golden/task-tokens/poll    {"token": T}  the token's status (the runner polls it)
  POST /_golden/task-tokens/expire  {"token": T}  the task's timeout passed: WAITING -> TIMED_OUT
                            (all three answer {"token", "status": WAITING|SUCCEEDED|FAILED|
                            TIMED_OUT, "heartbeats": N, + "output" (the JSON string sent) when
                            SUCCEEDED, "error"/"cause" when FAILED}; an unknown token is a 404,
                            registering one twice a 400. SendTaskSuccess / SendTaskFailure /
                            SendTaskHeartbeat answer them; see tasktokens.py)
  GET  /_golden/calls   {"calls": [...]}: every call of a stack principal so far (recording.py)
  POST /_golden/calls/take   the same, and forgets them; POST /_golden/calls/clear forgets them
  POST /_golden/reset   clears faults, config, executions, task tokens AND moto's own state
                        (/moto-api/reset)
  GET  /_golden/state   {"config", "faults", "executions": [...with step history...], "pendingImages",
                         "pendingParameters": [{"account", "region", "name", "value", "version",
                                                "create", "readsLeft", "valid"}] (ssm_params.py),
                         "ramAssociations": [{"resourceShareArn", "resourceArn", "status",
                                              "readsLeft", "statusMessage"}] (ram.py),
                         "taskTokens": [...as poll answers them...]}

apiFail: the service is read from the SigV4 credential scope (.../REGION/SERVICE/aws4_request),
the action from X-Amz-Target (JSON protocols) or the Action parameter (query protocols). The error
body follows the request's protocol: EC2 XML, query ErrorResponse XML (SNS, IAM, STS), or JSON
with x-amzn-ErrorType. "throttle": true picks the service's throttling error: RequestLimitExceeded
503 for EC2, ThrottlingException 400 for JSON services, Throttling 400 for query services.

Pages followed by the injected errors (operation, field or behaviour, URL):
- EC2 error body (Response/Errors/Error Code, Message, RequestID) and RequestLimitExceeded (503)
  for throttling: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
  https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html
- Query services' ErrorResponse (Type, Code, Message, RequestId) and Throttling; JSON services'
  __type / x-amzn-ErrorType and ThrottlingException:
  https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html
- Not documented; our choice: InternalError / InternalFailure / InternalServerError (500) as
  the default non-throttling fault of each protocol.
"""

import io
import json
import re
import threading
import uuid
from typing import Any, Callable
from urllib.parse import parse_qs

from . import baseline, images, lifecycle, ram, recording, ssm_params, tasktokens
from .state import LOCK, STATE

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
# Requests held at an apiBarrier wait on this (moto's server runs one thread per request).
_BARRIER = threading.Condition(LOCK)


class GoldenMiddleware:
    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_golden/"):
            return self._admin(environ, start_response, path[len("/_golden/"):])
        recording.record_request(environ, _read_body(environ))  # who called what (IAM)
        self._hold_at_barrier(environ)
        fault = self._match_fault(environ)
        if fault is not None:
            status, headers, body = _error_response(fault, environ)
            start_response(status, headers)
            return [body]
        return self.app(environ, start_response)

    # ---- admin ---------------------------------------------------------------------------

    def _admin(self, environ: dict[str, Any], start_response: Callable[..., Any], what: str) -> Any:
        method = environ.get("REQUEST_METHOD")
        try:
            body = json.loads(_read_body(environ) or b"{}") if method == "POST" else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if (method, what) == ("POST", "faults"):
                result = _add_faults(body)
            elif (method, what) == ("POST", "config"):
                result = _set_config(body)
            elif (method, what) == ("POST", "images"):
                result = lifecycle.seed_image(body)
            elif (method, what) == ("POST", "task-tokens"):
                result = tasktokens.register(body)
            elif (method, what) == ("POST", "task-tokens/poll"):
                result = tasktokens.poll(body)
            elif (method, what) == ("POST", "task-tokens/expire"):
                result = tasktokens.expire(body)
            elif (method, what) in (("GET", "calls"), ("POST", "calls/take")):
                result = {"calls": recording.calls(take=what == "calls/take")}
            elif (method, what) == ("POST", "calls/clear"):
                recording.clear()
                result = {"calls": []}
            elif (method, what) == ("POST", "reset"):
                result = _reset()
            elif (method, what) == ("GET", "state"):
                result = _state()
            else:
                return _json(start_response, "404 Not Found", {"error": f"no {method} /_golden/{what}"})
        except tasktokens.UnknownTaskToken as exc:
            return _json(start_response, "404 Not Found", {"error": str(exc)})
        except (ValueError, KeyError, TypeError) as exc:
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        return _json(start_response, "200 OK", result)

    # ---- fault matching ------------------------------------------------------------------

    def _hold_at_barrier(self, environ: dict[str, Any]) -> None:
        with _BARRIER:
            waiting = [b for b in STATE.barriers if b["arrived"] < b["count"]]
            if not waiting:
                return
            match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            if not match:
                return
            action = _action(environ)
            barrier = next((b for b in waiting if (b["service"], b["action"]) == (match.group(2), action)),
                           None)
            if barrier is None:
                return
            barrier["arrived"] += 1
            if barrier["arrived"] >= barrier["count"]:
                barrier["released"] = True
                _BARRIER.notify_all()
                return
            if not _BARRIER.wait_for(lambda: barrier["released"], timeout=barrier["timeout"]):
                barrier["timedOut"] = True

    def _match_fault(self, environ: dict[str, Any]) -> dict[str, Any] | None:
        with LOCK:
            if not any(f["times"] > 0 for f in STATE.api_faults):
                return None  # the common case: do not touch the request at all
            match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            if not match:
                return None
            region, service = match.group(1), match.group(2)
            action = _action(environ)
            for fault in STATE.api_faults:
                if (fault["times"] > 0 and (fault["service"], fault["action"]) == (service, action)
                        and fault["region"] in (None, region)):
                    fault["times"] -= 1
                    return fault
        return None


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so moto can still read it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _action(environ: dict[str, Any]) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = parse_qs(_read_body(environ).decode("utf-8", "replace"))
        return form.get("Action", [None])[0]
    return None


def _add_faults(body: dict[str, Any]) -> dict[str, Any]:
    known = {"automationStepFail", "apiFail", "apiBarrier", "baselineFail", "updates",
             "ramAssociationFail"}
    unknown = set(body) - known
    if unknown or not body:
        raise ValueError(f"expected some of {sorted(known)}, got {sorted(body)}")
    with LOCK:
        if "automationStepFail" in body:
            spec = body["automationStepFail"]
            if spec.get("halfway") and spec["step"] != "createImage":
                raise ValueError("halfway failures exist for the createImage step only")
            STATE.step_faults.append({"step": str(spec["step"]), "message": spec.get("message"),
                                      "times": int(spec.get("times", 1)),
                                      "document": spec.get("document"),
                                      "nameContains": spec.get("nameContains"),
                                      "halfway": bool(spec.get("halfway"))})
        if "baselineFail" in body:
            controls = [str(c) for c in body["baselineFail"]["controls"]]
            unknown_controls = sorted(set(controls) - set(baseline.controls()))
            if unknown_controls:
                raise ValueError(f"unknown baseline controls {unknown_controls}; known: "
                                 f"{baseline.controls()}")
            STATE.baseline_fail.extend(controls)
        if "updates" in body:
            scenario = str(body["updates"]["scenario"])
            if not (baseline.FIXTURES / "updates" / scenario).is_dir():
                raise ValueError(f"no update scenario {scenario} in local/fixtures/updates")
            STATE.updates_scenario = scenario
        if "apiBarrier" in body:
            spec = body["apiBarrier"]
            count = int(spec.get("count", 2))
            if count < 2:
                raise ValueError("an apiBarrier holds at least 2 requests (count >= 2)")
            STATE.barriers.append({"service": str(spec["service"]).lower(), "action": str(spec["action"]),
                                   "count": count, "timeout": float(spec.get("timeout", 30)),
                                   "arrived": 0, "released": False, "timedOut": False})
        if "ramAssociationFail" in body:
            spec = body["ramAssociationFail"]
            STATE.ram_faults.append({
                "resourceArnContains": str(spec["resourceArnContains"]),
                "message": str(spec.get("message", "injected by local/moto_ext")),
                "times": int(spec.get("times", 1))})
        if "apiFail" in body:
            spec = body["apiFail"]
            service = str(spec["service"]).lower()
            code, status = _default_error(service, bool(spec.get("throttle")))
            STATE.api_faults.append({
                "service": service, "action": str(spec["action"]),
                "code": spec.get("code", code), "status": int(spec.get("status", status)),
                "message": spec.get("message", "injected by local/moto_ext"),
                "times": int(spec.get("times", 1)), "region": spec.get("region")})
        return _faults()


def _default_error(service: str, throttle: bool) -> tuple[str, int]:
    if service == "ec2":
        return ("RequestLimitExceeded", 503) if throttle else ("InternalError", 500)
    if service in _QUERY_SERVICES:
        return ("Throttling", 400) if throttle else ("InternalFailure", 500)
    return ("ThrottlingException", 400) if throttle else ("InternalServerError", 500)


def _set_config(body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        for key, value in body.items():
            if key not in STATE.config:
                raise ValueError(f"unknown config key {key}; known: {sorted(STATE.config)}")
            STATE.config[key] = int(value)
        return dict(STATE.config)


def _reset() -> dict[str, Any]:
    from moto.moto_api import _internal  # moto's own reset, same as POST /moto-api/reset

    with LOCK:
        STATE.reset()
        images.reset()
        _internal.moto_api_backend.reset()
    return {"reset": True}


def _faults() -> dict[str, Any]:
    return {"automationStepFail": [dict(f) for f in STATE.step_faults if f["times"] > 0],
            "apiFail": [dict(f) for f in STATE.api_faults if f["times"] > 0],
            "apiBarrier": [dict(b) for b in STATE.barriers],
            "baselineFail": list(STATE.baseline_fail), "updates": STATE.updates_scenario,
            "ramAssociationFail": [dict(f) for f in STATE.ram_faults if f["times"] > 0]}


def _state() -> dict[str, Any]:
    with LOCK:
        return {"config": dict(STATE.config), "faults": _faults(),
                "pendingImages": dict(STATE.pending_images),
                "pendingParameters": ssm_params.admin_view(),
                "ramAssociations": ram.admin_view(),
                "executions": [e.admin_view() for e in STATE.executions.values()],
                "taskTokens": tasktokens.admin_view()}


def _json(start_response: Callable[..., Any], status: str, payload: Any) -> list[bytes]:
    body = json.dumps(payload, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# Query-protocol services the pipeline talks to (XML ErrorResponse); EC2 has its own XML shape.
_QUERY_SERVICES = {"sns", "iam", "sts", "sqs-query", "cloudformation"}
_REASONS = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _error_response(fault: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    code, message, status = fault["code"], fault["message"], fault["status"]
    request_id = str(uuid.uuid4())
    status_line = f"{status} {_REASONS.get(status, 'Error')}"
    headers = [("x-amzn-RequestId", request_id)]
    if "json" in environ.get("CONTENT_TYPE", "") or environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif fault["service"] == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}'
                f"</Code><Message>{_xml(message)}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>").encode()
        headers.append(("Content-Type", "text/xml;charset=UTF-8"))
    else:
        kind = "Receiver" if status >= 500 else "Sender"
        body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>"
                f"{_xml(message)}</Message></Error><RequestId>{request_id}</RequestId>"
                f"</ErrorResponse>").encode()
        headers.append(("Content-Type", "text/xml"))
    headers.append(("Content-Length", str(len(body))))
    return status_line, headers, body


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
