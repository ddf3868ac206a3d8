"""`make demo`: one monthly run of the real pipeline against the local stand-in of AWS.

    .venv/bin/python -m local.demo        (or: python local/demo.py), from the repository root

Builds the handlers, starts the moto extension and cargo lambda watch on free 127.0.0.1 ports,
seeds the organization account as the SAM stack would, runs ONE execution of
statemachine/golden-ami-pipeline.asl.json (its progress streamed here), then prints a summary read
from the emulator's own state. Stops every process it started. Exit 0 only if the run succeeded
and the emulator shows what a successful run must leave behind.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `local` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.stack import (LocalStack, RunResult, StackError, automation_outputs,  # noqa: E402
                         read_facts)


def say(line: str = "") -> None:
    print(line, flush=True)


def summary(stack: LocalStack, result: RunResult, wall: float) -> list[str]:
    """The summary lines and the problems found (problems make the demo fail)."""
    seed = stack.seed
    assert seed is not None
    facts = read_facts(stack)
    problems: list[str] = []
    out = result.output or {}
    new_ami = facts.pointer["value"] if facts.pointer else None

    say("")
    say("=" * 78)
    say(f"golden-ami-pipeline: local run {result.status} ({result.execution_arn})")
    say("=" * 78)
    if facts.pointer is None:
        problems.append("the pointer parameter is gone")
        say("pointer          MISSING")
    else:
        say(f"golden AMI       {seed.golden_ami_id} -> {new_ami}")
        say(f"pointer          {stack_pointer_name()} version {seed.pointer_version} -> "
            f"{facts.pointer['version']} (data type {facts.pointer['dataType']})")
        if new_ami == seed.golden_ami_id:
            problems.append("the pointer did not move")
        if facts.pointer["version"] != seed.pointer_version + 1:
            problems.append(f"the pointer is at version {facts.pointer['version']}, "
                            f"expected {seed.pointer_version + 1}")

    golden = facts.images.get(new_ami or "")
    if golden is None:
        problems.append(f"the published image {new_ami} does not exist")
    else:
        say(f"image            {golden['name']} ({golden['state']}), "
            f"Type={golden['tags'].get('Type')}, source {golden['tags'].get('golden-ami:source-ami-id')}")
        for snap_id in golden["snapshots"]:
            snap = facts.snapshots.get(snap_id, {})
            say(f"snapshot         {snap_id} encrypted={snap.get('encrypted')} key={snap.get('kmsKeyId')}")
            if not snap.get("encrypted") or snap.get("kmsKeyId") != seed.kms_key_arn:
                problems.append(f"snapshot {snap_id} is not encrypted under the golden key")
        say(f"golden key       {seed.kms_key_arn} ({seed.kms_alias})")
        launch = [next(iter(p.values())) for p in golden["launchPermissions"]]
        say(f"launch permission {', '.join(launch) or '(none)'}")
        if seed.organization_arn not in launch:
            problems.append("the organization is not in the launch permission")
        tags = golden["tags"]
        say(f"what changed     {tags.get('golden-ami:packages')} packages, advisories "
            f"{tags.get('golden-ami:advisories')}, {tags.get('golden-ami:cves')} CVEs, "
            f"kernel now {tags.get('golden-ami:kernel')} (the image's tags)")
        say(f"update report    {tags.get('golden-ami:update-report')}")
        if "golden-ami:packages" not in tags:
            problems.append("the golden image carries no change summary")

    tests = [a for a in facts.automations if a["document"] == "golden-ami-test"]
    if not tests:
        problems.append("no boot test ran")
    for test in tests:
        outputs = automation_outputs(test)
        instance = outputs.get("launchInstance.InstanceId")
        check = outputs.get("runCheck.Output") or ""
        summary_line = check.splitlines()[-1] if check else "(no output)"
        say(f"boot test        {test['status']}: instance {instance} launched from "
            f"{test['parameters'].get('ImageId')} ran infra/baseline/check.sh: {summary_line}")
        for line in check.splitlines()[:-1]:
            say(f"                   {line}")
        if test["status"] != "Success" or " fail=0 " not in summary_line:
            problems.append("the boot test did not pass")

    say("notifications:")
    for n in facts.notifications:
        say(f"  [{n['event']}] {n['subject']}")
        if n["event"] == "SUCCEEDED":
            for line in n["message"].splitlines():
                if line.startswith(("What changed:", "Advisories:", "Boot test:")):
                    say(f"      {line}")
    if facts.events() != ["STARTED", "SUCCEEDED"]:
        problems.append(f"notifications were {facts.events()}, expected STARTED then SUCCEEDED")

    say("cleaned up:")
    for automation in facts.automations:
        outputs = automation_outputs(automation)
        intermediate = outputs.get("createImage.ImageId")
        instance = outputs.get("launchInstance.InstanceId")
        say(f"  {automation['document']} automation {automation['id']}: {automation['status']}, "
            f"{len(automation['steps'])} steps")
        if instance:
            state = facts.instances.get(instance, {}).get("state", "gone")
            say(f"  temporary instance {instance}: {state}")
            if state != "terminated":
                problems.append(f"the temporary instance {instance} is {state}")
        if intermediate:
            left = intermediate in facts.images
            snaps = [s for s, v in facts.snapshots.items() if intermediate in v["description"]]
            say(f"  intermediate image {intermediate}: {'STILL THERE' if left else 'deregistered'}; "
                f"its snapshots: {', '.join(snaps) if snaps else 'deleted'}")
            if left or snaps:
                problems.append(f"the intermediate image {intermediate} or its snapshots remain")
    cleanup = out.get("cleanup") or {}
    if cleanup:
        say(f"  (Cleanup reported: deregistered {cleanup.get('deregisteredImages')}, "
            f"deleted {cleanup.get('deletedSnapshots')})")
    running = facts.running_instances()
    if running:
        problems.append(f"instances still running: {running}")

    say("")
    transitions = sum(1 for e in result.events if e.get("type") == "StateEntered")
    say(f"transitions      {transitions} states entered in this execution")
    say(f"wall time        {wall:.1f} s without the build: the execution itself {result.wall_ms} ms; "
        f"start + seed {stack.timings.get('moto_start', 0) + stack.timings.get('seed', 0):.1f} s; "
        f"watch + warm-up {stack.timings.get('watch_start', 0):.1f} s")
    say(f"build time       {stack.build_seconds:.1f} s (cargo build --workspace --bins, debug)")
    return problems


def stack_pointer_name() -> str:
    from local.stack import POINTER_PARAMETER_NAME
    return POINTER_PARAMETER_NAME


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
            say("[run] statemachine/golden-ami-pipeline.asl.json:")
            result = stack.run(stream=lambda line: say(f"  {line}"))
            wall = time.monotonic() - started
            if result.status == "RUNNER_ERROR" or result.exit_code == 1:
                say(f"demo: the runner failed:\n{result.stderr[-3000:]}")
                return 1
            problems = summary(stack, result, wall)
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
