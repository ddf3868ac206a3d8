"""CopyImage encryption, pending images, deregister + delete snapshots."""

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, admin


@pytest.fixture
def baked_image(client):
    """An image of our own (like the bake's), made from a running instance."""
    ec2 = client("ec2")
    base = client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
    instance = ec2.run_instances(ImageId=base["Parameter"]["Value"], MinCount=1, MaxCount=1)
    return ec2.create_image(InstanceId=instance["Instances"][0]["InstanceId"],
                            Name="baked")["ImageId"]


def snapshots_of(ec2, image_id):
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return image, [m["Ebs"] for m in image["BlockDeviceMappings"]]


def test_copy_is_encrypted_under_the_given_key(client, baked_image):
    ec2, kms = client("ec2"), client("kms")
    key = kms.create_key(Description="golden org key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/golden-ami", TargetKeyId=key["KeyId"])

    for ref in (key["KeyId"], key["Arn"], "alias/golden-ami"):
        copy_id = ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name=f"c-{ref[-4:]}",
                                 Encrypted=True, KmsKeyId=ref)["ImageId"]
        _, copy_ebs = snapshots_of(ec2, copy_id)
        _, source_ebs = snapshots_of(ec2, baked_image)
        assert [e["Encrypted"] for e in copy_ebs] == [True]
        assert all("KmsKeyId" not in e for e in copy_ebs)  # the key is the snapshot's
        assert source_ebs[0]["Encrypted"] is False  # the source is untouched
        assert copy_ebs[0]["SnapshotId"] != source_ebs[0]["SnapshotId"]
        snap = ec2.describe_snapshots(SnapshotIds=[copy_ebs[0]["SnapshotId"]])["Snapshots"][0]
        assert snap["Encrypted"] is True
        assert snap["KmsKeyId"] == key["Arn"]


def test_copy_rejects_unknown_and_disabled_keys(client, baked_image):
    ec2, kms = client("ec2"), client("kms")
    with pytest.raises(ClientError) as err:
        ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name="copy-x", Encrypted=True,
                       KmsKeyId="alias/no-such-key")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as err:
        ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name="copy-x", Encrypted=True,
                       KmsKeyId="arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"

    key = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as err:
        ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name="copy-x", Encrypted=True,
                       KmsKeyId=key["Arn"])
    assert err.value.response["Error"]["Code"] == "InvalidKMSKey.InvalidState"
    assert ec2.describe_images(Owners=["self"])["Images"] == [
        ec2.describe_images(ImageIds=[baked_image])["Images"][0]]  # no copy was made


def test_copy_client_token_is_idempotent(client, baked_image):
    ec2 = client("ec2")
    kwargs = dict(SourceImageId=baked_image, SourceRegion=REGION, Name="copy-c", ClientToken="exec-1-copy")
    assert ec2.copy_image(**kwargs)["ImageId"] == ec2.copy_image(**kwargs)["ImageId"]


def test_new_images_are_pending_for_n_describes(client, endpoint, baked_image):
    ec2 = client("ec2")
    admin(endpoint, "config", {"pendingDescribes": 2})
    copy_id = ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name="copy-c")["ImageId"]
    states = [ec2.describe_images(ImageIds=[copy_id])["Images"][0]["State"] for _ in range(4)]
    assert states == ["pending", "pending", "available", "available"]
    assert ec2.describe_images(ImageIds=[baked_image])["Images"][0]["State"] == "available"


def test_deregister_then_delete_snapshots(client, baked_image):
    ec2 = client("ec2")
    _, ebs = snapshots_of(ec2, baked_image)
    with pytest.raises(ClientError) as err:  # still used by the image, as on AWS
        ec2.delete_snapshot(SnapshotId=ebs[0]["SnapshotId"])
    assert err.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"
    ec2.deregister_image(ImageId=baked_image)
    ec2.delete_snapshot(SnapshotId=ebs[0]["SnapshotId"])
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ebs[0]["SnapshotId"] not in {
        s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_copy_is_tagged_from_its_tag_specifications_and_copy_image_tags(client, baked_image):
    ec2 = client("ec2")
    ec2.create_tags(Resources=[baked_image], Tags=[{"Key": "Type", "Value": "intermediate"},
                                                  {"Key": "Team", "Value": "platform"}])

    def tags(resource_id):
        found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    specs = [{"ResourceType": "image", "Tags": [{"Key": "Type", "Value": "golden-ami"}]},
             {"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": "golden"}]}]
    plain = ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name="tagged",
                           CopyImageTags=False, TagSpecifications=specs)["ImageId"]
    image, ebs = snapshots_of(ec2, plain)
    assert {t["Key"]: t["Value"] for t in image["Tags"]} == {"Type": "golden-ami"}
    assert tags(ebs[0]["SnapshotId"]) == {"Name": "golden"}

    merged = ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name="merged",
                            CopyImageTags=True, TagSpecifications=specs[:1])["ImageId"]
    assert tags(merged) == {"Type": "golden-ami", "Team": "platform"}  # the specification wins

    with pytest.raises(ClientError) as err:
        ec2.copy_image(SourceImageId=baked_image, SourceRegion=REGION, Name="bad",
                       TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_create_image_snapshots_the_root_volume_under_its_key(client):
    ec2, kms = client("ec2"), client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    base = client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    root = ec2.describe_images(ImageIds=[base])["Images"][0]["RootDeviceName"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": root, "Ebs": {"Encrypted": True, "KmsKeyId": key_arn, "VolumeSize": 8}}])
    image_id = ec2.create_image(InstanceId=instance["Instances"][0]["InstanceId"],
                                Name="direct")["ImageId"]
    _, [ebs] = snapshots_of(ec2, image_id)
    assert ebs["Encrypted"] is True and "KmsKeyId" not in ebs
    snapshot = ec2.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]
    assert (snapshot["Encrypted"], snapshot["KmsKeyId"]) == (True, key_arn)
    # Without a mapping the root volume is moto's unencrypted default, and so is the image.
    plain = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    _, [ebs] = snapshots_of(ec2, ec2.create_image(InstanceId=plain, Name="plain")["ImageId"])
    assert ebs["Encrypted"] is False
