"""End-to-end: the findings of the security review that local mode can show. The bake tags its
image and snapshots when it creates them (cleanup may only remove tagged ones), the bake gets the
stack's security group, and an image a create left untagged is still removed."""

from checks import assert_failed_once, assert_nothing_left
from local.stack import Facts, LocalStack, automation_outputs, read_facts


def test_the_bakes_image_and_snapshots_carry_the_pipelines_tags(fresh: LocalStack, before: Facts):
    # Hold the copy pending so the intermediate image can be looked at before Cleanup runs.
    fresh.admin("config", {"pendingDescribes": 5})
    running = fresh.start_run(name="tags-on-create", wait_ms=50)
    running.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == "CheckCopy")
    during = read_facts(fresh)
    result = running.wait()
    assert result.succeeded, result.stderr[-3000:]

    bake = [a for a in during.automations if a["document"] == "golden-ami-bake"][0]
    intermediate = automation_outputs(bake)["createImage.ImageId"]
    image = during.images[intermediate]
    assert image["tags"]["Type"] == "golden-ami-intermediate"
    assert image["tags"]["golden-ami:automation-execution"] == bake["id"]
    # The stack, the run and the family, set in CreateImage: what proves the image is this run's.
    run_tags = {"golden-ami:stack": "golden-ami-pipeline", "golden-ami:family": "default"}
    assert run_tags.items() <= image["tags"].items(), image["tags"]
    assert image["tags"]["golden-ami:execution"].endswith(":tags-on-create")
    for snapshot in image["snapshots"]:
        tags = during.snapshots[snapshot]["tags"]
        assert tags["Type"] == "golden-ami-intermediate", tags
        assert tags["golden-ami:automation-execution"] == bake["id"]
        assert run_tags.items() <= tags.items(), tags

    after = read_facts(fresh)
    golden = after.images[after.pointer["value"]]
    assert golden["tags"]["golden-ami:stack"] == "golden-ami-pipeline"
    for snapshot in golden["snapshots"]:
        assert after.snapshots[snapshot]["tags"]["Type"] == "golden-ami"
        assert after.snapshots[snapshot]["tags"]["golden-ami:stack"] == "golden-ami-pipeline"
    assert bake["parameters"]["SecurityGroupId"] == fresh.seed.security_group_id
    assert_nothing_left(before, after, published=after.pointer["value"])


def test_an_image_a_half_failed_create_left_untagged_is_still_removed(
        fresh: LocalStack, before: Facts):
    fresh.admin("faults", {"automationStepFail": {
        "step": "createImage", "halfway": True,
        "message": "CreateImage: the request timed out after the image was registered (injected)"}})
    result = fresh.run()
    after = read_facts(fresh)
    failed = assert_failed_once(result, after, "CheckBake")
    assert "BakeFailed" in failed["subject"]
    # Found by the run's deterministic name, tagged, then removed with its snapshots.
    assert "(left untagged by a create that failed half way) to remove it" in failed["message"], \
        failed["message"]
    assert after.pointer == before.pointer
    assert_nothing_left(before, after)
