"""End-to-end: runs that end without their failure path. The runner process is killed where it
stands (the local StopExecution: no Catch, no cleanup, no notice runs), the status-change event
is delivered to the reaper the way EventBridge would, and then nothing of the run is left, its
lock is gone, and exactly one FAILED notice says how it ended and what was removed."""

import json
import time

from checks import assert_nothing_left, failed_messages
from local.stack import APPROVALS_PATH, LOCK_PARAMETER_NAME, Facts, LocalStack, read_facts


def lock(stack: LocalStack) -> dict | None:
    found = stack.client("ssm").get_parameters(Names=[LOCK_PARAMETER_NAME])["Parameters"]
    return json.loads(found[0]["Value"]) if found else None


def stop_at(stack: LocalStack, name: str, state: str) -> dict:
    """Start a run, kill it as soon as `state` is entered; the ExecutionStarted record."""
    running = stack.start_run(name=name, wait_ms=50)
    running.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == state)
    return stack.stop_execution(running)


def reap(stack: LocalStack, started: dict, status: str, **detail) -> dict:
    code, answer = stack.invoke("reaper", stack.status_change(started, status, **detail))
    assert code == 200, answer
    return answer


def test_a_run_stopped_mid_bake_is_swept_and_reported_once(fresh: LocalStack, before: Facts):
    started = stop_at(fresh, "stopped-mid-bake", "CheckBake")
    killed = read_facts(fresh)
    assert [a["status"] for a in killed.automations] == ["InProgress"], killed.automations
    assert lock(fresh)["executionId"] == started["executionArn"]
    assert killed.events() == ["STARTED"]

    answer = reap(fresh, started, "ABORTED")
    assert answer["action"] == "REAPED", answer
    assert answer["lock"]["released"] is True
    after = read_facts(fresh)
    assert [a["status"] for a in after.automations] == ["Cancelled"], after.automations
    assert answer["cleanup"]["stoppedAutomations"] == [after.automations[0]["id"]]
    assert_nothing_left(before, after)
    assert after.pointer == before.pointer
    assert lock(fresh) is None
    assert after.events() == ["STARTED", "FAILED"]
    [notice] = failed_messages(after)
    assert "ExecutionAborted" in notice["subject"], notice["subject"]
    assert "stopped (StopExecution)" in notice["message"], notice["message"]
    assert f"stopped automation {after.automations[0]['id']}" in notice["message"], notice["message"]
    assert (f"holds {before.pointer['value']} (version {before.pointer['version']}); this run did not "
            "change it.") in notice["message"], notice["message"]


def test_a_run_timed_out_mid_copy_loses_its_copy_and_intermediate_image(fresh: LocalStack, before: Facts):
    started = stop_at(fresh, "timed-out-mid-copy", "CheckCopy")
    killed = read_facts(fresh)
    made = set(killed.images) - set(before.images)
    assert len(made) == 2, made  # the intermediate image and the pending golden copy

    answer = reap(fresh, started, "TIMED_OUT")
    assert answer["action"] == "REAPED", answer
    assert sorted(answer["cleanup"]["deregisteredImages"]) == sorted(made)
    after = read_facts(fresh)
    assert_nothing_left(before, after)
    assert after.pointer == before.pointer
    assert lock(fresh) is None
    [notice] = failed_messages(after)
    assert "ExecutionTimedOut" in notice["subject"], notice["subject"]
    assert "TimeoutSeconds" in notice["message"], notice["message"]
    for image in made:
        assert image in notice["message"], notice["message"]

    # EventBridge delivers at least once: a second delivery finds nothing left to remove.
    again = reap(fresh, started, "TIMED_OUT")
    assert again["cleanup"]["deregisteredImages"] == [], again


def test_a_run_that_failed_through_its_own_failure_path_is_left_alone(fresh: LocalStack, before: Facts):
    result = fresh.run(name="failed-and-notified",
                       on_enter=[("CopyImage", {"apiFail": {
                           "service": "ec2", "action": "CopyImage", "code": "InvalidParameterValue",
                           "status": 400, "message": "The snapshot is not available (injected)"}})])
    assert result.status == "FAILED" and result.error == "GoldenAmiPipelineFailed", result.stderr[-2000:]
    notified = read_facts(fresh).notifications
    started = next(e for e in result.events if e["type"] == "ExecutionStarted")

    answer = reap(fresh, started, "FAILED", error=result.error, cause=result.cause)
    assert answer["action"] == "IGNORED", answer
    assert "already cleaned up and notified" in answer["reason"]
    assert read_facts(fresh).notifications == notified


def test_a_gated_run_stopped_while_it_waits_for_approval_names_the_request_it_withdrew(
        fresh: LocalStack, before: Facts):
    fresh.set_targets(approval_minutes=60)
    running = fresh.start_run(name="stopped-awaiting", wait_ms=50)
    running.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == "AwaitApproval")
    ssm = fresh.client("ssm")
    deadline = time.monotonic() + 60
    while not (stored := ssm.get_parameters_by_path(Path=APPROVALS_PATH, Recursive=True)["Parameters"]):
        assert time.monotonic() < deadline, "no approval request was stored"
        time.sleep(0.05)
    [request] = [p["Name"] for p in stored]
    started = fresh.stop_execution(running)

    answer = reap(fresh, started, "ABORTED")
    assert answer["action"] == "REAPED", answer
    assert answer["cleanup"]["withdrawnApprovals"] == [request], answer["cleanup"]
    assert ssm.get_parameters_by_path(Path=APPROVALS_PATH, Recursive=True)["Parameters"] == []
    after = read_facts(fresh)
    assert_nothing_left(before, after)
    [notice] = failed_messages(after)
    assert (f"withdrew the approval request {request} (the run that asked is over: there is "
            "nothing left to approve or deny)") in notice["message"], notice["message"]
