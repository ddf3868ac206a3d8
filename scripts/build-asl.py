#!/usr/bin/env python3
"""Write statemachine/golden-ami-pipeline.asl.json from the description below.

The definition is the contract between the state machine and the steps, and most of it is the
same few shapes over and over: a Task that passes {context, state} to a function, retries the
transient errors and catches everything into the failure path; a Wait/Task/Choice polling loop;
a Pass that records which state failed. Writing those shapes once here keeps every Task's Retry
and Catch identical (the contract tests in tests/ still check the generated file, not this
script). The committed JSON is what SAM deploys and the local runner runs.

Usage: scripts/build-asl.py [--check]   (--check: exit 1 if the committed file is stale)
"""
from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "statemachine" / "golden-ami-pipeline.asl.json"

# Every Task retries these: the Lambda service's transient errors and our own Throttled.
RETRYABLE = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Throttled",
]
RETRY = [{
    "ErrorEquals": RETRYABLE,
    "IntervalSeconds": 2,
    "MaxAttempts": 5,
    "BackoffRate": 2.0,
    "MaxDelaySeconds": 60,
    "JitterStrategy": "FULL",
}]
TASK_TIMEOUT_SECONDS = 300
FAILED_COMMENT = "Records which state failed, for cleanup and the FAILED notification."

# What every Task receives besides the state: the execution, for idempotency tokens and names.
CONTEXT = {"executionId.$": "$$.Execution.Id", "startedAt.$": "$$.Execution.StartTime"}


class Machine:
    """An ordered States map plus the Pass states that record a caught failure."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, dict[str, Any]] = {}

    def add(self, name: str, state: dict[str, Any]) -> None:
        if name in self.states or name in self.failed:
            raise SystemExit(f"state {name} is defined twice")
        self.states[name] = state

    def task(self, name: str, function: str, result_path: str | None, next_state: str | None,
             *, comment: str | None = None, params: dict[str, Any] | None = None,
             catch_to: str = "CleanupAfterFailure", catch_path: str = "$.error",
             on_catch: str | None = None) -> None:
        """A Task calling `function` with {context, ...params, state}; a caught error goes to
        `<name>Failed` (which records the state's name, then `catch_to`), or to `on_catch`."""
        parameters: dict[str, Any] = {"context": dict(CONTEXT)}
        parameters.update(params or {})
        parameters["state.$"] = "$"
        state: dict[str, Any] = {}
        if comment:
            state["Comment"] = comment
        target = on_catch or f"{name}Failed"
        state.update({
            "Type": "Task",
            "Resource": f"${{{function}FunctionArn}}",
            "Parameters": parameters,
            "ResultPath": result_path,
            "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
            "Retry": json.loads(json.dumps(RETRY)),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": catch_path, "Next": target}],
        })
        if next_state:
            state["Next"] = next_state
        else:
            state["End"] = True
        self.add(name, state)
        if on_catch is None:
            self.failed[f"{name}Failed"] = {
                "Type": "Pass",
                "Comment": FAILED_COMMENT,
                "Result": name,
                "ResultPath": "$.failedState",
                "Next": catch_to,
            }

    def poll(self, wait: str, check: str, done: str, *, function: str, seconds_path: str,
             result_path: str, comment: str, next_state: str,
             extra_choices: list[dict[str, Any]] | None = None) -> None:
        """Wait -> Task -> Choice: loop until `<result_path>.done` is true."""
        self.add(wait, {"Type": "Wait", "SecondsPath": seconds_path, "Next": check})
        self.task(check, function, result_path, done, comment=comment)
        choices = list(extra_choices or [])
        choices.append({"Variable": f"{result_path}.done", "BooleanEquals": True, "Next": next_state})
        self.add(done, {"Type": "Choice", "Choices": choices, "Default": wait})

    def definition(self, comment: str, start: str, timeout_seconds: int) -> dict[str, Any]:
        return {"Comment": comment, "StartAt": start, "TimeoutSeconds": timeout_seconds,
                "States": {**self.states, **self.failed_path()}}

    def failed_path(self) -> dict[str, Any]:
        return self.failed


def pipeline() -> dict[str, Any]:
    m = Machine()
    m.task("ReadCurrentAmi", "ReadCurrentAmi", "$.current", "AnotherRunInProgress?",
           comment="Read the pointer and check the image it holds; also reports a bake of another run still in progress.")
    m.add("AnotherRunInProgress?", {
        "Type": "Choice",
        "Comment": "A second execution while one runs does no work and raises no FAILED alarm.",
        "Choices": [{"Variable": "$.current.bakeInProgress", "IsPresent": True, "Next": "NotifySkipped"}],
        "Default": "NotifyStart",
    })
    m.task("NotifySkipped", "Notify", None, "SkippedAnotherRunInProgress", params={"event": "SKIPPED"})
    m.add("SkippedAnotherRunInProgress", {
        "Type": "Succeed",
        "Comment": "Another execution is baking; this one ends without changing anything.",
    })
    m.task("NotifyStart", "Notify", None, "StartBake", params={"event": "STARTED"})
    m.task("StartBake", "StartBake", "$.bake", "WaitForBake",
           comment="Start the bake Automation document (idempotent: the token derives from the execution).")
    m.poll("WaitForBake", "CheckBake", "BakeDone?", function="CheckBake",
           seconds_path="$.bake.pollSeconds", result_path="$.bakeStatus",
           comment="One poll; fails with BakeFailed, or BakeTimedOut past the deadline (after stopping the automation).",
           next_state="CopyImage",
           extra_choices=[{"Variable": "$.bakeStatus.upToDate", "BooleanEquals": True,
                           "Next": "NotifyUpToDate"}])
    m.task("NotifyUpToDate", "Notify", None, "SkippedUpToDate", params={"event": "SKIPPED"},
           comment="No update was pending: the bake made no image and terminated its instance.")
    m.add("SkippedUpToDate", {
        "Type": "Succeed",
        "Comment": "The current image is up to date; the pointer is unchanged.",
    })
    m.task("CopyImage", "CopyImage", "$.copy", "WaitForCopy",
           comment="Copy the intermediate image re-encrypted under the dedicated org-wide key.")
    m.poll("WaitForCopy", "CheckCopy", "CopyDone?", function="CheckCopy",
           seconds_path="$.copy.pollSeconds", result_path="$.copyStatus",
           comment="One poll; fails with CopyFailed, or CopyTimedOut past the deadline.",
           next_state="ShareImage")
    m.task("ShareImage", "ShareImage", "$.share", "VerifyImage")
    m.task("VerifyImage", "VerifyImage", "$.verify", "StartTest",
           comment="Nothing is tested or published unless every check passes.")
    m.task("StartTest", "StartTest", "$.test", "WaitForTest",
           comment="The boot test: an instance launched FROM the golden copy runs the baseline check.")
    m.poll("WaitForTest", "CheckTest", "TestDone?", function="CheckTest",
           seconds_path="$.test.pollSeconds", result_path="$.testStatus",
           comment="One poll; fails with TestFailed naming each failed control, or TestTimedOut past the deadline.",
           next_state="PublishPointer")
    m.task("PublishPointer", "PublishPointer", "$.publish", "Cleanup",
           comment="Move the pointer: the last change consumers see, and only after verification and a passed boot test.")
    m.task("Cleanup", "Cleanup", "$.cleanup", "NotifySuccess", params={"mode": "SUCCESS"},
           comment="Remove the intermediate (account-key) image and its snapshots.")
    m.task("NotifySuccess", "Notify", None, "Succeeded", params={"event": "SUCCEEDED"})
    m.add("Succeeded", {"Type": "Succeed"})

    # The failure path: every caught error lands here, once.
    m.states.update(m.failed)
    m.failed = {}
    m.task("CleanupAfterFailure", "Cleanup", "$.cleanup", "NotifyFailure", params={"mode": "FAILURE"},
           catch_path="$.cleanupError", on_catch="NotifyFailure",
           comment="Remove what this run created and did not publish; stop a bake or boot test still running so its instance is terminated.")
    m.task("NotifyFailure", "Notify", None, "PipelineFailed", params={"event": "FAILED"},
           catch_path="$.notifyError", on_catch="PipelineFailed",
           comment="The one FAILED notification of a run: the failed state, the error, and where the pointer stands.")
    m.add("PipelineFailed", {
        "Type": "Fail",
        "Error": "GoldenAmiPipelineFailed",
        "Cause": "The run failed; the FAILED notification names the state, the error and where the pointer stands.",
    })
    return m.definition(
        "golden-ami-pipeline: monthly patch of the organization's golden AMI. The pointer moves only after VerifyImage and a passed boot test; every failure is cleaned up and notified once.",
        "ReadCurrentAmi", 28800)


def render() -> str:
    return json.dumps(pipeline(), indent=2) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run scripts/build-asl.py")
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
