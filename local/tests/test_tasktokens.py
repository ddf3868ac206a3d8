"""Task tokens of the Step Functions callback pattern: the admin API the local runner uses
(register, poll, expire) and SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat with boto3."""

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import admin


@pytest.fixture
def sfn(client):
    return client("stepfunctions")


def tokens(endpoint, path, body):
    """POST /_golden/task-tokens[/path] -> (HTTP status, JSON answer)."""
    url = f"{endpoint}/_golden/task-tokens{'/' + path if path else ''}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def issue(endpoint, token="local-run-AwaitApproval-1-abc"):
    assert tokens(endpoint, "", {"token": token}) == (
        200, {"token": token, "status": "WAITING", "heartbeats": 0})
    return token


def poll(endpoint, token):
    status, answer = tokens(endpoint, "poll", {"token": token})
    assert status == 200, answer
    return answer


def refused(call, **kwargs):
    """The ClientError of a refused call: (code, HTTP status, message)."""
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response = err.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"]["Message"])


# ---- the admin API -----------------------------------------------------------------------

def test_a_registered_token_waits(endpoint):
    token = issue(endpoint)
    assert poll(endpoint, token) == {"token": token, "status": "WAITING", "heartbeats": 0}
    assert admin(endpoint, "state")["taskTokens"] == [
        {"token": token, "status": "WAITING", "heartbeats": 0}]


def test_an_unknown_token_is_a_404_with_a_message(endpoint):
    for path in ("poll", "expire"):
        status, answer = tokens(endpoint, path, {"token": "never-issued"})
        assert status == 404
        assert answer["error"].startswith("unknown task token 'never-issued'")


def test_a_token_is_registered_once_and_bodies_are_checked(endpoint):
    token = issue(endpoint)
    status, answer = tokens(endpoint, "", {"token": token})
    assert status == 400 and "registered already" in answer["error"]
    for body in ({}, {"token": ""}, {"token": 7}, {"token": "t", "extra": 1}):
        status, answer = tokens(endpoint, "", body)
        assert status == 400 and "token" in answer["error"], body
    assert tokens(endpoint, "bogus", {"token": token})[0] == 404


def test_expire_times_out_a_waiting_token_only(endpoint, sfn):
    token = issue(endpoint)
    assert tokens(endpoint, "expire", {"token": token}) == (
        200, {"token": token, "status": "TIMED_OUT", "heartbeats": 0})
    assert poll(endpoint, token)["status"] == "TIMED_OUT"
    # An answer that came first wins over the timeout: expire leaves it as it is.
    answered = issue(endpoint, "answered-before-the-timeout")
    sfn.send_task_success(taskToken=answered, output='{"approved": true}')
    status, answer = tokens(endpoint, "expire", {"token": answered})
    assert (status, answer["status"], answer["output"]) == (200, "SUCCEEDED", '{"approved": true}')


def test_reset_clears_the_tokens(endpoint, sfn):
    token = issue(endpoint)
    admin(endpoint, "reset", {})
    assert tokens(endpoint, "poll", {"token": token})[0] == 404
    assert admin(endpoint, "state")["taskTokens"] == []
    assert refused(sfn.send_task_success, taskToken=token, output="{}")[0] == "TaskDoesNotExist"


# ---- SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat ---------------------------------

def test_send_task_success_records_the_output(endpoint, sfn):
    token = issue(endpoint)
    output = json.dumps({"approved": True, "by": "ops@example.com"})
    assert sfn.send_task_success(taskToken=token, output=output)["ResponseMetadata"][
        "HTTPStatusCode"] == 200
    assert poll(endpoint, token) == {"token": token, "status": "SUCCEEDED", "heartbeats": 0,
                                     "output": output}


def test_send_task_success_needs_json_output_and_the_token_keeps_waiting(endpoint, sfn):
    token = issue(endpoint)
    code, status, message = refused(sfn.send_task_success, taskToken=token, output="approved")
    assert (code, status) == ("InvalidOutput", 400)
    assert "JSON" in message
    assert poll(endpoint, token)["status"] == "WAITING"
    sfn.send_task_success(taskToken=token, output='"approved"')  # a JSON string is JSON
    assert poll(endpoint, token)["output"] == '"approved"'


def test_send_task_failure_keeps_error_and_cause(endpoint, sfn):
    token = issue(endpoint)
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="not this month: change freeze")
    assert poll(endpoint, token) == {"token": token, "status": "FAILED", "heartbeats": 0,
                                     "error": "Rejected", "cause": "not this month: change freeze"}
    bare = issue(endpoint, "failed-without-details")
    sfn.send_task_failure(taskToken=bare)
    answer = poll(endpoint, bare)
    assert (answer["status"], answer["error"], answer["cause"]) == ("FAILED", None, None)


def test_heartbeats_are_counted_and_change_nothing_else(endpoint, sfn):
    token = issue(endpoint)
    for _ in range(3):
        sfn.send_task_heartbeat(taskToken=token)
    assert poll(endpoint, token) == {"token": token, "status": "WAITING", "heartbeats": 3}
    sfn.send_task_success(taskToken=token, output="{}")
    assert poll(endpoint, token)["heartbeats"] == 3


@pytest.mark.parametrize("send", [
    lambda sfn, token: sfn.send_task_success(taskToken=token, output="{}"),
    lambda sfn, token: sfn.send_task_failure(taskToken=token, error="Rejected", cause="no"),
    lambda sfn, token: sfn.send_task_heartbeat(taskToken=token),
], ids=["success", "failure", "heartbeat"])
def test_dead_tokens_are_refused(endpoint, sfn, send):
    # Never registered: TaskDoesNotExist, and nothing is recorded for it.
    code, status, message = refused(send, sfn=sfn, token="never-issued")
    assert (code, status) == ("TaskDoesNotExist", 400)
    assert "never-issued" in message
    assert tokens(endpoint, "poll", {"token": "never-issued"})[0] == 404
    # Timed out: TaskTimedOut, and it stays timed out.
    late = issue(endpoint, "timed-out")
    tokens(endpoint, "expire", {"token": late})
    assert refused(send, sfn=sfn, token=late)[:2] == ("TaskTimedOut", 400)
    assert poll(endpoint, late)["status"] == "TIMED_OUT"
    # Answered already (either way): TaskDoesNotExist, and the first answer stands.
    done = issue(endpoint, "answered")
    sfn.send_task_success(taskToken=done, output='{"first": true}')
    assert refused(send, sfn=sfn, token=done)[:2] == ("TaskDoesNotExist", 400)
    assert poll(endpoint, done)["output"] == '{"first": true}'
    failed = issue(endpoint, "failed")
    sfn.send_task_failure(taskToken=failed, error="Rejected")
    assert refused(send, sfn=sfn, token=failed)[:2] == ("TaskDoesNotExist", 400)
    assert poll(endpoint, failed)["error"] == "Rejected"


def test_errors_use_the_json_protocol_shape(endpoint):
    """What boto3 parses: x-amzn-ErrorType and {"__type", "message"} (checked on the wire)."""
    req = urllib.request.Request(
        endpoint, method="POST", data=json.dumps({"taskToken": "nope", "output": "{}"}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.0",
                 "X-Amz-Target": "AWSStepFunctions.SendTaskSuccess",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/states/"
                                  "aws4_request, SignedHeaders=host, Signature=x"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
    assert err.value.headers["x-amzn-ErrorType"] == "TaskDoesNotExist"
    body = json.loads(err.value.read())
    assert body["__type"] == "TaskDoesNotExist" and "nope" in body["message"]
