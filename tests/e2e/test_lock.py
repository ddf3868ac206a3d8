"""End-to-end: the run lock. Two runs at once never both work: the later one ends SKIPPED naming
the holder; a lock left by a run that cannot still be running (its expiry passed) is broken and
said so; however a run ends, its lock is gone."""

import json

from checks import assert_nothing_left
from local.stack import LOCK_PARAMETER_NAME, Facts, LocalStack, read_facts

OTHER = "arn:aws:states:eu-west-1:123456789012:execution:golden-ami-pipeline:crashed-last-month"


def lock(stack: LocalStack) -> dict | None:
    found = stack.client("ssm").get_parameters(Names=[LOCK_PARAMETER_NAME])["Parameters"]
    return json.loads(found[0]["Value"]) if found else None


def hold(stack: LocalStack, expires: str) -> None:
    stack.client("ssm").put_parameter(Name=LOCK_PARAMETER_NAME, Type="String",
                                      Value=json.dumps({"executionId": OTHER, "expires": expires}))


def test_a_stale_lock_is_broken_and_said_so(fresh: LocalStack, before: Facts):
    hold(fresh, "2020-01-01T00:00:00Z")
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    after = read_facts(fresh)
    assert after.events() == ["STARTED", "SUCCEEDED"]
    assert (f"A stale run lock of execution {OTHER} (expired 2020-01-01T00:00:00Z) was broken."
            in after.notifications[0]["message"]), after.notifications[0]["message"]
    assert lock(fresh) is None
    assert_nothing_left(before, after, published=after.pointer["value"])


def test_a_live_lock_of_another_run_skips_this_one_and_stays(fresh: LocalStack, before: Facts):
    hold(fresh, "2099-01-01T00:00:00Z")
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    assert result.end_state == "SkippedAnotherRunInProgress"
    assert "ReadCurrentAmi" not in result.path() and "ReleaseLock" not in result.path()
    after = read_facts(fresh)
    [skipped] = after.notifications
    assert skipped["event"] == "SKIPPED"
    assert f"Another run (execution {OTHER}) holds the run lock until 2099-01-01T00:00:00Z" \
        in skipped["message"], skipped["message"]
    assert lock(fresh) == {"executionId": OTHER, "expires": "2099-01-01T00:00:00Z"}
    assert after.automations == []
    assert after.pointer == before.pointer


def test_two_runs_held_at_the_lock_and_released_together_work_once(fresh: LocalStack, before: Facts):
    # Both runs' first write is the lock's PutParameter: hold each there until the other arrives,
    # then let both go to SSM at once.
    fresh.admin("faults", {"apiBarrier": {"service": "ssm", "action": "PutParameter", "count": 2,
                                          "timeout": 60}})
    first = fresh.start_run(name="together-1")
    second = fresh.start_run(name="together-2")
    results = [first.wait(), second.wait()]
    [barrier] = fresh.admin("state")["faults"]["apiBarrier"]
    assert barrier["released"] and not barrier["timedOut"], barrier
    assert all(r.succeeded for r in results), [r.stderr[-2000:] for r in results]
    ends = sorted(r.end_state for r in results)
    assert ends == ["SkippedAnotherRunInProgress", "Succeeded"], ends
    after = read_facts(fresh)
    assert sorted(after.events()) == ["SKIPPED", "STARTED", "SUCCEEDED"]
    assert [a["document"] for a in after.automations] == ["golden-ami-bake", "golden-ami-test"]
    assert after.pointer["version"] == before.pointer["version"] + 1
    assert lock(fresh) is None
    assert_nothing_left(before, after, published=after.pointer["value"])


def test_two_runs_breaking_one_stale_lock_together_work_once(fresh: LocalStack, before: Facts):
    # The reproduction: a stale lock in place, two runs started together (both find it at
    # their first PutParameter and judge it stale), and one DeleteParameter throttled once (the
    # SDK or the handler tries it again). Removing the stale lock must never remove the lock the
    # other run has just taken: exactly one run works, the other ends SKIPPED naming it.
    hold(fresh, "2020-01-01T00:00:00Z")
    fresh.admin("faults", {
        "apiBarrier": {"service": "ssm", "action": "PutParameter", "count": 2, "timeout": 60},
        "apiFail": {"service": "ssm", "action": "DeleteParameter", "throttle": True, "times": 1},
    })
    first = fresh.start_run(name="stale-1")
    second = fresh.start_run(name="stale-2")
    results = [first.wait(), second.wait()]
    [barrier] = fresh.admin("state")["faults"]["apiBarrier"]
    assert barrier["released"] and not barrier["timedOut"], barrier
    ends = sorted(str(r.end_state) for r in results)
    assert ends == ["SkippedAnotherRunInProgress", "Succeeded"], (ends, [r.stderr[-1500:] for r in results])
    after = read_facts(fresh)
    assert sorted(after.events()) == ["SKIPPED", "STARTED", "SUCCEEDED"], after.events()
    [skipped] = [n for n in after.notifications if n["event"] == "SKIPPED"]
    winner = "stale-1" if results[0].end_state == "Succeeded" else "stale-2"
    assert f":{winner}) holds the run lock" in skipped["message"], skipped["message"]
    assert [a["document"] for a in after.automations] == ["golden-ami-bake", "golden-ami-test"]
    assert after.pointer["version"] == before.pointer["version"] + 1
    assert lock(fresh) is None
    assert_nothing_left(before, after, published=after.pointer["value"])
