"""Polling by expectation, end to end: a published family's bake, slowest copy and boot test
durations are recorded at DURATIONS_PATH/<family>, and its next run's loops wait by them
(crates/core/src/pacing.rs). The local stack's intervals are 0 and its Waits are overridden,
so what is checked is what the steps tell the Wait states, read from the runner's records."""

import json

from local.stack import DURATIONS_PATH, LocalStack, RunResult


def started(result: RunResult, state: str) -> list[dict]:
    """The results of a Task, one per time it ran."""
    return [e["output"] for e in result.events
            if e.get("type") == "StateExited" and e.get("state") == state and "output" in e]


def test_a_published_family_s_durations_pace_its_next_run(fresh: LocalStack):
    ssm = fresh.client("ssm")
    name = f"{DURATIONS_PATH}/default"
    assert ssm.get_parameters(Names=[name])["Parameters"] == []

    first = fresh.run()
    assert first.succeeded, first.stderr[-3000:]
    [bake] = started(first, "StartBake")
    # The first run has no history: the stack's interval from the start.
    assert bake["firstWaitSeconds"] == bake["pollSeconds"] == 0
    recorded = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    assert sorted(recorded) == ["bake", "copy", "test"]
    assert all(len(values) == 1 and values[0] >= 0 for values in recorded.values()), recorded

    # A month's history: 40-minute bakes, 15-minute copies, 10-minute boot tests.
    ssm.put_parameter(Name=name, Type="String", Overwrite=True,
                      Value=json.dumps({"bake": [2300, 2400, 2500], "copy": [900], "test": [600]}))
    second = fresh.run()
    assert second.succeeded, second.stderr[-3000:]
    # 85% of each median first; then the local stack's interval (0) caps the short one.
    assert [(s["firstWaitSeconds"], s["pollSeconds"]) for s in
            started(second, "StartBake") + started(second, "CopyImage") + started(second, "StartTest")] \
        == [(2040, 0), (765, 0), (510, 0)]
    [copy] = started(second, "CopyImage")
    assert copy["startedAt"].endswith("Z")
    after = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    assert after["bake"][:3] == [2300, 2400, 2500] and len(after["bake"]) == 4
    assert after["copy"][0] == 900 and after["test"][0] == 600
