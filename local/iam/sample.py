"""Write local/tests/data/iam-sample.jsonl from a recording of the e2e suite (local/iam/check.py
appends every checked call to target/iam/calls.jsonl): one call for each way the templates allow
it, that is per principal, action and the statements that allow each of its resources. The
sample is what local/tests/test_iam_evaluation.py proves the IAM check can fail with; refresh it
when a change alters what the functions call or what the templates require of a call.

    .venv/bin/python -m local.iam.sample [target/iam/calls.jsonl]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from local import stack as local_stack

from . import evaluate as ev
from . import policies as iam_policies
from .check import RECORDING

SAMPLE = local_stack.REPO / "local" / "tests" / "data" / "iam-sample.jsonl"


def allowing(documents: list[tuple[str, dict[str, Any]]], call: dict[str, Any]) -> tuple:
    out = []
    for res in call["resources"]:
        ctx = ev.CaseInsensitiveDict({**call["context"], **res["context"]})
        out.append(tuple(sorted(
            f"{name}/{st.get('Sid', i)}"
            for name, doc in documents
            for i, st in enumerate(ev.with_variables(doc, ctx)["Statement"])
            if ev.policy_has_matching_statement({"Statement": [st]}, "Allow", call["action"],
                                                res["arn"], ctx))))
    return tuple(out)


def sample(recording: Path) -> list[str]:
    lines: list[str] = []
    seen: set[tuple] = set()
    env_line, env_written, policies = None, False, {}
    for line in recording.read_text().splitlines():
        item = json.loads(line)
        if "env" in item:
            env_line, env_written = line, False
            policies = iam_policies.principal_policies(iam_policies.Env(**item["env"]))
            continue
        if item.get("unmodeled") or item["principal"] not in policies:
            continue
        key = (item["principal"], item["action"], item.get("via"),
               allowing(policies[item["principal"]], item))
        if key in seen:
            continue
        seen.add(key)
        if not env_written:
            lines.append(env_line)
            env_written = True
        lines.append(json.dumps(item, sort_keys=True))
    return lines


def main() -> int:
    recording = Path(sys.argv[1]) if len(sys.argv) > 1 else RECORDING
    lines = sample(recording)
    SAMPLE.write_text("\n".join(lines) + "\n")
    calls = sum(1 for line in lines if not line.startswith('{"env"'))
    print(f"{SAMPLE.relative_to(local_stack.REPO)}: {calls} calls from {recording}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
