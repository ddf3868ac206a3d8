"""End-to-end: several image families in several regions (the fan-out). Every family is baked and
booted at home, copied, shared and verified in every region, and its pointers move only when all
of its regions passed; a family that fails cleans up its own work everywhere and does not stop
the others; a region where a family has no pointer yet gets one, shared with the organization."""

import sys

from local.stack import (POINTER_PARAMETER_NAME, REGION, REPO, Facts, LocalStack,
                         automation_outputs, read_facts)

# bench/ holds bench.py, so "bench" names that module, not the folder: import scale.py by itself.
sys.path.insert(0, str(REPO / "bench"))
from scale import budget_constants, sizes  # noqa: E402

OTHER = "us-east-1"
ARM_POINTER = "/golden-ami/arm64"


def two_by_two(stack: LocalStack, *, concurrency: int = 2, arm_seeded: bool = False) -> dict:
    """The default family and an arm64 one, at home and in us-east-1."""
    replica = stack.add_region(OTHER)
    default = {"name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
               "instanceType": "t3.small"}
    arm = stack.add_family("arm64", "arm64", pointer=ARM_POINTER, seed_pointer=arm_seeded)
    stack.set_targets([default, arm], [OTHER], concurrency)
    return {"replica": replica, "arm": arm}


def shared_pointers(stack: LocalStack, region: str) -> list[str]:
    ram = stack.client("ram", region=region)
    shares = [s for s in ram.get_resource_shares(resourceOwner="SELF")["resourceShares"]
              if s["name"] == "golden-ami-pipeline-pointers"]
    return [a["associatedEntity"] for a in ram.get_resource_share_associations(
        associationType="RESOURCE", resourceShareArns=[shares[0]["resourceShareArn"]],
    )["resourceShareAssociations"]]


def new_images(before: Facts, after: Facts) -> dict[str, dict]:
    return {i: v for i, v in after.images.items() if i not in before.images}


def test_two_families_in_two_regions_publish_everywhere(fresh: LocalStack):
    matrix = two_by_two(fresh)
    seed = fresh.seed
    before = read_facts(fresh)
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)

    # Four golden copies: one per family and region, each encrypted under its region's key.
    published = {key: value["value"] for key, value in after.pointers.items()}
    assert set(published) == {(POINTER_PARAMETER_NAME, REGION), (POINTER_PARAMETER_NAME, OTHER),
                              (ARM_POINTER, REGION), (ARM_POINTER, OTHER)}
    images = new_images(before, after)
    assert set(images) == set(published.values())
    for (pointer, region), image_id in published.items():
        image = images[image_id]
        assert image["region"] == region
        assert image["tags"]["Type"] == "golden-ami"
        assert image["tags"]["golden-ami:family"] == ("arm64" if pointer == ARM_POINTER else "default")
        key = seed.kms_key_arn if region == REGION else matrix["replica"]
        assert [after.snapshots[s]["kmsKeyId"] for s in image["snapshots"]] == [key]
        assert {"OrganizationArn": seed.organization_arn} in image["launchPermissions"]
    # The home pointer of the default family moved; the three others were created by the run
    # (the arm64 family started from its baseImage) and shared with the organization.
    assert after.pointers[(POINTER_PARAMETER_NAME, REGION)]["version"] == seed.pointer_version + 1
    for key in [(POINTER_PARAMETER_NAME, OTHER), (ARM_POINTER, REGION), (ARM_POINTER, OTHER)]:
        assert after.pointers[key]["version"] == 1, key
        assert after.pointers[key]["dataType"] == "aws:ec2:image"
    assert any(a.endswith(f"parameter{ARM_POINTER}") for a in shared_pointers(fresh, REGION))
    assert sorted(a.rsplit(":parameter", 1)[1] for a in shared_pointers(fresh, OTHER)) \
        == sorted([POINTER_PARAMETER_NAME, ARM_POINTER])

    # Each family was baked and booted once, at home, on its own architecture.
    bakes = [a for a in after.automations if a["document"] == "golden-ami-bake"]
    tests = [a for a in after.automations if a["document"] == "golden-ami-test"]
    assert len(bakes) == len(tests) == 2
    arm_bake = next(b for b in bakes if "-arm64-" in b["parameters"]["TargetAmiName"])
    assert arm_bake["parameters"]["InstanceType"] == "t4g.small"
    arm_instance = automation_outputs(arm_bake)["launchInstance.InstanceId"]
    assert after.instances[arm_instance]["state"] == "terminated"
    assert after.running_instances() == []
    leaked = set(after.snapshots) - set(before.snapshots) - {
        s for i in images.values() for s in i["snapshots"]}
    assert not leaked, f"snapshots left behind: {leaked}"

    assert after.events() == ["STARTED", "SUCCEEDED"]
    started, succeeded = after.notifications
    assert "2 image families in eu-west-1, us-east-1" in started["message"], started["message"]
    assert "SUCCEEDED: 2 of 2 families published" in succeeded["subject"]
    for region in (REGION, OTHER):
        assert f"- {region}: " in succeeded["message"]
    assert f"To roll back in {REGION}: aws ssm put-parameter --region {REGION} " \
           f"--name {POINTER_PARAMETER_NAME}" in succeeded["message"]

    # The run's largest state (its output) stays within what crates/core/src/budget.rs allows
    # a family and a region; a failed family would keep its bake, test and copy results too.
    held, limits = sizes(result.output, result.events), budget_constants()
    print(f"state sizes (bytes): {held}")
    assert held["family"] + held["plan_family"] + held["failed_family_extra"] <= limits["FAMILY_BYTES"], held
    assert held["region"] + held["plan_region"] + held["failed_region_extra"] <= limits["REGION_BYTES"], held
    assert held["state"] <= limits["RUN_BYTES"] + 2 * limits["FAMILY_BYTES"] + 4 * limits["REGION_BYTES"], held


def test_a_family_that_fails_cleans_up_alone_and_the_other_publishes(fresh: LocalStack):
    two_by_two(fresh, concurrency=1, arm_seeded=True)
    fresh.admin("faults", {"automationStepFail": {"step": "updateOs", "nameContains": "-arm64-",
                                                  "message": "dnf failed on arm64 (injected)"}})
    before = read_facts(fresh)
    result = fresh.run()
    after = read_facts(fresh)

    assert result.status == "FAILED" and result.end_state == "PipelineFailed"
    # The arm64 family changed nothing anywhere; the default family published in both regions.
    assert after.pointers[(ARM_POINTER, REGION)] == before.pointers[(ARM_POINTER, REGION)]
    assert (ARM_POINTER, OTHER) not in after.pointers
    assert after.pointers[(POINTER_PARAMETER_NAME, REGION)]["version"] \
        == before.pointers[(POINTER_PARAMETER_NAME, REGION)]["version"] + 1
    assert after.pointers[(POINTER_PARAMETER_NAME, OTHER)]["version"] == 1
    images = new_images(before, after)
    assert set(images) == {after.pointers[(POINTER_PARAMETER_NAME, r)]["value"] for r in (REGION, OTHER)}
    assert after.running_instances() == []

    assert after.events() == ["STARTED", "FAILED"]
    failed = after.notifications[1]
    assert "FAILED: 1 of 2 families published, 1 failed (arm64)" in failed["subject"], failed["subject"]
    message = failed["message"]
    assert "Family default: published." in message
    assert "Family arm64 FAILED at CheckBake with BakeFailed." in message, message
    assert "dnf failed on arm64 (injected)" in message
    for region in (REGION, OTHER):
        assert f"The pointer {ARM_POINTER} in {region}" in message


def test_a_region_that_fails_stops_its_family_before_any_pointer_moves(fresh: LocalStack):
    two_by_two(fresh, concurrency=1, arm_seeded=True)
    fresh.set_targets([{"name": "default", "pointer": POINTER_PARAMETER_NAME,
                        "architecture": "x86_64", "instanceType": "t3.small"}], [OTHER])
    fresh.admin("faults", {"apiFail": {"service": "ec2", "action": "CopyImage", "region": OTHER,
                                       "code": "InvalidParameterValue", "status": 400,
                                       "message": "The snapshot is not available (injected)"}})
    before = read_facts(fresh)
    result = fresh.run()
    after = read_facts(fresh)

    assert result.status == "FAILED"
    assert "StartTest" not in result.path() and "PublishPointer" not in result.path()
    assert after.pointers == before.pointers
    # The home region's copy was made, shared and verified, then removed with the bake's image.
    assert new_images(before, after) == {}
    assert not set(after.snapshots) - set(before.snapshots)
    assert after.running_instances() == []
    [failed] = [n for n in after.notifications if n["event"] == "FAILED"]
    assert "FAILED at CopyImage in us-east-1" in failed["subject"], failed["subject"]
    assert f"The pointer {POINTER_PARAMETER_NAME} in {REGION} still holds" in failed["message"]
    assert f"The pointer {POINTER_PARAMETER_NAME} in {OTHER} does not exist yet" in failed["message"]
