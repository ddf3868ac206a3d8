"""The local stack: the extended moto server, the seeded organization account, cargo lambda watch.

    from local.stack import LocalStack
    with LocalStack() as stack:          # build, start both servers, seed
        result = stack.run()              # one execution of the real ASL through local/runner
        stack.reset()                     # fresh emulator, same seed values (for the next run)

Everything binds 127.0.0.1 on free ports. Both servers (and every runner) are started in their own
process group and stopped by this object, by PID / process group, on exit, Ctrl-C or exception.

The seed follows infra/template.yaml: the golden key is a multi-Region key with the template's key
policy (intrinsics resolved for the emulated account and organization) and alias, the pointer is a
String parameter of data type aws:ec2:image in the Advanced tier in the pointer share, the targets
parameter holds what the template writes for the given ImageFamilies and TargetRegions (rendered
from the template itself), the documents are those of infra/ exactly as
scripts/sync-documents.py embeds them in the template (the bake and test Automation documents, the
Command documents of infra/baseline/), the report bucket and the instances' security group exist.
moto's random generator is seeded (POST /moto-api/seed) before seeding, so a reset gives the same
ids (subnet, key) and the watch server, whose functions read their environment once at cold
start, can keep running; if the ids ever differ, the watch server is restarted.

Several image families in several regions (the fan-out): `add_region` does what infra/region.yaml
does in a region (the golden key's replica, the pointer share), `add_family` seeds a family's
pointer with an image of its architecture, and `set_targets` rewrites the targets parameter the
way a stack update with ImageFamilies / TargetRegions would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import importlib.util

import boto3
import yaml
from botocore.config import Config as BotoConfig

REPO = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
DEFINITION = REPO / "statemachine" / "golden-ami-pipeline.asl.json"
TEMPLATE = REPO / "infra" / "template.yaml"
SYNC_DOCUMENTS = REPO / "scripts" / "sync-documents.py"
RUNNER = REPO / "local" / "runner" / "run.mjs"
BASE_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
BASE_AMI_PARAMETERS = {
    "x86_64": BASE_AMI_PARAMETER,
    "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
}
STACK_NAME = "golden-ami-pipeline"
RANDOM_SEED = 20261201

# The values the SAM stack's parameters default to (infra/template.yaml) and the names it creates.
POINTER_PARAMETER_NAME = "/golden-ami/current"
TARGETS_PARAMETER_NAME = f"/{STACK_NAME}/targets"
LOCK_PARAMETER_NAME = f"/{STACK_NAME}/run-lock"
PINS_PATH = f"/{STACK_NAME}/pins"
APPROVALS_PATH = f"/{STACK_NAME}/approvals"
DURATIONS_PATH = f"/{STACK_NAME}/durations"
POINTER_SHARE_NAME = f"{STACK_NAME}-pointers"
IMAGE_NAME_PREFIX = "golden-ami"
BAKE_DOCUMENT_NAME = "golden-ami-bake"
# Template resource -> the name the local stack registers it under (CloudFormation would
# generate one; the functions get it through their environment either way).
DOCUMENT_NAMES = {
    "BakeDocument": BAKE_DOCUMENT_NAME,
    "TestDocument": "golden-ami-test",
    "UpdateReportDocument": "golden-ami-update-report",
    "BaselineApplyDocument": "golden-ami-baseline-apply",
    "BaselineCheckDocument": "golden-ami-baseline-check",
}
BAKE_INSTANCE_TYPE = "t3.small"
BAKE_INSTANCE_ROLE = "golden-ami-pipeline-BakeInstanceRole"
BAKE_INSTANCE_PROFILE = "golden-ami-pipeline-BakeInstanceProfile"
AUTOMATION_ROLE = "golden-ami-pipeline-BakeAutomationRole"
TOPIC_NAME = "golden-ami-pipeline-NotificationTopic"
REPORT_BUCKET = "golden-ami-pipeline-reportbucket"

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class StackError(RuntimeError):
    """The local stack could not be built, started or seeded."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- infra/template.yaml with its intrinsic functions ---------------------------------------

class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's short-form tags as {"Fn::X": ...} data."""


def _cfn_constructor(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_constructor)


def document_contents() -> dict[str, tuple[str, str]]:
    """Template resource -> (document type, content), from scripts/sync-documents.py."""
    spec = importlib.util.spec_from_file_location("sync_documents", SYNC_DOCUMENTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {resource: (kind, module.document_content(resource))
            for resource, (_source, kind, *_rest) in module.DOCUMENTS.items()}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)


def _substitute(text: str, refs: dict[str, Any]) -> str:
    out, i = [], 0
    while (start := text.find("${", i)) >= 0:
        end = text.index("}", start)
        name = text[start + 2:end]
        if name.startswith("!"):
            # ${!Literal} is written as ${Literal}, e.g. an IAM policy variable
            # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-sub.html)
            out += [text[i:start], "${", name[1:], "}"]
            i = end + 1
            continue
        if name not in refs:
            raise StackError(f"cannot resolve ${{{name}}} in infra/template.yaml")
        out += [text[i:start], str(refs[name])]
        i = end + 1
    return "".join(out + [text[i:]])


def resolve_intrinsics(value: Any, refs: dict[str, Any],
                       conditions: dict[str, bool] | None = None) -> Any:
    """Resolve Ref, Fn::Sub (both forms), Fn::Join and Fn::If (against `conditions`) with
    `refs`; anything unresolvable is an error."""
    def again(v: Any, more: dict[str, Any] | None = None) -> Any:
        return resolve_intrinsics(v, {**refs, **(more or {})}, conditions)

    if isinstance(value, list):
        return [again(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        try:
            return refs[value["Ref"]]
        except KeyError:
            raise StackError(f"cannot resolve Ref {value['Ref']} in infra/template.yaml") from None
    if set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        if isinstance(sub, str):
            return _substitute(sub, refs)
        text, variables = sub
        return _substitute(text, {**refs, **{k: again(v) for k, v in variables.items()}})
    if set(value) == {"Fn::Join"}:
        separator, items = value["Fn::Join"]
        return separator.join(str(v) for v in again(items))
    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        if conditions is None or name not in conditions:
            raise StackError(f"cannot resolve the condition {name} of infra/template.yaml")
        return again(when_true if conditions[name] else when_false)
    if any(k.startswith("Fn::") for k in value):
        raise StackError(f"unsupported intrinsic {sorted(value)} in infra/template.yaml")
    return {k: again(v) for k, v in value.items()}


def targets_document(image_families: str = "", target_regions: Iterable[str] = (),
                     family_concurrency: int = 2, approval_minutes: int | None = None,
                     encryption: str = "copy") -> str:
    """The value the template's TargetsParameter gets for these stack parameters (its defaults
    for the default family's pointer, instance type and architecture); approval_minutes:
    RequireApproval=true with that ApprovalTimeoutMinutes; encryption: EncryptionMode."""
    template = load_template()
    regions = [r for r in target_regions if r]
    refs = {"AWS::Region": REGION, "AWS::StackName": STACK_NAME,
            "PointerParameterName": POINTER_PARAMETER_NAME,
            "BakeInstanceType": template["Parameters"]["BakeInstanceType"]["Default"],
            "BakeArchitecture": template["Parameters"]["BakeArchitecture"]["Default"],
            "ImageFamilies": image_families, "TargetRegions": regions,
            "FamilyConcurrency": family_concurrency,
            "RequireApproval": "true" if approval_minutes else "false",
            "ApprovalTimeoutMinutes": approval_minutes or 0, "EncryptionMode": encryption}
    conditions = {"HasImageFamilies": image_families != "", "HasTargetRegions": bool(regions),
                  "ApprovalRequired": bool(approval_minutes),
                  "DirectEncryption": encryption == "direct"}
    value = template["Resources"]["TargetsParameter"]["Properties"]["Value"]
    return resolve_intrinsics(value, refs, conditions)


# ---- processes -----------------------------------------------------------------------------

def stop_process_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM,
                       timeout: float = 15.0) -> None:
    """Stop a process started with start_new_session=True and everything in its group."""
    if proc is None:
        return
    pgid = proc.pid  # a session leader's process group id is its pid
    for s in (sig, signal.SIGKILL):
        try:
            os.killpg(pgid, s)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(pgid):
                break
            time.sleep(0.05)
        else:
            continue  # still alive: escalate to SIGKILL
        break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    """True if `pid` runs (a zombie not yet reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def put_image_parameter(ssm: Any, reads: int = 20, **request: Any) -> dict[str, Any]:
    """PutParameter of an aws:ec2:image value, then read until the write is visible, as a client
    of AWS must: AWS validates such a value asynchronously, so the 200 answer does not mean it
    was written (and an invalid one never is). Returns PutParameter's answer; StackError if the
    parameter does not hold the value at that version within `reads` reads."""
    answer = ssm.put_parameter(DataType="aws:ec2:image", **request)
    for _ in range(reads):
        try:
            found = ssm.get_parameter(Name=request["Name"])["Parameter"]
        except ssm.exceptions.ParameterNotFound:
            continue
        if (found["Value"], found["Version"]) == (request["Value"], answer["Version"]):
            return answer
    raise StackError(f"{request['Name']} does not hold {request['Value']} (version "
                     f"{answer['Version']}) after {reads} reads: the image was not valid")


def associate_and_wait(ram: Any, share_arn: str, resource_arn: str, reads: int = 20) -> None:
    """AssociateResourceShare, then read until the association is ASSOCIATED, as a client of AWS
    must (RAM associates asynchronously: ASSOCIATING, then ASSOCIATED or FAILED)."""
    ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[resource_arn])
    status = "?"
    for _ in range(reads):
        [association] = ram.get_resource_share_associations(
            associationType="RESOURCE", resourceShareArns=[share_arn],
            resourceArn=resource_arn)["resourceShareAssociations"]
        status = association["status"]
        if status == "ASSOCIATED":
            return
        if status == "FAILED":
            raise StackError(f"{resource_arn} did not join {share_arn}: "
                             f"{association.get('statusMessage')}")
    raise StackError(f"{resource_arn} is still {status} in {share_arn} after {reads} reads")


def _http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read()
    return json.loads(text) if text.strip() else None


# ---- results -------------------------------------------------------------------------------

@dataclass
class Seed:
    """What the seeding created: the values the SAM stack would hold."""

    account_id: str
    organization_id: str
    organization_arn: str
    kms_key_arn: str
    kms_alias: str
    key_policy: dict[str, Any]
    topic_arn: str
    vpc_id: str
    subnet_id: str
    security_group_id: str
    report_bucket: str
    instance_profile_name: str
    automation_role_arn: str
    base_ami_id: str
    golden_ami_id: str
    pointer_version: int
    pointer_share_arn: str
    targets: str


@dataclass
class RunResult:
    """One execution of the state machine, as the runner reported it."""

    exit_code: int
    status: str
    end_state: str | None
    execution_arn: str | None
    wall_ms: int | None
    output: Any
    error: str | None
    cause: str | None
    root_cause: dict[str, Any] | None
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""
    # As Step Functions would count the execution's history, and its largest state payload
    # (bytes, and where) against the 256 KiB quota (local/runner/lib/limits.mjs).
    history_events: int | None = None
    largest_payload: tuple[int | None, str | None] = (None, None)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def path(self) -> list[str]:
        return [e["state"] for e in self.events if e.get("type") == "StateEntered"]


class RunningExecution:
    """A runner process in flight (see LocalStack.start_run)."""

    def __init__(self, proc: subprocess.Popen, events_file: Path, stream: Callable[[str], None] | None,
                 stack: "LocalStack"):
        self.proc = proc
        self.events_file = events_file
        self._stack = stack
        self._stderr: list[str] = []
        self._stdout: list[str] = []

        def pump_err() -> None:
            for line in proc.stderr:  # type: ignore[union-attr]
                self._stderr.append(line)
                if stream is not None:
                    stream(line.rstrip("\n"))

        def pump_out() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                self._stdout.append(line)

        self._threads = [threading.Thread(target=pump_err, daemon=True),
                         threading.Thread(target=pump_out, daemon=True)]
        for t in self._threads:
            t.start()

    def events(self) -> list[dict[str, Any]]:
        try:
            text = self.events_file.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line still being written
                break
        return out

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        """Wait until an event record matches (e.g. CheckBake entered); fail if the run ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            if self.proc.poll() is not None:
                raise StackError(f"the execution ended before the awaited event:\n{''.join(self._stderr)[-3000:]}")
            time.sleep(0.02)
        raise StackError(f"no such event within {timeout} s")

    def wait(self, timeout: float = 600.0) -> RunResult:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self._stack._forget(self.proc)
        for t in self._threads:
            t.join(timeout=5)
        last: dict[str, Any] = {}
        for line in reversed(self._stdout):
            if line.strip().startswith("{"):
                last = json.loads(line)
                break
        return RunResult(
            exit_code=code, status=last.get("status", "RUNNER_ERROR"), end_state=last.get("endState"),
            execution_arn=last.get("executionArn"), wall_ms=last.get("wallMs"),
            output=last.get("output"), error=last.get("error"), cause=last.get("cause"),
            root_cause=last.get("rootCause"), events=self.events(), stderr="".join(self._stderr),
            history_events=last.get("historyEvents"),
            largest_payload=(last.get("largestPayloadBytes"), last.get("largestPayloadState")))


# ---- the stack -----------------------------------------------------------------------------

class LocalStack:
    """Build, start, seed and stop the local stand-in of the SAM stack (see the module doc)."""

    FUNCTIONS = ("plan-run", "read-current-ami", "notify", "start-bake", "check-bake",
                 "copy-image", "check-copy", "share-image", "verify-image", "start-test",
                 "check-test", "publish-pointer", "cleanup", "retain", "release-lock", "reaper",
                 "request-approval")

    def __init__(self, *, log: Callable[[str], None] | None = None, rust_log: str = "warn",
                 build: bool = True, work_dir: Path | None = None):
        self.log = log or (lambda line: None)
        self.rust_log = rust_log
        self.do_build = build
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="golden-ami-local-"))
        self.moto: subprocess.Popen | None = None
        self.watch: subprocess.Popen | None = None
        self.moto_port = 0
        self.watch_port = 0
        self.seed: Seed | None = None
        self.watch_env: dict[str, str] | None = None
        self.build_seconds = 0.0
        self.timings: dict[str, float] = {}
        self._runners: list[subprocess.Popen] = []
        self._run_count = 0
        self.started_pids: list[int] = []
        # The home region first, then every region add_region prepared.
        self.regions: list[str] = [REGION]
        self._session = boto3.session.Session(region_name=REGION, **{
            "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]})

    # ---- context manager ----

    def __enter__(self) -> "LocalStack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def lambda_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.watch_port}"

    def start(self) -> None:
        self.ensure_runner_deps()
        if self.do_build:
            self.build()
        t = time.monotonic()
        self.start_moto()
        self.timings["moto_start"] = time.monotonic() - t
        t = time.monotonic()
        # The very first seeding of a new server draws different random ids than every seeding
        # after a reset (moto creates some state lazily once); seed, reset and seed again, so that
        # every later reset() reproduces the ids the watch server's environment holds.
        self.seed_account()
        self.admin("reset", {})
        self.seed_account()
        self.timings["seed"] = time.monotonic() - t
        t = time.monotonic()
        self.start_watch()
        self.timings["watch_start"] = time.monotonic() - t

    def stop(self) -> None:
        for proc in list(self._runners):
            stop_process_group(proc, signal.SIGTERM, timeout=5)
        self._runners.clear()
        # SIGINT: cargo lambda watch shuts its function processes down on Ctrl-C.
        stop_process_group(self.watch, signal.SIGINT)
        self.watch = None
        stop_process_group(self.moto, signal.SIGTERM)
        self.moto = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # ---- build ----

    def ensure_runner_deps(self) -> None:
        """node_modules of local/runner from its package-lock.json, on a fresh clone."""
        if (RUNNER.parent / "node_modules" / "aws-local-stepfunctions").is_dir():
            return
        self.log("installing the runner's node modules: npm ci --prefix local/runner")
        proc = subprocess.run(["npm", "ci", "--prefix", str(RUNNER.parent)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise StackError(f"npm ci --prefix local/runner failed:\n{proc.stdout[-3000:]}")

    def build(self) -> None:
        """Debug build of every handler binary, so the watch server never compiles on invoke."""
        self.log("building the handlers: cargo build --workspace --bins (debug)")
        t = time.monotonic()
        proc = subprocess.run(["cargo", "build", "--workspace", "--bins"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.build_seconds = time.monotonic() - t
        if proc.returncode != 0:
            raise StackError(f"cargo build failed:\n{proc.stdout[-5000:]}")
        self.log(f"built in {self.build_seconds:.1f} s")

    # ---- moto ----

    def start_moto(self) -> None:
        self.moto_port = free_port()
        log = open(self.work_dir / "moto.log", "w")
        self.moto = subprocess.Popen(
            [sys.executable, "-m", "local.moto_ext", "--port", str(self.moto_port)], cwd=REPO,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.started_pids.append(self.moto.pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.moto.poll() is not None:
                raise StackError(f"the moto extension exited with {self.moto.returncode}: "
                                 f"{(self.work_dir / 'moto.log').read_text()[-3000:]}")
            try:
                _http("GET", f"{self.endpoint}/_golden/state", timeout=1)
                self.log(f"moto extension ready on {self.endpoint} (pid {self.moto.pid})")
                return
            except OSError:
                time.sleep(0.1)
        raise StackError("the moto extension did not answer GET /_golden/state within 30 s")

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """GET (body None) or POST the moto extension's /_golden/<path>."""
        return _http("GET" if body is None else "POST", f"{self.endpoint}/_golden/{path}", body)

    def moto_data(self) -> dict[str, Any]:
        return _http("GET", f"{self.endpoint}/moto-api/data.json")

    def client(self, service: str, retries: int = 1, region: str = REGION) -> Any:
        config = BotoConfig(retries={"total_max_attempts": retries, "mode": "standard"})
        return self._session.client(service, endpoint_url=self.endpoint, config=config,
                                    region_name=region)

    # ---- seeding ----

    def reset(self) -> None:
        """A fresh emulator with the same seed; the watch server is restarted only if needed."""
        self.admin("reset", {})
        self.seed_account()
        env = self._lambda_env()
        if env != self.watch_env:
            self.log("seeded ids changed: restarting cargo lambda watch")
            t = time.monotonic()
            stop_process_group(self.watch, signal.SIGINT)
            self.start_watch()
            self.timings["watch_restart"] = time.monotonic() - t

    def seed_account(self) -> Seed:
        _http("POST", f"{self.endpoint}/moto-api/seed?a={RANDOM_SEED}")
        self.regions = [REGION]
        org = self.client("organizations").create_organization(FeatureSet="ALL")["Organization"]
        account_id = org["MasterAccountId"]
        ec2, iam, kms, sns, ssm, s3 = (self.client(s) for s in ("ec2", "iam", "kms", "sns", "ssm", "s3"))

        template = load_template()
        resources = template["Resources"]
        refs = {"AWS::AccountId": account_id, "AWS::Region": REGION, "AWS::Partition": "aws",
                "AWS::StackName": STACK_NAME, "OrganizationId": org["Id"],
                "OrganizationArn": org["Arn"], "ImageNamePrefix": IMAGE_NAME_PREFIX}
        key_props = resources["GoldenKey"]["Properties"]
        policy = resolve_intrinsics(key_props["KeyPolicy"], refs)
        key = kms.create_key(Policy=json.dumps(policy),
                             Description=resolve_intrinsics(key_props["Description"], refs),
                             KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
                             MultiRegion=bool(key_props.get("MultiRegion")))["KeyMetadata"]
        if key_props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key["KeyId"])
        alias = resolve_intrinsics(resources["GoldenKeyAlias"]["Properties"]["AliasName"], refs)
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])

        topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]

        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24",
                                   AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
        group_props = resources["BakeSecurityGroup"]["Properties"]
        group = ec2.create_security_group(GroupName=f"{STACK_NAME}-BakeSecurityGroup", VpcId=vpc,
                                          Description=group_props["GroupDescription"])["GroupId"]
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": rule["IpProtocol"], "FromPort": rule["FromPort"], "ToPort": rule["ToPort"],
             "IpRanges": [{"CidrIp": rule["CidrIp"], "Description": rule["Description"]}]}
            for rule in group_props["SecurityGroupEgress"]])
        s3.create_bucket(Bucket=REPORT_BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": REGION})

        def trust(resource: str) -> str:
            doc = resources[resource]["Properties"]["AssumeRolePolicyDocument"]
            return json.dumps(resolve_intrinsics(doc, refs))

        iam.create_role(RoleName=BAKE_INSTANCE_ROLE, AssumeRolePolicyDocument=trust("BakeInstanceRole"))
        iam.create_instance_profile(InstanceProfileName=BAKE_INSTANCE_PROFILE)
        iam.add_role_to_instance_profile(InstanceProfileName=BAKE_INSTANCE_PROFILE,
                                         RoleName=BAKE_INSTANCE_ROLE)
        automation_role_arn = iam.create_role(
            RoleName=AUTOMATION_ROLE, AssumeRolePolicyDocument=trust("BakeAutomationRole"))["Role"]["Arn"]

        # The current golden AMI: last month's image, made the way an image is made.
        base_ami = ssm.get_parameter(Name=BASE_AMI_PARAMETER)["Parameter"]["Value"]
        instance = ec2.run_instances(ImageId=base_ami, InstanceType=BAKE_INSTANCE_TYPE, MinCount=1,
                                     MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
        golden = ec2.create_image(InstanceId=instance, Name=f"{IMAGE_NAME_PREFIX}-seed-previous-month",
                                  Description="the golden AMI before this run (seeded)")["ImageId"]
        ec2.terminate_instances(InstanceIds=[instance])
        ec2.create_tags(Resources=[golden], Tags=[{"Key": "Type", "Value": "golden-ami"}])

        pointer = put_image_parameter(ssm, Name=POINTER_PARAMETER_NAME, Type="String",
                                      Tier="Advanced", Value=golden,
                                      Description="The current golden AMI id (seeded by local/stack.py)")
        share_props = resources["PointerShare"]["Properties"]
        share = self.client("ram").create_resource_share(
            name=resolve_intrinsics(share_props["Name"], refs),
            allowExternalPrincipals=share_props["AllowExternalPrincipals"],
            principals=[org["Arn"]],
            resourceArns=[f"arn:aws:ssm:{REGION}:{account_id}:parameter{POINTER_PARAMETER_NAME}"],
        )["resourceShare"]["resourceShareArn"]
        targets = targets_document()
        ssm.put_parameter(Name=TARGETS_PARAMETER_NAME, Type="String", Tier="Intelligent-Tiering",
                          Value=targets, Description="The image families and target regions")
        for resource, (kind, content) in document_contents().items():
            ssm.create_document(Name=DOCUMENT_NAMES[resource], DocumentType=kind,
                                DocumentFormat="YAML", Content=content)
        self.seed = Seed(
            account_id=account_id, organization_id=org["Id"], organization_arn=org["Arn"],
            kms_key_arn=key["Arn"], kms_alias=alias, key_policy=policy, topic_arn=topic_arn,
            vpc_id=vpc, subnet_id=subnet, security_group_id=group, report_bucket=REPORT_BUCKET,
            instance_profile_name=BAKE_INSTANCE_PROFILE,
            automation_role_arn=automation_role_arn, base_ami_id=base_ami, golden_ami_id=golden,
            pointer_version=pointer["Version"], pointer_share_arn=share, targets=targets)
        return self.seed

    def seed_history(self) -> dict[str, str]:
        """A year of the default family's life before this run, for retention: six monthly
        golden images, A (210 days old) to F (30 days), and the pointer's history E -> C (a pin
        to an older image) -> F. B was launched ten days ago and is already deprecated; D was
        the rollback target of an earlier run and is still protected. Returns name -> image id."""
        ec2, ssm = self.client("ec2"), self.client("ssm")
        assert self.seed is not None
        tags = [{"Key": "Type", "Value": "golden-ami"}, {"Key": "golden-ami:family", "Value": "default"}]
        now = datetime.now(timezone.utc)
        day = timedelta(days=1)
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
        ids = {}
        for name, age in {"A": 210, "B": 180, "C": 150, "D": 120, "E": 60, "F": 30}.items():
            ids[name] = ec2.copy_image(
                SourceImageId=self.seed.golden_ami_id, SourceRegion=REGION, Name=f"golden-ami-{name}",
                TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                                   {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]
            self.admin("images", {"ImageId": ids[name], "creationDate": iso(now - age * day),
                                  "lastLaunchedTime": None})
        self.admin("images", {"ImageId": ids["B"], "lastLaunchedTime": iso(now - 10 * day)})
        ec2.enable_image_deprecation(ImageId=ids["B"], DeprecateAt=now + 5 * day)
        ec2.enable_image_deregistration_protection(ImageId=ids["D"])
        for name in ("E", "C", "F"):
            put_image_parameter(ssm, Name=POINTER_PARAMETER_NAME, Value=ids[name], Type="String",
                                Overwrite=True)
        return ids

    def golden_copy(self, source: str, family: str = "default", *, region: str = REGION,
                    key_arn: str | None = None) -> str:
        """A golden image of `family` in `region` as the pipeline makes one, from `source` (an
        image at home): copied under the region's golden key (`key_arn`; default the home key),
        tagged as the family's golden image and shared with the organization. Returns its id."""
        seed = self.seed
        assert seed is not None
        tags = [{"Key": "Type", "Value": "golden-ami"}, {"Key": "golden-ami:family", "Value": family}]
        ec2 = self.client("ec2", region=region)
        image = ec2.copy_image(
            SourceImageId=source, SourceRegion=REGION, Name=f"golden-ami-{family}-copy-{source}",
            Encrypted=True, KmsKeyId=key_arn or seed.kms_key_arn,
            TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                               {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]
        ec2.get_waiter("image_available").wait(ImageIds=[image],
                                               WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
        ec2.modify_image_attribute(ImageId=image, LaunchPermission={
            "Add": [{"OrganizationArn": seed.organization_arn}]})
        return image

    # ---- the fan-out: regions and families ----

    def add_region(self, region: str) -> str:
        """What infra/region.yaml makes in `region`: the golden key's replica (same key id) and
        the (empty) pointer share. Returns the replica's ARN."""
        seed = self.seed
        assert seed is not None
        if region in self.regions:
            raise StackError(f"{region} is already a region of the stack")
        # moto 5.2.5's ReplicateKey takes the key id only (an ARN answers HTTP 500).
        replica = self.client("kms").replicate_key(KeyId=seed.kms_key_arn.rsplit("/", 1)[-1],
                                                   ReplicaRegion=region,
                                                   Description="golden key replica")
        self.client("ram", region=region).create_resource_share(
            name=POINTER_SHARE_NAME, allowExternalPrincipals=False,
            principals=[seed.organization_arn])
        self.regions.append(region)
        return replica["ReplicaKeyMetadata"]["Arn"]

    def add_family(self, name: str, architecture: str = "x86_64", *,
                   pointer: str | None = None, seed_pointer: bool = True,
                   shared: bool = True) -> dict[str, Any]:
        """A family's targets entry (JSON-ready); with seed_pointer, its home pointer holds last
        month's image of its architecture, made the way an image is made, and is shared."""
        seed = self.seed
        assert seed is not None
        pointer = pointer or f"/golden-ami/{name}"
        entry: dict[str, Any] = {"name": name, "pointer": pointer, "architecture": architecture,
                                 "instanceType": "t4g.small" if architecture == "arm64" else "t3.small"}
        if not seed_pointer:
            entry["baseImage"] = BASE_AMI_PARAMETERS[architecture]
            return entry
        ec2, ssm = self.client("ec2"), self.client("ssm")
        base = ssm.get_parameter(Name=BASE_AMI_PARAMETERS[architecture])["Parameter"]["Value"]
        instance = ec2.run_instances(ImageId=base, InstanceType=entry["instanceType"], MinCount=1,
                                     MaxCount=1, SubnetId=seed.subnet_id)["Instances"][0]["InstanceId"]
        image = ec2.create_image(InstanceId=instance, Name=f"{IMAGE_NAME_PREFIX}-{name}-seed-previous-month",
                                 Description=f"the {name} golden AMI before this run (seeded)")["ImageId"]
        ec2.terminate_instances(InstanceIds=[instance])
        ec2.create_tags(Resources=[image], Tags=[{"Key": "Type", "Value": "golden-ami"}])
        put_image_parameter(ssm, Name=pointer, Type="String", Tier="Advanced", Value=image,
                            Description=f"The current {name} golden AMI id (seeded)")
        if shared:  # without: a pointer that fell out of its share (consumers get ParameterNotFound)
            associate_and_wait(self.client("ram"), seed.pointer_share_arn,
                               f"arn:aws:ssm:{REGION}:{seed.account_id}:parameter{pointer}")
        entry["seededImage"] = image
        return entry

    def set_targets(self, families: list[dict[str, Any]] | None = None,
                    regions: Iterable[str] = (), concurrency: int = 2,
                    approval_minutes: int | None = None, encryption: str = "copy") -> str:
        """Rewrite the targets parameter as a stack update with these ImageFamilies (None: the
        default family), TargetRegions, RequireApproval / ApprovalTimeoutMinutes and
        EncryptionMode would."""
        image_families = "" if families is None else json.dumps(
            [{k: v for k, v in f.items() if k != "seededImage"} for f in families])
        value = targets_document(image_families, list(regions), concurrency, approval_minutes,
                                 encryption)
        self.client("ssm").put_parameter(Name=TARGETS_PARAMETER_NAME, Type="String", Overwrite=True,
                                          Value=value)
        return value

    # ---- cargo lambda watch ----

    def _lambda_env(self) -> dict[str, str]:
        """The environment every function reads (crates/core/src/config.rs), as SAM would set it."""
        s = self.seed
        assert s is not None
        return {
            "TARGETS_PARAMETER_NAME": TARGETS_PARAMETER_NAME,
            "POINTER_SHARE_NAME": POINTER_SHARE_NAME,
            "LOCK_PARAMETER_NAME": LOCK_PARAMETER_NAME,
            "PINS_PATH": PINS_PATH,
            "APPROVALS_PATH": APPROVALS_PATH,
            "DURATIONS_PATH": DURATIONS_PATH,
            # The tests stop a run where only read-only polls can be in flight (CheckBake,
            # CheckCopy): nothing can start after the reaper's sweep, so it need not wait.
            "REAPER_SETTLE_SECONDS": "0",
            "BAKE_DOCUMENT_NAME": BAKE_DOCUMENT_NAME,
            "AUTOMATION_ASSUME_ROLE_ARN": s.automation_role_arn,
            "BAKE_SUBNET_ID": s.subnet_id,
            "BAKE_INSTANCE_PROFILE_NAME": s.instance_profile_name,
            "BAKE_SECURITY_GROUP_ID": s.security_group_id,
            "UPDATE_REPORT_DOCUMENT_NAME": DOCUMENT_NAMES["UpdateReportDocument"],
            "BASELINE_APPLY_DOCUMENT_NAME": DOCUMENT_NAMES["BaselineApplyDocument"],
            "BASELINE_CHECK_DOCUMENT_NAME": DOCUMENT_NAMES["BaselineCheckDocument"],
            "TEST_DOCUMENT_NAME": DOCUMENT_NAMES["TestDocument"],
            "REPORT_BUCKET_NAME": s.report_bucket,
            "REBUILD_WHEN_UP_TO_DATE": "false",
            "TEST_TIMEOUT_MINUTES": "45",
            "TEST_POLL_SECONDS": "0",
            "BAKE_TIMEOUT_MINUTES": "120",
            "COPY_TIMEOUT_MINUTES": "90",
            "BAKE_POLL_SECONDS": "0",
            "COPY_POLL_SECONDS": "0",
            "GOLDEN_KMS_KEY_ARN": s.kms_key_arn,
            "IMAGE_NAME_PREFIX": IMAGE_NAME_PREFIX,
            # As the template sets it (its ShareImage role has no DescribeOrganization).
            "SHARE_ORGANIZATION_ARN": s.organization_arn,
            "SHARE_WITH_ORGANIZATION": "true",
            "NOTIFICATION_TOPIC_ARN": s.topic_arn,
            "PIPELINE_NAME": STACK_NAME,
            # The template's defaults.
            "RETAIN_KEEP": "3",
            "RETAIN_MIN_AGE_DAYS": "90",
            "RETAIN_UNUSED_DAYS": "30",
            "DEPRECATE_AFTER_DAYS": "30",
            "RETAIN_DRY_RUN": "false",
            # The pointer's asynchronous validation and share association (the extension holds
            # both for some reads): waited for briefly, reading again without long pauses.
            "POINTER_WAIT_SECONDS": "5",
            "POINTER_POLL_MILLISECONDS": "20",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **DUMMY_CREDENTIALS,
            "RUST_LOG": self.rust_log,
        }

    def start_watch(self) -> None:
        env_vars = self._lambda_env()
        self.watch_port = free_port()
        env_file = self.work_dir / "lambda.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env_vars.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHARE_"))}
        env.update(env_vars)
        log = open(self.work_dir / "watch.log", "w")
        self.watch = subprocess.Popen(
            # Two instances per function, as Lambda would run them: two executions (or two
            # iterations of a Map) can be inside the same function at once.
            ["cargo", "lambda", "watch", "--ignore-changes", "--quiet", "-A", "127.0.0.1",
             "-P", str(self.watch_port), "--env-file", str(env_file), "--concurrency", "2"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        self.started_pids.append(self.watch.pid)
        deadline = time.monotonic() + 60
        while True:
            if self.watch.poll() is not None:
                raise StackError(f"cargo lambda watch exited with {self.watch.returncode}: "
                                 f"{(self.work_dir / 'watch.log').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.watch_port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise StackError("cargo lambda watch did not listen within 60 s") from None
                time.sleep(0.1)
        self.watch_env = env_vars
        self.log(f"cargo lambda watch ready on {self.lambda_endpoint} (pid {self.watch.pid})")
        self._warm_up()

    def _warm_up(self) -> None:
        """Start every function once (an empty event: rejected as InvalidInput, no AWS call), so
        the first real invocation is not a cold start and a ConfigError shows at once."""
        t = time.monotonic()
        errors: list[str] = []

        def one(fn: str) -> None:
            url = f"{self.lambda_endpoint}/2015-03-31/functions/{fn}/invocations"
            req = urllib.request.Request(url, data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                try:
                    with urllib.request.urlopen(req, timeout=120) as resp:
                        body = resp.read()
                except urllib.error.HTTPError as exc:
                    body = exc.read()
            except OSError as exc:  # the watch server went away (stopped, crashed)
                errors.append(f"{fn}: {exc}")
                return
            try:
                error_type = json.loads(body).get("errorType")
            except (json.JSONDecodeError, AttributeError):
                error_type = None
            if error_type != "InvalidInput":  # ConfigError, a crash, or an answer to garbage
                errors.append(f"{fn}: {body[:500]!r}")

        threads = [threading.Thread(target=one, args=(fn,), daemon=True) for fn in self.FUNCTIONS]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.timings["warm_up"] = time.monotonic() - t
        if errors:
            raise StackError("functions did not start cleanly:\n" + "\n".join(errors)
                             + f"\n(watch log: {self.work_dir / 'watch.log'})")
        self.log(f"{len(self.FUNCTIONS)} functions warm in {self.timings['warm_up']:.1f} s")

    # ---- executions ----

    def start_run(self, *, name: str | None = None, on_enter: Iterable[tuple[str, dict[str, Any]]] = (),
                  stream: Callable[[str], None] | None = None, wait_ms: int = 0,
                  input: dict[str, Any] | None = None,
                  callback_timeout_ms: int | None = None) -> RunningExecution:
        """Start one execution of the real ASL in a runner process (its own process group).

        on_enter: (Task state, fault spec) pairs: the spec is POSTed to /_golden/faults just before
        the state's first invocation (local/runner --on-enter).
        callback_timeout_ms: how long a callback Task (waitForTaskToken) waits for its token's
        answer before States.Timeout (local/runner --callback-timeout-ms; default: the runner's).
        The tokens live in this stack's moto extension (--moto-endpoint)."""
        self._run_count += 1
        events = self.work_dir / f"run-{self._run_count}.events.jsonl"
        cmd = ["node", str(RUNNER), "--definition", str(DEFINITION),
               "--lambda-endpoint", self.lambda_endpoint, "--events", str(events), "--json",
               "--wait-ms", str(wait_ms), "--input", json.dumps(input or {}),
               "--moto-endpoint", self.endpoint]
        if callback_timeout_ms is not None:
            cmd += ["--callback-timeout-ms", str(callback_timeout_ms)]
        if name:
            cmd += ["--execution-name", name]
        for state, fault in on_enter:
            cmd += ["--on-enter", f"{state}={self.endpoint}/_golden/faults:{json.dumps(fault)}"]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self._runners.append(proc)
        self.started_pids.append(proc.pid)
        return RunningExecution(proc, events, stream, self)

    def run(self, **kwargs: Any) -> RunResult:
        return self.start_run(**kwargs).wait()

    def stop_execution(self, running: RunningExecution) -> dict[str, Any]:
        """The local analogue of StopExecution: the runner's process group is killed where it
        stands, so no Catch, no cleanup and no notice runs. Returns the ExecutionStarted record."""
        started = next((e for e in running.events() if e.get("type") == "ExecutionStarted"), None)
        if started is None:
            raise StackError("the execution has not started: nothing to stop")
        stop_process_group(running.proc, signal.SIGKILL)
        self._forget(running.proc)
        return started

    def status_change(self, started: dict[str, Any], status: str, *, error: str | None = None,
                      cause: str | None = None) -> dict[str, Any]:
        """The EventBridge event Step Functions sends when an execution ends, in its documented
        shape ("Step Functions Execution Status Change"), for the execution `started` names."""
        arn = started["executionArn"]
        region, account = arn.split(":")[3], arn.split(":")[4]
        machine, name = arn.split(":")[6], arn.split(":")[7]
        stop_ms = int(time.time() * 1000)
        return {
            "version": "0", "id": f"status-change-{name}", "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": account, "region": region,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stop_ms / 1000)), "resources": [arn],
            "detail": {
                "executionArn": arn,
                "stateMachineArn": f"arn:aws:states:{region}:{account}:stateMachine:{machine}",
                "name": name, "status": status, "startDate": int(started["ts"]), "stopDate": stop_ms,
                "input": "{}", "inputDetails": {"included": True}, "output": None, "outputDetails": None,
                "error": error, "cause": cause,
            },
        }

    def invoke(self, function: str, payload: Any) -> tuple[int, Any]:
        """One invocation through cargo lambda watch's Invoke API: (HTTP status, JSON answer)."""
        url = f"{self.lambda_endpoint}/2015-03-31/functions/{function}/invocations"
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def golden_ami(self, *args: str) -> subprocess.CompletedProcess:
        """The operator CLI (the stack's debug build) against this stack: the targets, the golden
        key and who the images are shared with given by flags, as the local stack has no
        CloudFormation stack to read them from."""
        assert self.seed is not None
        target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(DUMMY_CREDENTIALS, AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
        return subprocess.run([f"{target}/debug/golden-ami", "--endpoint-url", self.endpoint,
                               "--targets-parameter", TARGETS_PARAMETER_NAME,
                               "--golden-key-arn", self.seed.kms_key_arn,
                               "--shared-with", self.seed.organization_arn, *args],
                              env=env, capture_output=True, text=True, timeout=60)

    def _forget(self, proc: subprocess.Popen) -> None:
        if proc in self._runners:
            self._runners.remove(proc)


# ---- what the emulator holds -----------------------------------------------------------------

@dataclass
class Facts:
    """The emulated account after (or before) a run, read from the emulator itself."""

    pointer: dict[str, Any] | None  # {"value", "version", "dataType"} or None if missing
    # Every pointer under /golden-ami/ in every region of the stack: (name, region) -> as above.
    pointers: dict[tuple[str, str], dict[str, Any]]
    images: dict[str, dict[str, Any]]  # our images: id -> {region, name, state, tags, snapshots, launch}
    snapshots: dict[str, dict[str, Any]]  # our snapshots: id -> {description, encrypted, kmsKeyId, tags}
    instances: dict[str, dict[str, Any]]  # id -> {state, imageId, tags}
    automations: list[dict[str, Any]]  # local/moto_ext's view of each automation execution
    notifications: list[dict[str, Any]]  # [{subject, message, event}] in order sent
    reports: dict[str, str]  # key -> text of each object in the report bucket

    def events(self) -> list[str]:
        return [n["event"] for n in self.notifications]

    def running_instances(self) -> list[str]:
        return [i for i, v in self.instances.items() if v["state"] not in ("terminated", "shutting-down")]

    def images_of_type(self, kind: str) -> list[str]:
        return [i for i, v in self.images.items() if v["tags"].get("Type") == kind]


def read_facts(stack: LocalStack) -> Facts:
    ec2 = stack.client("ec2", retries=3)
    pointers: dict[tuple[str, str], dict[str, Any]] = {}
    images: dict[str, dict[str, Any]] = {}
    snapshots: dict[str, dict[str, Any]] = {}
    for region in stack.regions:
        regional_ssm = stack.client("ssm", retries=3, region=region)
        for page in regional_ssm.get_paginator("get_parameters_by_path").paginate(
                Path="/golden-ami/", Recursive=True):
            for p in page["Parameters"]:
                pointers[(p["Name"], region)] = {"value": p["Value"], "version": p["Version"],
                                                 "dataType": p.get("DataType")}
        regional_ec2 = stack.client("ec2", retries=3, region=region)
        for image in regional_ec2.describe_images(Owners=["self"])["Images"]:
            launch = regional_ec2.describe_image_attribute(ImageId=image["ImageId"],
                                                           Attribute="launchPermission")
            images[image["ImageId"]] = {
                "region": region, "name": image.get("Name"), "state": image["State"],
                "tags": {t["Key"]: t["Value"] for t in image.get("Tags", [])},
                "snapshots": [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
                              if "Ebs" in m and m["Ebs"].get("SnapshotId")],
                "launchPermissions": launch.get("LaunchPermissions", [])}
        for snap in regional_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
            snapshots[snap["SnapshotId"]] = {
                "region": region, "description": snap.get("Description", ""),
                "encrypted": snap["Encrypted"], "kmsKeyId": snap.get("KmsKeyId"),
                "tags": {t["Key"]: t["Value"] for t in snap.get("Tags", [])}}
    pointer = pointers.get((POINTER_PARAMETER_NAME, REGION))
    s3 = stack.client("s3", retries=3)
    reports = {}
    if stack.seed is not None:
        for obj in s3.list_objects_v2(Bucket=stack.seed.report_bucket).get("Contents", []):
            body = s3.get_object(Bucket=stack.seed.report_bucket, Key=obj["Key"])["Body"].read()
            reports[obj["Key"]] = body.decode("utf-8", "replace")
    instances = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for i in reservation["Instances"]:
            instances[i["InstanceId"]] = {"state": i["State"]["Name"], "imageId": i.get("ImageId"),
                                          "tags": {t["Key"]: t["Value"] for t in i.get("Tags", [])}}
    return Facts(pointer=pointer, pointers=pointers, images=images, snapshots=snapshots,
                 instances=instances,
                 automations=stack.admin("state")["executions"],
                 notifications=read_notifications(stack), reports=reports)


def read_notifications(stack: LocalStack) -> list[dict[str, Any]]:
    """The notices sent so far, in order: [{subject, message, event}]. Safe while a run is in
    flight (read_facts is not: it describes images the run may be removing)."""
    notifications = []
    for topic in stack.moto_data().get("sns", {}).get("Topic", []):
        for _id, message, subject, attributes, _group in topic.get("sent_notifications", []):
            event = (attributes or {}).get("event", {})
            notifications.append({"subject": subject, "message": message,
                                  "event": event.get("Value") or event.get("StringValue")})
    return notifications


def automation_outputs(automation: dict[str, Any]) -> dict[str, str]:
    """{"launchInstance.InstanceId": ..., "createImage.ImageId": ...} from the steps that ran."""
    out = {}
    for step in automation.get("steps", []):
        for key, value in (step.get("outputs") or {}).items():
            out[f"{step['name']}.{key}"] = value[0] if isinstance(value, list) and value else value
    return out
