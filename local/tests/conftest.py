"""Fixtures: one extended moto server per test session, reset before every test."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from local.stack import DOCUMENT_NAMES, document_contents  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
BASE_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto_ext") / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "local.moto_ext", "--port", str(port)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if proc.poll() is not None:
                raise RuntimeError(f"moto_ext exited with {proc.returncode}")
            try:
                urllib.request.urlopen(f"{url}/_golden/state", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_ext did not become ready in 10 s")
        yield url
    finally:
        proc.terminate()  # by PID: only the process this fixture started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def admin(endpoint: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{endpoint}/_golden/{path}", data=data,
                                 method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(autouse=True)
def _reset(endpoint):
    admin(endpoint, "reset", {})
    yield


@pytest.fixture
def client(endpoint):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    from botocore.config import Config

    # No SDK retries: a test must see each injected error exactly as the server sent it.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return lambda service: session.client(service, endpoint_url=endpoint, config=config)


@pytest.fixture
def bake_env(client):
    """What the bake and the boot test need, as the stack deploys it: a subnet and security
    group, an instance profile, the report bucket, the base AMI and every document of infra/."""
    ec2, iam, ssm, s3 = client("ec2"), client("iam"), client("ssm"), client("s3")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="bake", Description="bake", VpcId=vpc)["GroupId"]
    iam.create_instance_profile(InstanceProfileName="golden-ami-bake")
    s3.create_bucket(Bucket="golden-ami-reports", CreateBucketConfiguration={"LocationConstraint": REGION})
    base_ami = ssm.get_parameter(Name=BASE_AMI_PARAMETER)["Parameter"]["Value"]
    for resource, (kind, content) in document_contents().items():
        ssm.create_document(Name=DOCUMENT_NAMES[resource], DocumentType=kind,
                            DocumentFormat="YAML", Content=content)
    return {"subnet": subnet, "group": group, "base_ami": base_ami, "profile": "golden-ami-bake",
            "bucket": "golden-ami-reports", "document": DOCUMENT_NAMES["BakeDocument"],
            "test_document": DOCUMENT_NAMES["TestDocument"]}


# What StartBake and StartTest pass for the run's tags (core::automation::run_parameters).
RUN_PARAMETERS = {"StackName": "golden-ami-pipeline", "Family": "default",
                  "RunId": "arn:aws:states:eu-west-1:123456789012:execution:golden-ami-pipeline:local"}


def bake_parameters(env: dict, name: str = "golden-2026-11", **overrides: str) -> dict:
    """The bake document's parameters, as StartBake sends them."""
    values = {"SourceAmiId": env["base_ami"], "SubnetId": env["subnet"],
              "SecurityGroupId": env["group"], "IamInstanceProfileName": env["profile"],
              "TargetAmiName": name, "UpdateReportDocumentName": DOCUMENT_NAMES["UpdateReportDocument"],
              "BaselineApplyDocumentName": DOCUMENT_NAMES["BaselineApplyDocument"],
              "ReportBucketName": env["bucket"],
              "AutomationAssumeRole": "arn:aws:iam::123456789012:role/bake", **RUN_PARAMETERS,
              **overrides}
    return {key: [value] for key, value in values.items()}


def boot_test_parameters(env: dict, image_id: str, name: str = "golden-2026-11") -> dict:
    """The test document's parameters, as StartTest sends them."""
    values = {"ImageId": image_id, "SubnetId": env["subnet"], "SecurityGroupId": env["group"],
              "IamInstanceProfileName": env["profile"],
              "BaselineCheckDocumentName": DOCUMENT_NAMES["BaselineCheckDocument"],
              "ReportBucketName": env["bucket"], "TestName": name,
              "AutomationAssumeRole": "arn:aws:iam::123456789012:role/bake", **RUN_PARAMETERS}
    return {key: [value] for key, value in values.items()}
