"""Image lifecycle: deprecation, deregistration protection and its cooldown, last launched
time, and the admin API that seeds image ages."""

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from conftest import BASE_AMI_PARAMETER, admin
from local.moto_ext.lifecycle import COOLDOWN, deregistration_refusal

LAUNCHED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def ec2(client):
    return client("ec2")


@pytest.fixture
def image(ec2):
    return ec2.register_image(Name="golden-2026-10")["ImageId"]


def describe(ec2, image_id):
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def error_code(call, **kwargs):
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"]


def seed(endpoint, body):
    """POST /_golden/images -> (HTTP status, JSON answer)."""
    req = urllib.request.Request(f"{endpoint}/_golden/images", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def base_ami(client):
    return client("ssm").get_parameter(Name=BASE_AMI_PARAMETER)["Parameter"]["Value"]


# ---- deprecation -------------------------------------------------------------------------

def test_deprecation_is_set_shown_and_cleared(ec2, image):
    assert "DeprecationTime" not in describe(ec2, image)
    at = datetime(datetime.now(timezone.utc).year + 1, 3, 1, 8, 0, 0, tzinfo=timezone.utc)
    assert ec2.enable_image_deprecation(ImageId=image, DeprecateAt=at)["Return"] is True
    assert describe(ec2, image)["DeprecationTime"] == f"{at.year}-03-01T08:00:00.000Z"
    assert ec2.disable_image_deprecation(ImageId=image)["Return"] is True
    assert "DeprecationTime" not in describe(ec2, image)


def test_deprecate_at_is_rounded_to_the_nearest_minute(ec2, image):
    year = datetime.now(timezone.utc).year + 1
    for given, shown in (((12, 34, 29), "12:34:00"), ((12, 34, 30), "12:35:00"),
                         ((23, 59, 45), "00:00:00")):
        at = datetime(year, 6, 1, *given, tzinfo=timezone.utc)
        ec2.enable_image_deprecation(ImageId=image, DeprecateAt=at)
        day = "02" if shown == "00:00:00" else "01"
        assert describe(ec2, image)["DeprecationTime"] == f"{year}-06-{day}T{shown}.000Z"


def test_deprecate_at_now_is_accepted_the_past_and_over_ten_years_are_not(ec2, image):
    now = datetime.now(timezone.utc)
    for refused in (now - timedelta(minutes=2), now + timedelta(days=3660)):
        assert error_code(ec2.enable_image_deprecation, ImageId=image,
                          DeprecateAt=refused) == "InvalidParameterValue"
    assert "DeprecationTime" not in describe(ec2, image)

    ec2.enable_image_deprecation(ImageId=image, DeprecateAt=now)  # deprecated at once
    shown = datetime.strptime(describe(ec2, image)["DeprecationTime"],
                              "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=timezone.utc)
    assert now - timedelta(minutes=1) < shown <= now + timedelta(minutes=1)
    ec2.enable_image_deprecation(ImageId=image, DeprecateAt=now + timedelta(days=3650))


def test_owner_sees_deprecated_images_and_tag_filters_still_match(ec2, image):
    current = ec2.register_image(Name="golden-2026-11")["ImageId"]
    ec2.register_image(Name="untagged")
    ec2.create_tags(Resources=[image, current], Tags=[{"Key": "Type", "Value": "golden-ami"}])
    ec2.enable_image_deprecation(ImageId=image, DeprecateAt=datetime.now(timezone.utc))

    tagged = [{"Name": "tag:Type", "Values": ["golden-ami"]}]
    for include in (True, False):  # for the owner, IncludeDeprecated does not matter
        found = ec2.describe_images(Owners=["self"], Filters=tagged,
                                    IncludeDeprecated=include)["Images"]
        assert {i["ImageId"]: "DeprecationTime" in i for i in found} == {image: True,
                                                                         current: False}


def test_only_the_owner_can_deprecate_or_protect(client, ec2, image):
    amazon = base_ami(client)
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    calls = [(ec2.enable_image_deprecation, {"DeprecateAt": tomorrow}),
             (ec2.enable_image_deregistration_protection, {}),
             (ec2.describe_image_attribute, {"Attribute": "lastLaunchedTime"})]
    for call, kwargs in calls:
        assert error_code(call, ImageId=amazon, **kwargs) == "AuthFailure"
        assert error_code(call, ImageId="ami-00000000000000000",
                          **kwargs) == "InvalidAMIID.NotFound"
    ec2.deregister_image(ImageId=image)
    assert error_code(ec2.disable_image_deprecation, ImageId=image) == "InvalidAMIID.Unavailable"
    # Someone else's image shows neither its protection nor its last launch.
    assert {"DeregistrationProtection", "LastLaunchedTime"}.isdisjoint(describe(ec2, amazon))


# ---- deregistration protection -----------------------------------------------------------

def test_protection_refuses_deregistration_until_disabled(ec2, image):
    assert describe(ec2, image)["DeregistrationProtection"] == "disabled"
    assert ec2.enable_image_deregistration_protection(ImageId=image)["Return"] \
        == "enabled-without-cooldown"
    assert describe(ec2, image)["DeregistrationProtection"] == "enabled-without-cooldown"
    assert ec2.describe_image_attribute(ImageId=image, Attribute="deregistrationProtection")[
        "DeregistrationProtection"] == {"Value": "enabled-without-cooldown"}

    assert error_code(ec2.deregister_image, ImageId=image) == "OperationNotPermitted"
    assert describe(ec2, image)["State"] == "available"  # still registered

    assert ec2.disable_image_deregistration_protection(ImageId=image)["Return"] == "disabled"
    assert describe(ec2, image)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image)  # no cooldown: at once
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_cooldown_keeps_the_image_protected_after_disable(ec2, image):
    assert ec2.enable_image_deregistration_protection(ImageId=image, WithCooldown=True)[
        "Return"] == "enabled-with-cooldown"
    assert describe(ec2, image)["DeregistrationProtection"] == "enabled-with-cooldown"
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert ec2.disable_image_deregistration_protection(ImageId=image)["Return"] == "disabled"
    assert describe(ec2, image)["DeregistrationProtection"] == "disabled"

    with pytest.raises(ClientError) as err:
        ec2.deregister_image(ImageId=image)
    assert err.value.response["Error"]["Code"] == "OperationNotPermitted"
    until = re.search(r"cooldown until (\S+Z)", err.value.response["Error"]["Message"]).group(1)
    until = datetime.strptime(until, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before + COOLDOWN <= until <= datetime.now(timezone.utc) + COOLDOWN
    assert describe(ec2, image)["State"] == "available"

    # Enabling again (without cooldown) and disabling does not shorten the cooldown.
    ec2.enable_image_deregistration_protection(ImageId=image)
    ec2.disable_image_deregistration_protection(ImageId=image)
    assert error_code(ec2.deregister_image, ImageId=image) == "OperationNotPermitted"


def test_the_cooldown_ends_24_hours_after_disable():
    disabled_at = datetime(2026, 5, 1, 12, 0, 0)
    ami = SimpleNamespace(id="ami-1", golden_protection="disabled",
                          golden_cooldown_until=disabled_at + COOLDOWN)
    assert "cooldown until 2026-05-02T12:00:00Z" in deregistration_refusal(
        ami, disabled_at + COOLDOWN - timedelta(seconds=1))
    assert deregistration_refusal(ami, disabled_at + COOLDOWN) is None
    assert deregistration_refusal(SimpleNamespace(
        id="ami-2", golden_protection="disabled", golden_cooldown_until=None), disabled_at) is None


# ---- last launched time ------------------------------------------------------------------

def test_last_launched_time_is_set_by_run_instances(client, ec2, image):
    assert "LastLaunchedTime" not in describe(ec2, image)
    assert ec2.describe_image_attribute(ImageId=image, Attribute="lastLaunchedTime")[
        "LastLaunchedTime"] == {}

    before = datetime.now(timezone.utc).replace(microsecond=0)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    shown = describe(ec2, image)["LastLaunchedTime"]
    assert LAUNCHED.fullmatch(shown)
    launched = datetime.strptime(shown, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= launched <= datetime.now(timezone.utc)
    assert ec2.describe_image_attribute(ImageId=image, Attribute="lastLaunchedTime")[
        "LastLaunchedTime"] == {"Value": shown}

    other = ec2.register_image(Name="never-launched")["ImageId"]
    ec2.run_instances(ImageId=base_ami(client), MinCount=1, MaxCount=1)  # not ours: no effect
    assert "LastLaunchedTime" not in describe(ec2, other)


# ---- admin seeding -----------------------------------------------------------------------

def test_admin_seeds_creation_date_and_last_launched_time(ec2, endpoint, image):
    status, answer = seed(endpoint, {"ImageId": image, "creationDate": "2026-01-01T00:00:00.000Z",
                                     "lastLaunchedTime": "2026-03-01T02:00:00+02:00"})
    assert status == 200
    assert answer == {"ImageId": image, "OwnerId": describe(ec2, image)["OwnerId"],
                      "Region": "eu-west-1", "creationDate": "2026-01-01T00:00:00.000Z",
                      "lastLaunchedTime": "2026-03-01T00:00:00Z"}
    shown = describe(ec2, image)
    assert (shown["CreationDate"], shown["LastLaunchedTime"]) == ("2026-01-01T00:00:00.000Z",
                                                                  "2026-03-01T00:00:00Z")

    # One field at a time; null means never launched.
    assert seed(endpoint, {"ImageId": image, "creationDate": "2025-12-01T00:00:00Z"})[1][
        "lastLaunchedTime"] == "2026-03-01T00:00:00Z"
    assert seed(endpoint, {"ImageId": image, "lastLaunchedTime": None})[1] == {
        **answer, "creationDate": "2025-12-01T00:00:00.000Z", "lastLaunchedTime": None}
    assert "LastLaunchedTime" not in describe(ec2, image)

    old = ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "image-id", "Values": [image]}])["Images"]
    assert [i["CreationDate"] for i in old] == ["2025-12-01T00:00:00.000Z"]


def test_admin_seed_rejects_unknown_images_and_bad_times(client, endpoint, image):
    bad = [
        ({"ImageId": "ami-00000000000000000", "creationDate": "2026-01-01T00:00:00Z"},
         "no image 'ami-00000000000000000'"),
        ({"ImageId": base_ami(client), "creationDate": "2026-01-01T00:00:00Z"}, "no image"),
        ({"creationDate": "2026-01-01T00:00:00Z"}, "expected ImageId"),
        ({"ImageId": image, "CreationDate": "2026-01-01T00:00:00Z"}, "expected ImageId"),
        ({"ImageId": image}, "nothing to set"),
        ({"ImageId": image, "creationDate": "2026-13-01T00:00:00Z"}, "creationDate must be"),
        ({"ImageId": image, "creationDate": "2026-01-01T00:00:00"}, "with a zone"),
        ({"ImageId": image, "lastLaunchedTime": "last month"}, "lastLaunchedTime must be"),
        ({"ImageId": image, "lastLaunchedTime": 1767225600}, "lastLaunchedTime must be"),
    ]
    for body, message in bad:
        status, answer = seed(endpoint, body)
        assert (status, message in answer["error"]) == (400, True), (body, answer)


def test_reset_clears_the_lifecycle_state(ec2, endpoint, image):
    ec2.enable_image_deprecation(ImageId=image, DeprecateAt=datetime.now(timezone.utc))
    ec2.enable_image_deregistration_protection(ImageId=image, WithCooldown=True)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)

    admin(endpoint, "reset", {})
    assert error_code(ec2.describe_images, ImageIds=[image]) == "InvalidAMIID.NotFound"
    assert seed(endpoint, {"ImageId": image, "lastLaunchedTime": None})[0] == 400
    fresh = describe(ec2, ec2.register_image(Name="golden-2026-12")["ImageId"])
    assert fresh["DeregistrationProtection"] == "disabled"
    assert {"DeprecationTime", "LastLaunchedTime"}.isdisjoint(fresh)
