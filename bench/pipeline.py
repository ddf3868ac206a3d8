"""Part 4: pipeline overhead on the local stack.

Input: the runner's --events file (local/runner/run.mjs: one JSON line per event) of ONE
execution, optionally the emulator request log of the same run (bench/timing_proxy.py).

Split of the execution's wall time (runner clock, ms):
  Task time     = sum of the Task states' StateExited.durationMs (entered -> exited, retries included):
                  the Lambda invoke through cargo lambda watch, the handler, its AWS calls.
  emulator      = sum of the emulator request times that fall inside a Task state (timing proxy);
                  without that log it cannot be separated and is reported inside the handlers.
  handlers      = Task time - emulator (handler code, SDK, and cargo lambda watch's invoke hop).
  runner        = wall - Task time (aws-local-stepfunctions: transitions, Choice/Pass/Wait with
                  every Wait overridden to 0 ms, the runner's bookkeeping).

Transitions: each state entered counts one, plus each Retry attempt (Step Functions Standard
bills retries as transitions too). What a run makes and costs on AWS, with the polls at the real
intervals, is bench/scale.py's model (the report's fan-out scale section): the local stack polls
at once, so its loop counts are the emulator's.

    .venv/bin/python bench/pipeline.py --events run.jsonl [--emulator-log emu.jsonl] [--definition ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def split_execution(events: list[dict], emulator: list[dict] | None) -> dict:
    executions = {e.get("execution") for e in events if e.get("execution")}
    if len(executions) > 1:
        raise SystemExit(f"the events file holds {len(executions)} executions; give one: {sorted(executions)}")
    end = next((e for e in events if e["type"].startswith("Execution") and e["type"] != "ExecutionStarted"), None)
    if end is None:
        raise SystemExit("the events file has no Execution{Succeeded,Failed,...} record: is the run complete?")
    wall = float(end["durationMs"])
    entered = [e for e in events if e["type"] == "StateEntered"]
    retries = [e for e in events if e["type"] == "StateRetried"]
    task_exits = [e for e in events if e["type"] == "StateExited" and e.get("stateType") == "Task"]
    task_ms = float(sum(e["durationMs"] for e in task_exits))
    result = {
        "execution": end.get("execution"),
        "status": end.get("status"),
        "wall_ms": wall,
        "task_ms": task_ms,
        "runner_ms": wall - task_ms,
        "states_entered": len(entered),
        "retries": len(retries),
        "transitions": len(entered) + len(retries),
        "tasks": len(task_exits),
        "per_state": {},
        "emulator_ms": None,
        "emulator_requests": None,
        "handler_ms": None,
    }
    for e in entered:
        result["per_state"].setdefault(e["state"], 0)
        result["per_state"][e["state"]] += 1
    if emulator is not None:
        windows = [(e["startTs"], e["endTs"]) for e in task_exits]
        inside = [r for r in emulator if any(s - 1 <= r["startTs"] and r["endTs"] <= t + 1 for s, t in windows)]
        result["emulator_ms"] = float(sum(r["ms"] for r in inside))
        result["emulator_requests"] = len(inside)
        result["emulator_requests_total"] = len(emulator)
        result["handler_ms"] = task_ms - result["emulator_ms"]
    return result


def markdown(split: dict, source: str, command: str, facts: dict | None = None) -> str:
    facts = facts or {}
    lines = [
        f"Source: `{source}` (execution `{split['execution']}`, status {split['status']}).",
        f"Command: `{command}`",
        "",
        "| part of the wall time | ms | share |",
        "|---|---:|---:|",
    ]
    wall = split["wall_ms"] or 1.0
    hop = facts.get("hop_ms_median")
    if split["emulator_ms"] is not None and hop is not None:
        hop_total = min(hop * split["tasks"], split["handler_ms"])
        own = split["handler_ms"] - hop_total
        lines.append(f"| handlers: our code + AWS SDK (debug builds, as `make demo` runs them) | {own:.0f} | {own / wall:.0%} |")
        lines.append(f"| handlers: invoke hop runner -> cargo lambda watch -> runtime and back "
                     f"({split['tasks']} x {hop:.1f} ms, the median of 20 invocations rejected before the handler) | {hop_total:.0f} | {hop_total / wall:.0%} |")
        lines.append(f"| emulator (moto + extension, {split['emulator_requests']} requests, via bench/timing_proxy.py) | {split['emulator_ms']:.0f} | {split['emulator_ms'] / wall:.0%} |")
    elif split["emulator_ms"] is not None:
        lines.append(f"| handlers (handler code + SDK + cargo lambda watch hop) | {split['handler_ms']:.0f} | {split['handler_ms'] / wall:.0%} |")
        lines.append(f"| emulator (moto + extension, {split['emulator_requests']} requests) | {split['emulator_ms']:.0f} | {split['emulator_ms'] / wall:.0%} |")
    else:
        lines.append(f"| handlers + emulator (no emulator log: not separable) | {split['task_ms']:.0f} | {split['task_ms'] / wall:.0%} |")
    lines.append(f"| state machine runner (aws-local-stepfunctions, Waits at 0 ms) | {split['runner_ms']:.0f} | {split['runner_ms'] / wall:.0%} |")
    lines.append(f"| **wall time of the execution** | **{split['wall_ms']:.0f}** | 100% |")
    lines += [
        "",
        f"State transitions in this execution: **{split['transitions']}** "
        f"({split['states_entered']} states entered + {split['retries']} retries; {split['tasks']} Task states). "
        "Per state: " + ", ".join(f"{k} x{v}" for k, v in split["per_state"].items()) + ".",
        "",
    ]
    if facts.get("timings"):
        t = facts["timings"]
        lines += [
            "Not in the execution's wall time: starting the local stack ("
            + ", ".join(f"{k.replace('_', ' ')}{' (includes warm up)' if k == 'watch_start' else ''} {v:.1f} s"
                        for k, v in t.items())
            + (f"; debug build check {facts['build_s']:.1f} s" if facts.get("build_s") is not None else "")
            + "). Every Wait is 0 ms locally: the real execution spends almost all of its time in Waits.",
            "",
        ]
    lines += [
        "The local stack polls at once, so this execution's loop counts are the emulator's. What a run "
        "makes and costs on AWS, with the polls at the real intervals, per family and region: the fan-out "
        "scale section (`bench/scale.py`).",
        "",
    ]
    return "\n".join(lines)


def run_local(work_dir: Path, log=None) -> tuple[Path, Path, dict]:
    """One execution on the local stack (local/stack.py, what `make demo` runs), with the handlers'
    AWS_ENDPOINT_URL pointed at bench/timing_proxy.py in front of moto. Returns the runner's events
    file, the emulator request log and facts about the run. local/ is not modified: LocalStack is
    subclassed here."""
    import sys
    import threading

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from local.stack import LocalStack  # noqa: PLC0415
    import timing_proxy  # noqa: PLC0415

    import os

    venv_bin = str(REPO / ".venv" / "bin")  # cargo-lambda (and zig) come from the venv
    if venv_bin not in os.environ.get("PATH", "").split(":"):
        os.environ["PATH"] = f"{venv_bin}:{os.environ.get('PATH', '')}"
    work_dir.mkdir(parents=True, exist_ok=True)
    emu_log = work_dir / "emulator.jsonl"
    emu_log.unlink(missing_ok=True)

    class TimedStack(LocalStack):
        proxy = None

        def start_moto(self) -> None:
            super().start_moto()
            if self.proxy is None:
                self.proxy = timing_proxy.make_server(self.endpoint, 0, str(emu_log))
                threading.Thread(target=self.proxy.serve_forever, daemon=True).start()

        def _lambda_env(self) -> dict:
            env = super()._lambda_env()
            env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{self.proxy.server_address[1]}"
            return env

        def stop(self) -> None:
            super().stop()
            if self.proxy is not None:
                self.proxy.shutdown()
                self.proxy.server_close()

    with TimedStack(log=log, work_dir=work_dir) as stack:
        emu_log.write_text("")  # drop the warm-up's requests (none reach AWS, but be sure)
        result = stack.run()
        # The invoke hop alone: an event the runtime rejects before the handler runs (no AWS call),
        # through the same watch server, one at a time. Median x Task count ~ the hop's share.
        import statistics
        import time as _time
        import urllib.error
        import urllib.request
        hops = []
        url = f"{stack.lambda_endpoint}/2015-03-31/functions/read-current-ami/invocations"
        for _ in range(20):
            req = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
            t = _time.perf_counter()
            try:
                urllib.request.urlopen(req, timeout=60).read()
            except urllib.error.HTTPError as exc:
                exc.read()
            hops.append((_time.perf_counter() - t) * 1000)
        events = work_dir / "local-run.events.jsonl"
        events.write_text("".join(json.dumps(e) + "\n" for e in result.events))
        facts = {"status": result.status, "wall_ms": result.wall_ms, "build_s": stack.build_seconds,
                 "timings": dict(stack.timings), "error": result.error, "cause": result.cause,
                 "hop_ms_median": statistics.median(hops)}
    return events, emu_log, facts


def main() -> None:
    parser = argparse.ArgumentParser(description="one execution's wall time split and its transitions")
    parser.add_argument("--events", type=Path, required=True, help="the runner's --events file of one execution")
    parser.add_argument("--emulator-log", type=Path, help="bench/timing_proxy.py log of the same run")
    args = parser.parse_args()
    split = split_execution(read_jsonl(args.events), read_jsonl(args.emulator_log) if args.emulator_log else None)
    print(markdown(split, str(args.events), "python bench/pipeline.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)))


if __name__ == "__main__":
    main()
