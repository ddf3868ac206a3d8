#!/usr/bin/env python3
"""Print the README's hardening baseline table, generated from `infra/baseline/check.sh --list`
(the check is the specification). With --write, replace the table between the README's
<!-- baseline:begin --> and <!-- baseline:end --> markers (nothing else is touched).

Usage: scripts/baseline-table.py [--write]
"""
from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- baseline:begin -->\n", "<!-- baseline:end -->"
RUNTIME = {"selinux-runtime", "ssh-effective-runtime", "auditd-active", "sysctl-runtime",
           "chronyd-active"}


def table() -> str:
    listing = subprocess.run(["bash", str(ROOT / "infra" / "baseline" / "check.sh"), "--list"],
                             capture_output=True, text=True, check=True).stdout
    rows = ["| Control | Applied by apply.sh | Checked by check.sh |", "|---|---|---|"]
    for line in listing.splitlines():
        control, applied, checked = line.split("\t")
        if control in RUNTIME:
            checked += " (on the running instance only)"
        rows.append(f"| `{control}` | {applied} | {checked} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    generated = table()
    if "--write" not in sys.argv:
        sys.stdout.write(generated)
        return 0
    readme = README.read_text()
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + BEGIN + generated + END + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
