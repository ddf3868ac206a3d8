"""`make demo`: one monthly run of the real pipeline against the local stand-in of AWS.

    .venv/bin/python -m local.demo        (or: python local/demo.py), from the repository root

Builds the handlers, starts the moto extension and cargo lambda watch on free 127.0.0.1 ports,
seeds the organization account as the SAM stack would, with two image families (the default one,
and an arm64 one on its first run) published in two regions, runs ONE execution of
statemachine/golden-ami-pipeline.asl.json (its progress streamed here), then prints a summary read
from the emulator's own state. Then a second execution is stopped mid-bake, and the reaper cleans
up after it; the operator CLI; a third execution waits for approval; a fourth bakes in the direct
encryption mode. Stops every process it started. Exit 0 only if the run succeeded, the emulator shows
what a successful run must leave behind, and the stopped run left nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `local` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.iam.check import Checker
from local.stack import (APPROVALS_PATH, DURATIONS_PATH, LOCK_PARAMETER_NAME, POINTER_PARAMETER_NAME,  # noqa: E402
                         POINTER_SHARE_NAME, REGION, LocalStack, RunResult, StackError,
                         automation_outputs, read_facts, read_notifications)


def say(line: str = "") -> None:
    print(line, flush=True)


# The demo's matrix: the default family (its pointer seeded with last month's image) and an
# arm64 family on its first run (no pointer yet: it bakes from its baseImage), published at home
# and in a second region.
OTHER_REGION = "us-east-1"
ARM_FAMILY = "arm64"


def set_up_matrix(stack: LocalStack) -> dict[str, Any]:
    replica = stack.add_region(OTHER_REGION)
    default = {"name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
               "instanceType": "t3.small"}
    arm = stack.add_family(ARM_FAMILY, "arm64", seed_pointer=False)
    targets = stack.set_targets([default, arm], [OTHER_REGION])
    history = stack.seed_history()
    return {"replica": replica, "families": [default, arm], "targets": targets, "history": history}


def share_association(stack: LocalStack, region: str, pointer: str) -> str:
    """The pointer's association with its region's pointer share, as RAM reports it."""
    ram = stack.client("ram", region=region)
    shares = [s for s in ram.get_resource_shares(resourceOwner="SELF")["resourceShares"]
              if s["name"] == POINTER_SHARE_NAME and s["status"] == "ACTIVE"]
    if not shares:
        return "MISSING (no pointer share)"
    arn = f"arn:aws:ssm:{region}:{stack.seed.account_id}:parameter{pointer}"
    found = ram.get_resource_share_associations(
        associationType="RESOURCE", resourceShareArns=[shares[0]["resourceShareArn"]],
        resourceArn=arn)["resourceShareAssociations"]
    return found[0]["status"] if found else "NOT ASSOCIATED"


def summary(stack: LocalStack, result: RunResult, wall: float, matrix: dict[str, Any]) -> list[str]:
    """Print the summary; return the problems found (problems make the demo fail)."""
    seed = stack.seed
    assert seed is not None
    facts = read_facts(stack)
    problems: list[str] = []
    keys = {REGION: seed.kms_key_arn, OTHER_REGION: matrix["replica"]}

    say("")
    say("=" * 78)
    say(f"golden-ami-pipeline: local run {result.status} ({result.execution_arn})")
    say("=" * 78)
    say(f"targets          {matrix['targets']}")
    for family in matrix["families"]:
        name, pointer = family["name"], family["pointer"]
        start = (f"last month's {matrix['history']['F']}" if name == "default"
                 else f"its baseImage {family.get('baseImage')}")
        say(f"family {name} ({family['architecture']}, {family['instanceType']}), from {start}:")
        for region in stack.regions:
            now = facts.pointers.get((pointer, region))
            if now is None:
                problems.append(f"the pointer {pointer} in {region} does not exist")
                say(f"  {region:<10} pointer {pointer} MISSING")
                continue
            image = facts.images.get(now["value"], {})
            snaps = [facts.snapshots.get(s, {}) for s in image.get("snapshots", [])]
            encrypted = all(s.get("encrypted") and s.get("kmsKeyId") == keys[region] for s in snaps)
            launch = [next(iter(p.values())) for p in image.get("launchPermissions", [])]
            association = share_association(stack, region, pointer)
            say(f"  {region:<10} {pointer} v{now['version']} -> {now['value']} "
                f"({image.get('name')}), key {'replica' if region != REGION else 'primary'} "
                f"{keys[region].rsplit('/', 1)[-1]}, shared with "
                f"{'the organization' if seed.organization_arn in launch else 'NOBODY'}; "
                f"pointer share {association}")
            if association != "ASSOCIATED":
                problems.append(f"{pointer} in {region} is not ASSOCIATED with its share: {association}")
            # At home: the seeded version, the three of the seeded history, and this run's.
            expected_version = seed.pointer_version + 4 if (name, region) == ("default", REGION) else 1
            if now["version"] != expected_version:
                problems.append(f"{pointer} in {region} is at version {now['version']}, "
                                f"expected {expected_version}")
            if image.get("region") != region or image.get("tags", {}).get("Type") != "golden-ami":
                problems.append(f"{pointer} in {region} holds {now['value']}, not a golden image there")
            if not snaps or not encrypted:
                problems.append(f"{now['value']} is not encrypted under the golden key in {region}")
            if seed.organization_arn not in launch:
                problems.append(f"{now['value']} is not shared with the organization")
        home = facts.images.get((facts.pointers.get((pointer, REGION)) or {}).get("value", ""), {})
        tags = home.get("tags", {})
        say(f"  what changed   {tags.get('golden-ami:packages')} packages, advisories "
            f"{tags.get('golden-ami:advisories')}, {tags.get('golden-ami:cves')} CVEs, kernel now "
            f"{tags.get('golden-ami:kernel')} (the image's tags; report {tags.get('golden-ami:update-report')})")
        if "golden-ami:packages" not in tags:
            problems.append(f"family {name}'s golden image carries no change summary")

    tests = [a for a in facts.automations if a["document"] == "golden-ami-test"]
    if len(tests) != len(matrix["families"]):
        problems.append(f"{len(tests)} boot tests ran, expected one per family")
    for test in tests:
        outputs = automation_outputs(test)
        check = outputs.get("runCheck.Output") or ""
        summary_line = check.splitlines()[-1] if check else "(no output)"
        say(f"boot test        {test['status']}: {test['parameters'].get('TestName')} booted on "
            f"{outputs.get('launchInstance.InstanceId')} from {test['parameters'].get('ImageId')}: "
            f"infra/baseline/check.sh {summary_line}")
        if test["status"] != "Success" or " fail=0 " not in summary_line:
            problems.append("a boot test did not pass")
    if tests:
        check = automation_outputs(tests[0]).get("runCheck.Output") or ""
        say("                 (per control, first family:)")
        for line in check.splitlines()[:-1]:
            say(f"                   {line}")

    say("notifications:")
    for n in facts.notifications:
        say(f"  [{n['event']}] {n['subject']}")
        if n["event"] in ("SUCCEEDED", "FAILED"):
            for line in n["message"].splitlines():
                if line.startswith(("Family ", "- ", "What changed:", "Boot test:", "Retention",
                                    "  kept ")):
                    say(f"      {line}")
    history = matrix["history"]
    gone = sorted(name for name, image in history.items() if image not in facts.images)
    say(f"retention        of the default family's history A-F, removed: {', '.join(gone) or 'none'} "
        "(old, unused, beyond Keep 3); the rest kept, deprecated or protected as the notice says")
    if gone != ["A", "D"]:
        problems.append(f"retention removed {gone} of the seeded history, expected A and D")
    if facts.events() != ["STARTED", "SUCCEEDED"]:
        problems.append(f"notifications were {facts.events()}, expected STARTED then SUCCEEDED")

    say("cleaned up:")
    for automation in facts.automations:
        outputs = automation_outputs(automation)
        intermediate = outputs.get("createImage.ImageId")
        instance = outputs.get("launchInstance.InstanceId")
        state = facts.instances.get(instance, {}).get("state", "gone") if instance else None
        line = (f"  {automation['document']} {automation['id'][:8]}: {automation['status']}, "
                f"{len(automation['steps'])} steps; instance {instance}: {state}")
        if instance and state != "terminated":
            problems.append(f"the temporary instance {instance} is {state}")
        if intermediate:
            left = intermediate in facts.images
            snaps = [x for x, v in facts.snapshots.items() if intermediate in v["description"]]
            line += (f"; intermediate {intermediate}: "
                     f"{'STILL THERE' if left or snaps else 'deregistered, snapshots deleted'}")
            if left or snaps:
                problems.append(f"the intermediate image {intermediate} or its snapshots remain")
        say(line)
    running = facts.running_instances()
    if running:
        problems.append(f"instances still running: {running}")
    lock = stack.client("ssm").get_parameters(Names=[LOCK_PARAMETER_NAME])["Parameters"]
    say(f"run lock         {LOCK_PARAMETER_NAME}: {'STILL HELD' if lock else 'released'}")
    if lock:
        problems.append("the run lock was not released")

    say("")
    transitions = sum(1 for e in result.events if e.get("type") == "StateEntered")
    families, regions = len(matrix["families"]), len(stack.regions)
    say(f"transitions      {transitions} states entered ({families} families x {regions} regions)")
    size, where = result.largest_payload
    say(f"AWS quotas       {result.history_events:,} of 25,000 history events; the largest state "
        f"{size:,} of 262,144 bytes ({where or 'the input'})")
    say(f"wall time        {wall:.1f} s without the build: the execution itself {result.wall_ms} ms; "
        f"start + seed {stack.timings.get('moto_start', 0) + stack.timings.get('seed', 0):.1f} s; "
        f"watch + warm-up {stack.timings.get('watch_start', 0):.1f} s")
    say(f"build time       {stack.build_seconds:.1f} s (cargo build --workspace --bins, debug)")
    return problems


def stopped_run(stack: LocalStack) -> list[str]:
    """A second run, stopped mid-bake (the local StopExecution), and what the reaper does."""
    problems: list[str] = []
    say("")
    say("[run] a second execution, stopped while it bakes (no Catch runs for a stopped execution):")
    running = stack.start_run(name="demo-stopped-mid-bake", wait_ms=50)
    running.wait_for(lambda e: e.get("type") == "StateEntered" and e.get("state") == "CheckBake")
    started = stack.stop_execution(running)
    before = read_facts(stack)
    bakes = [a["id"] for a in before.automations if a["status"] == "InProgress"]
    say(f"  stopped at CheckBake with {len(bakes)} bake automation(s) running: {', '.join(bakes)}")
    code, answer = stack.invoke("reaper", stack.status_change(started, "ABORTED"))
    if code != 200:
        return [f"the reaper failed: {answer}"]
    after = read_facts(stack)
    cleanup = answer.get("cleanup") or {}
    say(f"  [reaper] status change ABORTED -> {answer['action']}: stopped "
        f"{', '.join(cleanup.get('stoppedAutomations', [])) or 'nothing'}; deregistered "
        f"{', '.join(cleanup.get('deregisteredImages', [])) or 'nothing'}; lock released: "
        f"{(answer.get('lock') or {}).get('released')}")
    notice = after.notifications[-1]
    say(f"  [reaper] notice: {notice['subject']}")
    if notice["event"] != "FAILED" or "ExecutionAborted" not in notice["subject"]:
        problems.append(f"the reaper's notice is not the FAILED one: {notice['subject']}")
    if after.running_instances():
        problems.append(f"instances left running after the reaper: {after.running_instances()}")
    if any(a["status"] == "InProgress" for a in after.automations):
        problems.append("an automation of the stopped run still runs")
    if not set(bakes) <= set(cleanup.get("stoppedAutomations", [])):
        problems.append(f"the reaper stopped {cleanup.get('stoppedAutomations')}, not all of {bakes}")
    if stack.client("ssm").get_parameters(Names=[LOCK_PARAMETER_NAME])["Parameters"]:
        problems.append("the stopped run's lock was not released")
    return problems


def operator_cli(stack: LocalStack, matrix: dict[str, Any]) -> list[str]:
    """The on-call view of the same stack: `golden-ami status`, then a rollback of the default
    family at home, as a person would type them (the targets by name: no CloudFormation here)."""
    problems: list[str] = []
    for args in (["status"], ["rollback", "--family", "default", "--region", REGION]):
        say("")
        say(f"[cli] golden-ami {' '.join(args)}")
        result = stack.golden_ami(*args)
        for line in (result.stdout + result.stderr).splitlines():
            say(f"  {line}")
        if result.returncode != 0:
            problems.append(f"golden-ami {args[0]} exited {result.returncode}")
    back = stack.client("ssm").get_parameter(Name=POINTER_PARAMETER_NAME)["Parameter"]["Value"]
    if back != matrix["history"]["F"]:
        problems.append(f"after the rollback the pointer holds {back}, not last month's "
                        f"{matrix['history']['F']}")
    return problems


def approval_gate(stack: LocalStack, matrix: dict[str, Any]) -> list[str]:
    """A third run with the default family gated (its "approval": true in the targets): it waits
    after its boot test until `golden-ami approve`, then publishes; arm64 is not gated."""
    problems: list[str] = []
    default, arm = matrix["families"]
    stack.set_targets([{**default, "approval": True}, arm], [OTHER_REGION])
    # A month's history for the default family, as its last runs on AWS would have recorded it.
    history = {"bake": [2300, 2400, 2500], "copy": [900, 840], "test": [600]}
    stack.client("ssm").put_parameter(Name=f"{DURATIONS_PATH}/default", Type="String", Overwrite=True,
                                      Value=json.dumps(history))
    say("")
    say(f"[pacing] {DURATIONS_PATH}/default seeded with the last runs' seconds: {json.dumps(history)}")
    say("[run] a third execution, with the default family gated (\"approval\": true):")
    running = stack.start_run(name="demo-approval")
    ssm = stack.client("ssm")
    request = None
    for _ in range(1200):  # RequestApproval stores the request once the boot test passed
        found = ssm.get_parameters_by_path(Path=f"{APPROVALS_PATH}/demo-approval",
                                           Recursive=True)["Parameters"]
        if found or running.proc.poll() is not None:
            request = found[0] if found else None
            break
        time.sleep(0.05)
    if request is None:
        running.wait()
        return ["the gated run never asked for approval"]
    asked = [n for n in read_notifications(stack) if n["event"] == "APPROVAL_REQUESTED"]
    if not asked:
        problems.append("no APPROVAL_REQUESTED notice")
    else:
        say(f"  [notice] {asked[-1]['subject']}")
        for line in asked[-1]["message"].splitlines():
            if line.startswith(("Family ", "- ", "To publish", "To refuse")):
                say(f"    {line}")
    status = stack.golden_ami("status")
    waiting = [line for line in status.stdout.splitlines() if line.startswith("waiting for approval")]
    say("[cli] golden-ami status   (only its approval line)")
    for line in waiting:
        say(f"  {line}")
    if len(waiting) != 1:
        problems.append(f"golden-ami status shows {len(waiting)} approval(s) waiting, not 1")
    say("[cli] golden-ami approve demo-approval --family default --reason CAB-1234")
    approved = stack.golden_ami("approve", "demo-approval", "--family", "default", "--reason", "CAB-1234")
    for line in (approved.stdout + approved.stderr).splitlines():
        say(f"  {line}")
    if approved.returncode != 0:
        problems.append(f"golden-ami approve exited {approved.returncode}")
    result = running.wait()
    end = read_facts(stack).notifications[-1]
    say(f"  [run] {result.status}; notice: {end['subject']}")
    for line in end["message"].splitlines():
        if line.startswith("Approved by"):
            say(f"    {line}")
    if result.status != "SUCCEEDED" or "Approved by" not in end["message"]:
        problems.append(f"the approved run ended {result.status}: {end['subject']}")
    problems += pacing(stack, result)
    return problems


def pacing(stack: LocalStack, result: RunResult) -> list[str]:
    """Polling by expectation: the waits the gated run took from the seeded history (the local
    stack's intervals are 0 and its waits are skipped), and the history it left."""
    problems: list[str] = []
    expected = {"StartBake": 2040, "CopyImage": 714, "StartTest": 510}  # 85% of each median
    say("[pacing] what the gated run's steps told its Wait states (local Waits are skipped, local intervals are 0):")
    for state, first in expected.items():
        outputs = [e["output"] for e in result.events if e.get("type") == "StateExited"
                   and e.get("state") == state and "firstWaitSeconds" in e.get("output", {})]
        waits = sorted({o["firstWaitSeconds"] for o in outputs})
        say(f"  {state}: default {max(waits)} s before the first poll, then every {outputs[0]['pollSeconds']} s "
            f"(arm64, whose history is the local runs' 0 s: {min(waits)} s)")
        if first not in waits:
            problems.append(f"{state} did not wait {first} s first: {waits}")
    name = f"{DURATIONS_PATH}/default"
    say(f"  and recorded: {stack.client('ssm').get_parameter(Name=name)['Parameter']['Value']}")
    return problems


def direct_encryption(stack: LocalStack, matrix: dict[str, Any]) -> list[str]:
    """A fourth run with EncryptionMode=direct (the targets' "encryption"): each bake launches
    its instance under the golden key, so its image is the home region's golden image; no
    intermediate image is made, and the other region copies from it."""
    problems: list[str] = []
    default, arm = matrix["families"]
    stack.set_targets([default, arm], [OTHER_REGION], encryption="direct")
    say("")
    say("[run] a fourth execution, EncryptionMode=direct:")
    result = stack.run(name="demo-direct")
    facts = read_facts(stack)
    say(f"  [run] {result.status}; notice: {facts.notifications[-1]['subject']}")
    if result.status != "SUCCEEDED":
        return [f"the direct run ended {result.status}: {result.stderr[-1500:]}"]
    bakes = [a for a in facts.automations if a["document"] == "golden-ami-bake"
             and a["parameters"].get("ImageType") == "golden-ami"]
    copies = {e["output"]["goldenAmiId"]: e["output"] for e in result.events
              if e.get("type") == "StateExited" and e.get("state") == "CopyImage" and "output" in e}
    removed = [i for e in result.events if e.get("type") == "StateExited" and e.get("state") == "Cleanup"
               for i in e.get("output", {}).get("deregisteredImages", [])]
    for bake in bakes:
        image = automation_outputs(bake)["createImage.ImageId"]
        family = "default" if "-arm64-" not in bake["parameters"]["TargetAmiName"] else ARM_FAMILY
        [mapping, *_] = bake["parameters"]["BlockDeviceMappings"]
        snapshot = facts.images.get(image, {}).get("snapshots", ["?"])[0]
        say(f"  {family}: the bake launched {mapping['DeviceName']} under {mapping['Ebs']['KmsKeyId']} "
            f"and made {image} ({bake['parameters']['TargetAmiName']}), snapshot {snapshot} under "
            f"{facts.snapshots.get(snapshot, {}).get('kmsKeyId')}")
        pointer = default["pointer"] if family == "default" else arm["pointer"]
        home = facts.pointers.get((pointer, REGION), {}).get("value")
        say(f"    {REGION} pointer -> {home} (the bake's image, tagged golden: "
            f"{'no copy' if 'startedAt' not in copies.get(image, {'startedAt': 1}) else 'COPIED'})")
        if home != image:
            problems.append(f"{family}: the home pointer holds {home}, not the bake's image {image}")
        other = facts.pointers.get((pointer, OTHER_REGION), {}).get("value")
        say(f"    {OTHER_REGION} pointer -> {other} (copied from {image} under the replica)")
    made = len(bakes) + sum(1 for o in copies.values() if o.get("startedAt"))
    say(f"  images made by the run: {made} (copy mode: {made + len(bakes)}), intermediate images "
        f"removed: {len(removed)}")
    if len(bakes) != 2 or removed:
        problems.append(f"the direct run made {len(bakes)} direct bakes and removed {removed}")
    return problems


def iam_evaluation(stack: LocalStack, checker: Checker) -> list[str]:
    """Every call the demo's runs made, evaluated against the policy of the role that made it
    (local/iam, as after each e2e test): a call AWS would deny fails the demo."""
    calls = checker.take()
    by = sorted({c["principal"] for c in calls})
    denials = checker.check(calls)
    say(f"[iam] {len(calls)} calls by {len(by)} principals (each function's role, the automation "
        f"role, the instance role, the operator's approve/deny) evaluated against infra/ "
        f"policies: {len(denials)} denied")
    return [f"IAM would deny: {d}" for d in denials]


def main() -> int:
    # SIGTERM behaves like Ctrl-C: unwind, so the stack stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    entered = time.monotonic()
    try:
        with LocalStack(log=lambda line: say(f"[stack] {line}")) as stack:
            started = entered + stack.build_seconds  # wall time excludes the build
            say(f"[stack] seeded: organization {stack.seed.organization_arn}, golden AMI "
                f"{stack.seed.golden_ami_id}, pointer version {stack.seed.pointer_version}")
            # Every AWS call from here on is evaluated against its caller's policy at the end.
            stack.admin("calls/take", {})
            checker = Checker(stack, recording=None)
            matrix = set_up_matrix(stack)
            say(f"[stack] {OTHER_REGION} prepared as infra/region.yaml would (key replica "
                f"{matrix['replica']}, pointer share); family {ARM_FAMILY} added without a pointer")
            say("[stack] default family's history: "
                + ", ".join(f"{k}={v}" for k, v in matrix["history"].items())
                + " (A oldest; the pointer went E -> C -> F; B launched 10 days ago; D protected)")
            # As on AWS, a pointer write shows only once SSM validated it, and a share
            # association is ASSOCIATING before it is ASSOCIATED: PublishPointer waits for both.
            stack.admin("config", {"parameterValidationReads": 2, "ramAssociationReads": 2})
            say("[stack] like AWS: a pointer write shows after SSM's validation (2 reads here), a "
                "pointer's share association after RAM's (2 reads)")
            say("[run] statemachine/golden-ami-pipeline.asl.json:")
            result = stack.run(stream=lambda line: say(f"  {line}"))
            wall = time.monotonic() - started
            if result.status == "RUNNER_ERROR" or result.exit_code == 1:
                say(f"demo: the runner failed:\n{result.stderr[-3000:]}")
                return 1
            problems = summary(stack, result, wall, matrix)
            if result.status == "SUCCEEDED":
                problems += stopped_run(stack)
                problems += operator_cli(stack, matrix)
                problems += approval_gate(stack, matrix)
                problems += direct_encryption(stack, matrix)
            problems += iam_evaluation(stack, checker)
    except StackError as exc:
        say(f"demo: the local stack failed: {exc}")
        return 1
    except KeyboardInterrupt:
        say("demo: interrupted; every process it started was stopped")
        return 130
    if result.status != "SUCCEEDED":
        root = result.root_cause or {}
        say(f"demo: FAILED: the execution ended {result.status} at {result.end_state}; "
            f"first error at {root.get('state')}: {root.get('Error')}: {root.get('Cause')}")
        return 1
    if problems:
        say("demo: FAILED: the run succeeded but the emulator disagrees:")
        for p in problems:
            say(f"  - {p}")
        return 1
    say("demo: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
