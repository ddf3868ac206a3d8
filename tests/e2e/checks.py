"""What every end-to-end test asserts the same way: nothing leaked, one FAILED notice; and
one invocation of a function's binary as the Lambda service runs it."""

import os
import subprocess
import sys

from local.stack import REPO, Facts, RunResult, automation_outputs

sys.path.insert(0, str(REPO / "bench"))
from runtime_api import Invocation, RuntimeApi  # noqa: E402


def cold_invoke(function: str, env: dict[str, str], payload: bytes) -> tuple[Invocation, int | None]:
    """Start the function's debug binary under a local Lambda Runtime API holding one event;
    return the invocation once answered (or after 30 s) and the process's exit status (None if
    it was still waiting for its next event: it is then stopped by PID)."""
    binary = os.path.join(os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target"), "debug", function)
    assert os.path.isfile(binary), f"{binary} is not built (the stack builds every binary)"
    api = RuntimeApi(function_name=function).start()
    waiting = api.enqueue(payload)
    process = subprocess.Popen([binary], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={
        **env, "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "PATH": os.environ.get("PATH", "")})
    try:
        waiting.wait(timeout=30)
        try:
            code = process.wait(timeout=30 if waiting.outcome == "init_error" else 1)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        api.stop()
    return waiting, code


def failed_messages(facts: Facts) -> list[dict]:
    return [n for n in facts.notifications if n["event"] == "FAILED"]


def assert_nothing_left(before: Facts, after: Facts, published: str | None = None) -> None:
    """No instance running; no image or snapshot of this run left but the published image's."""
    assert after.running_instances() == []
    new_images = set(after.images) - set(before.images)
    assert new_images == ({published} if published else set()), new_images
    allowed = {s for i in after.images.values() for s in i["snapshots"]}
    leaked = set(after.snapshots) - set(before.snapshots) - allowed
    assert not leaked, f"snapshots left behind: {leaked}"
    for automation in after.automations:
        assert automation["status"] not in ("Pending", "InProgress", "Waiting", "Cancelling"), \
            f"automation {automation['id']} outlived the run: {automation['status']}"
        instance = automation_outputs(automation).get("launchInstance.InstanceId")
        if instance:
            assert after.instances[instance]["state"] == "terminated"


def assert_failed_once(result: RunResult, after: Facts, state: str) -> dict:
    assert result.status == "FAILED", result.stderr[-2000:]
    assert result.end_state == "PipelineFailed"
    assert result.root_cause and result.root_cause["state"] == state, result.root_cause
    failed = failed_messages(after)
    assert len(failed) == 1, after.notifications
    assert f"FAILED at {state}" in failed[0]["subject"], failed[0]["subject"]
    return failed[0]
