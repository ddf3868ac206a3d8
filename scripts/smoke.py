"""`make smoke [STACK=golden-ami-pipeline]`: one real run in a deployed stack, checked end to end.

The local stack proves the pipeline's logic; only a real account proves what moto cannot: that
KMS lets the copies be encrypted under the golden key (and the key policy lets the services use
it), that a patched image really boots and passes the baseline, and that the functions' IAM
policies allow every call they make. This starts one execution of the stack's state machine,
follows it, then checks the result the way the e2e suite checks a local run:

- the run ended SUCCEEDED (or SKIPPED, up to date) and exactly one final notice said so;
- every pointer the run moved holds the run's golden image, and every pointer (moved or not)
  holds an available image of this account tagged Type=golden-ami for its family, whose
  snapshots are encrypted under the golden key (the same multi-Region key id in every region)
  and whose launch permission names the principals the stack shares with;
- nothing of the run is left: no automation in progress, no bake or test instance running, no
  intermediate image or snapshot, no golden image but the published ones, no run lock.

To read the notices it subscribes a temporary SQS queue to the stack's topic and removes both at
the end. It costs one run: a bake instance for the bake's duration, the copies, a boot test.

Exit status: 0 every check passed; 1 the run failed or a check did; 2 refused (no credentials, no
stack, a run already in progress).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TYPE_GOLDEN = "golden-ami"
TYPE_INTERMEDIATE = "golden-ami-intermediate"
TAG_FAMILY = "golden-ami:family"
TAG_EXECUTION = "golden-ami:execution"
TAG_AUTOMATION = "golden-ami:automation-execution"
FINAL_EVENTS = ("SUCCEEDED", "SKIPPED", "FAILED")
IN_PROGRESS = ("Pending", "InProgress", "Waiting", "Cancelling", "Scheduled", "RunbookInProgress",
               "PendingApproval", "Approved", "ChangeCalendarOverrideApproved")


class Refused(Exception):
    """The smoke test cannot start: exit 2 with the message."""


def key_id(key_arn: str) -> str:
    """The key id of a key ARN: a multi-Region key and its replicas share it (mrk-...)."""
    return key_arn.rsplit("/", 1)[-1]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


# ---- the checks: pure functions over what the APIs answered, each returning its problems ------


def check_image(image: dict[str, Any] | None, *, where: str, family: str, account: str,
                golden_key_id: str, snapshots: list[dict[str, Any]],
                launch_permissions: list[dict[str, str]], principals: dict[str, list[str]],
                execution: str | None = None) -> list[str]:
    """A pointer's image: available, ours, tagged, encrypted under the golden key, shared."""
    if image is None:
        return [f"{where}: the pointer's image does not exist"]
    problems = []
    image_id = image["ImageId"]
    if image.get("State") != "available":
        problems.append(f"{where}: {image_id} is {image.get('State')}, not available")
    if image.get("OwnerId") != account:
        problems.append(f"{where}: {image_id} is owned by {image.get('OwnerId')}, not {account}")
    tags = tags_of(image)
    if tags.get("Type") != TYPE_GOLDEN or tags.get(TAG_FAMILY) != family:
        problems.append(f"{where}: {image_id} is not tagged Type={TYPE_GOLDEN}, {TAG_FAMILY}={family}")
    if execution is not None and tags.get(TAG_EXECUTION) != execution:
        problems.append(f"{where}: {image_id} was made by {tags.get(TAG_EXECUTION)}, not this run")
    mapped = [m["Ebs"] for m in image.get("BlockDeviceMappings", []) if "Ebs" in m]
    if not mapped:
        problems.append(f"{where}: {image_id} has no EBS snapshot")
    found = {s["SnapshotId"]: s for s in snapshots}
    for ebs in mapped:
        snapshot = found.get(ebs.get("SnapshotId"))
        if snapshot is None:
            problems.append(f"{where}: snapshot {ebs.get('SnapshotId')} of {image_id} is gone")
        elif not snapshot.get("Encrypted") or key_id(snapshot.get("KmsKeyId", "")) != golden_key_id:
            problems.append(f"{where}: snapshot {snapshot['SnapshotId']} of {image_id} is "
                            f"encrypted under {snapshot.get('KmsKeyId') or 'no key'}, not the golden "
                            f"key {golden_key_id}")
    granted = {p.get("OrganizationArn") or p.get("OrganizationalUnitArn") or p.get("UserId")
               for p in launch_permissions}
    wanted = set(principals["organization_arns"] + principals["organizational_unit_arns"]
                 + principals["account_ids"])
    if wanted - granted:
        problems.append(f"{where}: {image_id} is not shared with {sorted(wanted - granted)}")
    return problems


def check_moved(where: str, before: str | None, after: str | None, publish: dict[str, Any]) -> list[str]:
    """A pointer the run says it moved holds the run's image, and moved from what it held."""
    problems = []
    if after != publish["newAmiId"]:
        problems.append(f"{where}: the run published {publish['newAmiId']} but the pointer holds {after}")
    if publish.get("previousAmiId") != before:
        problems.append(f"{where}: the pointer held {before} before the run, the run says "
                        f"{publish.get('previousAmiId')}")
    return problems


@dataclass
class Leftovers:
    """What one region holds of the run after it ended."""
    region: str
    automations: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)


def check_leftovers(left: Leftovers, published: set[str]) -> list[str]:
    """Nothing of the run outlives it but the published images and their snapshots."""
    problems = []
    for automation in left.automations:
        if automation["AutomationExecutionStatus"] in IN_PROGRESS:
            problems.append(f"{left.region}: automation {automation['AutomationExecutionId']} "
                            f"is still {automation['AutomationExecutionStatus']}")
    for instance in left.instances:
        if instance["State"]["Name"] not in ("terminated", "shutting-down"):
            problems.append(f"{left.region}: instance {instance['InstanceId']} is "
                            f"{instance['State']['Name']}")
    kept_snapshots = set()
    for image in left.images:
        if image["ImageId"] in published:
            kept_snapshots |= {m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
                               if "Ebs" in m}
        else:
            problems.append(f"{left.region}: image {image['ImageId']} "
                            f"({tags_of(image).get('Type')}) was left behind")
    for snapshot in left.snapshots:
        if snapshot["SnapshotId"] not in kept_snapshots:
            problems.append(f"{left.region}: snapshot {snapshot['SnapshotId']} was left behind")
    return problems


def final_notices(messages: list[dict[str, Any]], execution: str) -> list[dict[str, str]]:
    """The run's final notices among the SNS envelopes read from the queue."""
    found = []
    for envelope in messages:
        event = envelope.get("MessageAttributes", {}).get("event", {}).get("Value")
        if event in FINAL_EVENTS and f"Execution: {execution}" in envelope.get("Message", "").splitlines():
            found.append({"event": event, "subject": envelope.get("Subject", "")})
    return found


def published_regions(output: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(family, publish result) for every pointer the run says it moved."""
    moved = []
    for family in output.get("families", []):
        name = (family.get("family") or {}).get("name", "?")
        for pointer in family.get("pointers", []):
            if pointer.get("publish"):
                moved.append((name, pointer["publish"]))
    return moved


# ---- talking to the account --------------------------------------------------------------------


QUICK = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 5, "mode": "adaptive"})


@dataclass
class Stack:
    name: str
    region: str
    account: str
    outputs: dict[str, str]
    parameters: dict[str, str]

    def principals(self) -> dict[str, list[str]]:
        split = lambda key: [v.strip() for v in self.parameters.get(key, "").split(",") if v.strip()]  # noqa: E731
        return {
            "organization_arns": [self.parameters["OrganizationArn"]]
            if self.parameters.get("ShareWithOrganization", "true") == "true" else [],
            "organizational_unit_arns": split("ShareOuArns"),
            "account_ids": split("ShareAccountIds"),
        }


def read_stack(session: boto3.Session, name: str) -> Stack:
    try:
        account = session.client("sts", config=QUICK).get_caller_identity()["Account"]
        stack = session.client("cloudformation", config=QUICK).describe_stacks(StackName=name)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        raise Refused(f"cannot read the stack {name} in {session.region_name}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [k for k in ("StateMachineArn", "TargetsParameterName", "GoldenKeyArn",
                           "NotificationTopicArn") if k not in outputs]
    if missing:
        raise Refused(f"the stack {name} lacks the outputs {', '.join(missing)}: deploy this "
                      "version of the stack (make deploy) first")
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return Stack(name, session.region_name, account, outputs, parameters)


def pointer_regions(session: boto3.Session, stack: Stack) -> list[tuple[str, str, str]]:
    """(family, pointer name, region) for every family and region of the stack's targets."""
    text = session.client("ssm", config=QUICK).get_parameter(
        Name=stack.outputs["TargetsParameterName"])["Parameter"]["Value"]
    targets = json.loads(text)
    all_regions = [r["region"] for r in targets["regions"]]
    return [(f["name"], f["pointer"], region)
            for f in targets["families"] for region in (f.get("regions") or all_regions)]


def read_pointer(session: boto3.Session, name: str, region: str) -> str | None:
    try:
        return session.client("ssm", region_name=region, config=QUICK).get_parameter(
            Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterNotFound":
            return None
        raise


class NoticeQueue:
    """A temporary SQS queue subscribed to the stack's topic; removed by close()."""

    def __init__(self, session: boto3.Session, topic_arn: str, name: str):
        self.sqs = session.client("sqs", config=QUICK)
        self.sns = session.client("sns", config=QUICK)
        self.url = self.sqs.create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "true"})["QueueUrl"]
        self.subscription = None
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]}
        self.sqs.set_queue_attributes(QueueUrl=self.url, Attributes={"Policy": json.dumps(policy)})
        self.subscription = self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                                               ReturnSubscriptionArn=True)["SubscriptionArn"]
        self.messages: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=2).get("Messages", [])
            if not batch:
                return self.messages
            for message in batch:
                self.messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def close(self) -> None:
        if self.subscription:
            self.sns.unsubscribe(SubscriptionArn=self.subscription)
        self.sqs.delete_queue(QueueUrl=self.url)


def follow(sfn: Any, execution: str, poll: float, deadline: float,
           say: Callable[[str], None]) -> dict[str, Any]:
    """Print each state as it is entered; return DescribeExecution once the run has ended."""
    seen = 0
    while True:
        events = [event for page in sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution) for event in page["events"]]
        for event in events[seen:]:
            details = event.get("stateEnteredEventDetails")
            if details:
                say(f"  {event['timestamp']:%H:%M:%S} {details['name']}")
        seen = max(seen, len(events))
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution} is still running; it was left running (stop it with "
                               f"aws stepfunctions stop-execution --execution-arn {execution})")
        time.sleep(poll)


def gather_leftovers(session: boto3.Session, region: str, execution: str,
                     automation_ids: set[str]) -> Leftovers:
    ec2 = session.client("ec2", region_name=region, config=QUICK)
    left = Leftovers(region)
    if automation_ids:
        ssm = session.client("ssm", region_name=region, config=QUICK)
        for automation_id in sorted(automation_ids):
            left.automations += ssm.describe_automation_executions(Filters=[
                {"Key": "ExecutionId", "Values": [automation_id]}])["AutomationExecutionMetadataList"]
        for reservation in ec2.describe_instances(Filters=[
                {"Name": f"tag:{TAG_AUTOMATION}", "Values": sorted(automation_ids)}])["Reservations"]:
            left.instances += reservation["Instances"]
    by_run = [{"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]}]
    left.images = ec2.describe_images(Owners=["self"], Filters=by_run)["Images"]
    left.snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=by_run)["Snapshots"]
    if automation_ids:
        by_automation = [{"Name": f"tag:{TAG_AUTOMATION}", "Values": sorted(automation_ids)}]
        left.images += ec2.describe_images(Owners=["self"], Filters=by_automation)["Images"]
        left.snapshots += ec2.describe_snapshots(OwnerIds=["self"], Filters=by_automation)["Snapshots"]
    return left


def automations_since(session: boto3.Session, stack: Stack, started: datetime) -> set[str]:
    """The bake and boot-test automations started since the run began (one run at a time, so
    they are the run's, whether or not its output names them)."""
    ssm = session.client("ssm", config=QUICK)
    ids = set()
    for output in ("BakeDocumentName", "TestDocumentName"):
        if output not in stack.outputs:
            continue
        pages = ssm.get_paginator("describe_automation_executions").paginate(Filters=[
            {"Key": "DocumentNamePrefix", "Values": [stack.outputs[output]]},
            {"Key": "StartTimeAfter", "Values": [f"{started:%Y-%m-%dT%H:%M:%SZ}"]}])
        for page in pages:
            ids |= {a["AutomationExecutionId"] for a in page["AutomationExecutionMetadataList"]}
    return ids


def describe_image(ec2: Any, image_id: str) -> dict[str, Any] | None:
    try:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed"):
            return None
        raise
    return images[0] if images else None


def check_pointer_images(session: boto3.Session, stack: Stack, after: dict[tuple[str, str], str | None],
                         families: dict[tuple[str, str], str], execution: str,
                         moved: set[tuple[str, str]]) -> list[str]:
    problems = []
    golden = key_id(stack.outputs["GoldenKeyArn"])
    for (pointer, region), value in sorted(after.items()):
        where = f"{families[(pointer, region)]} in {region} ({pointer})"
        if value is None:
            problems.append(f"{where}: the pointer does not exist")
            continue
        ec2 = session.client("ec2", region_name=region, config=QUICK)
        image = describe_image(ec2, value)
        snapshot_ids = [m["Ebs"]["SnapshotId"] for m in (image or {}).get("BlockDeviceMappings", [])
                        if "Ebs" in m]
        snapshots = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"] if snapshot_ids else []
        permissions = ec2.describe_image_attribute(ImageId=value, Attribute="launchPermission")[
            "LaunchPermissions"] if image else []
        problems += check_image(image, where=where, family=families[(pointer, region)],
                                account=stack.account, golden_key_id=golden, snapshots=snapshots,
                                launch_permissions=permissions, principals=stack.principals(),
                                execution=execution if (pointer, region) in moved else None)
    return problems


def run(args: argparse.Namespace, session: boto3.Session, say: Callable[[str], None]) -> int:
    stack = read_stack(session, args.stack_name)
    sfn = session.client("stepfunctions", config=QUICK)
    machine = stack.outputs["StateMachineArn"]
    running = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)["executions"]
    if running:
        raise Refused(f"{running[0]['executionArn']} is running: wait for it (one run at a time)")
    targets = pointer_regions(session, stack)
    families = {(pointer, region): family for family, pointer, region in targets}
    before = {(p, r): read_pointer(session, p, r) for _f, p, r in targets}
    name = f"smoke-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    queue = NoticeQueue(session, stack.outputs["NotificationTopicArn"], f"{stack.name}-{name}"[:80])
    try:
        execution = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]
        say(f"started {execution}")
        described = follow(sfn, execution, args.poll, time.monotonic() + args.timeout * 60, say)
        say(f"ended {described['status']}")
        notices = final_notices(queue.drain(), execution)
        # SNS delivers within seconds; wait a little for a notice still on its way.
        for _ in range(10):
            if notices:
                break
            time.sleep(3)
            notices = final_notices(queue.drain(), execution)
    finally:
        queue.close()
    output = json.loads(described.get("output") or "{}")
    problems = []
    if described["status"] != "SUCCEEDED":
        problems.append(f"the run ended {described['status']}: {described.get('error', '')} "
                        f"{described.get('cause', '')}".strip())
    if [n["event"] for n in notices] not in (["SUCCEEDED"], ["SKIPPED"]):
        problems.append(f"expected one SUCCEEDED or SKIPPED notice, got {notices}")
    after = {key: read_pointer(session, *key) for key in before}
    moved = set()
    for family, publish in published_regions(output):
        key = (publish["parameterName"], publish["region"])
        moved.add(key)
        problems += check_moved(f"{family} in {publish['region']}", before.get(key), after.get(key), publish)
    for key in set(before) - moved:
        if after[key] != before[key]:
            problems.append(f"{families[key]} in {key[1]}: the pointer moved to {after[key]} "
                            "although the run did not publish there")
    problems += check_pointer_images(session, stack, after, families, execution, moved)
    published = {publish["newAmiId"] for _f, publish in published_regions(output)}
    automation_ids = automations_since(session, stack, described["startDate"])
    for region in sorted({r for _p, r in before}):
        problems += check_leftovers(gather_leftovers(
            session, region, execution, automation_ids if region == stack.region else set()), published)
    lock_name = f"/{stack.name}/run-lock"  # the template's LOCK_PARAMETER_NAME
    if read_pointer(session, lock_name, stack.region) is not None:
        problems.append(f"the run lock {lock_name} is still there")
    for key in sorted(before):
        say(f"  {families[key]} in {key[1]}: {before[key]} -> {after[key]}"
            + (" (published by this run)" if key in moved else ""))
    if problems:
        say(f"smoke: {len(problems)} problem(s):")
        for problem in problems:
            say(f"  - {problem}")
        return 1
    say(f"smoke: passed ({len(moved)} pointer(s) moved, {len(before)} checked, nothing left)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", default="golden-ami-pipeline")
    parser.add_argument("--region", default=None, help="the stack's region (default: the configured one)")
    parser.add_argument("--poll", type=float, default=30.0, help="seconds between two looks at the run")
    parser.add_argument("--timeout", type=float, default=240.0,
                        help="minutes to follow the run before giving up (it is left running)")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    say = lambda line: print(line, flush=True)  # noqa: E731
    try:
        if session.get_credentials() is None:
            raise Refused("no AWS credentials: set AWS_PROFILE (or run `aws sso login`) for the "
                          "pipeline's account, then run it again. It needs a deployed stack "
                          "(make deploy); the local stack is what `make test` and `make demo` use")
        if session.region_name is None:
            raise Refused("no region: pass REGION=... (or set AWS_DEFAULT_REGION) to the stack's region")
        return run(args, session, say)
    except Refused as refusal:
        print(f"smoke: {refusal}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError, TimeoutError) as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
