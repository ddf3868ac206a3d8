"""What every end-to-end test asserts the same way: nothing leaked, one FAILED notice."""

from local.stack import Facts, RunResult, automation_outputs


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
