"""`make bench`: cold starts, warm invocations, package sizes, pipeline overhead -> bench/REPORT.md.

Run from the repository root:

    .venv/bin/python bench/bench.py [--cold 20] [--warm 200] [--skip-build] [--skip-package]
                                    [--events RUN.jsonl [--emulator-log EMU.jsonl]]

1. Cold start: a fresh process per invocation, started against bench/runtime_api.py with one event
   already waiting (as Lambda does); timed from spawn to the response POST received. Rust: the
   release binary of read-current-ami. Python: bench/baseline_python/handler.py under awslambdaric.
   Both call the local AWS stand-in (local/moto_ext) with the same three API calls.
2. Warm: one process, then N invocations one after the other; enqueue -> response received.
3. Package size: `cargo lambda build --release --arm64 --output-format zip`, target/lambda/*/bootstrap.zip.
4. Pipeline overhead: bench/pipeline.py on a runner --events file (default: a sample run of the
   real definition against the runner's test fake; give --events from a `make demo` run).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from runtime_api import RuntimeApi  # noqa: E402
import pipeline  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
# Cargo's target directory (CARGO_TARGET_DIR or the workspace's target/), where the builds land.
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target").resolve()
RUST_BIN = TARGET / "release" / "read-current-ami"
BASELINE = HERE / "baseline_python"
LOGS = HERE / ".logs"
EMPTY_HOME = LOGS / "home"  # an empty HOME: no ~/.aws for either SDK, as in Lambda
REGION = "eu-west-1"
POINTER = "/golden-ami/current"  # the family pointer of events/read-current-ami/ok.json
BAKE_DOCUMENT = "golden-ami-bake"
BASE_IMAGE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
FOUR_MB = 4 * 1024 * 1024
# Every arm64 zip stays under this (2.5 MB): a smaller package is a faster first start.
BUDGET = 2_500_000
EVENT = (REPO / "events" / "read-current-ami" / "ok.json").read_bytes()

# The whole configuration the Rust step validates at start (crates/core/src/config.rs).
PIPELINE_ENV = {
    "POINTER_PARAMETER_NAME": POINTER,  # the Python baseline's; the Rust step reads the event's family
    "TARGETS_PARAMETER_NAME": "/golden-ami-pipeline/targets",
    "LOCK_PARAMETER_NAME": "/golden-ami-pipeline/run-lock",
    "BAKE_DOCUMENT_NAME": BAKE_DOCUMENT,
    "AUTOMATION_ASSUME_ROLE_ARN": "arn:aws:iam::123456789012:role/golden-ami-automation",
    "BAKE_SUBNET_ID": "subnet-0123456789abcdef0",
    "BAKE_INSTANCE_PROFILE_NAME": "golden-ami-bake-instance",
    "BAKE_SECURITY_GROUP_ID": "sg-0123456789abcdef0",
    "UPDATE_REPORT_DOCUMENT_NAME": "golden-ami-update-report",
    "BASELINE_APPLY_DOCUMENT_NAME": "golden-ami-baseline-apply",
    "BASELINE_CHECK_DOCUMENT_NAME": "golden-ami-baseline-check",
    "TEST_DOCUMENT_NAME": "golden-ami-test",
    "REPORT_BUCKET_NAME": "golden-ami-reports-123456789012",
    "GOLDEN_KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:golden-ami",
    "SHARE_ORGANIZATION_ARN": "arn:aws:organizations::123456789012:organization/o-abcdef1234",
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str] | str, **kw) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, shell=isinstance(cmd, str), **kw).stdout.strip()
    except OSError as error:
        return f"unavailable ({error})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- machine and tools -----------------------------------------------------------------------

def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    return {
        "cores": os.cpu_count(),
        "nproc": sh(["nproc"]),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "arch": platform.machine(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def tools() -> dict:
    env = lambda_path_env()
    def pip_version(name: str) -> str:
        return sh([str(PYTHON), "-c", f"import importlib.metadata as m; print(m.version('{name}'))"])
    return {
        "rustc": sh(["rustc", "--version"]),
        "cargo": sh(["cargo", "--version"]),
        "cargo-lambda": sh(["cargo", "lambda", "--version"], env=env),
        "python": sh([str(PYTHON), "--version"]),
        "boto3": pip_version("boto3"),
        "botocore": pip_version("botocore"),
        "awslambdaric": pip_version("awslambdaric"),
        "moto": pip_version("moto"),
        "node": sh(["node", "--version"]),
    }


def lambda_path_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    return env


# ---- the local AWS stand-in ------------------------------------------------------------------

class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        LOGS.mkdir(exist_ok=True)
        self.log = open(LOGS / "moto.log", "w")
        self.proc = subprocess.Popen([str(PYTHON), "-m", "local.moto_ext", "--port", str(self.port)],
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"moto_ext exited with {self.proc.returncode}: see {LOGS / 'moto.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/_golden/state", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("moto_ext did not become ready in 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def aws_env(endpoint: str) -> dict:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        # Nothing from the developer's ~/.aws: Lambda has no shared config files.
        "HOME": str(EMPTY_HOME),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def seed(endpoint: str) -> str:
    import boto3
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    ssm = session.client("ssm", endpoint_url=endpoint)
    base = ssm.get_parameter(Name=BASE_IMAGE_PARAMETER)["Parameter"]["Value"]
    # An aws:ec2:image write shows only once SSM validated it (the stand-in holds it for a read,
    # as AWS does for a moment): read until it does, as a client of AWS must.
    sys.path.insert(0, str(HERE.parent))
    from local.stack import put_image_parameter
    put_image_parameter(ssm, Name=POINTER, Value=base, Type="String", Overwrite=True)
    # moto builds a region's EC2 backend (~1300 default images) on first use: not ours to time.
    session.client("ec2", endpoint_url=endpoint).describe_images(ImageIds=[base])
    ssm.describe_automation_executions(Filters=[{"Key": "DocumentNamePrefix", "Values": [BAKE_DOCUMENT]}])
    return base


# ---- one function process --------------------------------------------------------------------

def lambda_env(api: RuntimeApi, endpoint: str, name: str, extra: dict) -> dict:
    EMPTY_HOME.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
        "AWS_EXECUTION_ENV": "",
        **aws_env(endpoint),
        **PIPELINE_ENV,
        **extra,
    }
    return env


def command(kind: str) -> tuple[list[str], dict, Path]:
    if kind == "rust":
        return [str(RUST_BIN)], {"AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023"}, REPO
    return (
        [str(PYTHON), "-m", "awslambdaric", "handler.lambda_handler"],
        {
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(BASELINE),
            "_HANDLER": "handler.lambda_handler",
            "PYTHONPATH": str(BASELINE),
        },
        BASELINE,
    )


def vm_hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


LIVE: set["Function"] = set()  # processes this run started: killed (by pid) on any exit


@atexit.register
def _kill_live() -> None:
    for fn in list(LIVE):
        fn.stop()


class Function:
    """One function process bound to its own Runtime API."""

    def __init__(self, kind: str, endpoint: str) -> None:
        self.kind = kind
        self.api = RuntimeApi(function_name=f"read-current-ami-{kind}").start()
        self.argv, extra, self.cwd = command(kind)
        self.env = lambda_env(self.api, endpoint, self.api.function_name, extra)
        self.proc: subprocess.Popen | None = None
        self.t_spawn = 0.0

    def spawn(self) -> None:
        LIVE.add(self)
        self.out = open(LOGS / f"{self.kind}.log", "a")
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=self.out, stderr=subprocess.STDOUT)

    def invoke(self, timeout: float = 60):
        inv = self.api.enqueue(EVENT)
        if self.proc is None:
            self.spawn()
        if not inv.wait(timeout) or inv.outcome != "response":
            detail = inv.body.decode(errors="replace") if inv.body else "no answer"
            self.stop()
            raise SystemExit(f"{self.kind}: invocation failed ({inv.outcome}): {detail[:500]} (log: {LOGS / (self.kind + '.log')})")
        return inv

    def peak_rss_kb(self) -> int | None:
        return vm_hwm_kb(self.proc.pid) if self.proc else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.api.stop()
        if hasattr(self, "out"):
            self.out.close()
        LIVE.discard(self)


def check_output(inv, expected_ami: str, kind: str) -> dict:
    out = inv.json()
    if out.get("amiId") != expected_ami or out.get("parameterName") != POINTER:
        raise SystemExit(f"{kind}: unexpected output {out}")
    return out


def cold_starts(kind: str, n: int, endpoint: str, ami: str) -> list[dict]:
    rows = []
    for i in range(n):
        fn = Function(kind, endpoint)
        inv = fn.invoke()
        rows.append({
            "total_ms": (inv.completed - fn.t_spawn) * 1000,
            "init_ms": ((fn.api.first_next or inv.delivered) - fn.t_spawn) * 1000,
            "handler_ms": (inv.completed - inv.delivered) * 1000,
            "rss_kb": fn.peak_rss_kb(),
        })
        check_output(inv, ami, kind)
        fn.stop()
    return rows


def warm(kind: str, n: int, endpoint: str, ami: str) -> tuple[list[float], int | None]:
    fn = Function(kind, endpoint)
    check_output(fn.invoke(), ami, kind)  # the cold one, not counted
    times = []
    for _ in range(n):
        inv = fn.invoke()
        times.append((inv.completed - inv.enqueued) * 1000)
    check_output(inv, ami, kind)
    rss = fn.peak_rss_kb()
    fn.stop()
    return times, rss


# ---- statistics and markdown -----------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    k = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(k) - 1]


def fmt(ms: float) -> str:
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "n/a"


# ---- parts -----------------------------------------------------------------------------------

def build_rust() -> tuple[str, float]:
    cmd = ["cargo", "build", "--release", "-p", "read-current-ami"]
    log("building: " + " ".join(cmd) + " (the first release build takes ~15-20 min on 2 cores)")
    t = time.time()
    subprocess.run(cmd, cwd=REPO, check=True)
    return " ".join(cmd), time.time() - t


def package_sizes(skip_build: bool) -> tuple[str, list[tuple[str, int]], float | None, str | None]:
    cmd = "cargo lambda build --release --arm64 --output-format zip --workspace --exclude golden-ami-cli"
    elapsed, failure = None, None
    if not skip_build:
        log(f"building: {cmd} (PATH has .venv/bin for cargo-lambda and zig; ~20-40 min the first time)")
        t = time.time()
        proc = subprocess.run(cmd.split(), cwd=REPO, env=lambda_path_env(), capture_output=True, text=True)
        elapsed = time.time() - t
        if proc.returncode != 0:
            failure = (proc.stderr or proc.stdout)[-1500:]
            log(f"{cmd} failed: the sizes below are those of the zips already there\n{failure}")
    zips = sorted((p.parent.name, p.stat().st_size) for p in (TARGET / "lambda").glob("*/bootstrap.zip"))
    return cmd, zips, elapsed, failure


def tls_findings() -> list[str]:
    """The cheap size fix found while investigating part 3: is a second HTTP/TLS stack linked?"""
    cmd = ["cargo", "tree", "--offline", "-e", "normal,features", "-i", "aws-smithy-runtime", "--workspace"]
    out = sh(cmd, cwd=REPO)
    legacy = sorted(set(re.findall(r'(aws-sdk-[\w-]+) feature "rustls"', out)))
    if not legacy:
        return [f"Check: `{' '.join(cmd)}` shows no legacy `rustls` feature of the SDK crates: one HTTP/TLS stack.", ""]
    return [
        f"Check: `{' '.join(cmd)}`: the default feature `rustls` of {', '.join(legacy)} turns on aws-smithy-runtime's "
        "`tls-rustls`, the legacy client (hyper 0.14 + rustls 0.21 + ring), linked next to the default-https-client "
        "(hyper 1 + rustls 0.23 + aws-lc-rs) that the SDK uses: two HTTP/TLS stacks in every function. "
        "Cheap fix (workspace Cargo.toml): `default-features = false, features = [\"default-https-client\", \"rt-tokio\"]` "
        "on each aws-sdk-* and on aws-config (plus \"behavior-version-latest\"); see bench/README.md.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="golden-ami-pipeline benchmarks -> bench/REPORT.md")
    parser.add_argument("--cold", type=int, default=20, help="cold starts per runtime (default 20)")
    parser.add_argument("--warm", type=int, default=200, help="warm invocations per runtime (default 200)")
    parser.add_argument("--skip-build", action="store_true", help="use the existing release binary and zips")
    parser.add_argument("--skip-package", action="store_true", help="leave out part 3")
    parser.add_argument("--skip-profile", action="store_true", help="leave out the cold start profile (bench/coldstart.py)")
    parser.add_argument("--events", type=Path, help="runner --events file of one local execution (part 4)")
    parser.add_argument("--emulator-log", type=Path, help="bench/timing_proxy.py log of the same run (part 4)")
    parser.add_argument("--no-local", action="store_true", help="part 4 without the local stack (sample run only)")
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md")
    args = parser.parse_args()
    os.chdir(REPO)
    LOGS.mkdir(exist_ok=True)
    EMPTY_HOME.mkdir(exist_ok=True)
    for stale in ("rust.log", "python.log"):
        (LOGS / stale).unlink(missing_ok=True)

    started = time.time()
    host = machine()
    versions = tools()
    where = f"{host['nproc']} cores ({host['cpu']}), {host['memory']}"
    cmdline = (".venv/bin/python bench/bench.py " + " ".join(sys.argv[1:])).strip()
    invocation = f"`{cmdline}`"

    build_note = ""
    if not args.skip_build:
        build_cmd, build_s = build_rust()
        build_note = f"`{build_cmd}` took {build_s:.0f} s in this run (cargo rebuilds only what changed; ~17 min from a cold cache on this machine)."
    if not RUST_BIN.exists():
        raise SystemExit(f"{RUST_BIN} is missing: run without --skip-build")

    moto = Moto()
    try:
        ami = seed(moto.url)
        log(f"moto_ext on {moto.url}; pointer {POINTER} = {ami}")
        # One discarded run of each first: page cache, .pyc files.
        for kind in ("rust", "python"):
            cold_starts(kind, 1, moto.url, ami)
        cold: dict[str, list[dict]] = {"rust": [], "python": []}
        log(f"cold starts: {args.cold} x 2, interleaved")
        for _ in range(args.cold):  # interleaved, so background load hits both alike
            for kind in ("rust", "python"):
                cold[kind] += cold_starts(kind, 1, moto.url, ami)
        warm_ms: dict[str, list[float]] = {}
        warm_rss: dict[str, int | None] = {}
        for kind in ("rust", "python"):
            log(f"warm: {args.warm} invocations, {kind}")
            warm_ms[kind], warm_rss[kind] = warm(kind, args.warm, moto.url, ami)
    finally:
        moto.stop()

    profile_text = None
    if not args.skip_profile:
        import coldstart as cold_profile
        try:
            if not args.skip_build:
                cold_profile.build()
            profile_text = cold_profile.markdown(cold_profile.profile(30, 20000),
                                                 ".venv/bin/python bench/coldstart.py")
        except (Exception, SystemExit) as error:  # the report still says what ran
            profile_text = f"## Cold start profile (read-current-ami)\n\nNot measured: {error}\n"

    pkg = None
    if not args.skip_package:
        pkg = package_sizes(args.skip_build)

    # Part 4 input: a given events file; else one execution on the local stack (local/stack.py,
    # what `make demo` runs); if that cannot run, a sample made with the runner's test fake.
    events_path, emu_path, events_is_sample, facts, local_error = args.events, args.emulator_log, False, {}, None
    part4_cmd = None
    if events_path is None and not args.no_local:
        log("part 4: one execution on the local stack (local/stack.py) with bench/timing_proxy.py in front of moto")
        try:
            events_path, emu_path, facts = pipeline.run_local(LOGS / "local", log=lambda line: log("stack: " + line))
            part4_cmd = cmdline
            if facts.get("status") != "SUCCEEDED":
                local_error = f"the local execution ended {facts.get('status')}: {facts.get('error')} {facts.get('cause')}"
        except Exception as error:  # noqa: BLE001 - any failure of the local stack: fall back, say why
            local_error = f"{type(error).__name__}: {str(error)[:600]}"
            events_path = None
        if local_error:
            log(f"part 4: local stack run failed ({local_error}); falling back to the sample")
    if events_path is None:
        events_path, emu_path, events_is_sample, facts = LOGS / "sample-events.jsonl", None, True, {}
        subprocess.run(["node", str(HERE / "sample" / "make_sample_events.mjs"), str(events_path)], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
        part4_cmd = f"node bench/sample/make_sample_events.mjs {events_path.relative_to(REPO)} && .venv/bin/python bench/pipeline.py --events {events_path.relative_to(REPO)}"
    split = pipeline.split_execution(pipeline.read_jsonl(events_path),
                                     pipeline.read_jsonl(emu_path) if emu_path else None)
    if part4_cmd is None:
        part4_cmd = cmdline

    # ---- report ------------------------------------------------------------------------------
    L: list[str] = []
    L += [
        "# golden-ami-pipeline benchmarks",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by {invocation} "
        f"in {time.time() - started:.0f} s.",
        "",
        f"**Machine**: {where}; kernel {host['kernel']} {host['arch']}; load average at the start {host['loadavg']}. "
        "The cores are shared with other builds: read medians and ratios, not single values.",
        "",
        "**Tools**: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        "The Python side is `bench/baseline_python/handler.py`, a **baseline used only for comparison** "
        "(never deployed): the same three AWS calls with the same inputs as `crates/read-current-ami` "
        "(ssm:GetParameter, ec2:DescribeImages, ssm:DescribeAutomationExecutions), boto3 clients created at import, "
        "run by awslambdaric (`python -m awslambdaric handler.lambda_handler`). Both runtimes get one event from "
        "`bench/runtime_api.py` (Lambda Runtime API 2018-06-01 on 127.0.0.1) and call the same local AWS "
        "stand-in (`python -m local.moto_ext`), so the AWS side costs the same for both.",
        "",
    ]

    def cold_table() -> list[str]:
        rows = ["| runtime | median ms | min ms | max ms | init (spawn -> first GET /next), median ms | first invocation, median ms | peak RSS (VmHWM), median MiB |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for kind, label in (("rust", "Rust `target/release/read-current-ami`"), ("python", "Python 3.11 + boto3 under awslambdaric")):
            r = cold[kind]
            tot = [x["total_ms"] for x in r]
            rss = [x["rss_kb"] for x in r if x["rss_kb"]]
            rows.append(f"| {label} | {fmt(statistics.median(tot))} | {fmt(min(tot))} | {fmt(max(tot))} | "
                        f"{fmt(statistics.median(x['init_ms'] for x in r))} | {fmt(statistics.median(x['handler_ms'] for x in r))} | "
                        f"{statistics.median(rss) / 1024:.1f} |")
        return rows

    med = {k: statistics.median(x["total_ms"] for x in cold[k]) for k in cold}
    rss_med = {k: statistics.median(x["rss_kb"] for x in cold[k] if x["rss_kb"]) for k in cold}
    L += [
        "## 1. Cold start",
        "",
        f"Command: {invocation} (part 1: {args.cold} fresh processes per runtime, interleaved, after one discarded "
        f"warm-up start each). Machine: {where}.",
        "Timed from spawning the process (the event is already waiting) to the response POST received by the Runtime API. "
        "Peak RSS is the process's own `VmHWM` from /proc/PID/status, read after the response and before the kill.",
        "",
        *cold_table(),
        "",
        f"**Python / Rust: {ratio(med['python'], med['rust'])} cold-start time (median), "
        f"{ratio(rss_med['python'], rss_med['rust'])} peak memory (median).**",
        "",
    ]

    wr, wp = warm_ms["rust"], warm_ms["python"]
    L += [
        "## 2. Warm invocations",
        "",
        f"Command: {invocation} (part 2: one process per runtime, one cold invocation not counted, then {args.warm} "
        f"invocations one after the other). Machine: {where}.",
        "Timed from the event enqueued to the response POST received (includes the runtime's GET /next round trip).",
        "",
        "| runtime | median ms | p99 ms | min ms | max ms | peak RSS after all, MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, vals in (("Rust", wr), ("Python + awslambdaric", wp)):
        rss = warm_rss["rust" if kind == "Rust" else "python"]
        L.append(f"| {kind} | {fmt(statistics.median(vals))} | {fmt(pct(vals, 99))} | {fmt(min(vals))} | {fmt(max(vals))} | "
                 f"{(rss or 0) / 1024:.1f} |")
    L += [
        "",
        f"**Python / Rust: {ratio(statistics.median(wp), statistics.median(wr))} (median), "
        f"{ratio(pct(wp, 99), pct(wr, 99))} (p99).** Most of a warm invocation is the three requests to moto, "
        "which cost both runtimes the same; the ratio understates the difference in the runtimes themselves.",
        "",
    ]

    if profile_text:
        L += [profile_text, ""]

    L += ["## 3. Package size (arm64 release zips)", ""]
    if pkg is None:
        L += ["Skipped (--skip-package).", ""]
    else:
        cmd, zips, elapsed, failure = pkg
        if failure:
            L += [f"**The build failed in this run**; the zips listed are older ones (if any):", "", "```", failure.strip(), "```", ""]
        L += [
            f"Command: `{cmd}` (PATH with .venv/bin for cargo-lambda and its zig)"
            + (f", {elapsed:.0f} s in this run" if elapsed is not None else ", not rebuilt in this run (--skip-build)")
            + f"; sizes of `target/lambda/*/bootstrap.zip`. Machine: {where}.",
            "",
            "| function | bytes | MiB | under 2.5 MB (2,500,000 bytes)? |",
            "|---|---:|---:|---|",
        ]
        for name, size in zips:
            L.append(f"| {name} | {size:,} | {size / 1048576:.2f} | {'yes' if size < BUDGET else '**NO**'} |")
        total = sum(s for _, s in zips)
        L.append(f"| **total ({len(zips)} functions)** | **{total:,}** | **{total / 1048576:.2f}** | |")
        if zips:
            big = max(zips, key=lambda z: z[1])
            over = [n for n, s in zips if s >= BUDGET]
            L += ["", f"Largest: {big[0]}, {big[1]:,} bytes. "
                  + (f"Over the 2.5 MB budget: {', '.join(over)}." if over
                     else f"Every function is under the 2.5 MB budget (2,500,000 bytes).")]
        L.append("")
        L += tls_findings()

    L += [
        "## 4. Pipeline overhead on the local stack",
        "",
        ("**Sample only**: " + ("the local stack was not used (--no-local)" if args.no_local else "the local stack could not run")
         + (f" ({local_error})" if local_error else "")
         + ", so this is an execution of the real definition "
         "(`statemachine/golden-ami-pipeline.asl.json`) by the real runner against the runner's own test fake of "
         "`cargo lambda watch` (`node bench/sample/make_sample_events.mjs`): no Rust handler and no moto ran, so the "
         "Task time is the fake's, and only the runner share and the transition count mean something."
         if events_is_sample else
         "One execution of the real definition on the local stack that `make demo` uses (local/stack.py: moto_ext, "
         "`cargo lambda watch` with the debug handler binaries, local/runner), the handlers' AWS_ENDPOINT_URL pointed at "
         "bench/timing_proxy.py in front of moto. Local polls are immediate (BAKE/COPY_POLL_SECONDS=0, Waits 0 ms), "
         "so the loop counts are the emulator's, not AWS's."),
        "",
        pipeline.markdown(split, str(events_path.relative_to(REPO) if events_path.is_absolute() and REPO in events_path.parents else events_path),
                          part4_cmd, facts),
        f"Machine: {where}.",
        "",
    ]
    if not args.no_local:
        import scale
        try:
            L += [scale.run()]
        except (Exception, SystemExit) as error:  # the report still says what ran
            L += ["## Fan-out scale", "", f"Not measured: {error}", ""]
    if build_note:
        L += ["## Build", "", build_note, ""]

    text = "\n".join(L).replace("\n\n\n", "\n\n")
    args.report.write_text(text)
    print(text)
    log(f"wrote {args.report} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
