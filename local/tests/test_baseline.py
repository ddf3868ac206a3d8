"""infra/baseline/check.sh is the specification of the hardening baseline; apply.sh implements it.
The check runs against fixture trees: the compliant one passes every control, and each tree
broken on purpose fails exactly its control. apply.sh runs against a fresh AL2023 tree with
stand-in commands and must leave a tree that passes, the same one every time."""

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from local.moto_ext import baseline  # noqa: E402

from baseline_stubs import calls, install_stubs  # noqa: E402

REPO = baseline.REPO
APPLY = baseline.SCRIPTS / "apply.sh"
BASE = baseline.FIXTURES / "baseline" / "al2023-base"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
LINE = re.compile(r"^(PASS|FAIL|SKIP) ([a-z0-9-]+) (.+)$")
FILE_CONTROLS = [c for c in baseline.controls() if c not in baseline.RUNTIME_CONTROLS]


def verdicts(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines()[:-1]:
        match = LINE.match(line)
        assert match, f"not a control line: {line!r}"
        found[match.group(2)] = match.group(1)
    return found


def test_the_compliant_tree_passes_every_file_control(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    code, output = baseline.run_check(root)
    assert code == 0, output
    lines = output.splitlines()
    assert verdicts(output) == {c: ("SKIP" if c in baseline.RUNTIME_CONTROLS else "PASS")
                                for c in baseline.controls()}
    assert lines[-1] == (f"SUMMARY pass={len(FILE_CONTROLS)} fail=0 "
                         f"skip={len(baseline.RUNTIME_CONTROLS)}")
    for line in lines:
        assert len(line) <= 100, line
        if line.startswith("SKIP"):
            assert "runtime check; root is /" in line
    # The output travels through a 2,500-character SSM output field.
    assert len(output.encode()) < 2400


@pytest.mark.parametrize("control", FILE_CONTROLS)
def test_a_broken_tree_fails_exactly_its_control(tmp_path, control):
    root = baseline.prepare_tree(tmp_path / "disk")
    baseline.break_control(root, control)
    code, output = baseline.run_check(root)
    assert code == 1, output
    found = verdicts(output)
    failed = [c for c, verdict in found.items() if verdict == "FAIL"]
    assert failed == [control], output
    evidence = next(line for line in output.splitlines() if line.startswith(f"FAIL {control} "))
    assert len(evidence) > len(f"FAIL {control} ") + 10, evidence  # it says what is wrong
    assert output.splitlines()[-1].startswith(f"SUMMARY pass={len(FILE_CONTROLS) - 1} fail=1")


def test_runtime_controls_cannot_be_broken_in_a_tree_and_unknown_ones_are_named(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    with pytest.raises(ValueError, match="running system"):
        baseline.break_control(root, "selinux-runtime")
    with pytest.raises(ValueError, match="unknown control"):
        baseline.break_control(root, "no-such-control")


def test_usage_errors_exit_2(tmp_path):
    for args in ([str(tmp_path / "missing")], ["--frobnicate"]):
        result = subprocess.run(["bash", str(baseline.CHECK), *args], capture_output=True,
                                text=True)
        assert result.returncode == 2, result
        assert result.stderr


def test_the_list_names_every_control_the_check_prints_in_the_same_order(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    _, output = baseline.run_check(root)
    assert list(verdicts(output)) == baseline.controls()
    listing = subprocess.run(["bash", str(baseline.CHECK), "--list"], capture_output=True,
                             text=True, check=True).stdout
    for line in listing.splitlines():
        control, applied, checked = line.split("\t")
        assert control and applied and checked, line


def snapshot(root: Path) -> dict[str, str]:
    """Every file's content hash and every symlink's target, by relative path."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + str(path.readlink())
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def apply(root: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(APPLY), str(root)], capture_output=True, text=True,
                          env=env, timeout=60)


def test_apply_on_a_fresh_tree_passes_the_check_and_a_second_run_changes_nothing(tmp_path):
    root = tmp_path / "disk"
    shutil.copytree(BASE, root, symlinks=True)
    log = tmp_path / "calls.log"
    env = install_stubs(tmp_path / "bin", log)

    first = apply(root, env)
    assert first.returncode == 0, first.stderr
    assert "apply sshd: wrote /etc/ssh/sshd_config.d/00-golden-ami.conf" in first.stdout
    assert "apply services: disabled rpcbind.service" in first.stdout
    code, output = baseline.run_check(root)
    assert code == 0, output
    # AIDE last: its database describes the tree as apply.sh leaves it.
    assert first.stdout.splitlines()[-1].startswith("apply aide:")
    assert calls(log)[-1][:2] == ["aide", "--init"]
    # Nothing that acts on the running system ran (the stand-ins would have refused).
    assert not [c for c in calls(log) if c[-1] == "forbidden"], calls(log)

    after_first = snapshot(root)
    second = apply(root, env)
    assert second.returncode == 0, second.stderr
    assert snapshot(root) == after_first
    for group in ("selinux", "sshd", "auditd", "sysctl", "services", "cloudwatch-agent", "chrony"):
        assert f"apply {group}: already in place" in second.stdout, second.stdout
    # What apply.sh leaves is the compliant fixture the boot test checks.
    assert after_first == snapshot(baseline.COMPLIANT)


def test_apply_refuses_a_missing_root(tmp_path):
    result = subprocess.run(["bash", str(APPLY), str(tmp_path / "missing")], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "not a directory" in result.stderr


def test_the_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in baseline.SCRIPTS.glob("*.sh"))
    assert len(scripts) == 3
    result = subprocess.run([str(SHELLCHECK), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_readme_table_is_the_checks_list():
    generated = subprocess.run([sys.executable, str(REPO / "scripts" / "baseline-table.py")],
                               capture_output=True, text=True, check=True).stdout
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- baseline:begin -->\n", 1)[1].split("<!-- baseline:end -->", 1)[0]
    assert table == generated, "README's baseline table is stale: run scripts/baseline-table.py --write"
