"""End-to-end: the real handlers (cargo lambda watch) run by the real ASL (local/runner) against the
moto extension. Assertions read the emulator's state; faults go only through /_golden/faults."""

import pytest

from checks import assert_failed_once, assert_nothing_left, failed_messages
from local.stack import LOCK_PARAMETER_NAME, Facts, LocalStack, automation_outputs, read_facts

# Task state -> a call it makes, failed with an error no SDK or ASL retries (access denied).
EC2_DENIED = {"service": "ec2", "code": "UnauthorizedOperation", "status": 403,
              "message": "You are not authorized to perform this operation (injected)"}
SSM_DENIED = {"service": "ssm", "code": "AccessDeniedException", "status": 400,
              "message": "User is not authorized to perform this action (injected)"}
SNS_DENIED = {"service": "sns", "code": "AuthorizationError", "status": 403,
              "message": "User is not authorized to perform SNS:Publish (injected)"}
FAILING_CALL = {
    "PlanRun": {**SSM_DENIED, "action": "GetParameter"},
    "ReadCurrentAmi": {**SSM_DENIED, "action": "GetParameter"},
    "NotifyStart": {**SNS_DENIED, "action": "Publish"},
    "StartBake": {**SSM_DENIED, "action": "StartAutomationExecution"},
    "CheckBake": {**SSM_DENIED, "action": "GetAutomationExecution"},
    "CopyImage": {**EC2_DENIED, "action": "CopyImage"},
    "CheckCopy": {**EC2_DENIED, "action": "DescribeImages"},
    "ShareImage": {**EC2_DENIED, "action": "ModifyImageAttribute"},
    "VerifyImage": {**EC2_DENIED, "action": "DescribeSnapshots"},
    "StartTest": {**SSM_DENIED, "action": "StartAutomationExecution"},
    "CheckTest": {**SSM_DENIED, "action": "GetAutomationExecution"},
    "CheckPointers": {**SSM_DENIED, "action": "GetParameter"},
    "PublishPointer": {**SSM_DENIED, "action": "PutParameter"},
    "Cleanup": {**EC2_DENIED, "action": "DeregisterImage"},
    "ReleaseLock": {**SSM_DENIED, "action": "DeleteParameter"},
    "NotifyRun": {**SNS_DENIED, "action": "Publish"},
}
AFTER_PUBLISH = {"Cleanup", "ReleaseLock", "NotifyRun"}


def test_happy_path(fresh: LocalStack, before: Facts):
    seed = fresh.seed
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)

    golden_id = after.pointer["value"]
    assert golden_id != seed.golden_ami_id
    assert after.pointer["version"] == seed.pointer_version + 1
    golden = after.images[golden_id]
    assert golden["state"] == "available"
    assert golden["tags"]["Type"] == "golden-ami"
    assert golden["tags"]["golden-ami:source-ami-id"] == seed.golden_ami_id
    assert golden["snapshots"]
    for snap in golden["snapshots"]:
        assert after.snapshots[snap]["encrypted"] is True
        assert after.snapshots[snap]["kmsKeyId"] == seed.kms_key_arn
    assert {"OrganizationArn": seed.organization_arn} in golden["launchPermissions"]

    bake, test = after.automations
    assert (bake["document"], test["document"]) == ("golden-ami-bake", "golden-ami-test")
    assert bake["status"] == test["status"] == "Success"
    intermediate = automation_outputs(bake)["createImage.ImageId"]
    assert intermediate not in after.images
    assert not [s for s, v in after.snapshots.items() if intermediate in v["description"]]
    assert_nothing_left(before, after, published=golden_id)

    assert after.events() == ["STARTED", "SUCCEEDED"]
    assert "STARTED" in after.notifications[0]["subject"]
    assert golden_id in after.notifications[1]["subject"]


@pytest.mark.parametrize("state", list(FAILING_CALL))
def test_a_failure_at_each_task_state_is_cleaned_up_and_notified_once(
        fresh: LocalStack, before: Facts, state: str):
    seed = fresh.seed
    result = fresh.run(on_enter=[(state, {"apiFail": FAILING_CALL[state]})])
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, state)
    assert fresh.admin("state")["faults"]["apiFail"] == [], "the fault was never hit"

    if state in AFTER_PUBLISH:
        published = after.pointer["value"]
        assert published != seed.golden_ami_id
        assert after.pointer["version"] == seed.pointer_version + 1
        assert published in failed["message"], failed["message"]
        assert_nothing_left(before, after, published=published)
    else:
        assert after.pointer == before.pointer
        assert_nothing_left(before, after)
    expected = {"PlanRun": ["FAILED"], "NotifyStart": ["FAILED"]}.get(state, ["STARTED", "FAILED"])
    assert after.events() == expected
    # However the run ended, it left the lock free for the next one.
    assert not fresh.client("ssm").get_parameters(Names=[LOCK_PARAMETER_NAME])["Parameters"]


def test_a_bake_failing_inside_the_automation(fresh: LocalStack, before: Facts):
    fresh.admin("faults", {"automationStepFail": {"step": "updateOs",
                                                  "message": "dnf upgrade failed (injected)"}})
    result = fresh.run()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "CheckBake")
    assert "BakeFailed" in failed["subject"]
    assert "updateOs" in failed["message"], failed["message"]
    [automation] = after.automations
    assert automation["status"] == "Failed"
    assert automation_outputs(automation)["launchInstance.InstanceId"]
    assert after.pointer == before.pointer
    assert_nothing_left(before, after)


def test_throttling_is_retried_and_the_run_succeeds(fresh: LocalStack, before: Facts):
    # Four throttles outlast the SDK's own three attempts: the handler raises Throttled and the
    # ASL's Retry runs CopyImage again. GetAutomationExecution's two are absorbed by the SDK.
    fresh.admin("faults", {"apiFail": {"service": "ec2", "action": "CopyImage", "throttle": True,
                                       "times": 4}})
    fresh.admin("faults", {"apiFail": {"service": "ssm", "action": "GetAutomationExecution",
                                       "throttle": True, "times": 2}})
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    assert fresh.admin("state")["faults"]["apiFail"] == []
    retried = [e for e in result.events if e["type"] == "StateRetried"]
    assert [e["state"] for e in retried] == ["CopyImage"]
    assert retried[0]["error"] == "Throttled"
    after = read_facts(fresh)
    assert after.pointer["version"] == before.pointer["version"] + 1
    assert after.events() == ["STARTED", "SUCCEEDED"]
    assert_nothing_left(before, after, published=after.pointer["value"])


def _missing(stack: LocalStack) -> None:
    stack.client("ssm").delete_parameter(Name="/golden-ami/current")


def _not_an_ami(stack: LocalStack) -> None:
    ssm = stack.client("ssm")
    ssm.delete_parameter(Name="/golden-ami/current")
    ssm.put_parameter(Name="/golden-ami/current", Type="String", DataType="text",
                      Tier="Advanced", Value="golden-ami-2026-11")


def _deregistered(stack: LocalStack) -> None:
    stack.client("ec2").deregister_image(ImageId=stack.seed.golden_ami_id)


def _key_disabled(stack: LocalStack) -> None:
    # moto 5.2.5 answers DisableKey with a key ARN with HTTP 500; the key id works.
    stack.client("kms").disable_key(KeyId=stack.seed.kms_key_arn.rsplit("/", 1)[-1])


@pytest.mark.parametrize("setup, state, error", [
    (_missing, "ReadCurrentAmi", "PointerNotFound"),
    (_not_an_ami, "ReadCurrentAmi", "InvalidInput"),
    (_deregistered, "ReadCurrentAmi", "SourceImageNotFound"),
    (_key_disabled, "CopyImage", "KmsKeyUnusable"),
], ids=["pointer-missing", "pointer-not-an-ami", "image-deregistered", "kms-key-disabled"])
def test_bad_starting_points_fail_clearly_and_change_nothing(fresh: LocalStack, setup, state, error):
    setup(fresh)
    before = read_facts(fresh)
    result = fresh.run()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, state)
    assert result.root_cause["Error"] == error, result.root_cause
    assert error in failed["subject"]
    if setup is _not_an_ami:
        assert "golden-ami-2026-11" in failed["message"] and "not an AMI id" in failed["message"]
    assert after.pointer == before.pointer
    assert_nothing_left(before, after)
    if state == "ReadCurrentAmi":
        assert after.automations == []  # no bake was even started


def test_a_second_execution_during_a_bake_is_skipped(fresh: LocalStack, before: Facts):
    # A bake of several polls, each poll 100 ms apart: long enough to start B in the middle.
    fresh.admin("config", {"automationPollsPerStep": 3})
    first = fresh.start_run(name="first", wait_ms=100)
    first.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == "CheckBake")
    second = fresh.run(name="second")
    result = first.wait()

    assert second.succeeded, second.stderr[-3000:]
    assert second.end_state == "SkippedAnotherRunInProgress"
    assert "StartBake" not in second.path()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)
    assert [a["document"] for a in after.automations] == ["golden-ami-bake", "golden-ami-test"]
    assert sorted(after.events()) == ["SKIPPED", "STARTED", "SUCCEEDED"]
    [skipped] = [n for n in after.notifications if n["event"] == "SKIPPED"]
    assert "Another run (execution " in skipped["message"] and ":first)" in skipped["message"], \
        skipped["message"]
    assert after.pointer["version"] == before.pointer["version"] + 1
    assert_nothing_left(before, after, published=after.pointer["value"])
