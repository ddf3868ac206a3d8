"""End-to-end: the direct encryption mode (EncryptionMode=direct). The bake launches its instance
with every volume under the golden key, so its image is the home region's golden image: no
intermediate image, no home CopyImage; the other regions copy from it. The copy mode (the
default) is what every other end-to-end test runs."""

from checks import assert_failed_once, assert_nothing_left
from local.stack import POINTER_PARAMETER_NAME, REGION, LocalStack, automation_outputs, read_facts

OTHER = "us-east-1"
SSM_DENIED = {"service": "ssm", "code": "AccessDeniedException", "status": 400,
              "message": "User is not authorized to perform this action (injected)"}


def snapshots(stack: LocalStack) -> set[tuple[str, str]]:
    """(region, snapshot id): ids can repeat across regions of the seeded emulator."""
    return {(region, snap["SnapshotId"]) for region in stack.regions
            for snap in stack.client("ec2", region=region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def direct_in_two_regions(stack: LocalStack) -> str:
    replica = stack.add_region(OTHER)
    stack.set_targets(None, [OTHER], encryption="direct")
    return replica


def test_a_direct_bake_is_the_home_golden_image_and_the_other_region_copies_it(fresh: LocalStack):
    seed = fresh.seed
    replica = direct_in_two_regions(fresh)
    before = read_facts(fresh)
    snapshots_before = snapshots(fresh)
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)

    home = after.pointers[(POINTER_PARAMETER_NAME, REGION)]["value"]
    other = after.pointers[(POINTER_PARAMETER_NAME, OTHER)]["value"]
    [bake] = [a for a in after.automations if a["document"] == "golden-ami-bake"]
    # The bake asked for its volumes under the golden key and made the golden image itself.
    assert bake["parameters"]["ImageType"] == "golden-ami"
    [mapping] = bake["parameters"]["BlockDeviceMappings"]
    assert mapping["Ebs"] == {"Encrypted": True, "KmsKeyId": seed.kms_key_arn,
                              "DeleteOnTermination": True}
    assert automation_outputs(bake)["createImage.ImageId"] == home
    image = after.images[home]
    assert image["name"] == bake["parameters"]["TargetAmiName"]
    # CopyImage gave it the golden tags (the change summary included) instead of copying it.
    assert image["tags"]["Type"] == "golden-ami"
    assert image["tags"]["golden-ami:source-ami-id"] == seed.golden_ami_id
    assert image["tags"]["golden-ami:family"] == "default"
    assert "golden-ami:packages" in image["tags"], image["tags"]
    for region, image_id, key in [(REGION, home, seed.kms_key_arn), (OTHER, other, replica)]:
        assert after.images[image_id]["region"] == region
        assert [after.snapshots[s]["kmsKeyId"] for s in after.images[image_id]["snapshots"]] == [key]
        assert {"OrganizationArn": seed.organization_arn} in after.images[image_id]["launchPermissions"]
    # The other region copied the home golden image; the boot test booted the bake's image.
    [copied] = fresh.client("ec2", region=OTHER).describe_images(ImageIds=[other])["Images"]
    assert copied["Description"].startswith(f"Golden AMI patched from {seed.golden_ami_id} (via {home})")
    [test] = [a for a in after.automations if a["document"] == "golden-ami-test"]
    assert test["parameters"]["ImageId"] == home
    # One image per region, each with its one snapshot: nothing intermediate was made or left.
    new = set(after.images) - set(before.images)
    assert new == {home, other}
    assert snapshots(fresh) - snapshots_before == {
        (region, after.images[image]["snapshots"][0]) for region, image in [(REGION, home), (OTHER, other)]}
    assert after.running_instances() == []
    assert "(direct encryption: no intermediate image, no copy)" in after.notifications[-1]["message"]
    # CopyImage at home made no copy (nothing to time, nothing to wait for); the other did.
    copies = {e["output"]["goldenAmiId"]: e["output"] for e in result.events
              if e.get("type") == "StateExited" and e.get("state") == "CopyImage" and "output" in e}
    assert set(copies) == {home, other}
    assert "startedAt" not in copies[home] and copies[home]["firstWaitSeconds"] == 0
    assert "startedAt" in copies[other]


def test_a_direct_family_failing_after_verification_removes_its_baked_golden_image(
        fresh: LocalStack):
    direct_in_two_regions(fresh)
    before = read_facts(fresh)
    result = fresh.run(on_enter=[("StartTest", {"apiFail": {**SSM_DENIED,
                                                             "action": "StartAutomationExecution"}})])
    after = read_facts(fresh)
    assert_failed_once(result, after, "StartTest")
    [bake] = [a for a in after.automations if a["document"] == "golden-ami-bake"]
    baked = automation_outputs(bake)["createImage.ImageId"]
    # The bake's image was the home golden image, verified and shared: the family's cleanup
    # removed it like any unpublished golden copy, and the other region's copy with it.
    assert baked not in after.images
    assert after.pointers[(POINTER_PARAMETER_NAME, REGION)] == before.pointers[(POINTER_PARAMETER_NAME, REGION)]
    assert (POINTER_PARAMETER_NAME, OTHER) not in after.pointers
    assert_nothing_left(before, after)
