"""Where AWS is unkind, the pipeline copes: an aws:ec2:image pointer write that shows only after
SSM validated it (or never), a share association that is ASSOCIATING before it is ASSOCIATED (or
FAILED), a pointer that fell out of its share, a source image disabled right before the bake,
and a failure path that runs while a pointer write is still being validated. The stand-in holds
each of these the way AWS does (local/moto_ext: ssm_params.py, ram.py, image_use.py)."""

import time

from checks import assert_failed_once, assert_nothing_left
from local.stack import (POINTER_PARAMETER_NAME, POINTER_SHARE_NAME, REGION, Facts, LocalStack,
                         read_facts)

DEFAULT = {"name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
           "instanceType": "t3.small"}
POINTER_WRITE = "golden-ami:pointer-write"


def association(stack: LocalStack, pointer: str) -> str | None:
    """The pointer's association with the region's pointer share, as RAM reports it."""
    arn = f"arn:aws:ssm:{REGION}:{stack.seed.account_id}:parameter{pointer}"
    found = stack.client("ram").get_resource_share_associations(
        associationType="RESOURCE", resourceShareArns=[stack.seed.pointer_share_arn],
        resourceArn=arn)["resourceShareAssociations"]
    return found[0]["status"] if found else None


def publish_outputs(result) -> list[dict]:
    return [e["output"] for e in result.events
            if e.get("type") == "StateExited" and e.get("state") == "PublishPointer" and e.get("output")]


def test_pointers_move_once_ssm_validated_them_and_are_shared_once_ram_associated_them(
        fresh: LocalStack, before: Facts):
    # Three reads before each write shows, three before each association is ASSOCIATED; one
    # family's pointer exists, the other's is created by this run.
    fresh.admin("config", {"parameterValidationReads": 3, "ramAssociationReads": 3})
    arm = fresh.add_family("arm64", "arm64", seed_pointer=False)
    fresh.set_targets([DEFAULT, arm])
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)
    assert after.pointer["version"] == before.pointer["version"] + 1
    assert after.pointer["value"] != before.pointer["value"]
    created = after.pointers[("/golden-ami/arm64", REGION)]
    assert created["version"] == 1
    for pointer in (POINTER_PARAMETER_NAME, "/golden-ami/arm64"):
        assert association(fresh, pointer) == "ASSOCIATED"
    assert [n["event"] for n in after.notifications] == ["STARTED", "SUCCEEDED"]


def test_a_pointer_outside_its_share_is_shared_again_when_it_moves(fresh: LocalStack):
    unshared = fresh.add_family("unshared", shared=False)
    fresh.set_targets([unshared])
    assert association(fresh, "/golden-ami/unshared") is None
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    assert association(fresh, "/golden-ami/unshared") == "ASSOCIATED"
    [published] = publish_outputs(result)
    assert published["reshared"] is True, published


def test_a_failed_association_is_named_and_fails_the_family(fresh: LocalStack, before: Facts):
    arm = fresh.add_family("arm64", "arm64", seed_pointer=False)
    fresh.set_targets([arm])
    fresh.admin("faults", {"ramAssociationFail": {
        "resourceArnContains": "/golden-ami/arm64",
        "message": "The resource is not in the Advanced tier (injected)"}})
    result = fresh.run()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "PublishPointer")
    assert result.root_cause["Error"] == "PointerShareFailed", result.root_cause
    assert POINTER_SHARE_NAME in failed["message"] or fresh.seed.pointer_share_arn in failed["message"]
    assert "FAILED (The resource is not in the Advanced tier (injected))" in failed["message"]
    # The pointer exists (SSM validated it) but the organization cannot read it: the notice says
    # so and the next run associates it again.
    assert association(fresh, "/golden-ami/arm64") != "ASSOCIATED"


def test_a_failure_while_a_pointer_write_is_validated_keeps_the_image_the_pointer_then_holds(
        fresh: LocalStack, before: Facts):
    # SSM is slower than PublishPointer waits (5 s locally): the family fails while the write is
    # still being validated. The golden copy must survive the failure path: SSM then applies the
    # write, and the pointer holds it.
    fresh.admin("config", {"parameterValidationReads": 600})
    result = fresh.run()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "PublishPointer")
    assert result.root_cause["Error"] == "PointerValidationFailed", result.root_cause
    assert after.pointer == before.pointer  # not yet
    [written] = [i for i, v in after.images.items() if v["tags"].get(POINTER_WRITE)]
    assert after.images[written]["state"] == "available"
    assert after.images[written]["tags"][POINTER_WRITE] == POINTER_PARAMETER_NAME
    assert "SSM may still validate it: not removed" in failed["message"], failed["message"]
    ssm = fresh.client("ssm")
    for _ in range(700):
        value = ssm.get_parameter(Name=POINTER_PARAMETER_NAME)["Parameter"]["Value"]
        if value == written:
            break
    assert value == written, "the held write never showed"
    assert fresh.client("ec2").describe_images(ImageIds=[written])["Images"][0]["State"] == "available"


def test_a_write_of_an_image_disabled_meanwhile_never_shows_and_is_named(
        fresh: LocalStack, before: Facts):
    # PublishPointer's PutParameter is held until the test has disabled the golden copy: SSM's
    # validation then finds it unavailable and drops the write, as AWS does.
    running = fresh.start_run(on_enter=[("PublishPointer", {"apiBarrier": {
        "service": "ssm", "action": "PutParameter", "count": 2, "timeout": 60}})])
    running.wait_for(lambda e: e.get("type") == "StateEntered" and e.get("state") == "PublishPointer")
    barrier = wait_for_barrier(fresh, "PutParameter")
    assert barrier["arrived"] == 1
    ec2 = fresh.client("ec2")
    golden = [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]
              if {"Key": POINTER_WRITE, "Value": POINTER_PARAMETER_NAME} in i.get("Tags", [])]
    assert len(golden) == 1, golden
    ec2.disable_image(ImageId=golden[0])
    fresh.client("ssm").put_parameter(Name="/release/the-barrier", Type="String", Value="x")
    result = running.wait()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "PublishPointer")
    assert result.root_cause["Error"] == "PointerValidationFailed", result.root_cause
    assert "the image is disabled, not available, so its validation fails" in failed["message"]
    assert after.pointer == before.pointer


def test_a_source_disabled_right_before_the_bake_is_not_baked(fresh: LocalStack, before: Facts):
    # StartBake's look at its source is held until the test has disabled it.
    running = fresh.start_run(on_enter=[("StartBake", {"apiBarrier": {
        "service": "ec2", "action": "DescribeImages", "count": 2, "timeout": 60}})])
    running.wait_for(lambda e: e.get("type") == "StateEntered" and e.get("state") == "StartBake")
    wait_for_barrier(fresh, "DescribeImages")
    ec2 = fresh.client("ec2")
    ec2.disable_image(ImageId=fresh.seed.golden_ami_id)
    ec2.describe_images(ImageIds=[fresh.seed.golden_ami_id], IncludeDisabled=True)  # releases it
    result = running.wait()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "StartBake")
    assert result.root_cause["Error"] == "SourceImageNotFound", result.root_cause
    assert "disabled after the run read it" in failed["message"]
    assert not [a for a in after.automations if a["document"] == "golden-ami-bake"]
    assert_nothing_left(before, after)


def test_rollback_waits_for_the_write_to_show(fresh: LocalStack):
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    fresh.admin("config", {"parameterValidationReads": 4})
    rolled = fresh.golden_ami("rollback", "--family", "default", "--region", REGION)
    assert rolled.returncode == 0, rolled.stderr
    pointer = fresh.client("ssm").get_parameter(Name=POINTER_PARAMETER_NAME)["Parameter"]
    assert pointer["Value"] == fresh.seed.golden_ami_id
    assert f"-> {fresh.seed.golden_ami_id} (version {pointer['Version']})" in rolled.stdout


def wait_for_barrier(stack: LocalStack, action: str, timeout: float = 30.0) -> dict:
    """The apiBarrier on `action` once a request is held at it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for barrier in stack.admin("state")["faults"]["apiBarrier"]:
            if barrier["action"] == action and barrier["arrived"] >= 1:
                return barrier
        time.sleep(0.02)
    raise AssertionError(f"no request held at the {action} barrier within {timeout} s")
