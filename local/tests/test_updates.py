"""infra/baseline/updates.sh: the change summary (first line, JSON) and the full report, from
the raw dnf outputs of local/fixtures/updates, in the formats AL2023's dnf4 prints them."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from local.moto_ext import baseline  # noqa: E402

PENDING = baseline.FIXTURES / "updates" / "pending"
PENDING_SUMMARY = (
    '{"upToDate":false,"packages":12,"advisories":3,"severities":{"Critical":1,"Important":2,'
    '"Medium":0,"Low":0,"Bugfix":0,"Enhancement":0},"cves":7,'
    '"kernelBefore":"6.1.112-122.189.amzn2023.x86_64",'
    '"kernelAfter":"6.1.115-126.197.amzn2023.x86_64",'
    '"advisoryIds":["ALAS2023-2024-745","ALAS2023-2024-751","ALAS2023-2024-760"],'
    '"truncated":false}')


def run(source: Path, tmp_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "GOLDEN_AMI_UPDATES_FROM": str(source)}
    if tmp_path is not None:
        env["TMPDIR"] = str(tmp_path)
    return subprocess.run(["bash", str(baseline.UPDATES)], capture_output=True, text=True,
                          env=env, timeout=60)


def scenario(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    """A copy of the pending scenario, with some of its files replaced (name -> text)."""
    source = tmp_path / "scenario"
    shutil.copytree(PENDING, source)
    for name, text in (files or {}).items():
        (source / name).write_text(text)
    return source


def test_pending_updates_are_summarised_on_the_first_line():
    code, output = baseline.update_report("pending")
    assert code == 0
    first, rest = output.split("\n", 1)
    # Keys in a fixed order, no spaces: the bake document's branch reads the first characters.
    assert first == PENDING_SUMMARY
    assert json.loads(first) == {
        "upToDate": False, "packages": 12, "advisories": 3,
        "severities": {"Critical": 1, "Important": 2, "Medium": 0, "Low": 0, "Bugfix": 0,
                       "Enhancement": 0},
        "cves": 7, "kernelBefore": "6.1.112-122.189.amzn2023.x86_64",
        "kernelAfter": "6.1.115-126.197.amzn2023.x86_64",
        "advisoryIds": ["ALAS2023-2024-745", "ALAS2023-2024-751", "ALAS2023-2024-760"],
        "truncated": False}
    headers = [line for line in rest.splitlines() if line.startswith(("---", "=="))]
    assert headers == ["--- full report ---", "== dnf updateinfo list --updates",
                       "== dnf updateinfo list --updates --with-cve",
                       "== dnf check-update (exit 100)", "== uname -r"]
    for name in ("updateinfo.txt", "updateinfo-cve.txt", "check-update.txt", "uname-r.txt"):
        assert (PENDING / name).read_text() in rest  # the raw listings, as dnf printed them


def test_nothing_pending_starts_with_up_to_date_true():
    code, output = baseline.update_report("none")
    assert code == 0
    assert output.startswith('{"upToDate":true,')
    summary = json.loads(output.splitlines()[0])
    assert (summary["packages"], summary["advisories"], summary["cves"]) == (0, 0, 0)
    assert summary["advisoryIds"] == [] and summary["truncated"] is False
    assert set(summary["severities"].values()) == {0}
    assert summary["kernelAfter"] == summary["kernelBefore"] == "6.1.115-126.197.amzn2023.x86_64"


def test_a_long_advisory_list_is_cut_with_the_counts_intact(tmp_path):
    lines = [f"ALAS2023-2025-{n:04d} {'Important/Sec.' if n % 3 else 'bugfix'} "
             f"pkg{n}-1.0-1.amzn2023.x86_64" for n in range(300)]
    result = run(scenario(tmp_path, {"updateinfo.txt": "\n".join(lines) + "\n"}))
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert len(first.encode()) <= 1800
    summary = json.loads(first)
    assert summary["truncated"] is True
    assert summary["advisories"] == 300
    assert summary["severities"]["Important"] == 200 and summary["severities"]["Bugfix"] == 100
    kept = summary["advisoryIds"]
    assert 0 < len(kept) < 300
    assert kept == sorted(f"ALAS2023-2025-{n:04d}" for n in range(300))[:len(kept)]
    # As many as fit: one more would not.
    assert len(first) + len(f',"{kept[-1]}"') + 1 > 1800  # +1: "false" replaces "true"


def test_dnf_formats_wrapped_lines_notes_and_obsoletes_are_read_like_dnf_means_them(tmp_path):
    check_update = (
        "\n"
        "kernel.x86_64                        6.1.115-126.197.amzn2023               amazonlinux\n"
        # dnf wraps a name too long for its column onto the next line
        "python3-botocore-with-a-very-long-name.noarch\n"
        "                                     1.34.162-1.amzn2023.0.1                amazonlinux\n"
        "openssl-libs.x86_64                  1:3.0.8-1.amzn2023.0.17                amazonlinux\n"
        "Security: kernel-6.1.112-122.189.amzn2023.x86_64 is the currently running version\n"
        "Obsoleting Packages\n"
        "openssl-libs.x86_64                  1:3.0.8-1.amzn2023.0.17                amazonlinux\n"
        "    openssl-libs.x86_64              1:3.0.8-1.amzn2023.0.16                @System\n")
    updateinfo = ("ALAS2023-2024-900 Medium/Sec.  openssl-libs-1:3.0.8-1.amzn2023.0.17.x86_64\n"
                  "ALAS2023-2024-901 Low/Sec.     kernel-6.1.115-126.197.amzn2023.x86_64\n"
                  "ALAS2023-2024-902 enhancement  python3-botocore-1.34.162-1.amzn2023.0.1.noarch\n"
                  "ALAS2023-2024-901 Low/Sec.     kernel-tools-6.1.115-126.197.amzn2023.x86_64\n")
    result = run(scenario(tmp_path, {"check-update.txt": check_update,
                                        "updateinfo.txt": updateinfo}))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[0])
    assert summary["packages"] == 3
    assert summary["advisories"] == 3
    assert summary["severities"] == {"Critical": 0, "Important": 0, "Medium": 1, "Low": 1,
                                     "Bugfix": 0, "Enhancement": 1}
    assert summary["advisoryIds"] == ["ALAS2023-2024-900", "ALAS2023-2024-901",
                                      "ALAS2023-2024-902"]
    assert summary["kernelAfter"] == "6.1.115-126.197.amzn2023.x86_64"


def test_without_a_kernel_update_the_kernel_stays(tmp_path):
    check_update = "\ncurl-minimal.x86_64     8.5.0-1.amzn2023.0.5     amazonlinux\n"
    result = run(scenario(tmp_path, {"check-update.txt": check_update}))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[0])
    assert summary["packages"] == 1 and summary["upToDate"] is False
    assert summary["kernelAfter"] == summary["kernelBefore"] == "6.1.112-122.189.amzn2023.x86_64"


def test_a_failed_check_update_fails_with_the_reason(tmp_path):
    result = run(scenario(tmp_path, {
        "check-update.rc": "1\n",
        "check-update.txt": "Error: Failed to download metadata for repo\n"}))
    assert result.returncode != 0
    assert "check-update failed (exit 1)" in result.stderr
    assert "Failed to download metadata" in result.stderr
    assert result.stdout == ""


def test_a_missing_input_is_named(tmp_path):
    source = scenario(tmp_path)
    (source / "uname-r.txt").unlink()
    result = run(source)
    assert result.returncode != 0
    assert "uname-r.txt is missing" in result.stderr


def test_it_writes_nothing_but_stdout(tmp_path):
    work = tmp_path / "tmp"
    work.mkdir()
    before = {p: p.read_bytes() for p in PENDING.iterdir()}
    result = run(PENDING, work)
    assert result.returncode == 0, result.stderr
    assert list(work.iterdir()) == []  # its temporary directory is gone
    assert {p: p.read_bytes() for p in PENDING.iterdir()} == before


# On the instance: dnf and uname themselves. Stand-ins print the fixture's outputs.
STUB = """#!/bin/sh
printf '%s\\n' "$0 $*" >> "{log}"
case "$*" in
  "-q --releasever=latest updateinfo list --updates") cat "{src}/updateinfo.txt" ;;
  "-q --releasever=latest updateinfo list --updates --with-cve") cat "{src}/updateinfo-cve.txt" ;;
  "-q --releasever=latest check-update") cat "{src}/check-update.txt"; exit "$(cat "{src}/check-update.rc")" ;;
  "-r") cat "{src}/uname-r.txt" ;;
  *) echo "unexpected: $*" >&2; exit 64 ;;
esac
"""


@pytest.mark.parametrize("rc", [100, 1])
def test_on_the_instance_it_runs_dnf_and_uname(tmp_path, rc):
    source = scenario(tmp_path, {"check-update.rc": f"{rc}\n"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name in ("dnf", "uname"):
        path = bin_dir / name
        path.write_text(STUB.format(log=log, src=source))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(["bash", str(baseline.UPDATES)], capture_output=True, text=True,
                            env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=60)
    assert [line.split(" ", 1)[1] for line in log.read_text().splitlines()] == [
        "-q --releasever=latest updateinfo list --updates",
        "-q --releasever=latest updateinfo list --updates --with-cve",
        "-q --releasever=latest check-update", "-r"]
    if rc == 100:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == PENDING_SUMMARY
    else:
        assert result.returncode != 0 and result.stdout == ""
        assert "dnf check-update failed (exit 1)" in result.stderr
