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

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
BAKE_DOCUMENT = REPO / "infra" / "bake-document.yaml"
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
    """What the bake needs: a subnet, an instance profile, the base AMI, the document."""
    ec2, iam, ssm = client("ec2"), client("iam"), client("ssm")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    iam.create_instance_profile(InstanceProfileName="golden-ami-bake")
    base_ami = ssm.get_parameter(Name=BASE_AMI_PARAMETER)["Parameter"]["Value"]
    ssm.create_document(Name="golden-ami-bake", DocumentType="Automation", DocumentFormat="YAML",
                        Content=BAKE_DOCUMENT.read_text())
    return {"subnet": subnet, "base_ami": base_ami, "profile": "golden-ami-bake",
            "document": "golden-ami-bake"}
