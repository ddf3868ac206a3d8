#!/usr/bin/env python3
"""Write statemachine/golden-ami-pipeline.asl.json from the description below.

The definition is the contract between the state machine and the steps, and most of it is the
same few shapes over and over: a Task that passes {context, state} to a function, retries the
transient errors and catches everything into its level's failure path; a Wait/Task/Choice polling
loop; a Pass that records which state failed. Writing those shapes once here keeps every Task's
Retry and Catch identical (the contract tests in tests/ check the generated file, not this
script). The committed JSON is what SAM deploys and the local runner runs.

Three levels, each with its own failure path:
- the run: plan the targets and take the run lock, notify, a Map over the image families, release
  the lock, one summary notice;
- a family (a Map iteration): read its pointers, bake, a Map over the target regions, the boot
  test, a Map that publishes every region's pointer, clean up. A failure is cleaned up within the
  family and becomes the family's result: the other families go on;
- a region (a Map iteration): copy, share, verify, or publish. A failure becomes the region's
  result (sibling regions are never cut off half way); the family checks them all afterwards.

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
RETRY = {
    "ErrorEquals": RETRYABLE,
    "IntervalSeconds": 2,
    "MaxAttempts": 5,
    "BackoffRate": 2.0,
    "MaxDelaySeconds": 60,
    "JitterStrategy": "FULL",
}
TASK_TIMEOUT_SECONDS = 300
# Concurrent copies per destination region are limited by EC2; ten regions at once is plenty.
REGION_CONCURRENCY = 10

# What every top-level Task receives besides the state: the execution, for idempotency tokens
# and names. Inside a Map iteration the state carries the same object as $.context (an
# iteration's own $$.Execution.StartTime is not the run's in every implementation).
RUN_CONTEXT = {"executionId.$": "$$.Execution.Id", "startedAt.$": "$$.Execution.StartTime"}


class Level:
    """The States of one machine (the run, or a Map's ItemProcessor), in order."""

    def __init__(self, context: Any, failure_target: str | None, region: bool = False) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, dict[str, Any]] = {}
        self.context = context
        self.failure_target = failure_target
        self.region = region

    def add(self, name: str, state: dict[str, Any]) -> None:
        if name in self.states or name in self.failed:
            raise SystemExit(f"state {name} is defined twice")
        self.states[name] = state

    def task(self, name: str, function: str, result_path: str | None, next_state: str | None,
             *, comment: str | None = None, params: dict[str, Any] | None = None,
             catch_path: str = "$.error", on_catch: str | None = None) -> None:
        """A Task calling `function` with {context, ...params, state}; a caught error goes to
        `<name>Failed` (which records the failure, then the level's failure target), or to
        `on_catch` directly."""
        parameters: dict[str, Any] = {"context" if isinstance(self.context, dict) else "context.$":
                                      dict(self.context) if isinstance(self.context, dict)
                                      else self.context}
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
            "Retry": [dict(RETRY)],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": catch_path, "Next": target}],
        })
        if next_state:
            state["Next"] = next_state
        else:
            state["End"] = True
        self.add(name, state)
        if on_catch is None:
            self.record_failure(name)

    def record_failure(self, name: str) -> None:
        """`<name>Failed`: $.failure = {state, [region,] error}, then the failure target."""
        failure: dict[str, Any] = {"state": name, "error.$": "$.error"}
        if self.region:
            failure["region.$"] = "$.target.region"
        self.failed[f"{name}Failed"] = {
            "Type": "Pass",
            "Comment": "Records which state failed and why, for cleanup and the notice.",
            "Parameters": failure,
            "ResultPath": "$.failure",
            "Next": self.failure_target,
        }

    def poll(self, first_wait: str, wait: str, check: str, done: str, *, function: str,
             started_path: str, result_path: str, comment: str, next_state: str,
             extra_choices: list[dict[str, Any]] | None = None) -> None:
        """Wait (most of the expected duration) -> Task -> Choice, then Wait (the short
        interval) -> Task -> Choice until `<result_path>.done` is true. Both durations come from
        the step that started the work (crates/core/src/pacing.rs)."""
        self.add(first_wait, {
            "Type": "Wait",
            "Comment": "Most of what this loop took in the family's last runs (or one interval without history).",
            "SecondsPath": f"{started_path}.firstWaitSeconds",
            "Next": check,
        })
        self.add(wait, {"Type": "Wait", "SecondsPath": f"{started_path}.pollSeconds", "Next": check})
        self.task(check, function, result_path, done, comment=comment)
        choices = list(extra_choices or [])
        choices.append({"Variable": f"{result_path}.done", "BooleanEquals": True, "Next": next_state})
        self.add(done, {"Type": "Choice", "Choices": choices, "Default": wait})

    def region_map(self, name: str, items_path: str, selector: dict[str, Any], processor: Level,
                   start: str, result_path: str, flag: str, comment: str, next_ok: str,
                   failed_as: str, on_region_failure: str | None = None) -> None:
        """A Map over the family's regions whose iterations never fail (each records its own
        failure and sets `flag` false), then a check that every region set it true; when one did
        not, `on_region_failure` (if given) runs before `<name>FailedInARegion`."""
        self.add(name, {
            "Type": "Map",
            "Comment": comment,
            "ItemsPath": items_path,
            "ItemSelector": selector,
            "MaxConcurrency": REGION_CONCURRENCY,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": start,
                "States": {**processor.states, **processor.failed},
            },
            "ResultPath": result_path,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                       "Next": f"{name}Failed"}],
            "Next": f"{name}Checked",
        })
        self.record_failure(name)
        self.add(f"{name}Checked", {
            "Type": "Pass",
            "Comment": f"Did any region not get {flag}? (each iteration caught its own failure)",
            "Parameters": {"anyFailed.$": f"States.ArrayContains({result_path}[*].{flag}, false)"},
            "ResultPath": f"{result_path}Check",
            "Next": f"{name}Succeeded?",
        })
        self.add(f"{name}Succeeded?", {
            "Type": "Choice",
            "Choices": [{"Variable": f"{result_path}Check.anyFailed", "BooleanEquals": True,
                         "Next": on_region_failure or f"{name}FailedInARegion"}],
            "Default": next_ok,
        })
        self.add(f"{name}FailedInARegion", {
            "Type": "Pass",
            "Comment": f"The failed regions are in {result_path}; the family is cleaned up in every region.",
            "Parameters": {"state": failed_as, "error": {
                "Error": "RegionFailed",
                "Cause": f"a region of the family failed in {failed_as}: see state{result_path[1:]}"}},
            "ResultPath": "$.failure",
            "Next": self.failure_target,
        })


def region_copy() -> Level:
    """One region of a family: copy the intermediate image under the region's key, share,
    verify. The result is {target, copy, share, verify, verified: true}, or {target, failure,
    verified: false}."""
    r = Level("$.context", "RegionNotVerified", region=True)
    r.task("CopyImage", "CopyImage", "$.copy", "ExpectCopy",
           comment="Copy the bake's image into this region under the region's golden key (a direct bake already is the home region's golden image: tagged, not copied).")
    r.poll("ExpectCopy", "WaitForCopy", "CheckCopy", "CopyDone?", function="CheckCopy",
           started_path="$.copy", result_path="$.copyStatus",
           comment="One poll; fails with CopyFailed, or CopyTimedOut past the deadline.",
           next_state="ShareImage")
    r.task("ShareImage", "ShareImage", "$.share", "VerifyImage")
    r.task("VerifyImage", "VerifyImage", "$.verify", "RegionVerified",
           comment="Nothing is tested or published unless every check passes.")
    r.add("RegionVerified", {
        "Type": "Pass",
        "Parameters": {"target.$": "$.target", "copy.$": "$.copy", "copyStatus.$": "$.copyStatus",
                       "share.$": "$.share", "verify.$": "$.verify", "verified": True},
        "End": True,
    })
    r.add("RegionNotVerified", {
        "Type": "Pass",
        "Comment": "The family sees verified: false and fails; its cleanup finds this region's copy by name.",
        "Parameters": {"target.$": "$.target", "failure.$": "$.failure", "verified": False},
        "End": True,
    })
    return r


def region_publish() -> Level:
    """One region of a family: move its pointer. {copy, share, publish, published: true}, or
    {failure, published: false}: the family's result keeps only what the end notice reads (the
    publication names its region, a failure too), the region's target stays out of the run's
    state."""
    r = Level("$.context", "PointerNotPublished", region=True)
    r.task("PublishPointer", "PublishPointer", "$.publish", "PointerPublished",
           comment="Move this region's pointer: only after every region is verified and the boot test passed.")
    r.add("PointerPublished", {
        "Type": "Pass",
        "Parameters": {"copy.$": "$.copy", "share.$": "$.share", "publish.$": "$.publish",
                       "published": True},
        "End": True,
    })
    r.add("PointerNotPublished", {
        "Type": "Pass",
        "Parameters": {"failure.$": "$.failure", "published": False},
        "End": True,
    })
    return r


def family() -> Level:
    f = Level("$.context", "FamilyCleanupAfterFailure")
    f.task("ReadCurrentAmi", "ReadCurrentAmi", "$.current", "StartBake",
           comment="The family's pointer in every target region, and the image it holds at home (the bake's source).")
    f.task("StartBake", "StartBake", "$.bake", "ExpectBake",
           comment="Start the bake Automation document (idempotent: the token derives from the execution and the family).")
    f.poll("ExpectBake", "WaitForBake", "CheckBake", "BakeDone?", function="CheckBake",
           started_path="$.bake", result_path="$.bakeStatus",
           comment="One poll; fails with BakeFailed, or BakeTimedOut past the deadline (after stopping the automation).",
           next_state="CopyToRegions",
           extra_choices=[{"Variable": "$.bakeStatus.upToDate", "BooleanEquals": True,
                           "Next": "FamilyUpToDate"}])
    f.region_map(
        "CopyToRegions", "$.current.regions",
        {"context.$": "$.context", "family.$": "$.family", "current.$": "$.current",
         "bake.$": "$.bake", "bakeStatus.$": "$.bakeStatus", "target.$": "$$.Map.Item.Value"},
        region_copy(), "CopyImage", "$.regions", "verified",
        "Copy, share and verify the golden image in every target region of the family.",
        "StartTest", "CopyToRegions")
    f.task("StartTest", "StartTest", "$.test", "ExpectTest",
           comment="The boot test: an instance launched FROM the home region's golden copy runs the baseline check.")
    f.poll("ExpectTest", "WaitForTest", "CheckTest", "TestDone?", function="CheckTest",
           started_path="$.test", result_path="$.testStatus",
           comment="One poll; fails with TestFailed naming each failed control, or TestTimedOut past the deadline.",
           next_state="ApprovalRequired?")
    approval_gate(f)
    f.task("CheckPointers", "PublishPointer", None, "PublishPointers", params={"mode": "CHECK"},
           comment="Before the first pointer moves: the family is not pinned and every region's pointer is what ReadCurrentAmi read. One changed by hand stops every region (all regions or none).")
    f.region_map(
        "PublishPointers", "$.regions",
        {"context.$": "$.context", "family.$": "$.family", "current.$": "$.current",
         "test.$": "$.test", "testStatus.$": "$.testStatus",
         "target.$": "$$.Map.Item.Value.target", "copy.$": "$$.Map.Item.Value.copy",
         "share.$": "$$.Map.Item.Value.share", "verify.$": "$$.Map.Item.Value.verify"},
        region_publish(), "PublishPointer", "$.pointers", "published",
        "Move the family's pointer in every region: all of them were verified and the copy booted.",
        "Cleanup", "PublishPointers", on_region_failure="RestorePointers")
    f.task("RestorePointers", "PublishPointer", "$.restore", "PublishPointersFailedInARegion",
           params={"mode": "RESTORE"}, catch_path="$.restoreError",
           on_catch="PublishPointersFailedInARegion",
           comment="A region's pointer did not move: put back the pointers this run moved in the others (all regions or none), each awaited until SSM shows it.")
    f.task("Cleanup", "Cleanup", "$.cleanup", "Retain", params={"mode": "SUCCESS"},
           comment="Remove the intermediate (account-key) image and its snapshots (a direct bake made none).")
    f.task("Retain", "Retain", "$.retention", "FamilyPublished", catch_path="$.retentionError",
           on_catch="RetainFailed",
           comment="Older golden images: protect the current one and the rollback target, deprecate the superseded, remove the old and unused.")
    f.add("RetainFailed", {
        "Type": "Pass",
        "Comment": "The pointers moved: a retention failure does not fail the family; the notice says what retention could not do.",
        "Parameters": {"error.$": "$.retentionError"},
        "ResultPath": "$.retention",
        "Next": "FamilyPublished",
    })
    f.add("FamilyPublished", {
        "Type": "Pass",
        "Comment": "The family's result: only what the summary needs, to keep the run's state small.",
        "Parameters": {"family.$": "$.family", "outcome": "PUBLISHED", "current.$": "$.current",
                       "bakeStatus.$": "$.bakeStatus", "testStatus.$": "$.testStatus",
                       "pointers.$": "$.pointers", "cleanup.$": "$.cleanup",
                       "retention.$": "$.retention", "approval.$": "$.approval"},
        "End": True,
    })
    f.add("FamilyUpToDate", {
        "Type": "Pass",
        "Comment": "No update was pending: no image was made and the bake's instance is terminated.",
        "Parameters": {"family.$": "$.family", "outcome": "UP_TO_DATE", "current.$": "$.current",
                       "bakeStatus.$": "$.bakeStatus"},
        "End": True,
    })
    f.task("FamilyCleanupAfterFailure", "Cleanup", "$.cleanup", "FamilyFailed",
           params={"mode": "FAILURE"}, catch_path="$.cleanupError", on_catch="FamilyFailed",
           comment="Remove what this family's run created in every region and did not publish; stop a bake or boot test still running.")
    f.add("FamilyFailed", {
        "Type": "Pass",
        "Comment": "The family failed; the others go on. The run's notice names the state, error and cause.",
        "Result": "FAILED",
        "ResultPath": "$.outcome",
        "End": True,
    })
    return f


def approval_gate(f: Level) -> None:
    """The optional approval gate, between the boot test and the pointers: a gated family
    (its `approval` in the plan) waits on a task token for `golden-ami approve` (SendTaskSuccess)
    or `deny` (SendTaskFailure ApprovalDenied), at most its deadline (States.Timeout); either
    failure takes the family's failure path, so nothing is published and the copies go."""
    f.add("ApprovalRequired?", {
        "Type": "Choice",
        "Comment": "The optional approval gate (the stack's RequireApproval, or the family's own approval in the targets).",
        "Choices": [{"Variable": "$.family.approval", "IsPresent": True, "Next": "AwaitApproval"}],
        "Default": "NoApprovalNeeded",
    })
    f.add("NoApprovalNeeded", {
        "Type": "Pass",
        "Comment": "An ungated family: no decision ({}), so the family's result has the same keys either way.",
        "Result": {},
        "ResultPath": "$.approval",
        "Next": "CheckPointers",
    })
    f.add("AwaitApproval", {
        "Comment": "Store the task token and ask for approval (SNS, with the change summary and the exact golden-ami command), then wait for the answer, at most the family's deadline.",
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": "${RequestApprovalFunctionArn}",
            "Payload": {"context.$": "$.context", "taskToken.$": "$$.Task.Token", "state.$": "$"},
        },
        "TimeoutSecondsPath": "$.family.approval.timeoutSeconds",
        "ResultPath": "$.approval",
        "Retry": [dict(RETRY)],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "AwaitApprovalFailed"}],
        "Next": "CheckPointers",
    })
    f.record_failure("AwaitApproval")


def pipeline() -> dict[str, Any]:
    run = Level(RUN_CONTEXT, "CleanupAfterFailure")
    run.task("PlanRun", "PlanRun", "$.plan", "AnotherRunHoldsTheLock?",
             comment="Validate the targets (image families x regions) and take the run lock.")
    run.add("AnotherRunHoldsTheLock?", {
        "Type": "Choice",
        "Comment": "A second execution while one runs does no work and raises no FAILED alarm.",
        "Choices": [{"Variable": "$.plan.heldBy", "IsPresent": True, "Next": "NotifySkipped"}],
        "Default": "NotifyStart",
    })
    run.task("NotifySkipped", "Notify", None, "SkippedAnotherRunInProgress",
             params={"event": "SKIPPED"})
    run.add("SkippedAnotherRunInProgress", {
        "Type": "Succeed",
        "Comment": "Another execution holds the lock; this one ends without changing anything.",
    })
    run.task("NotifyStart", "Notify", None, "ForEachFamily", params={"event": "STARTED"})
    fam = family()
    run.add("ForEachFamily", {
        "Type": "Map",
        "Comment": "Every image family on its own: a failing family cleans up its work and is reported, the others go on.",
        "ItemsPath": "$.plan.families",
        "ItemSelector": {"context": dict(RUN_CONTEXT), "family.$": "$$.Map.Item.Value"},
        "MaxConcurrencyPath": "$.plan.maxConcurrency",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "ReadCurrentAmi",
            "States": {**fam.states, **fam.failed},
        },
        "ResultPath": "$.families",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                   "Next": "ForEachFamilyFailed"}],
        "Next": "ReleaseLock",
    })
    run.record_failure("ForEachFamily")
    run.task("ReleaseLock", "ReleaseLock", "$.lock", "NotifyRun",
             comment="Let the next run start: the lock is this execution's, so it removes it.")
    run.task("NotifyRun", "Notify", "$.notice", "RunFailed?", params={"event": "FINISHED"},
             comment="One notice for the whole run: SUCCEEDED, SKIPPED, or FAILED if any family failed.")
    run.add("RunFailed?", {
        "Type": "Choice",
        "Choices": [{"Variable": "$.notice.event", "StringEquals": "FAILED",
                     "Next": "PipelineFailed"}],
        "Default": "Succeeded",
    })
    run.add("Succeeded", {"Type": "Succeed"})
    # The run's own failure path: every caught error of a top-level state lands here, once.
    run.states.update(run.failed)
    run.failed = {}
    run.task("CleanupAfterFailure", "Cleanup", "$.cleanup", "ReleaseLockAfterFailure",
             params={"mode": "SWEEP"}, catch_path="$.cleanupError",
             on_catch="ReleaseLockAfterFailure",
             comment="Find and remove what this execution created in any family and region (by tags and deterministic names), never what a pointer holds.")
    run.task("ReleaseLockAfterFailure", "ReleaseLock", "$.lock", "NotifyFailure",
             catch_path="$.lockError", on_catch="NotifyFailure")
    run.task("NotifyFailure", "Notify", None, "PipelineFailed", params={"event": "FAILED"},
             catch_path="$.notifyError", on_catch="PipelineFailed",
             comment="The one FAILED notification of a run: the failed state, the error, and where the pointers stand.")
    run.add("PipelineFailed", {
        "Type": "Fail",
        "Error": "GoldenAmiPipelineFailed",
        "Cause": "The run failed; the FAILED notification names the state, the error and where the pointers stand.",
    })
    return {
        "Comment": "golden-ami-pipeline: monthly patch of the organization's golden images, every family in every target region. A pointer moves only after every region's copy is verified and the copy booted; every failure is cleaned up and notified once.",
        "StartAt": "PlanRun",
        # 8 hours for the longest bake, copy and test, plus the longest approval deadline (72
        # hours): a run ends through its own typed timeouts (tests/ hold the two together).
        "TimeoutSeconds": 288000,
        "States": run.states,
    }


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
