"""The `golden-ami` CLI against the local stack, for what moto serves: status, rollback, pin and
unpin, and the pipeline skipping a pinned family. The local runner serves no Step Functions API,
so run, history and why are covered by the CLI's unit tests (aws-smithy-mocks) instead."""

import json

from local.stack import PINS_PATH, POINTER_PARAMETER_NAME, REGION, LocalStack, read_facts


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
    pinned_image = fresh.seed.golden_ami_id
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
    assert gone.returncode == 1 and "ami-0123456789abcdef0 does not exist in" in gone.stderr
    other = fresh.golden_ami("pin", fresh.seed.golden_ami_id, "--region", "ap-south-1")
    assert other.returncode == 2 and "family default is not published in ap-south-1" in other.stderr
    assert fresh.client("ssm").get_parameters_by_path(Path=PINS_PATH)["Parameters"] == []
    assert read_facts(fresh).pointer["value"] == fresh.seed.golden_ami_id
    assert POINTER_PARAMETER_NAME in fresh.golden_ami("status", "--json").stdout
