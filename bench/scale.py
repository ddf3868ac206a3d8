"""The fan-out's scale: state transitions and Lambda invocations per run for F families x R
regions, counted on the local stack (1x1, 2x2, 3x3), with the formula they follow; and the two
encryption modes (copy, direct) side by side: images and snapshots made per run (counted, 1x1
and 2x2), transitions, cost and time to publish for a modelled month; and what a run may hold on
AWS (crates/core/src/budget.rs, the model PlanRun refuses a targets document by): history events
and the largest state's bytes, with the largest matrix that fits the template's defaults.

    .venv/bin/python bench/scale.py                    print the section
    .venv/bin/python bench/scale.py --update-report    also replace it in bench/REPORT.md

`make bench` (bench/bench.py) writes the same section into the whole report. Needs the debug
build (`make build`); uses no AWS account.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
os.environ["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

from local.stack import POINTER_PARAMETER_NAME, LocalStack  # noqa: E402

BEGIN = "<!-- scale:begin -->"
END = "<!-- scale:end -->"
EXTRA_REGIONS = ["us-east-1", "ap-southeast-2"]
# The polling loops: each poll is 3 transitions (Wait, Check, Choice).
LOOPS = {"bake": "CheckBake", "copy": "CheckCopy", "test": "CheckTest"}
# A monthly run on AWS: a 40-minute bake at the 120 s poll, a 15-minute copy at the 60 s
# poll, a 10-minute boot test at the 60 s poll.
AWS_POLLS = {"bake": 20, "copy": 15, "test": 10}
PRICE_PER_1000 = 0.025  # Step Functions standard workflows, us-east-1 list price
# A month's loops: (name, duration in seconds, the stack's default poll interval).
AWS_LOOPS = [("bake", 40 * 60, 120), ("copy", 15 * 60, 60), ("test", 10 * 60, 60)]
# What one image's snapshots hold, for the GiB a run writes: the 8 GiB root volume of an
# Amazon Linux 2023 image. A copy is a full copy; the intermediate image lives for the run.
IMAGE_GIB = 8

# The history model of crates/core/src/budget.rs (see its doc comment for the event types):
# events per state entered, by type, on the success path.
BUDGET_RS = REPO / "crates" / "core" / "src" / "budget.rs"
ASL = REPO / "statemachine" / "golden-ami-pipeline.asl.json"
TEMPLATE = REPO / "infra" / "template.yaml"
EVENTS_PER_STATE = {"Task": 5, "Pass": 2, "Choice": 2, "Wait": 2, "Succeed": 2, "Map": 4}
MAP_ITERATION_EVENTS = 2
EXECUTION_EVENTS = 2
POLL_EVENTS = EVENTS_PER_STATE["Wait"] + EVENTS_PER_STATE["Task"] + EVENTS_PER_STATE["Choice"]


def budget_constants() -> dict[str, int]:
    """The `pub const NAME: u64 = N;` figures of budget.rs (limits, bytes), one source of truth."""
    return {m[1]: int(m[2].replace("_", "")) for m in
            re.finditer(r"pub const (\w+): u64 = ([\d_]+);", BUDGET_RS.read_text())}


def success_path(states: dict, start: str) -> tuple[dict[str, int], int, list[str]]:
    """States by type on a level's success path, its polling loops apart (tests/tests/budget.rs
    walks it the same way and holds budget.rs's constants to it): (counts, loops, maps)."""
    counts: dict[str, int] = {}
    loops, maps, name = 0, [], start
    for _ in range(len(states)):
        state = states[name]
        kind = state["Type"]
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "Map":
            maps.append(name)
        if kind == "Choice":
            default = state["Default"]
            nxt = state["Choices"][-1]["Next"] if states[default]["Type"] == "Wait" else default
        else:
            nxt = state.get("Next")
        if nxt is None:
            loops = counts.pop("Wait", 0)
            counts["Task"] -= loops
            counts["Choice"] = counts.get("Choice", 0) - loops
            return counts, loops, maps
        name = nxt
    raise SystemExit(f"the success path from {start} does not end")


def levels() -> dict[str, dict[str, int]]:
    """The run's, a family's and a region's states (over both region Maps) from the definition."""
    definition = json.loads(ASL.read_text())
    run, _, run_maps = success_path(definition["States"], definition["StartAt"])
    processor = definition["States"][run_maps[0]]["ItemProcessor"]
    family, _, family_maps = success_path(processor["States"], processor["StartAt"])
    region: dict[str, int] = {}
    for name in family_maps:
        inner = processor["States"][name]["ItemProcessor"]
        counts, _, _ = success_path(inner["States"], inner["StartAt"])
        for kind, n in counts.items():
            region[kind] = region.get(kind, 0) + n
    return {"run": run, "family": family, "region": region, "region_maps": {"Map": len(family_maps)}}


def model(f: int, r: int, polls: dict[str, int]) -> dict[str, int]:
    """budget.rs's history_events, transitions and state_bytes for f families of r regions each
    (ungated), every loop checking polls[loop] times."""
    lv, k = levels(), budget_constants()
    states = {name: sum(counts.values()) for name, counts in lv.items()}
    events = {name: sum(EVENTS_PER_STATE[t] * n for t, n in counts.items()) for name, counts in lv.items()}
    family_polls, region_polls = polls["bake"] + polls["test"], polls["copy"]
    return {
        "transitions": states["run"] + f * (states["family"] + 3 * family_polls)
        + f * r * (states["region"] + 3 * region_polls),
        "events": EXECUTION_EVENTS + events["run"]
        + f * (events["family"] + MAP_ITERATION_EVENTS + POLL_EVENTS * family_polls)
        + f * r * (events["region"] + lv["region_maps"]["Map"] * MAP_ITERATION_EVENTS + POLL_EVENTS * region_polls),
        "bytes": k["RUN_BYTES"] + f * k["FAMILY_BYTES"] + f * r * k["REGION_BYTES"],
    }


def fits(f: int, r: int, polls: dict[str, int]) -> bool:
    k, m = budget_constants(), model(f, r, polls)
    return m["events"] <= k["HISTORY_EVENTS_LIMIT"] and m["bytes"] <= k["STATE_BYTES_LIMIT"]


def template_default(name: str) -> int:
    match = re.search(rf"^  {name}:\n(?:    .*\n)*?    Default: (\d+)", TEMPLATE.read_text(), re.M)
    if not match:
        raise SystemExit(f"{name} has no Default in {TEMPLATE}")
    return int(match[1])


def month_polls() -> dict[str, int]:
    """Loop.month_polls for the template's defaults: the ordinary month's durations (AWS_LOOPS,
    at most each loop's timeout) polled at the stack's interval, and the poll that finds each
    done."""
    out = {}
    for (loop, duration, _), stem in zip(AWS_LOOPS, ("Bake", "Copy", "Test")):
        interval = template_default(f"{stem}PollSeconds")
        duration = min(duration, template_default(f"{stem}TimeoutMinutes") * 60)
        out[loop] = -(-duration // interval) + 1
    return out


def deadline_polls() -> dict[str, int]:
    """Every loop polled at pacing's shortest interval (15 s) until its default timeout, and once
    past it: the month PlanRun does not judge by (the reaper cleans up after such a run)."""
    out = {}
    for loop, stem in (("bake", "Bake"), ("copy", "Copy"), ("test", "Test")):
        interval = min(15, template_default(f"{stem}PollSeconds"))
        out[loop] = -(-template_default(f"{stem}TimeoutMinutes") * 60 // interval) + 1
    return out


def local_aws_events(events: list[dict], families: int, regions: int) -> int:
    """The history events AWS would write for the states a local run entered (the model's
    weights applied to the runner's records), to hold the model to a real execution."""
    entered = [e for e in events if e.get("type") == "StateEntered"]
    iterations = families + 2 * families * regions
    return EXECUTION_EVENTS + MAP_ITERATION_EVENTS * iterations + sum(
        EVENTS_PER_STATE[e["stateType"]] for e in entered)


def json_bytes(value) -> int:
    """A value's size as Step Functions counts it: compact JSON, UTF-8."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def sizes(output: dict, events: list[dict]) -> dict[str, int]:
    """What each family's and region's result holds in the run's largest state (the output: the
    plan and every family's result), the largest of each, and what a failed family would keep on
    top (its bake, test and its regions' copy results)."""
    families = output.get("families", [])
    plan = output.get("plan", {}).get("families", [])
    region = max((json_bytes(p) for f in families for p in f.get("pointers", [])), default=0)
    plan_region = max((json_bytes(r) for f in plan for r in f.get("regions", [])), default=0)
    family = max((json_bytes({k: v for k, v in f.items() if k != "pointers"}) for f in families), default=0)
    plan_family = max((json_bytes({k: v for k, v in f.items() if k != "regions"}) for f in plan), default=0)
    outputs = {state: [e["output"] for e in events if e.get("type") == "StateExited"
                       and e.get("state") == state and "output" in e]
               for state in ("CopyImage", "CheckCopy", "ShareImage", "VerifyImage", "StartBake", "StartTest")}
    copy_result = sum(max((json_bytes(o) for o in outputs[s]), default=0)
                      for s in ("CopyImage", "CheckCopy", "ShareImage", "VerifyImage"))
    failed_extra = sum(max((json_bytes(o) for o in outputs[s]), default=0) for s in ("StartBake", "StartTest"))
    return {"state": json_bytes(output), "family": family, "region": region, "plan_family": plan_family,
            "plan_region": plan_region, "failed_family_extra": failed_extra, "failed_region_extra": copy_result}


def pace(median: int, configured_poll: int) -> tuple[int, int]:
    """crates/core/src/pacing.rs's pace() for a history whose median is `median` (the Rust unit
    test a_40_minute_bake_and_a_15_minute_copy_... pins the same figures): the first wait and
    the interval after it."""
    poll = min(max(median // 40, 15), configured_poll)
    return max(median * 85 // 100, poll), poll


def polls(duration: int, first: int, poll: int) -> int:
    """How many times a loop checks when its work takes `duration`."""
    return 1 + max(0, -(-(duration - first) // poll))


def measure(stack: LocalStack, n: int, encryption: str = "copy") -> dict:
    """One run of n families x n regions; its transitions, invocations and polls, and the images
    and snapshots it made (each bake's image, each CopyImage that copied) and removed."""
    stack.reset()
    regions = EXTRA_REGIONS[: n - 1]
    for region in regions:
        stack.add_region(region)
    families = [{"name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
                 "instanceType": "t3.small"}]
    for i in range(1, n):
        families.append(stack.add_family(f"f{i}", "arm64" if i % 2 else "x86_64"))
    stack.set_targets(families, regions, concurrency=n, encryption=encryption)
    ec2 = {region: stack.client("ec2", region=region) for region in stack.regions}
    snapshots_before = {r: {s["SnapshotId"] for s in c.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
                        for r, c in ec2.items()}
    result = stack.run()
    if not result.succeeded:
        raise SystemExit(f"the {n}x{n} {encryption} run failed: {result.stderr[-2000:]}")
    entered = [e for e in result.events if e.get("type") == "StateEntered"]
    polls = {loop: sum(1 for e in entered if e["state"] == state) for loop, state in LOOPS.items()}
    tasks = sum(1 for e in entered if e.get("stateType") == "Task")
    retries = sum(1 for e in result.events if e.get("type") == "StateRetried")
    outputs = {state: [e["output"] for e in result.events if e.get("type") == "StateExited"
                       and e.get("state") == state and "output" in e]
               for state in ("CheckBake", "CopyImage", "Cleanup")}
    baked = {o["bakedAmiId"] for o in outputs["CheckBake"] if o.get("bakedAmiId")}
    copied = {o["goldenAmiId"] for o in outputs["CopyImage"] if o.get("startedAt")}
    removed = sum(len(o.get("deregisteredImages", [])) for o in outputs["Cleanup"])
    kept = sum(len({s["SnapshotId"] for s in c.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
                   - snapshots_before[r]) for r, c in ec2.items())
    return {"families": n, "regions": n, "encryption": encryption, "transitions": len(entered),
            "invocations": tasks + retries, "polls": polls, "images": len(baked | copied),
            "removed": removed, "snapshots_kept": kept,
            "aws_events": local_aws_events(result.events, n, n), "sizes": sizes(result.output, result.events)}


def fit(rows: list[dict], key: str) -> tuple[float, float, float]:
    """value = a + b*F + c*F*R through the three square runs (F = R = n)."""
    (n1, v1), (n2, v2), (n3, v3) = [(r["families"], r[key]) for r in rows]
    assert (n1, n2, n3) == (1, 2, 3)
    # v = a + b n + c n^2
    c = ((v3 - v2) - (v2 - v1)) / 2
    b = (v2 - v1) - 3 * c
    a = v1 - b - c
    return a, b, c


def time_to_publish(regions: int, encryption: str, paced: bool) -> float:
    """Seconds from the bake's start to the pointers' move, on the critical path of a family:
    the bake, then the slowest region's copy (none in the direct mode with the home region
    only: the bake's image is the golden image), then the boot test; each loop noticing its end
    half an interval late on average (the stack's interval, or the paced one with history)."""
    total = 0.0
    for name, duration, configured in AWS_LOOPS:
        if name == "copy" and encryption == "direct" and regions == 1:
            continue
        interval = pace(duration, configured)[1] if paced else configured
        total += duration + interval / 2
    return total


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def encryption_lines(rows: list[dict], direct: list[dict], a: float, b: float, c: float) -> list[str]:
    """The copy and the direct encryption modes side by side."""
    copy_polls = polls(15 * 60, *pace(15 * 60, 60))
    # A direct family's home region makes no copy: CopyImage, a 0 s first wait, one CheckCopy
    # that finds the image available and its Choice, instead of the copy loop.
    b_direct = b - 3 * (copy_polls - 1)
    lines = [
        "",
        "### Encryption modes: copy (the default) and direct",
        "",
        "Counted on the local stack (the same command): one run per mode, every family in every region. An",
        "image is each bake's image plus each CopyImage that made a copy; the copy mode's intermediate",
        "images are removed by the run's cleanup. Snapshot GiB: each image's snapshots written in full",
        f"({IMAGE_GIB} GiB, the root volume of an Amazon Linux 2023 image; an image copy is a full copy).",
        "",
        "| mode | families x regions | images made per run | of which removed by the run (intermediate) | snapshot sets kept | snapshot GiB written per run | transitions (local) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    by_mode = {("copy", r["families"]): r for r in rows} | {("direct", r["families"]): r for r in direct}
    for n in (1, 2):
        for mode in ("copy", "direct"):
            r = by_mode.get((mode, n))
            if r is None:
                continue
            lines.append(f"| {mode} | {n} x {n} | {r['images']} | {r['removed']} | {r['snapshots_kept']} | "
                         f"{r['images'] * IMAGE_GIB} | {r['transitions']} |")
    lines += [
        "",
        "Modelled on AWS for the month above (a 40-minute bake, 15-minute copies, a 10-minute boot test, polls",
        "paced by history). Time to publish is the family's critical path: the bake, the slowest region's",
        "copy, the boot test, and each loop's mean detection slack; with one region the direct mode has no",
        "copy on it, with several the other regions' copies (from the home golden image) still are.",
        "",
        "| mode | families x regions | time to publish (no history) | time to publish (paced) | transitions per run | per year | cost per year |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for f, r in ((1, 1), (2, 2)):
        for mode, family_term in (("copy", b), ("direct", b_direct)):
            t = a + family_term * f + c * f * r
            lines.append(f"| {mode} | {f} x {r} | {minutes(time_to_publish(r, mode, False))} | "
                         f"{minutes(time_to_publish(r, mode, True))} | {t:,.0f} | {12 * t:,.0f} | "
                         f"${12 * t * PRICE_PER_1000 / 1000:.4f} |")
    one = time_to_publish(1, "direct", True) / time_to_publish(1, "copy", True)
    gib = {mode: by_mode[(mode, 2)]["images"] * IMAGE_GIB for mode in ("copy", "direct")
           if (mode, 2) in by_mode}
    lines += [
        "",
        f"With one region the direct mode publishes in {one:.2f}x the copy mode's time (the 15-minute home",
        "copy and its slack are gone) and writes half the snapshot GiB. With two regions it writes",
        f"{gib.get('direct', 0)} GiB instead of {gib.get('copy', 0)} but publishes no sooner: the other region's copy stays on the",
        "critical path in both modes (the boot test waits for every region's verification).",
    ]
    return lines


def section(rows: list[dict], direct: list[dict] | None = None) -> str:
    direct = direct or []
    a, b, c = fit(rows, "transitions")
    ia, ib, ic = fit(rows, "invocations")
    local = rows[0]["polls"]
    # Per family, per region: the polls of the local run, replaced by a month's polls on AWS.
    b_aws = b + 3 * ((AWS_POLLS["bake"] - local["bake"]) + (AWS_POLLS["test"] - local["test"]))
    c_aws = c + 3 * (AWS_POLLS["copy"] - local["copy"])
    lines = [
        BEGIN,
        "## Fan-out scale: transitions and invocations per run",
        "",
        "Counted on the local stack (`.venv/bin/python bench/scale.py`): one successful run each, every family",
        "in every region, Map concurrency = families.",
        "",
        "| families x regions | state transitions | Lambda invocations | bake / copy / test polls |",
        "|---|---:|---:|---|",
    ]
    for r in rows:
        p = r["polls"]
        lines.append(f"| {r['families']} x {r['regions']} | {r['transitions']} | {r['invocations']} | "
                     f"{p['bake']} / {p['copy']} / {p['test']} |")
    lines += [
        "",
        f"They follow transitions = {a:g} + {b:g} F + {c:g} F R and invocations = {ia:g} + {ib:g} F + "
        f"{ic:g} F R (F families, R regions each): {a:g} for the run (plan, notices, lock), {b:g} per",
        f"family (bake, boot test, the approval gate's choice, cleanup, retention, with the local stack's polls), {c:g} per family and region",
        "(copy, share, verify, publish). Each extra poll of a loop is 3 transitions (Wait, Check, Choice).",
        f"On AWS, with a 40-minute bake at the 120 s poll ({AWS_POLLS['bake']} polls), a 15-minute copy at 60 s "
        f"({AWS_POLLS['copy']}) and a 10-minute boot test at 60 s ({AWS_POLLS['test']}), that is about "
        f"{a:g} + {b_aws:g} F + {c_aws:g} F R:",
        "",
        "| families x regions | transitions per run (AWS, modelled) | per year | cost per year at $0.025 / 1,000 |",
        "|---|---:|---:|---:|",
    ]
    for f, r in ((1, 1), (2, 2), (3, 3), (4, 6)):
        t = a + b_aws * f + c_aws * f * r
        lines.append(f"| {f} x {r} | {t:,.0f} | {12 * t:,.0f} | ${12 * t * PRICE_PER_1000 / 1000:.2f} |")
    lines += [
        "",
        "Polling by expectation (crates/core/src/pacing.rs): without history a loop polls at the stack's",
        "interval from the start; once the family has published, its next runs wait 85% of the median of",
        "its last five durations, then poll at the median / 40 (15 s at least, the stack's interval at",
        "most). For the month above, each loop checking 3 transitions per poll, the end noticed half an",
        "interval late on average:",
        "",
        "| loop | duration | without history: polls, transitions, mean slack | with history: first wait, interval, polls, transitions, mean slack |",
        "|---|---:|---|---|",
    ]
    saved = {}
    for name, duration, configured in AWS_LOOPS:
        before = polls(duration, configured, configured)
        first, poll = pace(duration, configured)
        after = polls(duration, first, poll)
        saved[name] = before - after
        lines.append(f"| {name} | {duration // 60} min | {before}, {3 * before}, {configured / 2:g} s | "
                     f"{first} s, {poll} s, {after}, {3 * after}, {poll / 2:g} s |")
    b_paced = b_aws - 3 * (saved["bake"] + saved["test"])
    c_paced = c_aws - 3 * saved["copy"]
    slack_before = sum(configured / 2 for _, _, configured in AWS_LOOPS)
    slack_after = sum(pace(duration, configured)[1] / 2 for _, duration, configured in AWS_LOOPS)
    lines += [
        "",
        f"A run then makes about {a:g} + {b_paced:g} F + {c_paced:g} F R transitions instead of {a:g} + {b_aws:g} F + "
        f"{c_aws:g} F R ({a + b_paced + c_paced:,.0f} instead of {a + b_aws + c_aws:,.0f} for 1 x 1, "
        f"{a + 2 * b_paced + 4 * c_paced:,.0f} instead of {a + 2 * b_aws + 4 * c_aws:,.0f} for 2 x 2), and the pointer",
        f"moves about {slack_before - slack_after:g} s sooner ({slack_before:g} s of mean slack over the three loops, now "
        f"{slack_after:g} s).",
    ]
    lines += encryption_lines(rows, direct, a, b_paced, c_paced)
    lines += budget_lines(rows)
    lines.append(END)
    return "\n".join(lines) + "\n"


def check_model(rows: list[dict]) -> None:
    """The model with zero polls, plus 3 transitions and 9 events per poll the local run made,
    is the local run: its transitions, and the events AWS would write for the states it entered."""
    zero = {"bake": 0, "copy": 0, "test": 0}
    for r in rows:
        m, polled = model(r["families"], r["regions"], zero), sum(r["polls"].values())
        got = (r["transitions"], r["aws_events"])
        want = (m["transitions"] + 3 * polled, m["events"] + POLL_EVENTS * polled)
        if got != want:
            raise SystemExit(f"the {r['families']} x {r['regions']} run made {got} transitions / events, "
                             f"the model says {want}: the definition changed, update crates/core/src/budget.rs")


def budget_lines(rows: list[dict]) -> list[str]:
    """What a run may hold on AWS: the model's figures at the template's defaults, the largest
    matrices that fit, and what each family's and region's result holds in the largest state."""
    check_model(rows)
    k, worst = budget_constants(), month_polls()
    zero = {"bake": 0, "copy": 0, "test": 0}
    one, zero_one = model(1, 1, worst), model(1, 1, zero)
    per_family = model(2, 0, worst)["events"] - model(1, 0, worst)["events"]
    per_region = model(1, 2, worst)["events"] - model(1, 1, worst)["events"]
    base = model(1, 0, worst)["events"] - per_family
    lines = [
        "",
        "### What a run may hold on AWS (crates/core/src/budget.rs)",
        "",
        f"Step Functions ends a run whose history reaches {k['HISTORY_EVENTS_LIMIT']:,} events or whose state passes",
        f"{k['STATE_BYTES_LIMIT']:,} bytes without any Catch; PlanRun refuses a targets document that could. History",
        "events per state entered: a Task 5, the approval's callback Task 6, a Pass, Choice, Wait or Succeed 2,",
        "a Map 4 and 2 per iteration (an inline Map writes into the run's history), the execution 2; a poll is",
        f"9. The model with zero polls ({zero_one['transitions']} transitions, {zero_one['events']} events for 1 x 1) plus 3",
        "transitions and 9 events per poll equals every local run above (checked on each run). An inline Map",
        "also runs at most 40 iterations at once whatever MaxConcurrency says.",
        "",
        "The month PlanRun judges by: a 40-minute bake, a 15-minute copy and a 10-minute boot test (at most",
        "their timeouts), each polled at the stack's interval (the most a family without a history polls); at",
        f"the template's defaults that is {worst['bake']} / {worst['copy']} / {worst['test']} bake / copy / test polls,",
        f"{base:,} + {per_family:,} F + {per_region:,} F R events ({one['events']:,} for 1 x 1). A month whose every loop",
        "runs to its deadline polled every 15 s can pass the limit (second column); that run ends outside its",
        "failure path and the reaper cleans up after it. The most regions per family that fit, by the number",
        "of families:",
        "",
        "| families | ordinary month (defaults): regions each | every loop to its deadline: regions each |",
        "|---:|---:|---:|",
    ]
    typical = deadline_polls()
    for f in (1, 2, 3, 5, 10, 20):
        most = [max((r for r in range(0, 200) if fits(f, r, polls)), default=0) for polls in (worst, typical)]
        lines.append(f"| {f} | {most[0] or 'none'} | {most[1] or 'none'} |")
    s = rows[-1]["sizes"]
    lines += [
        "",
        f"The largest state (the run's output: the plan and every family's result) of the {rows[-1]['families']} x "
        f"{rows[-1]['regions']} local run is {s['state']:,} bytes. Largest of each part, in bytes: a family's result without its",
        f"regions {s['family']:,}, a region's pointer result {s['region']:,}, a family's plan entry without its regions",
        f"{s['plan_family']:,}, a region's plan entry {s['plan_region']:,}; a failed family keeps its whole state, about",
        f"{s['failed_family_extra']:,} more per family (its bake and boot test) and {s['failed_region_extra']:,} more per region (its copy,",
        f"share and verification). The model allows {k['FAMILY_BYTES']:,} per family and {k['REGION_BYTES']:,} per region"
        f" (plus {k['RUN_BYTES']:,} for the run).",
    ]
    bound_family = s["family"] + s["plan_family"] + s["failed_family_extra"]
    bound_region = s["region"] + s["plan_region"] + s["failed_region_extra"]
    if bound_family > k["FAMILY_BYTES"] or bound_region > k["REGION_BYTES"]:
        raise SystemExit(f"a family ({bound_family}) or a region ({bound_region}) holds more than budget.rs allows")
    return lines


def run() -> str:
    with LocalStack(build=False) as stack:
        rows = [measure(stack, n) for n in (1, 2, 3)]
        direct = [measure(stack, n, "direct") for n in (1, 2)]
    print(json.dumps(rows + direct), file=sys.stderr)
    return section(rows, direct)


def update_report(text: str, report: Path = HERE / "REPORT.md") -> None:
    current = report.read_text() if report.exists() else ""
    if BEGIN in current and END in current:
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
        updated = pattern.sub(lambda _: text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    report.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-report", action="store_true", help="replace the section in bench/REPORT.md")
    args = parser.parse_args()
    text = run()
    print(text)
    if args.update_report:
        update_report(text)


if __name__ == "__main__":
    main()
