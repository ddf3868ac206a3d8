"""Fault injection through /_golden/faults, and the admin endpoint itself."""

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, admin


def test_api_fail_n_times_then_normal(client, endpoint):
    ec2 = client("ec2")
    admin(endpoint, "faults", {"apiFail": {"service": "ec2", "action": "DescribeImages",
                                           "code": "InternalError", "status": 500, "times": 2}})
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            ec2.describe_images(Owners=["self"])
        assert err.value.response["Error"]["Code"] == "InternalError"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert admin(endpoint, "state")["faults"]["apiFail"] == []


def test_other_actions_are_untouched(client, endpoint):
    admin(endpoint, "faults", {"apiFail": {"service": "ec2", "action": "CopyImage", "times": 5}})
    client("ec2").describe_vpcs()
    assert admin(endpoint, "state")["faults"]["apiFail"][0]["times"] == 5


@pytest.mark.parametrize("service, call, code, status", [
    ("ec2", lambda c: c("ec2").describe_images(Owners=["self"]), "RequestLimitExceeded", 503),
    ("ssm", lambda c: c("ssm").get_parameter(Name="/x"), "ThrottlingException", 400),
    ("kms", lambda c: c("kms").describe_key(KeyId="alias/x"), "ThrottlingException", 400),
    ("sns", lambda c: c("sns").publish(TopicArn="arn:aws:sns:eu-west-1:123456789012:t",
                                       Message="m"), "Throttling", 400),
])
def test_throttle_per_protocol(client, endpoint, service, call, code, status):
    action = {"ec2": "DescribeImages", "ssm": "GetParameter", "kms": "DescribeKey",
              "sns": "Publish"}[service]
    admin(endpoint, "faults", {"apiFail": {"service": service, "action": action,
                                           "throttle": True}})
    with pytest.raises(ClientError) as err:
        call(client)
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_ssm_fault_on_automation_api(client, endpoint):
    admin(endpoint, "faults", {"apiFail": {"service": "ssm", "action": "GetAutomationExecution",
                                           "code": "InternalServerError", "status": 500}})
    with pytest.raises(ClientError) as err:
        client("ssm").get_automation_execution(
            AutomationExecutionId="00000000-0000-0000-0000-000000000000")
    assert err.value.response["Error"]["Code"] == "InternalServerError"


def test_reset_clears_moto_state_too(client, endpoint):
    client("ec2").create_vpc(CidrBlock="10.9.0.0/16")
    admin(endpoint, "config", {"pendingDescribes": 3})
    admin(endpoint, "reset", {})
    vpcs = client("ec2").describe_vpcs()["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs if v["CidrBlock"] == "10.9.0.0/16"] == []
    assert admin(endpoint, "state")["config"]["pendingDescribes"] == 0


def test_admin_rejects_nonsense(endpoint):
    for path, body in (("faults", {"bogus": {}}), ("config", {"nope": 1})):
        req = urllib.request.Request(f"{endpoint}/_golden/{path}", data=json.dumps(body).encode(),
                                     method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req)
        assert err.value.code == 400


def test_a_fault_scoped_to_a_region_spares_the_others(client, endpoint):
    import boto3
    from botocore.config import Config

    admin(endpoint, "faults", {"apiFail": {"service": "ec2", "action": "DescribeImages",
                                           "region": "us-east-1"}})
    assert client("ec2").describe_images(Owners=["self"])["Images"] == []  # eu-west-1
    us_east = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
    ).client("ec2", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        us_east.describe_images(Owners=["self"])
    assert err.value.response["Error"]["Code"] == "InternalError"
    assert admin(endpoint, "state")["faults"]["apiFail"] == []


def test_an_api_barrier_holds_requests_until_all_arrive(client, endpoint):
    import threading
    import time

    admin(endpoint, "faults", {"apiBarrier": {"service": "ssm", "action": "PutParameter",
                                              "count": 2, "timeout": 10}})
    done: dict[str, float] = {}

    def put(name: str) -> None:
        client("ssm").put_parameter(Name=f"/barrier/{name}", Value=name, Type="String")
        done[name] = time.monotonic()

    first = threading.Thread(target=put, args=("first",))
    first.start()
    time.sleep(0.5)
    assert "first" not in done, "the first request went on before the second arrived"
    client("ssm").get_parameters(Names=["/barrier/x"])  # another action is not held
    second_started = time.monotonic()
    put("second")
    first.join(timeout=10)
    assert done["first"] >= second_started, "the first request was released before the second came"
    [barrier] = admin(endpoint, "state")["faults"]["apiBarrier"]
    assert (barrier["arrived"], barrier["released"], barrier["timedOut"]) == (2, True, False)
    # Released: later requests pass at once, and both writes reached moto.
    put("third")
    names = {p["Name"] for p in client("ssm").get_parameters_by_path(Path="/barrier")["Parameters"]}
    assert names == {"/barrier/first", "/barrier/second", "/barrier/third"}


def test_a_barrier_nobody_else_reaches_lets_the_request_go_after_its_timeout(client, endpoint):
    import time

    admin(endpoint, "faults", {"apiBarrier": {"service": "ssm", "action": "PutParameter",
                                              "count": 2, "timeout": 0.3}})
    start = time.monotonic()
    client("ssm").put_parameter(Name="/barrier/alone", Value="v", Type="String")
    assert time.monotonic() - start >= 0.3
    [barrier] = admin(endpoint, "state")["faults"]["apiBarrier"]
    assert barrier["timedOut"] is True and barrier["released"] is False
