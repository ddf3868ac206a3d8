"""infra/baseline/updates.sh: the change summary (first line, JSON) and the full report, from
the raw dnf outputs of local/fixtures/updates in the formats AL2023's dnf prints."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from local.moto_ext import baseline  # noqa: E402

PENDING = baseline.FIXTURES / "updates" / "pending"


def run(source: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(baseline.UPDATES)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "GOLDEN_AMI_UPDATES_FROM": str(source)})


def test_pending_updates_are_summarised_on_the_first_line():
    code, output = baseline.update_report("pending")
    assert code == 0
    first, rest = output.split("\n", 1)
    assert json.loads(first) == {
        "upToDate": False, "packages": 12, "advisories": 3,
        "severities": {"Critical": 1, "Important": 2, "Medium": 0, "Low": 0, "Bugfix": 0,
                       "Enhancement": 0},
        "cves": 7, "kernelBefore": "6.1.112-122.189.amzn2023.x86_64",
        "kernelAfter": "6.1.115-126.197.amzn2023.x86_64",
        "advisoryIds": ["ALAS2023-2024-745", "ALAS2023-2024-751", "ALAS2023-2024-760"],
        "truncated": False}
    # Keys in a fixed order, no spaces: the bake document's branch reads the first characters.
    assert first.startswith('{"upToDate":false,"packages":12,')
    assert rest.startswith("--- full report ---\n== dnf updateinfo list --updates\n")
    assert "CVE-2024-50264 Critical/Sec." in rest
    assert "== dnf check-update (exit 100)" in rest


def test_nothing_pending_starts_with_up_to_date_true():
    code, output = baseline.update_report("none")
    assert code == 0
    summary = json.loads(output.splitlines()[0])
    assert output.startswith('{"upToDate":true')
    assert (summary["packages"], summary["advisories"], summary["cves"]) == (0, 0, 0)
    assert summary["kernelAfter"] == summary["kernelBefore"] == "6.1.115-126.197.amzn2023.x86_64"


def test_a_long_advisory_list_is_cut_with_the_counts_intact(tmp_path):
    source = tmp_path / "many"
    shutil.copytree(PENDING, source)
    lines = [f"ALAS2023-2025-{n:04d} Important/Sec. pkg{n}-1.0-1.amzn2023.x86_64"
             for n in range(300)]
    (source / "updateinfo.txt").write_text("\n".join(lines) + "\n")
    result = run(source)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert len(first.encode()) <= 1800
    summary = json.loads(first)
    assert summary["truncated"] is True
    assert summary["advisories"] == 300 and summary["severities"]["Important"] == 300
    assert 0 < len(summary["advisoryIds"]) < 300


def test_a_failed_check_update_fails_with_the_reason(tmp_path):
    source = tmp_path / "broken"
    shutil.copytree(PENDING, source)
    (source / "check-update.rc").write_text("1\n")
    (source / "check-update.txt").write_text("Error: Failed to download metadata for repo\n")
    result = run(source)
    assert result.returncode != 0
    assert "check-update failed (exit 1)" in result.stderr
    assert "Failed to download metadata" in result.stderr
    assert result.stdout == ""


def test_a_missing_input_is_named(tmp_path):
    source = tmp_path / "partial"
    shutil.copytree(PENDING, source)
    (source / "uname-r.txt").unlink()
    result = run(source)
    assert result.returncode != 0
    assert "uname-r.txt is missing" in result.stderr
