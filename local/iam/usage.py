"""Least privilege, measured: per principal, the actions its policies grant and the actions the
recorded traffic used (a recording written by local/iam/check.py during the e2e suite).

    .venv/bin/python -m local.iam.usage [target/iam/calls.jsonl]
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

from . import policies as iam_policies
from .check import RECORDING
from .evaluate import granted_actions


def report(path: Path) -> str:
    used: dict[str, set[str]] = {}
    env = None
    for line in path.read_text().splitlines():
        item = json.loads(line)
        if "env" in item:
            env = iam_policies.Env(**item["env"])
            continue
        used.setdefault(item["principal"], set()).add(item["action"])
    if env is None:
        return f"{path}: no recorded calls"
    policies = iam_policies.principal_policies(env)
    lines = []
    for principal in sorted(policies):
        granted = granted_actions(policies[principal])
        uses = used.get(principal, set())
        unused = sorted(g for g in granted
                        if not any(fnmatch.fnmatch(u.lower(), g.lower()) for u in uses))
        lines.append(f"{principal}: {len(granted)} granted, {len(uses)} used")
        lines.append(f"  used:   {', '.join(sorted(uses)) or '-'}")
        lines.append(f"  unused: {', '.join(unused) or '-'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]) if len(sys.argv) > 1 else RECORDING))
