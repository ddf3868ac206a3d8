"""aws:ec2:image parameters are validated asynchronously (ssm_params.py).

Plain moto writes an aws:ec2:image PutParameter at once and never checks the value: every test
here would see the new value on the first read, or an invalid value written."""

import pytest
from botocore.exceptions import ClientError

from conftest import admin

BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
NAME = "/golden-ami/pointer"


@pytest.fixture
def images(client):
    """Two available images of our own."""
    ec2 = client("ec2")
    base = client("ssm").get_parameter(Name=BASE)["Parameter"]["Value"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return [ec2.create_image(InstanceId=instance, Name=f"image-{i}")["ImageId"] for i in range(2)]


def put(ssm, value, **kwargs):
    return ssm.put_parameter(Name=NAME, Value=value, Type="String", DataType="aws:ec2:image",
                             **kwargs)


def value_or_code(ssm):
    try:
        return ssm.get_parameter(Name=NAME)["Parameter"]["Value"]
    except ClientError as err:
        return err.response["Error"]["Code"]


def test_a_create_is_visible_after_one_read_by_default(client, images):
    ssm = client("ssm")
    assert put(ssm, images[0])["Version"] == 1
    assert [value_or_code(ssm) for _ in range(3)] == ["ParameterNotFound", images[0], images[0]]


def test_an_update_shows_the_old_value_and_history_until_its_reads_are_used(client, endpoint, images):
    ssm = client("ssm")
    admin(endpoint, "config", {"parameterValidationReads": 0})
    put(ssm, images[0])
    assert value_or_code(ssm) == images[0]  # 0: applied before PutParameter answered
    admin(endpoint, "config", {"parameterValidationReads": 3})
    assert put(ssm, images[1], Overwrite=True)["Version"] == 2
    state = admin(endpoint, "state")["pendingParameters"]
    assert [(p["name"], p["value"], p["version"], p["readsLeft"]) for p in state] == \
        [(NAME, images[1], 2, 3)]
    assert [h["Value"] for h in ssm.get_parameter_history(Name=NAME)["Parameters"]] == [images[0]]
    assert ssm.get_parameters(Names=[NAME])["Parameters"][0]["Value"] == images[0]
    assert ssm.get_parameters_by_path(Path="/golden-ami")["Parameters"][0]["Value"] == images[0]
    # Three reads used: the fourth sees version 2.
    got = ssm.get_parameter(Name=NAME)["Parameter"]
    assert (got["Value"], got["Version"]) == (images[1], 2)
    assert admin(endpoint, "state")["pendingParameters"] == []


@pytest.mark.parametrize("bad", ["not-an-image", "ami-0123456789abcdef0", "disabled", "pending",
                                 "deregistered"])
def test_an_invalid_value_answers_200_and_is_never_written(client, endpoint, images, bad):
    ssm, ec2 = client("ssm"), client("ec2")
    put(ssm, images[0], Tier="Advanced")
    assert [value_or_code(ssm) for _ in range(2)] == ["ParameterNotFound", images[0]]
    if bad == "disabled":
        ec2.disable_image(ImageId=images[1])
        bad = images[1]
    elif bad == "deregistered":
        ec2.deregister_image(ImageId=images[1])
        bad = images[1]
    elif bad == "pending":
        admin(endpoint, "config", {"pendingDescribes": 5})
        instance = ec2.run_instances(ImageId=images[0], MinCount=1, MaxCount=1)["Instances"][0]
        bad = ec2.create_image(InstanceId=instance["InstanceId"], Name="pending")["ImageId"]
    assert put(ssm, bad, Overwrite=True)["Version"] == 2  # HTTP 200, as AWS answers
    assert [value_or_code(ssm) for _ in range(3)] == [images[0]] * 3
    assert [h["Version"] for h in ssm.get_parameter_history(Name=NAME)["Parameters"]] == [1]
    assert admin(endpoint, "state")["pendingParameters"] == []


def test_an_invalid_create_never_creates(client):
    ssm = client("ssm")
    put(ssm, "ami-0123456789abcdef0")
    assert [value_or_code(ssm) for _ in range(3)] == ["ParameterNotFound"] * 3
    with pytest.raises(ClientError) as err:
        ssm.get_parameter_history(Name=NAME)
    assert err.value.response["Error"]["Code"] == "ParameterNotFound"


def test_writes_queue_and_a_create_pending_refuses_another_create(client, endpoint, images):
    ssm = client("ssm")
    put(ssm, images[0])
    with pytest.raises(ClientError) as err:
        put(ssm, images[1])
    assert err.value.response["Error"]["Code"] == "ParameterAlreadyExists"
    assert put(ssm, images[1], Overwrite=True)["Version"] == 2
    assert value_or_code(ssm) == "ParameterNotFound"
    # Both writes' reads are used by that one read: both apply, in order.
    history = ssm.get_parameter_history(Name=NAME)["Parameters"]
    assert [(h["Version"], h["Value"]) for h in history] == [(1, images[0]), (2, images[1])]


def test_describe_parameters_counts_as_a_read_and_delete_drops_pending_writes(client, endpoint, images):
    ssm = client("ssm")
    put(ssm, images[0])
    mine = [{"Key": "Name", "Values": [NAME]}]
    assert ssm.describe_parameters(ParameterFilters=mine)["Parameters"] == []
    assert [p["Name"] for p in ssm.describe_parameters(ParameterFilters=mine)["Parameters"]] == [NAME]
    put(ssm, images[1], Overwrite=True)
    ssm.delete_parameter(Name=NAME)
    assert admin(endpoint, "state")["pendingParameters"] == []
    assert value_or_code(ssm) == "ParameterNotFound"


def test_text_parameters_are_written_at_once(client):
    ssm = client("ssm")
    ssm.put_parameter(Name="/golden-ami/targets", Value="{}", Type="String")
    assert ssm.get_parameter(Name="/golden-ami/targets")["Parameter"]["Value"] == "{}"


def test_the_seeding_waits_for_its_own_write_and_names_an_invalid_one(client, endpoint, images):
    """local/stack.py's put_image_parameter reads until the write is visible (bounded)."""
    from local.stack import StackError, put_image_parameter

    ssm = client("ssm")
    admin(endpoint, "config", {"parameterValidationReads": 4})
    answer = put_image_parameter(ssm, Name=NAME, Value=images[0], Type="String")
    assert answer["Version"] == 1 and value_or_code(ssm) == images[0]
    with pytest.raises(StackError, match="after 20 reads"):
        put_image_parameter(ssm, Name=NAME, Value="ami-0123456789abcdef0", Type="String",
                            Overwrite=True)
