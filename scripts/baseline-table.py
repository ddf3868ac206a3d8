#!/usr/bin/env python3
"""Print the README's hardening baseline table, generated from `infra/baseline/check.sh --list`
(the check is the specification). With --write, replace what is between the README's
<!-- baseline:begin --> and <!-- baseline:end --> lines with it; nothing else is touched.

Usage: scripts/baseline-table.py [--write]
"""
from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- baseline:begin -->\n", "<!-- baseline:end -->"


def table() -> str:
    listing = subprocess.run(["bash", str(ROOT / "infra" / "baseline" / "check.sh"), "--list"],
                             capture_output=True, text=True, check=True).stdout
    rows = ["| Control | Applied by apply.sh | Checked by check.sh |", "|---|---|---|"]
    for line in listing.splitlines():
        control, applied, checked = (cell.replace("|", "\\|") for cell in line.split("\t"))
        rows.append(f"| `{control}` | {applied} | {checked} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    generated = table()
    if sys.argv[1:] == []:
        sys.stdout.write(generated)
        return 0
    if sys.argv[1:] != ["--write"]:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    readme = README.read_text()
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        print(f"README.md needs exactly one {BEGIN.strip()} and one {END} line", file=sys.stderr)
        return 1
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    updated = head + BEGIN + generated + END + tail
    if updated != readme:
        README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
