"""scripts/smoke.py: it refuses without credentials or a stack, and its checks catch what they
should on images, snapshots, launch permissions and leftovers served by the local moto."""

import importlib.util
import os
import subprocess
import sys

import boto3
import pytest

from conftest import REGION, REPO

spec = importlib.util.spec_from_file_location("smoke", REPO / "scripts" / "smoke.py")
smoke = importlib.util.module_from_spec(spec)
sys.modules["smoke"] = smoke  # dataclasses look their module up
spec.loader.exec_module(smoke)

ACCOUNT = "123456789012"  # moto's default account
ORG_ARN = f"arn:aws:organizations::{ACCOUNT}:organization/o-abc123def4"
EXECUTION = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:golden-ami-pipeline:smoke-1"


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                 AWS_EC2_METADATA_DISABLED="true", **env)
    return subprocess.run([sys.executable, str(REPO / "scripts" / "smoke.py"), *args],
                          env=clean, capture_output=True, text=True, timeout=60)


def test_refuses_without_credentials():
    result = run_script(AWS_DEFAULT_REGION=REGION)
    assert result.returncode == 2, result
    assert "no AWS credentials" in result.stderr and "AWS_PROFILE" in result.stderr


def test_refuses_without_the_stack(endpoint):
    result = run_script("--stack-name", "no-such-stack", AWS_DEFAULT_REGION=REGION,
                        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        AWS_ENDPOINT_URL=endpoint)
    assert result.returncode == 2, result
    assert "cannot read the stack no-such-stack" in result.stderr


@pytest.fixture
def session(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                         region_name=REGION)


@pytest.fixture
def golden(client, bake_env):
    """A golden image as the pipeline leaves one: copied under the golden key, tagged, shared."""
    ec2, kms = client("ec2"), client("kms")
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]
    tags = [{"Key": "Type", "Value": "golden-ami"}, {"Key": "golden-ami:family", "Value": "default"},
            {"Key": "golden-ami:execution", "Value": EXECUTION}]
    image = ec2.copy_image(SourceImageId=bake_env["base_ami"], SourceRegion=REGION, Name="golden-1",
                           Encrypted=True, KmsKeyId=key["Arn"],
                           TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                                              {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={
        "Add": [{"OrganizationArn": ORG_ARN}]})
    return {"image": image, "key": key["Arn"]}


def stack(key_arn: str, **parameters: str) -> "smoke.Stack":
    return smoke.Stack("golden-ami-pipeline", REGION, ACCOUNT, {"GoldenKeyArn": key_arn},
                       {"OrganizationArn": ORG_ARN, "ShareWithOrganization": "true", **parameters})


def check(session, the_stack, image, moved=True):
    key = ("/golden-ami/current", REGION)
    return smoke.check_pointer_images(session, the_stack, {key: image}, {key: "default"}, EXECUTION,
                                      {key} if moved else set())


def test_a_sound_golden_image_passes(session, golden):
    assert check(session, stack(golden["key"]), golden["image"]) == []


def test_the_key_is_compared_by_key_id_across_regions(session, golden):
    replica_arn = golden["key"].replace(REGION, "us-east-1")  # a replica keeps the mrk- key id
    assert check(session, stack(replica_arn), golden["image"]) == []


def test_a_snapshot_under_another_key_fails(session, client, golden):
    other = client("kms").create_key()["KeyMetadata"]["Arn"]
    problems = check(session, stack(other), golden["image"])
    assert len(problems) == 1 and "not the golden key" in problems[0], problems


def test_an_unshared_or_foreign_image_fails(session, client, golden, bake_env):
    ou = f"arn:aws:organizations::{ACCOUNT}:ou/o-abc123def4/ou-ab12-cd34ef56"
    problems = check(session, stack(golden["key"], ShareOuArns=ou), golden["image"])
    assert problems == [f"default in {REGION} (/golden-ami/current): {golden['image']} is not shared with ['{ou}']"]
    # The base image: another owner, no tags, no encryption.
    problems = check(session, stack(golden["key"]), bake_env["base_ami"], moved=False)
    assert any("owned by" in p for p in problems), problems
    assert any("is not tagged Type=golden-ami" in p for p in problems), problems


def test_an_image_of_another_run_fails_only_where_this_run_published(session, golden):
    other_run = stack(golden["key"])
    assert check(session, other_run, golden["image"], moved=False) == []
    problems = smoke.check_pointer_images(
        session, other_run, {("/p", REGION): golden["image"]}, {("/p", REGION): "default"},
        EXECUTION + "-other", {("/p", REGION)})
    assert len(problems) == 1 and "not this run" in problems[0], problems


def test_a_missing_pointer_or_image_fails(session, golden):
    assert "the pointer does not exist" in check(session, stack(golden["key"]), None)[0]
    assert "does not exist" in check(session, stack(golden["key"]), "ami-0123456789abcdef0")[0]


def test_leftovers_are_found_and_published_images_are_not(session, client, golden, bake_env):
    ec2 = client("ec2")
    instance = ec2.run_instances(ImageId=bake_env["base_ami"], MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "golden-ami:automation-execution",
                                               "Value": "auto-1"}]}])["Instances"][0]["InstanceId"]
    left = smoke.gather_leftovers(session, REGION, EXECUTION, {"auto-1"})
    problems = smoke.check_leftovers(left, {golden["image"]})
    assert problems == [f"{REGION}: instance {instance} is running"], problems

    problems = smoke.check_leftovers(left, set())  # the golden image was not published
    assert f"{REGION}: image {golden['image']} (golden-ami) was left behind" in problems
    assert any("snapshot" in p and "left behind" in p for p in problems), problems

    ec2.terminate_instances(InstanceIds=[instance])
    left = smoke.gather_leftovers(session, REGION, EXECUTION, {"auto-1"})
    assert smoke.check_leftovers(left, {golden["image"]}) == []


def test_automations_in_progress_are_leftovers():
    left = smoke.Leftovers(REGION, automations=[
        {"AutomationExecutionId": "a-1", "AutomationExecutionStatus": "InProgress"},
        {"AutomationExecutionId": "a-2", "AutomationExecutionStatus": "Cancelled"}])
    assert smoke.check_leftovers(left, set()) == [f"{REGION}: automation a-1 is still InProgress"]


def test_pointer_moves_are_checked_against_the_run_output():
    output = {"families": [
        {"family": {"name": "al2023"}, "pointers": [
            {"publish": {"parameterName": "/p", "region": REGION, "version": 3,
                         "previousAmiId": "ami-00000001", "newAmiId": "ami-00000002"}},
            {"failure": {"state": "PublishPointer"}}]},
        {"family": {"name": "al2"}, "outcome": "UP_TO_DATE"}]}
    (family, publish), = smoke.published_regions(output)
    assert family == "al2023"
    assert smoke.check_moved("al2023", "ami-00000001", "ami-00000002", publish) == []
    assert "holds ami-00000003" in smoke.check_moved("x", "ami-00000001", "ami-00000003", publish)[0]
    assert "held None before" in smoke.check_moved("x", None, "ami-00000002", publish)[0]


def test_only_this_runs_final_notices_count():
    def envelope(event, execution):
        return {"Subject": f"[p] {event}", "Message": f"...\nExecution: {execution}\n",
                "MessageAttributes": {"event": {"Type": "String", "Value": event}}}
    messages = [envelope("STARTED", EXECUTION), envelope("SUCCEEDED", EXECUTION),
                envelope("FAILED", EXECUTION + "-other")]
    assert smoke.final_notices(messages, EXECUTION) == [{"event": "SUCCEEDED", "subject": "[p] SUCCEEDED"}]
