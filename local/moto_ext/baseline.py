"""The instance disks of the local stand-in, and running the scripts of infra/baseline/ on them.

moto has no instances to run commands on. For the boot test the extension (commands.py) runs
the REAL infra/baseline/check.sh against a copy of local/fixtures/baseline/compliant standing for
the disk of an instance launched from the golden image; a fault breaks chosen controls in that
copy first. The bake's update report is the REAL infra/baseline/updates.sh reading the raw dnf
outputs of local/fixtures/updates/<scenario>. The tests of the scripts use the same functions,
so "a broken control" means the same thing everywhere. Nothing here imports moto.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "local" / "fixtures"
SCRIPTS = REPO / "infra" / "baseline"
CHECK = SCRIPTS / "check.sh"
UPDATES = SCRIPTS / "updates.sh"
COMPLIANT = FIXTURES / "baseline" / "compliant"

# What the scripts run with: nothing of the caller's environment leaks in.
_CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
_TIMEOUT = 60


def controls() -> list[str]:
    """The control ids, in the order check.sh prints them (from `check.sh --list`)."""
    listing = subprocess.run(["bash", str(CHECK), "--list"], capture_output=True, text=True,
                             check=True, env=_CLEAN_ENV, timeout=_TIMEOUT).stdout
    return [line.split("\t", 1)[0] for line in listing.splitlines() if line.strip()]


@functools.cache
def runtime_controls() -> frozenset[str]:
    """The controls that need the running system: the ones check.sh skips on a tree."""
    with tempfile.TemporaryDirectory(prefix="golden-ami-empty-") as empty:
        _, output = run_check(Path(empty))
    return frozenset(line.split()[1] for line in output.splitlines() if line.startswith("SKIP "))


def prepare_tree(dest: Path) -> Path:
    """A fresh copy of the compliant disk at dest (symlinks kept as symlinks). git keeps no
    mtimes, so they are set here: the package database is older than AIDE's, as after an update
    followed by aide --init."""
    shutil.copytree(COMPLIANT, dest, symlinks=True)
    now = time.time()
    os.utime(dest / "var/lib/rpm/rpmdb.sqlite", (now - 3600, now - 3600))
    os.utime(dest / "var/lib/aide/aide.db.gz", (now, now))
    return dest


def _replace(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text()
    changed = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    if changed == text:
        raise AssertionError(f"{path}: nothing matched {pattern!r}")
    path.write_text(changed)


def _sshd(pattern: str, replacement: str) -> Callable[[Path], None]:
    return lambda root: _replace(root / "etc/ssh/sshd_config.d/00-golden-ami.conf", pattern,
                                 replacement)


def _sysctl(name: str, setting: str) -> Callable[[Path], None]:
    # A later file overrides the baseline's, as a package's drop-in could (one file per control,
    # so that several controls can be broken at once).
    return lambda root: (root / f"etc/sysctl.d/95-{name}.conf").write_text(setting + "\n")


def _unlink(relative: str) -> Callable[[Path], None]:
    return lambda root: (root / relative).unlink()


def _stale_aide(root: Path) -> None:
    # Initialised BEFORE the update: the package database is newer than AIDE's.
    now = time.time()
    os.utime(root / "var/lib/aide/aide.db.gz", (now - 7200, now - 7200))


def _rpcbind_back(root: Path) -> None:
    # Someone unmasks and enables rpcbind again.
    (root / "etc/systemd/system/rpcbind.service").unlink()
    (root / "etc/systemd/system/multi-user.target.wants/rpcbind.service").symlink_to(
        "/usr/lib/systemd/system/rpcbind.service")


def _no_time_sync(root: Path) -> None:
    for source in (root / "etc/chrony.d").glob("*.sources"):
        if "169.254.169.123" in source.read_text():
            _replace(source, r"^server 169\.254\.169\.123.*$", "server 0.pool.ntp.org iburst")


# control -> what makes exactly that control fail on the compliant disk
_BREAKERS: dict[str, Callable[[Path], None]] = {
    "selinux-config": lambda root: _replace(root / "etc/selinux/config", r"^SELINUX=enforcing$",
                                            "SELINUX=permissive"),
    "ssh-password-auth": _sshd(r"^PasswordAuthentication no$", "PasswordAuthentication yes"),
    "ssh-root-login": _sshd(r"^PermitRootLogin no$", "PermitRootLogin yes"),
    "ssh-max-auth-tries": _sshd(r"^MaxAuthTries 4$", "MaxAuthTries 10"),
    "ssh-client-alive": _sshd(r"^ClientAliveInterval 300$", "ClientAliveInterval 0"),
    "ssh-ciphers": _sshd(r"^(Ciphers .*)$", r"\1,aes128-cbc"),
    "ssh-macs": _sshd(r"^(MACs .*)$", r"\1,hmac-sha1"),
    "ssh-kex": _sshd(r"^(KexAlgorithms .*)$", r"\1,diffie-hellman-group1-sha1"),
    "auditd-enabled": _unlink("etc/systemd/system/multi-user.target.wants/auditd.service"),
    "auditd-rules": lambda root: _replace(root / "etc/audit/rules.d/50-golden-ami.rules",
                                          r"^-w /usr/bin/kmod .*\n", ""),
    "aide-installed": _unlink("usr/sbin/aide"),
    "aide-database": _stale_aide,
    "sysctl-redirects": _sysctl("redirects", "net.ipv4.conf.all.accept_redirects = 1"),
    "sysctl-source-route": _sysctl("source-route", "net.ipv4.conf.all.accept_source_route = 1"),
    "sysctl-rp-filter": _sysctl("rp-filter", "net.ipv4.conf.all.rp_filter = 0"),
    "sysctl-aslr": _sysctl("aslr", "kernel.randomize_va_space = 0"),
    "sysctl-suid-dumpable": _sysctl("suid-dumpable", "fs.suid_dumpable = 2"),
    "sysctl-network": _sysctl("network", "net.ipv4.tcp_syncookies = 0"),
    "services-disabled": _rpcbind_back,
    "cloudwatch-agent": _unlink(
        "etc/systemd/system/multi-user.target.wants/amazon-cloudwatch-agent.service"),
    "time-sync": _no_time_sync,
}


def break_control(root: Path, control: str) -> None:
    """Change the disk under root so that exactly `control` fails."""
    breaker = _BREAKERS.get(control)
    if breaker is not None:
        breaker(root)
    elif control in runtime_controls():
        raise ValueError(f"{control} checks the running system; a disk cannot break it "
                         f"(the check skips it on a tree)")
    elif control in controls():
        raise ValueError(f"no way to break {control} is defined: add one to _BREAKERS")
    else:
        raise ValueError(f"unknown control {control}; known: {', '.join(controls())}")


def _run(args: list[str], script: Path | str, env: dict[str, str]) -> tuple[int, str]:
    """Run `bash SCRIPT ARGS...`; a script given as text (what an SSM document holds) runs from
    a temporary file."""
    with tempfile.TemporaryDirectory(prefix="golden-ami-script-") as holder:
        if isinstance(script, str):
            path = Path(holder) / "script.sh"
            path.write_text(script)
        else:
            path = script
        result = subprocess.run(["bash", str(path), *args], capture_output=True, text=True,
                                env=env, timeout=_TIMEOUT)
    return result.returncode, result.stdout


def run_check(root: Path, script: Path | str = CHECK) -> tuple[int, str]:
    """check.sh against the tree at root: (exit status, stdout)."""
    return _run([str(root)], script, dict(_CLEAN_ENV))


def update_report(scenario: str, script: Path | str = UPDATES) -> tuple[int, str]:
    """updates.sh reading the raw dnf outputs of local/fixtures/updates/<scenario>:
    (exit status, stdout)."""
    source = FIXTURES / "updates" / scenario
    if not source.is_dir():
        raise ValueError(f"no update scenario {scenario} in {source.parent}")
    return _run([], script, {**_CLEAN_ENV, "GOLDEN_AMI_UPDATES_FROM": str(source)})
