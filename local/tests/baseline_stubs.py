"""Stand-ins for the commands infra/baseline/apply.sh calls, so it can run against a fixture
tree: each records its call and does to the tree under the root what the real command would
(dnf --installroot installs a package's files, systemctl --root enables a unit, aide --init
writes a database). Called without a root (on the running system) they fail the test loudly:
apply.sh must never touch the machine the tests run on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# What `dnf install` puts in the tree: package -> files (the ones the check looks at).
PACKAGE_FILES = {
    "aide": ["usr/sbin/aide", "etc/aide.conf"],
    "amazon-cloudwatch-agent": ["opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent",
                                "usr/lib/systemd/system/amazon-cloudwatch-agent.service"],
    "audit": ["usr/sbin/auditd", "usr/lib/systemd/system/auditd.service"],
    "chrony": ["usr/sbin/chronyd", "usr/lib/systemd/system/chronyd.service"],
}

_DNF = """#!/usr/bin/env python3
import sys, os, json
from pathlib import Path
args = sys.argv[1:]
log = Path(os.environ["STUB_LOG"]); log.open("a").write(json.dumps(["dnf"] + args) + "\\n")
root = next((a.split("=", 1)[1] for a in args if a.startswith("--installroot=")), None)
if root is None:
    sys.exit("dnf stand-in: called without --installroot (on the real system)")
files = json.loads(os.environ["STUB_PACKAGE_FILES"])
packages = args[args.index("install") + 1:]
for package in packages:
    for name in files[package]:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".service"):
            path.write_text("[Unit]\\nDescription=" + package + "\\n\\n[Install]\\nWantedBy=multi-user.target\\n")
        else:
            path.write_text("# installed by the dnf stand-in: " + package + "\\n")
        if "/bin/" in name or "/sbin/" in name:
            path.chmod(0o755)
"""

_SYSTEMCTL = """#!/usr/bin/env python3
import sys, os, json
from pathlib import Path
args = sys.argv[1:]
log = Path(os.environ["STUB_LOG"]); log.open("a").write(json.dumps(["systemctl"] + args) + "\\n")
root = next((a.split("=", 1)[1] for a in args if a.startswith("--root=")), None)
if root is None:
    sys.exit("systemctl stand-in: called without --root (on the real system)")
rest = [a for a in args if not a.startswith("--")]
verb, units = rest[0], rest[1:]
wants = Path(root) / "etc/systemd/system/multi-user.target.wants"
for unit in units:
    link = wants / unit
    if verb == "enable":
        wants.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/usr/lib/systemd/system/" + unit)
    elif verb == "disable":
        if link.is_symlink() or link.exists():
            link.unlink()
    else:
        sys.exit("systemctl stand-in: " + verb + " is not expected")
"""

_AIDE = """#!/usr/bin/env python3
import sys, os, json
from pathlib import Path
args = sys.argv[1:]
log = Path(os.environ["STUB_LOG"]); log.open("a").write(json.dumps(["aide"] + args) + "\\n")
config = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
if "--init" not in args or config is None or config == "/etc/aide.conf":
    sys.exit("aide stand-in: only --init with a fixture tree's --config is expected")
root = Path(config).parent.parent
db = root / "var/lib/aide/aide.db.new.gz"
db.parent.mkdir(parents=True, exist_ok=True)
db.write_bytes(b"aide database of the fixture tree\\n")
"""

_FORBIDDEN = """#!/bin/sh
echo "$(basename "$0") stand-in: must not run when apply.sh has a root other than /" >&2
echo "[\\"$(basename "$0")\\", \\"forbidden\\"]" >> "$STUB_LOG"
exit 97
"""


def install_stubs(bin_dir: Path, log: Path) -> dict[str, str]:
    """Write the stand-ins into bin_dir; return the environment apply.sh must run with."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = {"dnf": _DNF, "systemctl": _SYSTEMCTL, "aide": _AIDE}
    for name in ("setenforce", "getenforce", "sshd", "sysctl", "augenrules"):
        scripts[name] = _FORBIDDEN
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    import json

    return {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "STUB_LOG": str(log),
            "STUB_PACKAGE_FILES": json.dumps(PACKAGE_FILES), "LC_ALL": "C"}


def calls(log: Path) -> list[list[str]]:
    import json

    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
