"""Where a Rust cold start goes: `perf` samples of read-current-ami's cold starts, by phase and
by what the code belongs to.

    .venv/bin/python bench/coldstart.py [--runs 30] [--frequency 20000]

Builds `cargo build --profile profiling -p read-current-ami` (the release profile with symbols,
Cargo.toml) unless --skip-build, starts the local AWS stand-in, and starts the binary N times
under `perf record -k mono` exactly as bench.py's cold starts do (a fresh process, its event
already waiting at bench/runtime_api.py). Each sample's CLOCK_MONOTONIC time puts it in the init
(spawn -> the first GET /next) or the first invocation; each sample's function, by the crate or
library it belongs to, puts it in a group. perf adds its own overhead to every start: read the
shares, not the milliseconds. Prints a markdown section; bench.py puts it in bench/REPORT.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402

PROFILE_BIN = bench.TARGET / "profiling" / "read-current-ami"
DATA = bench.LOGS / "coldstart"

# The first group whose pattern matches a sample's symbol (or its library) names it.
GROUPS = [
    ("dynamic loader, libc start", r"^(_dl_|__libc_start|_start |dl_main|do_lookup|elf_|__tunable|init_cpu_features|handle_amd|handle_intel)|ld-linux|ld\.so"),
    ("TLS: root certificates", r"rustls_native_certs|rustls_pki_types::pem|rustls_pemfile|webpki_roots|RootCertStore|x509|openssl_probe|pem::"),
    ("TLS and crypto", r"rustls|aws_lc|ring::|webpki|sha2|hmac|sha256|digest|crypto"),
    ("AWS SDK: config, clients, endpoints, signing", r"aws_config|aws_sdk_|aws_smithy|aws_types|aws_runtime|aws_sigv4|aws_credential"),
    ("HTTP and the async runtime", r"hyper|tokio|h2::|http::|httparse|mio::|tower|socket2|want::|futures"),
    ("Lambda runtime client", r"lambda_runtime|lambda_runtime_api_client"),
    ("JSON and serde", r"serde|ryu|itoa"),
    ("logging (tracing)", r"tracing"),
    ("the step and the core", r"golden_ami_core|read_current_ami"),
    ("allocator, memcpy, std", r"malloc|free|realloc|calloc|memcpy|memmove|memset|^core::|^alloc::|^std::|_int_|__GI_|cfree"),
]


def build() -> None:
    cmd = ["cargo", "build", "--profile", "profiling", "-p", "read-current-ami"]
    bench.log(" ".join(cmd))
    subprocess.run(cmd, cwd=bench.REPO, check=True)


class Profiled(bench.Function):
    """bench.Function's cold start, its process under `perf record` in its own process group."""

    def __init__(self, endpoint: str, data: Path, frequency: int, binary: Path) -> None:
        super().__init__("rust", endpoint)
        self.data = data
        self.argv = ["perf", "record", "-q", "-k", "mono", "-e", "cpu-clock:u", "-F", str(frequency),
                     "-o", str(data), "--", str(binary)]

    def spawn(self) -> None:
        bench.LIVE.add(self)
        self.out = open(bench.LOGS / "coldstart.log", "a")
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env={**self.env, "PATH": os.environ["PATH"]},
                                     stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # perf writes its data on SIGINT; the step, in the same group, ends with it.
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.api.stop()
        if hasattr(self, "out"):
            self.out.close()
        bench.LIVE.discard(self)


def samples(data: Path) -> list[tuple[float, str]]:
    """(CLOCK_MONOTONIC seconds, "symbol library") of each sample."""
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "time,ip,sym,dso", "--ns"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+\.\d+):\s+[0-9a-f]+\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2).strip()))
    return rows


def group(symbol: str) -> str:
    for name, pattern in GROUPS:
        if re.search(pattern, symbol):
            return name
    return "other (unresolved or unmatched)"


def profile(runs: int, frequency: int, binary: Path = PROFILE_BIN) -> dict:
    DATA.mkdir(parents=True, exist_ok=True)
    moto = bench.Moto()
    try:
        ami = bench.seed(moto.url)
        phases: dict[str, collections.Counter] = {"init": collections.Counter(), "invocation": collections.Counter()}
        timings = []
        for i in range(runs + 1):  # the first one warms the page cache and is not counted
            data = DATA / f"run-{i}.data"
            fn = Profiled(moto.url, data, frequency, binary)
            inv = fn.invoke()
            bench.check_output(inv, ami, "rust")
            first_next = fn.api.first_next or inv.delivered
            fn.stop()
            if i == 0:
                continue
            timings.append({"init_ms": (first_next - fn.t_spawn) * 1000,
                            "total_ms": (inv.completed - fn.t_spawn) * 1000})
            for at, symbol in samples(data):
                phase = "init" if at < first_next else "invocation"
                phases[phase][group(symbol)] += 1
        return {"phases": phases, "timings": timings, "runs": runs, "frequency": frequency}
    finally:
        moto.stop()


def markdown(result: dict, cmd: str) -> str:
    phases = result["phases"]
    total = sum(sum(c.values()) for c in phases.values()) or 1
    lines = [
        "## Cold start profile (read-current-ami)",
        "",
        f"Command: `{cmd}` ({result['runs']} cold starts under `perf record -e cpu-clock:u -F "
        f"{result['frequency']}`, the release profile with symbols). Under perf a start takes "
        f"{statistics.median(t['total_ms'] for t in result['timings']):.1f} ms (median; init "
        f"{statistics.median(t['init_ms'] for t in result['timings']):.1f} ms): read the shares of the "
        "process's own CPU samples. Time spent waiting (on moto, on the Runtime API) has no samples.",
        "",
        "| where | init: share of all samples | first invocation: share of all samples | CPU ms per start |",
        "|---|---:|---:|---:|",
    ]
    per_start = 1000 / result["frequency"] / result["runs"]
    names = [name for name, _ in GROUPS] + ["other (unresolved or unmatched)"]
    for name in sorted(names, key=lambda n: -(phases["init"][n] + phases["invocation"][n])):
        a, b = phases["init"][name], phases["invocation"][name]
        if a or b:
            lines.append(f"| {name} | {100 * a / total:.1f}% | {100 * b / total:.1f}% | {(a + b) * per_start:.2f} |")
    init = sum(phases["init"].values())
    lines += [f"| **all** | **{100 * init / total:.1f}%** | **{100 * (total - init) / total:.1f}%** | "
              f"**{total * per_start:.2f}** |", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--frequency", type=int, default=20000)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--binary", type=Path, default=PROFILE_BIN,
                        help="profile this build instead (e.g. a copy of an earlier one)")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed (linux-perf): nothing to profile with")
    if not args.skip_build:
        build()
    cmd = ".venv/bin/python bench/coldstart.py" + (f" --runs {args.runs}" if args.runs != 30 else "")
    if args.binary != PROFILE_BIN:
        cmd += f" --binary {args.binary}"
    print(markdown(profile(args.runs, args.frequency, args.binary), cmd))


if __name__ == "__main__":
    main()
