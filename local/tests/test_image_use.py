"""Images that cannot be used: disabled, deregistered or not available (image_use.py)."""

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, admin, bake_parameters

BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@pytest.fixture
def image(client):
    """An image of our own, made from a running instance."""
    ec2 = client("ec2")
    base = client("ssm").get_parameter(Name=BASE)["Parameter"]["Value"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return ec2.create_image(InstanceId=instance, Name="own")["ImageId"]


def code(call, **kwargs):
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"]


def test_describe_images_has_no_kms_key_id(client, image):
    """Plain moto has no Ebs.KmsKeyId either, but the extension used to invent it: the key of an
    image's volumes is read from DescribeSnapshots."""
    ebs = client("ec2").describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]
    assert set(ebs) == {"SnapshotId", "VolumeSize", "VolumeType", "DeleteOnTermination", "Encrypted"}


def test_a_disabled_image_is_private_and_hidden_unless_include_disabled(client, image):
    """Plain moto only sets the state: the image keeps its launch permissions and DescribeImages
    returns it without IncludeDisabled."""
    ec2 = client("ec2")
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    assert ec2.disable_image(ImageId=image)["Return"] is True
    assert ec2.describe_images(ImageIds=[image])["Images"] == []
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    [shown] = ec2.describe_images(ImageIds=[image], IncludeDisabled=True)["Images"]
    assert (shown["State"], shown["Public"]) == ("disabled", False)
    assert ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")[
        "LaunchPermissions"] == []
    ec2.enable_image(ImageId=image)
    assert ec2.describe_images(ImageIds=[image])["Images"][0]["State"] == "available"


def test_only_the_owner_disables_an_image(client):
    """Plain moto disables any image, moto's public default images included."""
    ec2 = client("ec2")
    base = client("ssm").get_parameter(Name=BASE)["Parameter"]["Value"]
    assert code(ec2.disable_image, ImageId=base) == "AuthFailure"


def test_run_instances_refuses_disabled_deregistered_and_pending_images(client, endpoint, image):
    """Plain moto launches any of them (it checks no image unless MOTO_ENABLE_AMI_VALIDATION)."""
    ec2 = client("ec2")
    run = lambda image_id: ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)  # noqa: E731
    ec2.disable_image(ImageId=image)
    assert code(run, image_id=image) == "InvalidAMIID.Unavailable"
    ec2.enable_image(ImageId=image)
    run(image)  # usable again
    ec2.deregister_image(ImageId=image)
    assert code(run, image_id=image) == "InvalidAMIID.Unavailable"
    assert code(run, image_id="ami-0123456789abcdef0") == "InvalidAMIID.NotFound"

    admin(endpoint, "config", {"pendingDescribes": 1})
    instance = ec2.run_instances(ImageId=client("ssm").get_parameter(Name=BASE)["Parameter"]["Value"],
                                 MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    pending = ec2.create_image(InstanceId=instance, Name="pending")["ImageId"]
    assert code(run, image_id=pending) == "InvalidAMIID.Unavailable"


def test_copy_image_refuses_an_unusable_source(client, image):
    """Plain moto copies a disabled source and answers HTTP 500 for a deregistered one."""
    ec2 = client("ec2")
    copy = lambda: ec2.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy")  # noqa: E731
    ec2.disable_image(ImageId=image)
    assert code(copy) == "InvalidAMIID.Unavailable"
    ec2.enable_image(ImageId=image)
    ec2.deregister_image(ImageId=image)
    assert code(copy) == "InvalidAMIID.Unavailable"
    assert code(ec2.copy_image, SourceImageId="ami-0123456789abcdef0", SourceRegion=REGION,
                Name="copy") == "InvalidAMIID.NotFound"


def test_a_bake_of_a_source_disabled_before_it_fails_its_launch(client, bake_env, image):
    """Plain moto (with the automation) would bake the disabled image: its launch is not refused."""
    ssm, ec2 = client("ssm"), client("ec2")
    ec2.disable_image(ImageId=image)
    exec_id = ssm.start_automation_execution(
        DocumentName=bake_env["document"],
        Parameters=bake_parameters(bake_env, SourceAmiId=image))["AutomationExecutionId"]
    for _ in range(40):
        exe = ssm.get_automation_execution(AutomationExecutionId=exec_id)["AutomationExecution"]
        if exe["AutomationExecutionStatus"] != "InProgress":
            break
    assert exe["AutomationExecutionStatus"] == "Failed"
    assert "InvalidAMIID.Unavailable" in exe["FailureMessage"]
    assert ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [image]}])["Reservations"] == []
