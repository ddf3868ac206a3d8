"""SSM Automation executions of the real bake document (infra/bake-document.yaml)."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import admin, bake_parameters

BAKE_STEPS = ["launchInstance", "waitForSsm", "listUpdates", "anythingToUpdate", "updateOs",
              "applyBaseline", "generalize", "stopInstance", "createImage", "waitForImage",
              "terminateInstance"]


def start(ssm, env, name="golden-2026-11", **overrides):
    return ssm.start_automation_execution(
        DocumentName=env["document"], Parameters=bake_parameters(env, name, **overrides),
    )["AutomationExecutionId"]


def poll_until_done(ssm, exec_id, limit=30):
    """Poll like the state machine does; return (execution, number of polls)."""
    for polls in range(1, limit + 1):
        exe = ssm.get_automation_execution(AutomationExecutionId=exec_id)["AutomationExecution"]
        if exe["AutomationExecutionStatus"] not in ("Pending", "InProgress", "Waiting", "Cancelling"):
            return exe, polls
    raise AssertionError(f"automation {exec_id} still running after {limit} polls")


def instance_of(ec2, exec_id):
    found = ec2.describe_instances(Filters=[
        {"Name": "tag:golden-ami:automation-execution", "Values": [exec_id]}])
    instances = [i for r in found["Reservations"] for i in r["Instances"]]
    assert len(instances) == 1
    return instances[0]


def steps(exe):
    return [(s["StepName"], s["StepStatus"]) for s in exe["StepExecutions"]]


def test_bake_runs_to_success_one_step_per_poll(client, bake_env):
    ssm, ec2 = client("ssm"), client("ec2")
    exec_id = start(ssm, bake_env)
    first = ssm.get_automation_execution(AutomationExecutionId=exec_id)["AutomationExecution"]
    assert first["AutomationExecutionStatus"] == "InProgress"
    assert steps(first) == [("launchInstance", "Success")]
    assert first["CurrentStepName"] == "waitForSsm"
    running = instance_of(ec2, exec_id)
    assert running["State"]["Name"] == "running"
    # moto drops the profile association and the interfaces at termination: look while it runs.
    assert running["IamInstanceProfile"]["Arn"].endswith("/golden-ami-bake")
    # In the stack's security group (through its interface, as the document asks).
    assert [g["GroupId"] for g in running["NetworkInterfaces"][0]["Groups"]] == [bake_env["group"]]
    exe, polls = poll_until_done(ssm, exec_id)

    assert exe["AutomationExecutionStatus"] == "Success"
    assert polls + 1 == len(BAKE_STEPS)  # one step per poll: the caller's loop really loops
    assert steps(exe) == [(s, "Success") for s in BAKE_STEPS]
    image_id = exe["Outputs"]["createImage.ImageId"][0]
    assert image_id.startswith("ami-")

    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Name"] == "golden-2026-11"
    assert image["State"] == "available"
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["Type"] == "golden-ami-intermediate"
    assert tags["golden-ami:source-ami-id"] == bake_env["base_ami"]
    assert tags["golden-ami:automation-execution"] == exec_id
    # CreateImage tagged the snapshot in the same step (cleanup may only delete tagged ones).
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    snapshot_tags = {t["Key"]: t["Value"] for t in snapshot["Tags"]}
    assert snapshot_tags["Type"] == "golden-ami-intermediate"
    assert snapshot_tags["golden-ami:automation-execution"] == exec_id
    # The first line of the update report is the change summary.
    assert exe["Outputs"]["listUpdates.Output"][0].startswith('{"upToDate":false,"packages":12,')

    instance = instance_of(ec2, exec_id)
    assert instance["State"]["Name"] == "terminated"
    assert instance["ImageId"] == bake_env["base_ami"]
    assert instance["SubnetId"] == bake_env["subnet"]
    assert instance["InstanceType"] == "t3.small"  # the parameter's default
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert not instance.get("PublicIpAddress")
    launch = exe["StepExecutions"][0]
    assert launch["Outputs"]["InstanceId"] == [instance["InstanceId"]]

    # What updateOs and applyBaseline would have run is on record: nothing can really run here.
    state = admin(_endpoint(client), "state")
    commands = state["executions"][0]["commands"]
    assert [c["step"] for c in commands] == ["updateOs", "applyBaseline", "generalize"]
    assert "dnf -y upgrade --refresh --releasever=latest" in commands[0]["commands"]
    assert commands[1]["script"] == "infra/baseline/apply.sh"


def _endpoint(client):
    return client("ssm").meta.endpoint_url


def test_failed_update_terminates_and_fails(client, bake_env):
    ssm, ec2 = client("ssm"), client("ec2")
    admin(_endpoint(client), "faults",
          {"automationStepFail": {"step": "updateOs", "message": "dnf: no space left on device"}})
    exec_id = start(ssm, bake_env)
    exe, _ = poll_until_done(ssm, exec_id)

    # terminateInstance succeeded after the failure, yet the automation is Failed, like on AWS.
    assert exe["AutomationExecutionStatus"] == "Failed"
    assert steps(exe) == [("launchInstance", "Success"), ("waitForSsm", "Success"),
                          ("listUpdates", "Success"), ("anythingToUpdate", "Success"),
                          ("updateOs", "Failed"), ("terminateInstance", "Success")]
    assert "updateOs" in exe["FailureMessage"]
    assert "no space left" in exe["FailureMessage"]
    assert exe["StepExecutions"][4]["FailureMessage"] == "dnf: no space left on device"
    assert exe["Outputs"]["createImage.ImageId"][0].startswith("No output available")
    assert instance_of(ec2, exec_id)["State"]["Name"] == "terminated"
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_stop_cancels_and_terminates(client, bake_env):
    ssm, ec2 = client("ssm"), client("ec2")
    exec_id = start(ssm, bake_env)
    for _ in range(2):  # launchInstance, waitForSsm
        ssm.get_automation_execution(AutomationExecutionId=exec_id)
    ssm.stop_automation_execution(AutomationExecutionId=exec_id, Type="Cancel")

    exe = ssm.get_automation_execution(AutomationExecutionId=exec_id)["AutomationExecution"]
    assert exe["AutomationExecutionStatus"] == "Cancelled"
    assert steps(exe)[-2:] == [("listUpdates", "Cancelled"), ("terminateInstance", "Success")]
    assert instance_of(ec2, exec_id)["State"]["Name"] == "terminated"
    with pytest.raises(ClientError) as err:  # a finished execution cannot be stopped
        ssm.stop_automation_execution(AutomationExecutionId=exec_id)
    assert err.value.response["Error"]["Code"] == "InvalidAutomationStatusUpdateException"


UNSUPPORTED = """
schemaVersion: '0.3'
parameters:
  InstanceId: {type: String}
mainSteps:
  - name: sleepy
    action: aws:sleep
    inputs: {Duration: PT1S}
  - name: never
    action: aws:createTags
    inputs: {ResourceType: EC2, ResourceIds: ['{{ InstanceId }}'], Tags: []}
"""


@pytest.mark.parametrize("content, step, words", [
    (UNSUPPORTED, "sleepy", "action aws:sleep is not supported by the local stand-in"),
    (UNSUPPORTED.replace("action: aws:sleep\n    inputs: {Duration: PT1S}",
                         "action: aws:executeAwsApi\n    inputs: {Service: ec2, Api: DescribeVpcs}"),
     "sleepy", "aws:executeAwsApi ec2 DescribeVpcs is not supported by the local stand-in"),
])
def test_unsupported_action_fails_loudly(client, content, step, words):
    ssm = client("ssm")
    ssm.create_document(Name="odd", DocumentType="Automation", DocumentFormat="YAML",
                        Content=content)
    exec_id = ssm.start_automation_execution(
        DocumentName="odd", Parameters={"InstanceId": ["i-123"]})["AutomationExecutionId"]
    exe, polls = poll_until_done(ssm, exec_id)
    assert exe["AutomationExecutionStatus"] == "Failed"
    assert polls == 1  # onFailure defaults to Abort: the next step never runs
    assert steps(exe) == [(step, "Failed")]
    assert words in exe["StepExecutions"][0]["FailureMessage"]
    assert words in exe["FailureMessage"]


def test_start_validates_parameters(client, bake_env):
    ssm = client("ssm")
    with pytest.raises(ClientError) as err:
        ssm.start_automation_execution(DocumentName=bake_env["document"],
                                       Parameters={"SourceAmiId": ["not-an-ami"]})
    assert err.value.response["Error"]["Code"] == "InvalidAutomationExecutionParametersException"
    with pytest.raises(ClientError) as err:
        ssm.start_automation_execution(DocumentName="no-such-document")
    assert err.value.response["Error"]["Code"] == "AutomationDefinitionNotFoundException"
    with pytest.raises(ClientError) as err:
        ssm.get_automation_execution(AutomationExecutionId="00000000-0000-0000-0000-000000000000")
    assert err.value.response["Error"]["Code"] == "AutomationExecutionNotFoundException"


def test_client_token_is_idempotent(client, bake_env):
    ssm = client("ssm")
    kwargs = dict(DocumentName=bake_env["document"], ClientToken="6f1c1a52-3a8e-5b0e-9d4c-0c1f0a1b2c3d",
                  Parameters=bake_parameters(bake_env, "golden-x"))
    first = ssm.start_automation_execution(**kwargs)["AutomationExecutionId"]
    assert ssm.start_automation_execution(**kwargs)["AutomationExecutionId"] == first


def test_describe_automation_executions_filters(client, bake_env):
    ssm = client("ssm")
    done = start(ssm, bake_env, "golden-a")
    poll_until_done(ssm, done)
    running = start(ssm, bake_env, "golden-b")

    def ids(filters):
        found = ssm.describe_automation_executions(Filters=filters)["AutomationExecutionMetadataList"]
        return {e["AutomationExecutionId"] for e in found}

    assert ids([{"Key": "DocumentNamePrefix", "Values": ["golden-ami"]}]) == {done, running}
    assert ids([{"Key": "DocumentNamePrefix", "Values": ["other"]}]) == set()
    assert ids([{"Key": "ExecutionStatus", "Values": ["InProgress"]}]) == {running}
    assert ids([{"Key": "ExecutionStatus", "Values": ["Success"]},
                {"Key": "DocumentNamePrefix", "Values": ["golden"]}]) == {done}
    with pytest.raises(ClientError, match="not supported by the local stand-in"):
        ssm.describe_automation_executions(Filters=[{"Key": "TagKey", "Values": ["x"]}])


def test_polls_per_step_and_early_cancel(client, endpoint, bake_env):
    ssm, ec2 = client("ssm"), client("ec2")
    admin(endpoint, "config", {"automationPollsPerStep": 3, "pendingDescribes": 5})
    exec_id = start(ssm, bake_env)
    exe, polls = poll_until_done(ssm, exec_id, limit=40)
    assert exe["AutomationExecutionStatus"] == "Success"
    assert polls == len(BAKE_STEPS) * 3
    # The bake waits for its image (waitForImage), so pendingDescribes does not hold it.
    image_id = exe["Outputs"]["createImage.ImageId"][0]
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"

    # Stopped before any step ran: nothing exists, nothing to clean up.
    early = start(ssm, bake_env, "golden-early")
    ssm.stop_automation_execution(AutomationExecutionId=early)
    exe = ssm.get_automation_execution(AutomationExecutionId=early)["AutomationExecution"]
    assert exe["AutomationExecutionStatus"] == "Cancelled"
    assert exe["StepExecutions"] == []


def test_launch_failure_aborts(client, bake_env):
    ssm = client("ssm")
    exec_id = start(ssm, dict(bake_env, profile="no-such-profile"))
    exe, polls = poll_until_done(ssm, exec_id)
    assert (exe["AutomationExecutionStatus"], polls) == ("Failed", 1)
    assert steps(exe) == [("launchInstance", "Failed")]
    assert "no-such-profile" in exe["FailureMessage"]
    assert client("ec2").describe_instances()["Reservations"] == []


def test_a_fault_scoped_to_one_image_name_hits_only_that_family(client, bake_env):
    ssm = client("ssm")
    admin(_endpoint(client), "faults",
          {"automationStepFail": {"step": "updateOs", "nameContains": "-arm64-",
                                  "message": "dnf failed on arm64"}})
    x86 = start(ssm, bake_env, name="golden-ami-intermediate-2026-12-01-x")
    arm = start(ssm, bake_env, name="golden-ami-arm64-intermediate-2026-12-01-x")
    assert poll_until_done(ssm, x86)[0]["AutomationExecutionStatus"] == "Success"
    failed, _ = poll_until_done(ssm, arm)
    assert failed["AutomationExecutionStatus"] == "Failed"
    assert "dnf failed on arm64" in failed["FailureMessage"]


def _direct(ssm, ec2, kms, env, key_id=None, mappings=None, name="golden-2026-12"):
    """A direct bake, as StartBake starts it: every EBS device of the source under the key."""
    key_arn = key_id or kms.create_key(Description="golden key")["KeyMetadata"]["Arn"]
    root = ec2.describe_images(ImageIds=[env["base_ami"]])["Images"][0]["RootDeviceName"]
    params = bake_parameters(env, name, ImageType="golden-ami")
    params["BlockDeviceMappings"] = mappings if mappings is not None else [json.dumps(
        {"DeviceName": root, "Ebs": {"Encrypted": True, "KmsKeyId": key_arn,
                                     "DeleteOnTermination": True}})]
    exec_id = ssm.start_automation_execution(DocumentName=env["document"],
                                             Parameters=params)["AutomationExecutionId"]
    return exec_id, key_arn, root


def test_a_direct_bake_launches_under_the_key_and_its_image_is_golden(client, bake_env):
    ssm, ec2, kms = client("ssm"), client("ec2"), client("kms")
    exec_id, key_arn, root = _direct(ssm, ec2, kms, bake_env)
    ssm.get_automation_execution(AutomationExecutionId=exec_id)  # launchInstance
    running = instance_of(ec2, exec_id)
    # One mapping (a MapList of one) reached RunInstances as a list: the root volume is under
    # the key, from the source's snapshot, and goes with the instance.
    [device] = running["BlockDeviceMappings"]
    assert device["DeviceName"] == root and device["Ebs"]["DeleteOnTermination"] is True
    volume = ec2.describe_volumes(VolumeIds=[device["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Encrypted"], volume["KmsKeyId"]) == (True, key_arn)
    source_snapshot = ec2.describe_images(ImageIds=[bake_env["base_ami"]])["Images"][0][
        "BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert volume["SnapshotId"] == source_snapshot

    exe, _ = poll_until_done(ssm, exec_id)
    assert exe["AutomationExecutionStatus"] == "Success", exe.get("FailureMessage")
    image = ec2.describe_images(ImageIds=[exe["Outputs"]["createImage.ImageId"][0]])["Images"][0]
    ebs = image["BlockDeviceMappings"][0]["Ebs"]
    # CreateImage snapshotted the volume under its key: the image needs no re-encrypting copy.
    # DescribeImages says encrypted but names no key (AWS returns none); the snapshot has it.
    assert ebs["Encrypted"] is True and "KmsKeyId" not in ebs
    snapshot = ec2.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]
    assert (snapshot["Encrypted"], snapshot["KmsKeyId"]) == (True, key_arn)
    assert {t["Key"]: t["Value"] for t in image["Tags"]}["Type"] == "golden-ami"
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]}["Type"] == "golden-ami"
    assert instance_of(ec2, exec_id)["State"]["Name"] == "terminated"
    # The volume went with the instance (DeleteOnTermination).
    assert not ec2.describe_volumes(Filters=[{"Name": "volume-id",
                                              "Values": [volume["VolumeId"]]}])["Volumes"]


def test_a_copy_mode_bake_stays_as_the_source_has_it(client, bake_env):
    ssm, ec2 = client("ssm"), client("ec2")
    exe, _ = poll_until_done(ssm, start(ssm, bake_env))
    ebs = ec2.describe_images(ImageIds=[exe["Outputs"]["createImage.ImageId"][0]])["Images"][0][
        "BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is False and "KmsKeyId" not in ebs


@pytest.mark.parametrize("problem,words", [
    ("unknown", "InvalidParameterValue: The specified KMS key is not accessible"),
    ("disabled", "InvalidKMSKey.InvalidState"),
    ("no-encrypted", "InvalidParameterDependency: The parameter KmsKeyId requires the parameter Encrypted"),
    ("unknown-device", "InvalidBlockDeviceMapping: BlockDeviceMappings[0] (/dev/sdz) is not a device of image"),
])
def test_a_launch_under_an_unusable_key_fails_and_leaves_nothing(client, bake_env, problem, words):
    ssm, ec2, kms = client("ssm"), client("ec2"), client("kms")
    key = kms.create_key()["KeyMetadata"]
    key_arn = key["Arn"]
    ebs = {"Encrypted": True, "KmsKeyId": key_arn}
    device = ec2.describe_images(ImageIds=[bake_env["base_ami"]])["Images"][0]["RootDeviceName"]
    if problem == "unknown":
        ebs["KmsKeyId"] = key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    elif problem == "disabled":
        kms.disable_key(KeyId=key["KeyId"])
    elif problem == "no-encrypted":
        del ebs["Encrypted"]
    else:
        device = "/dev/sdz"
    exec_id, _, _ = _direct(ssm, ec2, kms, bake_env, key_id=key_arn,
                            mappings=[json.dumps({"DeviceName": device, "Ebs": ebs})])
    exe, _ = poll_until_done(ssm, exec_id)
    assert exe["AutomationExecutionStatus"] == "Failed"
    assert words in exe["FailureMessage"], exe["FailureMessage"]
    assert steps(exe)[0] == ("launchInstance", "Failed")
    running = ec2.describe_instances(Filters=[
        {"Name": "tag:golden-ami:automation-execution", "Values": [exec_id]}])["Reservations"]
    assert running == []


def test_a_map_list_value_must_be_a_json_object(client, bake_env):
    ssm = client("ssm")
    params = bake_parameters(bake_env)
    params["BlockDeviceMappings"] = ["/dev/xvda"]
    with pytest.raises(ClientError) as error:
        ssm.start_automation_execution(DocumentName=bake_env["document"], Parameters=params)
    assert error.value.response["Error"]["Code"] == "InvalidAutomationExecutionParametersException"
    assert "is not a JSON object (a MapList takes one JSON object per value)" in str(error.value)
