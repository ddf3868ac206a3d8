"""End-to-end: a family's pointers move in all of its regions or in none. A pointer changed by
hand in one region during the run stops every region before any pointer moves; a write refused
in one region after another region's pointer moved puts that pointer back (and waits until SSM
shows it), and the FAILED notice says so."""

from local.stack import (POINTER_PARAMETER_NAME, REGION, Facts, LocalStack, put_image_parameter,
                         read_facts)

OTHER = "us-east-1"
DEFAULT_FAMILY = {"name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
                  "instanceType": "t3.small"}


def two_regions(stack: LocalStack) -> str:
    """The default family at home and in us-east-1, each pointer on a golden image of the family.
    Returns the golden key's replica in us-east-1."""
    replica = stack.add_region(OTHER)
    stack.set_targets([DEFAULT_FAMILY], [OTHER])
    seed = stack.seed
    put_image_parameter(stack.client("ssm"), Name=POINTER_PARAMETER_NAME, Type="String",
                        Value=stack.golden_copy(seed.golden_ami_id), Overwrite=True)
    put_image_parameter(stack.client("ssm", region=OTHER), Name=POINTER_PARAMETER_NAME,
                        Value=stack.golden_copy(seed.golden_ami_id, region=OTHER, key_arn=replica),
                        Type="String", Tier="Advanced")
    return replica


def failed_message(after: Facts) -> str:
    [failed] = [n for n in after.notifications if n["event"] == "FAILED"]
    return failed["message"]


def test_a_pointer_changed_by_hand_in_one_region_stops_every_region(fresh: LocalStack):
    replica = two_regions(fresh)
    before = read_facts(fresh)
    fresh.admin("config", {"automationPollsPerStep": 3})
    running = fresh.start_run(name="changed-by-hand", wait_ms=20)
    running.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == "StartTest")
    by_hand = fresh.golden_copy(fresh.seed.golden_ami_id, region=OTHER, key_arn=replica)
    put_image_parameter(fresh.client("ssm", region=OTHER), Name=POINTER_PARAMETER_NAME,
                        Value=by_hand, Type="String", Overwrite=True)
    result = running.wait()
    after = read_facts(fresh)

    assert result.status == "FAILED"
    home = (POINTER_PARAMETER_NAME, REGION)
    assert after.pointers[home] == before.pointers[home]  # never moved
    assert after.pointers[(POINTER_PARAMETER_NAME, OTHER)]["value"] == by_hand
    message = failed_message(after)
    assert (f"The pointer {POINTER_PARAMETER_NAME} in {REGION} still holds "
            f"{before.pointers[home]['value']} (version {before.pointers[home]['version']}), "
            "untouched since this run read it") in message, message
    assert f"The pointer {POINTER_PARAMETER_NAME} in {OTHER} was changed during this run" in message


def test_a_write_refused_in_one_region_puts_back_the_pointer_moved_in_another(fresh: LocalStack):
    two_regions(fresh)
    before = read_facts(fresh)
    refused = {"apiFail": {"service": "ssm", "action": "PutParameter", "region": OTHER,
                           "code": "AccessDeniedException", "status": 400,
                           "message": "not authorized to perform ssm:PutParameter (injected)"}}
    result = fresh.run(on_enter=[("PublishPointer", refused)])
    after = read_facts(fresh)

    assert result.status == "FAILED"
    home = (POINTER_PARAMETER_NAME, REGION)
    # Moved by this run, then put back: the value it held, two versions on.
    assert after.pointers[home]["value"] == before.pointers[home]["value"]
    assert after.pointers[home]["version"] == before.pointers[home]["version"] + 2
    assert after.pointers[(POINTER_PARAMETER_NAME, OTHER)] == before.pointers[(POINTER_PARAMETER_NAME, OTHER)]
    message = failed_message(after)
    assert (f"The pointer {POINTER_PARAMETER_NAME} in {REGION} was put back by this run to "
            f"{before.pointers[home]['value']} (version {after.pointers[home]['version']}) after it "
            "had moved it") in message, message
