"""End-to-end: the trust gate. The golden copy is booted and checked against the hardening
baseline before the pointer moves; the bake records what the update changed; a run with nothing
to patch ends SKIPPED without an image. The check itself is the real infra/baseline/check.sh,
run by the extension against a fixture disk (a fault breaks a chosen control)."""

import pytest

from checks import assert_failed_once, assert_nothing_left
from local.stack import Facts, LocalStack, automation_outputs, read_facts

TEST_DOCUMENT = "golden-ami-test"
CHANGE_SUMMARY = ("What changed: 12 packages, 3 advisories: 1 Critical, 2 Important, 7 CVEs, "
                  "kernel 6.1.112 -> 6.1.115.")


def automation(facts: Facts, document: str) -> dict:
    [found] = [a for a in facts.automations if a["document"] == document]
    return found


def test_a_passing_boot_test_publishes_and_reports_what_changed(fresh: LocalStack, before: Facts):
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)
    golden_id = after.pointer["value"]
    assert after.pointer["version"] == before.pointer["version"] + 1

    # The test launched an instance FROM the golden copy, checked it, and terminated it.
    test = automation(after, TEST_DOCUMENT)
    assert test["status"] == "Success"
    assert test["parameters"]["ImageId"] == golden_id
    instance = automation_outputs(test)["launchInstance.InstanceId"]
    assert after.instances[instance]["imageId"] == golden_id
    assert after.instances[instance]["state"] == "terminated"
    check = automation_outputs(test)["runCheck.Output"]
    assert " fail=0 " in check.splitlines()[-1], check

    # The golden image carries the change summary.
    tags = after.images[golden_id]["tags"]
    assert tags["golden-ami:packages"] == "12"
    assert tags["golden-ami:advisories"] == "3 (1 Critical, 2 Important)"
    assert tags["golden-ami:cves"] == "7"
    assert tags["golden-ami:kernel"] == "6.1.115-126.197.amzn2023.x86_64"
    report_prefix = tags["golden-ami:update-report"]
    assert report_prefix.startswith(f"s3://{fresh.seed.report_bucket}/updates/")

    # The full report and the check's output are in the report bucket.
    updates = [k for k in after.reports if k.startswith("updates/")]
    tests = [k for k in after.reports if k.startswith("tests/")]
    assert len(updates) == 1 and len(tests) == 1, sorted(after.reports)
    assert f"s3://{fresh.seed.report_bucket}/{updates[0]}".startswith(report_prefix)
    assert "ALAS2023-2024-" in after.reports[updates[0]]
    assert after.reports[tests[0]] == check

    succeeded = [n for n in after.notifications if n["event"] == "SUCCEEDED"][0]["message"]
    assert CHANGE_SUMMARY in succeeded, succeeded
    assert "Advisories: ALAS2023-" in succeeded
    assert f"Full update report: {report_prefix}" in succeeded
    assert f"on instance {instance} launched from {golden_id}" in succeeded
    assert_nothing_left(before, after, published=golden_id)


def test_a_failed_control_publishes_nothing_and_names_the_control(fresh: LocalStack, before: Facts):
    fresh.admin("faults", {"baselineFail": {"controls": ["ssh-ciphers"]}})
    result = fresh.run()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "CheckTest")
    assert result.root_cause["Error"] == "TestFailed"
    assert "TestFailed" in failed["subject"]
    message = failed["message"]
    assert "control ssh-ciphers failed:" in message, message
    assert "control selinux-config" not in message  # only the failed control is named
    assert after.pointer == before.pointer
    assert (f"still holds {before.pointer['value']} (version {before.pointer['version']}), "
            "untouched since this run read it") in message
    test = automation(after, TEST_DOCUMENT)
    assert test["status"] == "Failed"
    assert after.instances[automation_outputs(test)["launchInstance.InstanceId"]]["state"] == "terminated"
    # Both the golden copy (never published) and the intermediate image are gone.
    assert_nothing_left(before, after)


@pytest.mark.parametrize("step", ["launchInstance", "waitForSsm", "runCheck", "terminateInstance"])
def test_a_failure_at_each_test_document_step_publishes_nothing_and_leaks_nothing(
        fresh: LocalStack, before: Facts, step: str):
    fresh.admin("faults", {"automationStepFail": {
        "step": step, "document": TEST_DOCUMENT, "message": f"{step} failed (injected)"}})
    result = fresh.run()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "CheckTest")
    assert result.root_cause["Error"] == "TestFailed"
    assert f"{step} failed (injected)" in failed["message"], failed["message"]
    if step == "waitForSsm":
        assert "may not boot" in failed["message"]
    if step == "terminateInstance":
        # The document could not terminate its instance: the failure path did.
        assert "terminated instances i-" in failed["message"], failed["message"]
    assert after.pointer == before.pointer
    assert_nothing_left(before, after)


def test_a_boot_test_cancelled_from_outside_fails_the_run_cleanly(fresh: LocalStack, before: Facts):
    fresh.admin("config", {"automationPollsPerStep": 3})
    running = fresh.start_run(name="cancelled-test", wait_ms=50)
    running.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == "CheckTest")
    test = [a for a in fresh.admin("state")["executions"] if a["document"] == TEST_DOCUMENT][0]
    fresh.client("ssm").stop_automation_execution(AutomationExecutionId=test["id"], Type="Cancel")
    result = running.wait()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "CheckTest")
    # Said as what happened, not as an image that may not boot.
    assert "was cancelled (StopAutomationExecution), not failed" in failed["message"], \
        failed["message"]
    assert "may not boot" not in failed["message"], failed["message"]
    assert automation(after, TEST_DOCUMENT)["status"] == "Cancelled"
    assert after.pointer == before.pointer
    assert_nothing_left(before, after)


def test_nothing_to_patch_ends_skipped_without_an_image(fresh: LocalStack, before: Facts):
    fresh.admin("faults", {"updates": {"scenario": "none"}})
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    assert result.end_state == "Succeeded"
    assert "FamilyUpToDate" in result.path()
    assert "CopyImage" not in result.path() and "StartTest" not in result.path()
    after = read_facts(fresh)
    assert after.events() == ["STARTED", "SKIPPED"]
    skipped = after.notifications[1]
    assert f"SKIPPED: {before.pointer['value']} is up to date" in skipped["subject"]
    assert "without creating an image" in skipped["message"]
    bake = automation(after, "golden-ami-bake")
    assert bake["status"] == "Success"
    assert after.instances[automation_outputs(bake)["launchInstance.InstanceId"]]["state"] == "terminated"
    assert after.pointer == before.pointer
    assert_nothing_left(before, after)
