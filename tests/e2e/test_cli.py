"""The `golden-ami` CLI against the local stack, for what moto serves: status, rollback, pin and
unpin, and the pipeline skipping a pinned family. The local runner serves no Step Functions API,
so run, history and why are covered by the CLI's unit tests (aws-smithy-mocks) instead."""

import json

from local.stack import (PINS_PATH, POINTER_PARAMETER_NAME, REGION, LocalStack, put_image_parameter,
                         read_facts)

OTHER = "us-east-1"
DEFAULT_FAMILY = {"name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
                  "instanceType": "t3.small"}


def test_status_shows_each_pointer_and_says_the_runs_need_a_state_machine(fresh: LocalStack):
    result = fresh.golden_ami("status")
    assert result.returncode == 0, result.stderr
    assert f"default          {REGION}  {fresh.seed.golden_ami_id} v{fresh.seed.pointer_version}" \
        in result.stdout, result.stdout
    assert "runs: not available (no state machine for the stack golden-ami-pipeline: give " \
           "--state-machine-arn" in result.stdout
    status = json.loads(fresh.golden_ami("status", "--json").stdout)
    [pointer] = status["pointers"]
    assert (pointer["value"], pointer["version"], pointer["ageDays"]) == \
        (fresh.seed.golden_ami_id, fresh.seed.pointer_version, 0)
    assert status["pins"] == [] and status["runs"] is None


def test_rollback_puts_the_previous_image_back_and_refuses_a_gone_one(fresh: LocalStack):
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    published = read_facts(fresh).pointer["value"]
    rolled = fresh.golden_ami("rollback", "--json")
    assert rolled.returncode == 0, rolled.stderr
    [moved] = json.loads(rolled.stdout)
    assert (moved["from"], moved["to"]) == (published, fresh.seed.golden_ami_id)
    pointer = read_facts(fresh).pointer
    assert pointer["value"] == fresh.seed.golden_ami_id
    assert pointer["version"] == fresh.seed.pointer_version + 2

    # Now the previous value is the run's image; once it is gone there is nothing to go back to.
    ec2 = fresh.client("ec2")
    ec2.disable_image_deregistration_protection(ImageId=published)  # Retain protected it
    ec2.deregister_image(ImageId=published)
    refused = fresh.golden_ami("rollback")
    assert refused.returncode == 1
    assert f"cannot roll back default in {REGION} to {published}: {published} does not exist" \
        in refused.stderr, refused.stderr
    assert read_facts(fresh).pointer["value"] == fresh.seed.golden_ami_id  # unchanged


def test_a_pinned_family_is_skipped_by_the_pipeline_until_unpinned(fresh: LocalStack):
    pinned_image = fresh.golden_copy(fresh.seed.golden_ami_id)
    put_image_parameter(fresh.client("ssm"), Name=POINTER_PARAMETER_NAME, Value=pinned_image,
                        Type="String", Overwrite=True)
    pinned = fresh.golden_ami("pin", pinned_image, "--reason", "kernel regression")
    assert pinned.returncode == 0, pinned.stderr
    assert "the pointer already holds" in pinned.stdout
    pin = json.loads(fresh.client("ssm").get_parameter(Name=f"{PINS_PATH}/default")["Parameter"]["Value"])
    assert (pin["family"], pin["amiId"], pin["region"], pin["reason"]) == \
        ("default", pinned_image, REGION, "kernel regression")
    assert pin["pinnedBy"].startswith("arn:aws:")
    assert "PINNED to" in fresh.golden_ami("status").stdout

    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    facts = read_facts(fresh)
    assert facts.pointer["value"] == pinned_image and facts.automations == []  # nothing baked
    assert facts.events() == ["STARTED", "SKIPPED"]
    end = facts.notifications[-1]
    assert "0 of 1 families published, 1 pinned" in end["subject"], end["subject"]
    assert f"Family default: pinned to {pinned_image} in {REGION}" in end["message"]
    assert "(kernel regression)" in end["message"]

    unpinned = fresh.golden_ami("unpin")
    assert (unpinned.returncode, unpinned.stdout) == (0, "default is no longer pinned: the next run patches it\n")
    assert fresh.golden_ami("unpin").stdout == "default was not pinned\n"
    assert fresh.run().succeeded
    assert read_facts(fresh).pointer["value"] != pinned_image


def test_pin_refuses_what_is_not_a_usable_image(fresh: LocalStack):
    bad = fresh.golden_ami("pin", "not-an-ami")
    assert bad.returncode == 2 and "not-an-ami is not an AMI id" in bad.stderr
    gone = fresh.golden_ami("pin", "ami-0123456789abcdef0")
    assert gone.returncode == 1 and "the golden image ami-0123456789abcdef0 does not exist" \
        in gone.stderr, gone.stderr
    other = fresh.golden_ami("pin", fresh.seed.golden_ami_id, "--region", "ap-south-1")
    assert other.returncode == 2 and "family default is not published in ap-south-1" in other.stderr
    assert fresh.client("ssm").get_parameters_by_path(Path=PINS_PATH)["Parameters"] == []
    assert read_facts(fresh).pointer["value"] == fresh.seed.golden_ami_id
    assert POINTER_PARAMETER_NAME in fresh.golden_ami("status", "--json").stdout


def test_pin_refuses_an_image_that_is_not_the_familys_golden_image(fresh: LocalStack):
    """A pin is as strict as VerifyImage: a public image, an image under the account key, the
    golden image of another architecture are refused, each naming why; the family's golden
    image is pinned."""
    seed = fresh.seed
    arm = fresh.add_family("arm64", "arm64", pointer="/golden-ami/arm64")
    ec2 = fresh.client("ec2")
    # The bake's intermediate image: under the account's own key, tagged as such.
    intermediate = ec2.copy_image(
        SourceImageId=seed.golden_ami_id, SourceRegion=REGION, Name="golden-ami-intermediate",
        Encrypted=True, TagSpecifications=[{"ResourceType": "image", "Tags": [
            {"Key": "Type", "Value": "golden-ami-intermediate"},
            {"Key": "golden-ami:family", "Value": "default"}]}])["ImageId"]
    refused = {
        seed.base_ami_id: [f"{seed.base_ami_id} is owned by ", f"not this account {seed.account_id}"],
        intermediate: ['tag Type is "golden-ami-intermediate", expected "golden-ami"',
                       f"not the golden key {seed.kms_key_arn}",
                       f"the launch permission lacks {seed.organization_arn}"],
        fresh.golden_copy(arm["seededImage"]): ["is arm64, not the family's architecture x86_64"],
    }
    for image, reasons in refused.items():
        result = fresh.golden_ami("pin", image)
        assert result.returncode == 1, (image, result.stdout, result.stderr)
        assert f"cannot pin {image}: it is not a golden image of default in {REGION}" \
            in result.stderr, result.stderr
        for reason in reasons:
            assert reason in result.stderr, (reason, result.stderr)
        assert result.stderr.rstrip().endswith("the family's golden images are tagged "
                                               "golden-ami:family=default)"), result.stderr
    assert fresh.client("ssm").get_parameters_by_path(Path=PINS_PATH)["Parameters"] == []
    assert read_facts(fresh).pointer["value"] == seed.golden_ami_id

    golden = fresh.golden_copy(seed.golden_ami_id)
    pinned = fresh.golden_ami("pin", golden, "--json")
    assert pinned.returncode == 0, pinned.stderr
    assert read_facts(fresh).pointer["value"] == golden


def test_a_pin_set_during_the_run_stops_every_region_and_the_next_run_skips_the_family(
        fresh: LocalStack):
    """Pinned to the very image the home pointer holds while the bake runs: no pointer of the
    family moves in any region, and the next run reports the family pinned."""
    replica = fresh.add_region(OTHER)
    fresh.set_targets([DEFAULT_FAMILY], [OTHER])
    seed = fresh.seed
    home = fresh.golden_copy(seed.golden_ami_id)
    put_image_parameter(fresh.client("ssm"), Name=POINTER_PARAMETER_NAME, Value=home,
                        Type="String", Overwrite=True)
    put_image_parameter(fresh.client("ssm", region=OTHER), Name=POINTER_PARAMETER_NAME,
                        Value=fresh.golden_copy(seed.golden_ami_id, region=OTHER, key_arn=replica),
                        Type="String", Tier="Advanced")
    before = read_facts(fresh)
    fresh.admin("config", {"automationPollsPerStep": 3})
    running = fresh.start_run(name="pinned-during-the-bake", wait_ms=20)
    running.wait_for(lambda e: e["type"] == "StateEntered" and e["state"] == "CheckBake")
    pinned = fresh.golden_ami("pin", home, "--reason", "kernel regression")
    assert pinned.returncode == 0, pinned.stderr
    assert "the pointer already holds" in pinned.stdout
    result = running.wait()
    after = read_facts(fresh)
    assert result.status == "FAILED"
    assert after.pointers == before.pointers
    [failed] = [n for n in after.notifications if n["event"] == "FAILED"]
    assert "FamilyPinned" in failed["message"], failed["message"]

    again = fresh.run()
    assert again.succeeded, again.stderr[-3000:]
    assert read_facts(fresh).pointers == before.pointers
    end = read_facts(fresh).notifications[-1]
    assert "0 of 1 families published, 1 pinned" in end["subject"], end["subject"]
