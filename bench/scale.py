"""The fan-out's scale: state transitions and Lambda invocations per run for F families x R
regions, counted on the local stack (1x1, 2x2, 3x3), with the formula they follow; and the two
encryption modes (copy, direct) side by side: images and snapshots made per run (counted, 1x1
and 2x2), transitions, cost and time to publish for a modelled month.

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
            "removed": removed, "snapshots_kept": kept}


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
    events = 3 * (a + b_aws * 10 + c_aws * 100)
    lines += [
        "",
        "Limits relied on: an inline Map runs at most 40 iterations at once whatever MaxConcurrency",
        "says, and a run's history holds at most 25,000 events; the family Map's MaxConcurrency",
        "(`FamilyConcurrency`) bounds the bakes at once, the region Map runs a family's regions",
        "together. At about 3 history events per transition, 10 families in 10 regions would write",
        f"about {events:,.0f} of those 25,000 events: beyond about that size, distributed Map (child",
        "executions, each with its own history) is needed; the polls, most of the transitions, are",
        "what polling by expectation cuts.",
        END,
    ]
    return "\n".join(lines) + "\n"


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
