"""infra/baseline/check.sh is the specification of the hardening baseline; apply.sh implements it.

The check runs against fixture trees: the compliant one passes every file control, and each tree
broken on purpose fails exactly its control. apply.sh runs against a fresh AL2023 tree with
stand-ins for the commands it calls first on PATH: it must leave the compliant tree, and a
second run must change nothing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from local.moto_ext import baseline  # noqa: E402

REPO = baseline.REPO
APPLY = baseline.SCRIPTS / "apply.sh"
BASE = baseline.FIXTURES / "baseline" / "al2023-base"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
LINE = re.compile(r"^(PASS|FAIL|SKIP) ([a-z0-9-]+) (.+)$")
SUMMARY = re.compile(r"^SUMMARY pass=(\d+) fail=(\d+) skip=(\d+)$")
CONTROLS = baseline.controls()
RUNTIME = baseline.runtime_controls()
FILE_CONTROLS = [c for c in CONTROLS if c not in RUNTIME]
# A line's share of the 2,500-character SSM output field, after the SUMMARY (at most 32 bytes
# with its newline): every line at its longest still leaves room for the SUMMARY.
LINE_MAX = (2500 - 32) // len(CONTROLS) - 1


def verdicts(output: str) -> dict[str, tuple[str, str]]:
    """control -> (verdict, evidence), in the order printed; the last line is the SUMMARY."""
    lines = output.splitlines()
    assert SUMMARY.match(lines[-1]), lines[-1]
    found = {}
    for line in lines[:-1]:
        match = LINE.match(line)
        assert match, f"not a control line: {line!r}"
        found[match.group(2)] = (match.group(1), match.group(3))
    return found


def failed(output: str) -> list[str]:
    return [c for c, (verdict, _) in verdicts(output).items() if verdict == "FAIL"]


def skipped_for_the_tree(evidence: str, root: Path) -> bool:
    """A runtime control's SKIP evidence on the tree at root: the whole reason, or as much of it
    as fits the line."""
    reason = f"runtime check; root is {root}, not /"
    return evidence == reason or (evidence.endswith("...") and reason.startswith(evidence[:-3]))


# ---- check.sh on the compliant tree and on broken ones ------------------------------------------

def test_the_runtime_controls_are_the_ones_named_for_the_running_system():
    assert RUNTIME == {"selinux-runtime", "ssh-effective-runtime", "auditd-active",
                       "auditd-rules-loaded", "sysctl-runtime", "services-inactive",
                       "chronyd-active"}


def test_the_compliant_tree_passes_every_file_control_and_skips_the_runtime_ones(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    code, output = baseline.run_check(root)
    assert code == 0, output
    found = verdicts(output)
    assert list(found) == CONTROLS
    for control, (verdict, evidence) in found.items():
        if control in RUNTIME:
            assert verdict == "SKIP", (control, evidence)
            assert skipped_for_the_tree(evidence, root), evidence
        else:
            assert verdict == "PASS", (control, evidence)
    assert output.splitlines()[-1] == f"SUMMARY pass={len(FILE_CONTROLS)} fail=0 skip={len(RUNTIME)}"
    assert all(len(line) <= LINE_MAX for line in output.splitlines()), output
    # The output travels through a 2,500-character SSM output field.
    assert len(output.encode()) < 2400


@pytest.mark.parametrize("control", FILE_CONTROLS)
def test_a_broken_tree_fails_exactly_its_control(tmp_path, control):
    root = baseline.prepare_tree(tmp_path / "disk")
    baseline.break_control(root, control)
    code, output = baseline.run_check(root)
    assert code == 1, output
    assert failed(output) == [control], output
    found = verdicts(output)
    assert all(found[c][0] == "PASS" for c in FILE_CONTROLS if c != control), output
    # The evidence says what is wrong, not only that something is.
    evidence = found[control][1]
    specific = {
        "selinux-config": "SELINUX=permissive", "ssh-password-auth": "PasswordAuthentication yes",
        "ssh-root-login": "PermitRootLogin yes", "ssh-max-auth-tries": "MaxAuthTries 10",
        "ssh-client-alive": "ClientAliveInterval 0", "ssh-ciphers": "aes128-cbc",
        "ssh-macs": "hmac-sha1", "ssh-kex": "diffie-hellman-group1-sha1",
        "auditd-enabled": "auditd.service", "auditd-rules": "modules: kmod",
        "aide-installed": "/usr/sbin/aide", "aide-database": "not after rpmdb",
        "sysctl-redirects": "ipv4.conf.all.accept_redirects=1",
        "sysctl-source-route": "ipv4.conf.all.accept_source_route=1",
        "sysctl-rp-filter": "ipv4.conf.all.rp_filter=0", "sysctl-aslr": "randomize_va_space=0",
        "sysctl-suid-dumpable": "fs.suid_dumpable=2", "sysctl-network": "tcp_syncookies=0",
        "services-disabled": "rpcbind.service", "cloudwatch-agent": "not enabled",
        "time-sync": "169.254.169.123",
    }
    assert specific[control] in evidence, evidence
    # ... and, for a setting, the file it comes from.
    if control.startswith("ssh-"):
        assert evidence.endswith("(00-golden-ami.conf)"), evidence
    if control.startswith("sysctl-"):
        assert evidence.endswith(f"(95-{control.removeprefix('sysctl-')}.conf)"), evidence
    assert output.splitlines()[-1] == (f"SUMMARY pass={len(FILE_CONTROLS) - 1} fail=1 "
                                       f"skip={len(RUNTIME)}")


def test_everything_broken_still_fits_the_ssm_output_field(tmp_path):
    # The longest output the check can give: every file control failing, a long root path.
    root = baseline.prepare_tree(tmp_path / ("d" * 120) / "disk")
    for control in FILE_CONTROLS:
        baseline.break_control(root, control)
    code, output = baseline.run_check(root)
    assert code == 1
    assert failed(output) == FILE_CONTROLS
    assert all(len(line) <= LINE_MAX for line in output.splitlines()), output
    assert len(output.encode()) < 2400, len(output.encode())


def test_runtime_controls_cannot_be_broken_in_a_tree_and_unknown_ones_are_named(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    with pytest.raises(ValueError, match="running system"):
        baseline.break_control(root, "selinux-runtime")
    with pytest.raises(ValueError, match="unknown control no-such-control; known: selinux-config"):
        baseline.break_control(root, "no-such-control")


@pytest.mark.parametrize("args", [["{missing}"], ["--frobnicate"], ["{tmp}", "{tmp}"]])
def test_usage_errors_exit_2(tmp_path, args):
    args = [a.format(missing=tmp_path / "missing", tmp=tmp_path) for a in args]
    result = subprocess.run(["bash", str(baseline.CHECK), *args], capture_output=True,
                            text=True)
    assert result.returncode == 2, result
    assert result.stderr and not result.stdout


def test_the_list_names_every_control_the_check_prints_in_the_same_order(tmp_path):
    _, output = baseline.run_check(baseline.prepare_tree(tmp_path / "disk"))
    assert list(verdicts(output)) == CONTROLS
    listing = subprocess.run(["bash", str(baseline.CHECK), "--list"], capture_output=True,
                             text=True, check=True).stdout
    for line in listing.splitlines():
        control, applied, checked = line.split("\t")
        assert control and applied and checked, line
        assert ("running instance" in checked) == (control in RUNTIME), line


# ---- what "effective" means: sshd, sysctl, chrony, audit ----------------------------------------

def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize("relative, text, verdict", [
    # sshd keeps the first value it reads: a drop-in read before 00-golden-ami.conf wins ...
    ("etc/ssh/sshd_config.d/00-aaa.conf", "PasswordAuthentication yes\n", "FAIL"),
    # ... one read after it, or the rest of sshd_config, does not.
    ("etc/ssh/sshd_config.d/99-late.conf", "PasswordAuthentication yes\n", "PASS"),
    # Keywords are case-insensitive, and "Keyword=value" is sshd syntax too.
    ("etc/ssh/sshd_config.d/00-aaa.conf", "passwordauthentication=YES\n", "FAIL"),
    # A Match block applies to some connections only, and ends with its file.
    ("etc/ssh/sshd_config.d/00-aaa.conf",
     "Match User backup\n  PasswordAuthentication yes\n", "PASS"),
    # The old name of KbdInteractiveAuthentication sets the same option.
    ("etc/ssh/sshd_config.d/00-aaa.conf", "ChallengeResponseAuthentication yes\n", "FAIL"),
])
def test_ssh_settings_are_the_ones_sshd_would_use(tmp_path, relative, text, verdict):
    root = baseline.prepare_tree(tmp_path / "disk")
    write(root, relative, text)
    _, output = baseline.run_check(root)
    assert verdicts(output)["ssh-password-auth"][0] == verdict, output


def test_sshd_without_the_drop_in_falls_back_to_the_crypto_policy(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    (root / "etc/ssh/sshd_config.d/00-golden-ami.conf").unlink()
    _, output = baseline.run_check(root)
    found = verdicts(output)
    # AL2023's DEFAULT policy: its ciphers are all allowed; SHA-1 MACs and group14 are not.
    assert found["ssh-ciphers"][0] == "PASS"
    assert found["ssh-macs"] == ("FAIL", found["ssh-macs"][1])
    assert "hmac-sha1-etm@openssh.com" in found["ssh-macs"][1]
    assert found["ssh-kex"] == (
        "FAIL", "KexAlgorithms allows diffie-hellman-group14-sha256 (opensshserver.config)")
    assert found["ssh-root-login"] == ("FAIL", "PermitRootLogin unset (prohibit-password), want no")


@pytest.mark.parametrize("relative, text, verdict", [
    # A later file overrides an earlier one ...
    ("etc/sysctl.d/95-late.conf", "net.ipv4.conf.all.rp_filter = 2\n", "FAIL"),
    # ... an earlier one does not ...
    ("etc/sysctl.d/10-early.conf", "net.ipv4.conf.all.rp_filter = 0\n", "PASS"),
    # ... a file in /etc replaces the one of the same name in /usr/lib ...
    ("usr/lib/sysctl.d/90-golden-ami.conf", "net.ipv4.conf.all.rp_filter = 0\n", "PASS"),
    ("usr/lib/sysctl.d/95-late.conf", "net.ipv4.conf.all.rp_filter = 0\n", "FAIL"),
    # ... /etc/sysctl.conf comes last, and slashes spell keys too ...
    ("etc/sysctl.conf", "net/ipv4/conf/default/rp_filter=0\n", "FAIL"),
    # ... a glob sets only what no file names explicitly ...
    ("etc/sysctl.d/95-late.conf", "net.ipv4.conf.*.rp_filter = 0\n", "PASS"),
    # ... and a bare "-key" line takes the key out of sysctl.d: the kernel's default stays.
    ("etc/sysctl.d/95-late.conf", "-net.ipv4.conf.all.rp_filter\n", "FAIL"),
])
def test_sysctl_values_are_the_ones_systemd_sysctl_would_set(tmp_path, relative, text, verdict):
    root = baseline.prepare_tree(tmp_path / "disk")
    write(root, relative, text)
    _, output = baseline.run_check(root)
    assert verdicts(output)["sysctl-rp-filter"][0] == verdict, output


def test_time_sync_reads_chrony_conf_and_the_files_it_names(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    sources = [p for p in (root / "etc/chrony.d").glob("*.sources")
               if "169.254.169.123" in p.read_text()]
    assert sources
    for path in sources:
        path.unlink()
    _, output = baseline.run_check(root)
    assert verdicts(output)["time-sync"][0] == "FAIL"
    with (root / "etc/chrony.conf").open("a") as conf:
        conf.write("server 169.254.169.123 iburst prefer\n")
    _, output = baseline.run_check(root)
    assert verdicts(output)["time-sync"] == (
        "PASS", "169.254.169.123 prefer (/etc/chrony.conf), chronyd enabled")


def test_audit_rules_need_every_item_and_no_task_never(tmp_path):
    root = baseline.prepare_tree(tmp_path / "disk")
    rules = root / "etc/audit/rules.d/50-golden-ami.rules"
    text = rules.read_text()
    # A privileged command audited for everyone, not for users' sessions, does not count.
    rules.write_text(text.replace("-F path=/usr/bin/su -F perm=x -F auid>=1000 -F auid!=unset",
                                  "-F path=/usr/bin/su -F perm=x"))
    _, output = baseline.run_check(root)
    assert verdicts(output)["auditd-rules"] == ("FAIL", "missing privileged: su")
    rules.write_text(text)
    write(root, "etc/audit/rules.d/10-no-audit.rules", "-D\n-a task,never\n")
    _, output = baseline.run_check(root)
    assert verdicts(output)["auditd-rules"][0] == "FAIL"
    assert "-a task,never in rules.d/10-no-audit.rules" in verdicts(output)["auditd-rules"][1]


# ---- apply.sh on a fresh AL2023 tree, with stand-ins for the commands it calls -------------------

# What `dnf install` puts in the tree (the files the check and apply.sh look at).
PACKAGE_FILES = {
    "aide": {"usr/sbin/aide": "#!/bin/sh\n# stand-in for the binary of the fixture tree\nexit 0\n",
             "etc/aide.conf": "@@define DBDIR /var/lib/aide\n"
                              "database_in=file:@@{DBDIR}/aide.db.gz\n"
                              "database_out=file:@@{DBDIR}/aide.db.new.gz\n"
                              "/etc    CONTENT_EX\n/usr/sbin    CONTENT_EX\n"},
    "amazon-cloudwatch-agent": {
        "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent":
            "#!/bin/sh\n# stand-in for the binary of the fixture tree\nexit 0\n"},
    "audit": {"usr/sbin/auditd": "#!/bin/sh\nexit 0\n"},
    "chrony": {"usr/sbin/chronyd": "#!/bin/sh\nexit 0\n"},
}

_PRELUDE = """#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps([{name!r}] + args) + "\\n")
"""

STUBS = {
    # dnf --installroot=ROOT -y install PACKAGE...: the packages' files appear under ROOT.
    "dnf": """
root = next((a.split("=", 1)[1] for a in args if a.startswith("--installroot=")), None)
if root is None or "install" not in args:
    sys.exit("dnf stand-in: only install with --installroot (never the real system)")
files = json.loads(os.environ["STUB_PACKAGE_FILES"])
for package in args[args.index("install") + 1:]:
    for name, text in files[package].items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if "bin/" in name:
            path.chmod(0o755)
""",
    # systemctl --root=ROOT enable|disable|mask UNIT...: the symlinks systemctl would make.
    "systemctl": """
root = next((a.split("=", 1)[1] for a in args if a.startswith("--root=")), None)
if root is None:
    sys.exit("systemctl stand-in: called without --root (on the real system)")
root = Path(root)
verb, *units = [a for a in args if not a.startswith("-")]
etc = root / "etc/systemd/system"
for unit in units:
    unit_file = root / "usr/lib/systemd/system" / unit
    if verb == "enable":
        if not unit_file.exists():
            sys.exit(f"Failed to enable unit: Unit file {unit} does not exist.")
        wanted_by = [line.split("=", 1)[1].strip() for line in unit_file.read_text().splitlines()
                     if line.startswith("WantedBy=")]
        for target in wanted_by:
            link = etc / f"{target}.wants" / unit
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(f"/usr/lib/systemd/system/{unit}")
    elif verb == "disable":
        for wants in etc.glob("*.wants"):
            if (wants / unit).is_symlink():  # dangling here: its target is in the tree
                (wants / unit).unlink()
    elif verb == "mask":
        (etc / unit).symlink_to("/dev/null")
    else:
        sys.exit(f"systemctl stand-in: {verb} is not expected")
""",
    # aide --init --config=ROOT/etc/aide.conf: a new database next to the old one.
    "aide": """
config = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
if "--init" not in args or config is None or config == "/etc/aide.conf":
    sys.exit("aide stand-in: only --init with a fixture tree's --config is expected")
db = Path(config).parent.parent / "var/lib/aide/aide.db.new.gz"
db.parent.mkdir(parents=True, exist_ok=True)
db.write_bytes(b"aide database of the fixture tree\\n")
""",
    # The machine the bake runs on, whatever the tests run on.
    "uname": """
if args != ["-m"]:
    sys.exit("uname stand-in: only -m is expected")
print("x86_64")
""",
}
# Commands that act on the running system: with a root other than / apply.sh must not call them.
FORBIDDEN = ("setenforce", "getenforce", "sshd", "sysctl", "augenrules", "restorecon")


def install_stubs(bin_dir: Path, log: Path) -> dict[str, str]:
    """Write the stand-ins into bin_dir; return the environment apply.sh runs with."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = dict(STUBS)
    for name in FORBIDDEN:
        scripts[name] = f"sys.exit('{name} stand-in: must not run on a tree')\n"
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(_PRELUDE.format(python=sys.executable, name=name) + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log), "LC_ALL": "C",
            "STUB_PACKAGE_FILES": json.dumps(PACKAGE_FILES)}


def calls(log: Path) -> list[list[str]]:
    """The commands apply.sh ran, but uname -m (a question, not an action)."""
    if not log.exists():
        return []
    made = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [c for c in made if c != ["uname", "-m"]]


def snapshot(root: Path) -> dict[str, str]:
    """Every file's content hash and every symlink's target, by relative path (git's .keep
    files, which stand for empty directories, left out)."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + str(path.readlink())
        elif path.is_file() and path.name != ".keep":
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def apply(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(APPLY), *(args or [str(root)])], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.fixture
def stubs(tmp_path):
    log = tmp_path / "calls.log"
    return install_stubs(tmp_path / "bin", log), log


def test_apply_on_a_fresh_tree_leaves_the_compliant_tree_and_a_second_run_changes_nothing(
        tmp_path, stubs):
    env, log = stubs
    root = tmp_path / "disk"
    shutil.copytree(BASE, root, symlinks=True)

    first = apply(root, env)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    lines = first.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "apply packages", "apply selinux", "apply sshd", "apply auditd", "apply sysctl",
        "apply services", "apply cloudwatch-agent", "apply chrony", "apply aide"]
    assert "apply packages: installed aide, amazon-cloudwatch-agent" in lines
    assert "apply selinux: SELINUX=enforcing in /etc/selinux/config" in lines
    assert "apply sshd: wrote /etc/ssh/sshd_config.d/00-golden-ami.conf" in lines
    assert ("apply auditd: commented out -a task,never in /etc/audit/rules.d/audit.rules, "
            "wrote /etc/audit/rules.d/50-golden-ami.rules") in lines
    assert ("apply services: disabled rpcbind.service, rpcbind.socket, "
            "masked rpcbind.service, rpcbind.socket, postfix.service") in lines
    assert "apply cloudwatch-agent: enabled amazon-cloudwatch-agent" in lines
    # AL2023 already syncs with the Amazon Time Sync Service: kept as it is.
    assert "apply chrony: already in place" in lines
    assert lines[-1] == "apply aide: initialised the database (no database yet)"

    made = calls(log)
    # One dnf transaction, for what is missing only; everything on the tree, nothing on the host.
    assert [c for c in made if c[0] == "dnf"] == [
        ["dnf", "-y", f"--installroot={root}", "install", "aide", "amazon-cloudwatch-agent"]]
    assert all(f"--root={root}" in c for c in made if c[0] == "systemctl"), made
    assert not [c for c in made if c[0] in FORBIDDEN], made
    assert made[-1] == ["aide", "--init", f"--config={root}/etc/aide.conf"]  # AIDE last

    code, output = baseline.run_check(root)
    assert code == 0, output
    assert failed(output) == []

    after_first = snapshot(root)
    second = apply(root, env)
    assert second.returncode == 0, second.stderr
    assert snapshot(root) == after_first
    assert second.stdout.splitlines() == [
        f"apply {group}: already in place" for group in (
            "packages", "selinux", "sshd", "auditd", "sysctl", "services", "cloudwatch-agent",
            "chrony", "aide")]
    assert len(calls(log)) == len(made)  # the second run called nothing

    # What apply.sh leaves is the compliant fixture the boot test checks.
    assert after_first == snapshot(baseline.COMPLIANT)


def test_after_a_monthly_update_only_aides_database_is_renewed(tmp_path, stubs):
    env, log = stubs
    root = baseline.prepare_tree(tmp_path / "disk")
    # Last month's database, then this month's dnf upgrade.
    last_month = time.time() - 30 * 86400
    os.utime(root / "var/lib/aide/aide.db.gz", (last_month, last_month))
    code, output = baseline.run_check(root)
    assert failed(output) == ["aide-database"]

    result = apply(root, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "apply aide: initialised the database (the packages changed since)")
    assert all(line.endswith("already in place") for line in result.stdout.splitlines()[:-1])
    assert [c[:2] for c in calls(log)] == [["aide", "--init"]]
    code, output = baseline.run_check(root)
    assert code == 0, output


def test_apply_refuses_a_missing_root_and_options(tmp_path, stubs):
    env, log = stubs
    for args in ([str(tmp_path / "missing")], ["--force"]):
        result = apply(tmp_path, env, *args)
        assert result.returncode == 2, result
        assert result.stderr and not result.stdout
    assert calls(log) == []


# ---- check.sh on a running instance, with stand-ins for the commands it asks --------------------

# What `auditctl -l` prints once augenrules has loaded the compliant tree's rules: auditctl lists
# a watch as "-w PATH -p PERM -k KEY" (a directory with a trailing /), any other rule with its
# arch first, its syscalls in number order, "-F key=KEY", and auid's unset as -1
# (audit-userspace, src/auditctl-listing.c).
LOADED_RULES = """\
-w /etc/passwd -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
-w /etc/sudoers -p wa -k sudoers
-w /etc/sudoers.d/ -p wa -k sudoers
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock/ -p wa -k logins
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -F key=time-change
-a always,exit -F arch=b32 -S settimeofday,adjtimex,clock_settime -F key=time-change
-w /etc/localtime -p wa -k time-change
-a always,exit -F arch=b64 -S init_module,delete_module,finit_module -F key=modules
-a always,exit -F arch=b32 -S init_module,delete_module,finit_module -F key=modules
-w /usr/bin/kmod -p x -k modules
-w /usr/sbin/insmod -p x -k modules
-w /usr/sbin/modprobe -p x -k modules
-w /usr/sbin/rmmod -p x -k modules
-a always,exit -S all -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
-a always,exit -S all -F path=/usr/bin/su -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
-a always,exit -S all -F path=/usr/bin/passwd -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
-a always,exit -S all -F path=/usr/bin/chage -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
-a always,exit -S all -F path=/usr/bin/newgrp -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
-a always,exit -S all -F path=/usr/bin/mount -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
-a always,exit -S all -F path=/usr/bin/umount -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
"""

# unit -> (systemctl is-enabled, systemctl is-active) on an instance of the golden image: apply.sh
# masked the unneeded units that AL2023 installs; the others are not installed.
RUNNING_UNITS = {
    "auditd.service": ("enabled", "active"), "chronyd.service": ("enabled", "active"),
    "rpcbind.service": ("masked", "inactive"), "rpcbind.socket": ("masked", "inactive"),
    "postfix.service": ("masked", "inactive"),
}

RUNTIME_STUBS = {
    # auditctl -l: the rules the kernel has, or an error on stderr.
    "auditctl": """
if args != ["-l"]:
    sys.exit("auditctl stand-in: only -l (a question) is expected")
state = json.loads(os.environ["STUB_RUNNING"])
rc = state.get("auditctl_rc", 0)
(sys.stderr if rc else sys.stdout).write(state["auditctl"])
sys.exit(rc)
""",
    # systemctl is-enabled|is-active UNIT, as systemctl(1) documents them: is-enabled exits 0
    # for enabled, enabled-runtime, alias, static, indirect, generated, transient, and non-zero
    # otherwise; a unit that is not installed is "not-found" (systemd 253 and later, exit 4) or,
    # before (AL2023 ships 252), an error on stderr. is-active exits 0 for active only, and
    # prints inactive for a unit that is not loaded.
    "systemctl": """
state = json.loads(os.environ["STUB_RUNNING"])
if len(args) != 2 or args[0] not in ("is-enabled", "is-active"):
    sys.exit("systemctl stand-in: only is-enabled and is-active (questions) are expected")
verb, unit = args
unit = unit if "." in unit else unit + ".service"  # as systemctl completes a bare name
known = state["units"].get(unit)
if verb == "is-active":
    if state.get("systemd_down"):  # is-enabled reads the unit files; is-active asks systemd
        sys.exit("System has not been booted with systemd as init system (PID 1). Can't operate.")
    active = known[1] if known else "inactive"
    print(active)
    sys.exit(0 if active == "active" else 3)
if known is None:
    if state.get("not_found_word"):
        print("not-found")
        sys.exit(4)
    sys.exit(f"Failed to get unit file state for {unit}: No such file or directory")
print(known[0])
sys.exit(0 if known[0] in ("enabled", "enabled-runtime", "alias", "static", "indirect",
                           "generated", "transient") else 1)
""",
    "getenforce": "print('Enforcing')\n",
    "sshd": """
if args != ["-T"]:
    sys.exit("sshd stand-in: only -T is expected")
print("permitrootlogin no\\npasswordauthentication no\\nkbdinteractiveauthentication no")
""",
    # sysctl -n KEY: the values the compliant tree's sysctl.d sets.
    "sysctl": """
if len(args) != 2 or args[0] != "-n":
    sys.exit("sysctl stand-in: only -n KEY is expected")
print(json.loads(os.environ["STUB_RUNNING"])["sysctl"][args[1]])
""",
}


def sysctl_d(root: Path) -> dict[str, str]:
    lines = (root / "etc/sysctl.d/90-golden-ami.conf").read_text().splitlines()
    return dict((part.strip() for part in line.split("=", 1))
                for line in lines if "=" in line and not line.startswith("#"))


def running(tmp_path: Path, **changes) -> tuple[int, str, list[list[str]]]:
    """check.sh as on an instance of the golden image: the compliant disk, and stand-ins that
    answer as that instance would (changes replace parts of their state). GOLDEN_AMI_CHECK_RUNTIME
    runs the runtime controls although the root is a tree. (exit status, stdout, the commands
    the check ran)"""
    root = baseline.prepare_tree(tmp_path / "disk")
    state = {"auditctl": LOADED_RULES, "units": dict(RUNNING_UNITS), "sysctl": sysctl_d(root)}
    state.update(changes)
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name, body in RUNTIME_STUBS.items():
        path = bin_dir / name
        path.write_text(_PRELUDE.format(python=sys.executable, name=name) + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LC_ALL": "C", "GOLDEN_AMI_CHECK_RUNTIME": "1",
           "STUB_LOG": str(log), "STUB_RUNNING": json.dumps(state)}
    result = subprocess.run(["bash", str(baseline.CHECK), str(root)], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.stderr == "", result.stderr
    return result.returncode, result.stdout, calls(log)


@pytest.mark.parametrize("tree", ["al2023-base", "compliant"])
def test_on_a_fixture_tree_the_controls_of_the_running_system_skip_with_the_reason(tmp_path, tree):
    root = tmp_path / "disk"
    shutil.copytree(baseline.FIXTURES / "baseline" / tree, root, symlinks=True)
    _, output = baseline.run_check(root)
    found = verdicts(output)
    assert {"auditd-rules-loaded", "services-inactive"} <= RUNTIME
    for control in RUNTIME:
        assert found[control][0] == "SKIP", (control, found[control])
        assert skipped_for_the_tree(found[control][1], root), found[control]


def test_on_an_instance_of_the_golden_image_every_control_passes_and_nothing_changes(tmp_path):
    code, output, made = running(tmp_path)
    assert code == 0, output
    assert list(verdicts(output)) == CONTROLS
    assert failed(output) == [] and "SKIP " not in output, output
    assert output.splitlines()[-1] == f"SUMMARY pass={len(CONTROLS)} fail=0 skip=0"
    assert verdicts(output)["auditd-rules-loaded"] == (
        "PASS", "auditctl -l: every key covers every item")
    assert verdicts(output)["services-inactive"] == (
        "PASS", "none of the 9 unneeded units is enabled or active")
    # Questions only: the check changes nothing on the instance.
    assert {tuple(c[:2]) for c in made} <= {
        ("auditctl", "-l"), ("systemctl", "is-enabled"), ("systemctl", "is-active"),
        ("getenforce",), ("sshd", "-T"), ("sysctl", "-n")}, made


@pytest.mark.parametrize("loaded, evidence", [
    # augenrules failed on the kmod line: the file has it, the kernel does not.
    (LOADED_RULES.replace("-w /usr/bin/kmod -p x -k modules\n", ""),
     "auditctl -l lacks modules: kmod"),
    # A privileged command audited for everyone, not for users' sessions, does not count.
    (LOADED_RULES.replace("path=/usr/bin/su -F perm=x -F auid>=1000 -F auid!=-1",
                          "path=/usr/bin/su -F perm=x"), "auditctl -l lacks privileged: su"),
    # The item is loaded, but under another key: it counts for that key only.
    (LOADED_RULES.replace("-w /etc/sudoers.d/ -p wa -k sudoers",
                          "-w /etc/sudoers.d/ -p wa -k sudo"),
     "auditctl -l lacks sudoers: /etc/sudoers.d"),
    # Nothing loaded (augenrules never ran), or a rule that turns syscall auditing off.
    ("No rules\n", "auditctl -l: No rules"),
    ("-a never,task\n" + LOADED_RULES, "auditctl -l has -a never,task: syscall auditing is off"),
])
def test_the_loaded_audit_rules_need_every_key_and_item(tmp_path, loaded, evidence):
    code, output, _ = running(tmp_path, auditctl=loaded)
    assert code == 1, output
    assert failed(output) == ["auditd-rules-loaded"], output
    assert verdicts(output)["auditd-rules-loaded"] == ("FAIL", evidence)


def test_auditctl_failing_is_a_failure_with_its_message(tmp_path):
    code, output, _ = running(tmp_path, auditctl="You must be root to run this program.\n",
                              auditctl_rc=4)
    assert code == 1
    assert verdicts(output)["auditd-rules-loaded"] == (
        "FAIL", "auditctl -l failed: You must be root to run this program.")


@pytest.mark.parametrize("units, evidence", [
    # Masked while it ran, without --now: the socket still listens.
    ({"rpcbind.socket": ("masked", "active")}, "rpcbind.socket (masked, active)"),
    # Enabled: it starts at the next boot, though nothing runs it now.
    ({"cups.service": ("enabled", "inactive")}, "cups.service (enabled, inactive)"),
    ({"telnet.socket": ("enabled-runtime", "inactive")},
     "telnet.socket (enabled-runtime, inactive)"),
    # Static: nothing enables it, but something started it.
    ({"vsftpd.service": ("static", "active")}, "vsftpd.service (static, active)"),
    ({"avahi-daemon.service": ("disabled", "activating")},
     "avahi-daemon.service (disabled, activating)"),
    # indirect and generated may start it under another name or from a generator.
    ({"nfs-server.service": ("indirect", "inactive")}, "nfs-server.service (indirect, inactive)"),
    ({"tftp.socket": ("generated", "inactive")}, "tftp.socket (generated, inactive)"),
    # Each unit that is on is named.
    ({"cups.service": ("enabled", "active"), "tftp.socket": ("static", "active")},
     "cups.service (enabled, active), tftp.socket (static, active)"),
])
def test_an_unneeded_unit_enabled_or_active_on_the_instance_fails(tmp_path, units, evidence):
    code, output, _ = running(tmp_path, units={**RUNNING_UNITS, **units})
    assert code == 1, output
    assert failed(output) == ["services-inactive"], output
    assert verdicts(output)["services-inactive"] == ("FAIL", evidence)


@pytest.mark.parametrize("changes", [
    # Disabled, static, linked or failed and not running: nothing starts them.
    {"units": {**RUNNING_UNITS, "postfix.service": ("disabled", "inactive"),
               "cups.service": ("static", "inactive"), "vsftpd.service": ("linked", "inactive"),
               "telnet.socket": ("masked-runtime", "failed")}},
    # A unit that is not installed, as systemd 253 and later say it.
    {"not_found_word": True},
], ids=["off-states", "not-found-word"])
def test_units_that_nothing_starts_pass(tmp_path, changes):
    code, output, _ = running(tmp_path, **changes)
    assert code == 0, output
    assert verdicts(output)["services-inactive"] == (
        "PASS", "none of the 9 unneeded units is enabled or active")


def test_systemd_that_cannot_answer_is_a_failure(tmp_path):
    code, output, _ = running(tmp_path, systemd_down=True)
    assert code == 1
    verdict, evidence = verdicts(output)["services-inactive"]
    assert verdict == "FAIL"
    assert evidence.startswith(
        "rpcbind.service (masked, unknown), rpcbind.socket (masked, "), evidence


# ---- the scripts, and the README's table ---------------------------------------------------------

def test_the_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in baseline.SCRIPTS.glob("*.sh"))
    assert len(scripts) == 3
    result = subprocess.run([str(SHELLCHECK), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_readme_table_is_the_checks_list():
    generated = subprocess.run([sys.executable, str(REPO / "scripts" / "baseline-table.py")],
                               capture_output=True, text=True, check=True).stdout
    assert generated.count("\n") == len(CONTROLS) + 2
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- baseline:begin -->\n", 1)[1].split("<!-- baseline:end -->", 1)[0]
    assert table == generated, "README's baseline table is stale: run scripts/baseline-table.py --write"
