"""End-to-end: where the pointer stands, as every FAILED notice says it, checked against the
emulator's parameter and its history: untouched, moved by this run, or moved by someone else
during the run (a pin, which the run respects)."""

import json
from datetime import timezone

from checks import assert_failed_once, assert_nothing_left
from local.stack import (PINS_PATH, POINTER_PARAMETER_NAME, REGION, Facts, LocalStack,
                         put_image_parameter, read_facts)

EC2_DENIED = {"service": "ec2", "code": "UnauthorizedOperation", "status": 403,
              "message": "You are not authorized to perform this operation (injected)"}


def test_a_failure_before_publishing_says_the_pointer_is_untouched(fresh: LocalStack, before: Facts):
    result = fresh.run(on_enter=[("VerifyImage", {"apiFail": {**EC2_DENIED,
                                                              "action": "DescribeSnapshots"}})])
    after = read_facts(fresh)
    message = assert_failed_once(result, after, "VerifyImage")["message"]
    assert after.pointer == before.pointer
    assert (f"The pointer {POINTER_PARAMETER_NAME} in {REGION} still holds {after.pointer['value']} "
            f"(version {after.pointer['version']}), untouched since this run read it: "
            "consumers are not affected.") in message, message


def test_a_failure_after_publishing_says_this_run_moved_the_pointer(fresh: LocalStack, before: Facts):
    result = fresh.run(on_enter=[("Cleanup", {"apiFail": {**EC2_DENIED,
                                                          "action": "DeregisterImage"}})])
    after = read_facts(fresh)
    message = assert_failed_once(result, after, "Cleanup")["message"]
    assert after.pointer["version"] == before.pointer["version"] + 1
    assert (f"The pointer {POINTER_PARAMETER_NAME} in {REGION} ALREADY holds the new image "
            f"{after.pointer['value']} (version {after.pointer['version']}), published by this "
            "run") in message, message


def test_a_pin_during_the_run_is_named_with_who_and_when_and_respected(
        fresh: LocalStack, before: Facts):
    fresh.admin("config", {"automationPollsPerStep": 3})
    running = fresh.start_run(name="pinned-meanwhile", wait_ms=20)
    running.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == "StartTest")
    ssm = fresh.client("ssm")
    pin = fresh.seed.base_ami_id  # a person pins last month's source image, as the README says
    # As a person (or `golden-ami pin`) does on AWS: put, then read until SSM validated it.
    put_image_parameter(ssm, Name=POINTER_PARAMETER_NAME, Value=pin, Type="String",
                        Overwrite=True)
    result = running.wait()
    after = read_facts(fresh)
    # Caught before any pointer moves: CheckPointers reads every region's pointer first.
    message = assert_failed_once(result, after, "CheckPointers")["message"]
    assert result.root_cause["Error"] == "PointerChangedConcurrently"
    assert after.pointer["value"] == pin
    [entry] = [e for e in ssm.get_parameter_history(Name=POINTER_PARAMETER_NAME)["Parameters"]
               if e["Version"] == after.pointer["version"]]
    when = entry["LastModifiedDate"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (f"The pointer {POINTER_PARAMETER_NAME} in {REGION} was changed during this run by "
            f"{entry['LastModifiedUser']} at {when}: it now holds {pin} "
            f"(version {after.pointer['version']}), not the {before.pointer['value']} "
            f"(version {before.pointer['version']}) this run started from; this run published "
            "nothing, so that change (a pin?) is respected.") in message, message
    assert "untouched" not in message and "ALREADY" not in message
    assert_nothing_left(before, after)


def test_a_run_with_every_family_pinned_says_so_and_by_whom_when_it_starts(fresh: LocalStack):
    golden = fresh.golden_copy(fresh.seed.golden_ami_id)
    pinned = fresh.golden_ami("pin", golden, "--reason", "kernel regression")
    assert pinned.returncode == 0, pinned.stderr
    pin = json.loads(fresh.client("ssm").get_parameter(Name=f"{PINS_PATH}/default")
                     ["Parameter"]["Value"])
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    facts = read_facts(fresh)
    assert facts.automations == []  # nothing baked
    started = facts.notifications[0]
    assert started["subject"].endswith(
        "STARTED: nothing to patch, every family pinned (default)"), started["subject"]
    message = started["message"]
    assert ("The monthly patch of the golden images has started, but nothing runs: every image "
            f"family is pinned (default), by {pin['pinnedBy']}. This run bakes, tests and "
            "publishes nothing; every pointer keeps what it holds.") in message, message
    assert f"Family default: pinned to {golden} in {REGION}" in message
    assert "0 image families" not in message and " in ." not in message
