"""The two boundaries of every function, end to end: a malformed event (through cargo lambda
watch's Invoke API, as the state machine or a person would send it) and a cold start without its
configuration (through a local Lambda Runtime API, as the Lambda service runs the process)."""

import json
import urllib.error
import urllib.request

import pytest

from checks import cold_invoke
from local.stack import LocalStack

GARBAGE = ["{}", '{"foo":1}', "[]", '""', "null"]


def invoke(stack: LocalStack, function: str, body: str) -> tuple[int, dict]:
    url = f"{stack.lambda_endpoint}/2015-03-31/functions/{function}/invocations"
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.parametrize("function", LocalStack.FUNCTIONS)
def test_every_function_answers_garbage_with_invalid_input(stack: LocalStack, function: str):
    for body in GARBAGE:
        status, answer = invoke(stack, function, body)
        assert status != 200, f"{function} accepted {body}: {answer}"
        assert answer["errorType"] == "InvalidInput", f"{function} {body}: {answer}"
        message = answer["errorMessage"]
        # The steps take the state machine's {context, state}; the reaper an EventBridge event.
        first = "detail-type" if function == "reaper" else "context"
        assert f"send {{\"{first}\"" in message, f"{function} {body}: {message}"
        if body in ("{}", '{"foo":1}'):
            assert f"missing field `{first}`" in message, message


CONTEXT = {"executionId": "arn:aws:states:us-east-1:123456789012:execution:golden-ami-pipeline:x",
           "startedAt": "2026-12-01T08:00:00Z"}
# One field of the wrong type, one level down: what a hand-edited state or event gets wrong.
NESTED_WRONG_TYPE = {
    "step": ({"context": CONTEXT, "event": "STARTED", "mode": "FAILURE", "taskToken": "t",
              "state": {"family": "al2023"}},
             "state.family: expected an object (a family of the targets document), found a string"),
    "reaper": ({"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
                "detail": {"executionArn": CONTEXT["executionId"], "status": "ABORTED",
                           "startDate": "yesterday"}},
               "detail.startDate: expected a whole number, found a string"),
}


@pytest.mark.parametrize("function", LocalStack.FUNCTIONS)
def test_every_function_names_a_nested_wrong_type_in_json_words(stack: LocalStack, function: str):
    event, words = NESTED_WRONG_TYPE["reaper" if function == "reaper" else "step"]
    if function == "publish-pointer":  # its own modes (PUBLISH, CHECK, RESTORE), not Cleanup's
        event = {**event, "mode": "CHECK"}
    status, answer = invoke(stack, function, json.dumps(event))
    assert status != 200, f"{function} accepted {event}: {answer}"
    assert answer["errorType"] == "InvalidInput", f"{function}: {answer}"
    message = answer["errorMessage"]
    assert message.startswith(f"invalid input: {words}; send "), f"{function}: {message}"
    # serde's Rust words are not what a person sending JSON can act on.
    for rust in ("struct ", "invalid type", "i64", "a sequence"):
        assert rust not in message, f"{function}: {message}"


@pytest.mark.parametrize("function", LocalStack.FUNCTIONS)
def test_a_missing_variable_reaches_the_runtime_api_as_config_error(stack: LocalStack, function: str):
    env = {k: v for k, v in stack.watch_env.items() if k != "TARGETS_PARAMETER_NAME"}
    waiting, code = cold_invoke(function, env, b"{}")  # the invocation that started this cold start
    assert waiting.completed is not None, f"{function} reported nothing to the Runtime API"
    assert waiting.outcome == "init_error", (waiting.outcome, waiting.body)
    assert waiting.error_type == "Runtime.ConfigError"
    error = waiting.json()
    assert error["errorType"] == "ConfigError", error
    assert "TARGETS_PARAMETER_NAME is missing" in error["errorMessage"], error
    assert code not in (None, 0), f"{function} exited {code} without its configuration"
