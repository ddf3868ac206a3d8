"""The optional approval gate, end to end: a gated family waits at AwaitApproval after its boot
test, with its request (the task token) stored and announced; `golden-ami approve` publishes,
`golden-ami deny` and the deadline publish nothing and leave nothing. The local runner honours
the callback pattern with the moto extension's task tokens (local/moto_ext/tasktokens.py); the
deadline is shortened with --callback-timeout-ms the way Waits are with --wait-ms."""

import json
import re
import time

from checks import assert_failed_once, assert_nothing_left

from local.stack import (APPROVALS_PATH, POINTER_PARAMETER_NAME, REGION, Facts, LocalStack,
                         RunningExecution, read_facts, read_notifications)


def waiting_request(fresh: LocalStack, running: RunningExecution, name: str) -> dict:
    """The stored request, once RequestApproval has written it."""
    running.wait_for(lambda e: e.get("type") == "StateEntered" and e.get("state") == "AwaitApproval")
    ssm = fresh.client("ssm")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = ssm.get_parameters_by_path(Path=f"{APPROVALS_PATH}/{name}", Recursive=True)["Parameters"]
        if found:
            [parameter] = found
            assert parameter["Name"] == f"{APPROVALS_PATH}/{name}/default"
            return json.loads(parameter["Value"])
        assert running.proc.poll() is None, "the run ended before it asked for approval"
        time.sleep(0.05)
    raise AssertionError("no approval request was stored")


def no_request_left(fresh: LocalStack) -> bool:
    return fresh.client("ssm").get_parameters_by_path(Path=APPROVALS_PATH, Recursive=True)["Parameters"] == []


def test_a_gated_family_waits_for_approve_then_publishes(fresh: LocalStack, before: Facts):
    fresh.set_targets(approval_minutes=60)
    running = fresh.start_run(name="gated-approve")
    request = waiting_request(fresh, running, "gated-approve")
    golden = request["images"][0]["amiId"]
    assert request["family"] == "default" and request["taskToken"].startswith("local-")

    # Nothing moved while it waits; the request says what approving publishes and how.
    pointer = fresh.client("ssm").get_parameter(Name=POINTER_PARAMETER_NAME)["Parameter"]
    assert (pointer["Value"], pointer["Version"]) == (before.pointer["value"], before.pointer["version"])
    [asked] = [n for n in read_notifications(fresh) if n["event"] == "APPROVAL_REQUESTED"]
    assert f"APPROVAL NEEDED: default {golden}" in asked["subject"], asked["subject"]
    assert ("To publish: golden-ami approve gated-approve --family default --stack golden-ami-pipeline"
            in asked["message"]), asked["message"]
    assert "What changed: " in asked["message"] and "Boot test: " in asked["message"]
    status = fresh.golden_ami("status")
    assert f"waiting for approval: default in gated-approve until {request['deadline']}" in status.stdout, \
        status.stdout

    approved = fresh.golden_ami("approve", "gated-approve", "--reason", "CAB-1234")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("default in gated-approve: approved by arn:aws:"), approved.stdout
    result = running.wait()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)
    assert after.pointer["value"] == golden
    end = after.notifications[-1]
    assert end["event"] == "SUCCEEDED"
    assert "Approved by arn:aws:" in end["message"] and "(CAB-1234)." in end["message"], end["message"]
    assert no_request_left(fresh)
    assert_nothing_left(before, after, published=golden)


def test_deny_publishes_nothing_and_removes_the_copies(fresh: LocalStack, before: Facts):
    fresh.set_targets(approval_minutes=60)
    running = fresh.start_run(name="gated-deny")
    waiting_request(fresh, running, "gated-deny")
    refused = fresh.golden_ami("deny", "gated-deny", "--reason", " ")
    assert refused.returncode == 2 and "--reason is empty" in refused.stderr

    denied = fresh.golden_ami("deny", "gated-deny", "--reason", "kernel regression on the fleet")
    assert denied.returncode == 0, denied.stderr
    result = running.wait()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "AwaitApproval")
    assert result.root_cause["Error"] == "ApprovalDenied"
    assert "kernel regression on the fleet" in failed["message"], failed["message"]
    assert after.pointer == before.pointer
    assert no_request_left(fresh)
    assert_nothing_left(before, after)


def test_no_decision_by_the_deadline_fails_the_family_and_withdraws_the_request(
        fresh: LocalStack, before: Facts):
    fresh.set_targets(approval_minutes=60)
    result = fresh.run(name="gated-expired", callback_timeout_ms=300)
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "AwaitApproval")
    assert result.root_cause["Error"] == "States.Timeout"
    assert "nobody approved or denied it within its 1 hour deadline; nothing was published." \
        in failed["message"], failed["message"]
    assert after.pointer == before.pointer
    assert no_request_left(fresh)  # cleanup withdrew it
    assert_nothing_left(before, after)
    late = fresh.golden_ami("approve", "gated-expired")
    assert late.returncode == 2 and "nothing of execution gated-expired waits for approval" in late.stderr


def stored_request(fresh: LocalStack, running: RunningExecution) -> tuple[str, dict]:
    """The one stored request and its parameter name, once RequestApproval has written it."""
    running.wait_for(lambda e: e.get("type") == "StateEntered" and e.get("state") == "AwaitApproval")
    ssm = fresh.client("ssm")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = ssm.get_parameters_by_path(Path=APPROVALS_PATH, Recursive=True)["Parameters"]
        if found:
            [parameter] = found
            return parameter["Name"], json.loads(parameter["Value"])
        assert running.proc.poll() is None, "the run ended before it asked for approval"
        time.sleep(0.05)
    raise AssertionError("no approval request was stored")


# Step Functions allows `@` in an execution's name; SSM does not in a parameter's
# ("Requirements and constraints for parameter names": letters, digits, `_.-/`).
UNSAFE_NAME = "rerun@dec"
SAFE_FORM = re.compile(re.escape(APPROVALS_PATH) + r"/rerun_dec-[0-9a-f]{10}/default")


def test_a_run_whose_name_ssm_refuses_is_approved_by_that_name_and_publishes(
        fresh: LocalStack, before: Facts):
    fresh.set_targets(approval_minutes=60)
    running = fresh.start_run(name=UNSAFE_NAME)
    name, request = stored_request(fresh, running)
    # Stored under the name's SSM form; the request keeps the real name.
    assert SAFE_FORM.fullmatch(name), name
    assert request["executionId"].endswith(f":{UNSAFE_NAME}"), request
    golden = request["images"][0]["amiId"]
    [asked] = [n for n in read_notifications(fresh) if n["event"] == "APPROVAL_REQUESTED"]
    assert f"To publish: golden-ami approve {UNSAFE_NAME} --family default" in asked["message"], \
        asked["message"]
    status = fresh.golden_ami("status")
    assert f"waiting for approval: default in {UNSAFE_NAME} until {request['deadline']}" in status.stdout, \
        status.stdout

    approved = fresh.golden_ami("approve", UNSAFE_NAME, "--reason", "CAB-1235")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith(f"default in {UNSAFE_NAME}: approved by arn:aws:"), approved.stdout
    result = running.wait()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)
    assert after.pointer["value"] == golden
    assert after.notifications[-1]["event"] == "SUCCEEDED"
    assert no_request_left(fresh)
    assert_nothing_left(before, after, published=golden)


def test_a_denied_run_whose_name_ssm_refuses_withdraws_its_request_without_error(
        fresh: LocalStack, before: Facts):
    fresh.set_targets(approval_minutes=60)
    running = fresh.start_run(name=UNSAFE_NAME)
    name, request = stored_request(fresh, running)
    assert SAFE_FORM.fullmatch(name), name
    # Denied with SendTaskFailure alone (as `golden-ami deny` answers, before it removes the
    # request itself): the request is left for the family's cleanup to withdraw.
    fresh.client("stepfunctions").send_task_failure(
        taskToken=request["taskToken"], error="ApprovalDenied",
        cause=json.dumps({"errorType": "ApprovalDenied", "errorMessage": "denied: kernel regression"}))
    result = running.wait()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "AwaitApproval")
    assert result.root_cause["Error"] == "ApprovalDenied"
    assert "kernel regression" in failed["message"], failed["message"]
    # The family's cleanup (its result, as the runner records it) withdrew it, by its SSM form.
    [cleanup] = [e["output"] for e in result.events if e.get("type") == "StateExited"
                 and e.get("state") == "FamilyCleanupAfterFailure" and "output" in e]
    assert cleanup["withdrawnApprovals"] == [name], cleanup
    assert "Cleanup FAILED" not in failed["message"], failed["message"]
    assert after.pointer == before.pointer
    assert no_request_left(fresh)
    assert_nothing_left(before, after)


def test_the_request_says_what_the_pointer_holds_now_in_every_region(fresh: LocalStack, before: Facts):
    other = "us-east-1"
    fresh.add_region(other)
    fresh.set_targets(regions=[other], approval_minutes=60)
    running = fresh.start_run(name="gated-regions")
    request = waiting_request(fresh, running, "gated-regions")
    images = {image["region"]: image["amiId"] for image in request["images"]}
    assert set(images) == {REGION, other}, images
    [asked] = [n for n in read_notifications(fresh) if n["event"] == "APPROVAL_REQUESTED"]
    message = asked["message"]
    # Read when the request is written, in each region: home holds last month's image, the
    # other region has no pointer until the family is first published there.
    assert f"- {REGION}: {images[REGION]} (now {before.pointer['value']})\n" in message, message
    assert (f"- {other}: {images[other]} (no pointer there yet: approving creates it and adds it "
            "to the region's pointer share)") in message, message

    denied = fresh.golden_ami("deny", "gated-regions", "--reason", "not this month")
    assert denied.returncode == 0, denied.stderr
    result = running.wait()
    assert result.root_cause["Error"] == "ApprovalDenied"
    assert no_request_left(fresh)
