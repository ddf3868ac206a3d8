"""The check the e2e suite and `make demo` run: take the calls the extension recorded, evaluate
them against the templates' policies for this stack, and say which would be denied.

    checker = Checker(stack)            # labels the operator CLI's calls by command
    denials = checker.check()           # takes (and forgets) the calls so far
    assert not denials, explain(denials)

The operator CLI (stack.golden_ami) is the "operator" principal; its calls are evaluated against
ApproverPolicy for `approve` / `deny` (the only CLI commands the templates give a policy to) and
left out otherwise. Every checked call is appended to the recording file (JSON lines) that
local/iam/usage.py reads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from local import stack as local_stack

from . import policies as iam_policies
from .evaluate import Denial, evaluate, explain  # noqa: F401  (re-exported)

RECORDING = Path(os.environ.get("GOLDEN_IAM_RECORDING",
                                local_stack.REPO / "target" / "iam" / "calls.jsonl"))
EVALUATED_OPERATOR_COMMANDS = ("approve", "deny")


class Checker:
    def __init__(self, stack: Any, recording: Path | None = RECORDING):
        self.stack = stack
        self.recording = recording
        self.marks: list[tuple[int, int, str]] = []
        self.skipped: list[dict[str, Any]] = []
        self.seconds = 0.0
        original = stack.golden_ami

        def golden_ami(*args: str) -> Any:
            before = len(stack.admin("calls")["calls"])
            try:
                return original(*args)
            finally:
                after = len(stack.admin("calls")["calls"])
                command = next((a for a in args if not a.startswith("-")), "")
                self.marks.append((before, after, command))

        stack.golden_ami = golden_ami

    def take(self) -> list[dict[str, Any]]:
        calls = self.stack.admin("calls/take", {})["calls"]
        marks, self.marks = self.marks, []
        kept = []
        for n, call in enumerate(calls):
            if call["principal"] == "operator":
                command = next((c for b, a, c in marks if b <= n < a), "")
                call["principal"] = f"operator:{command}"
                if command not in EVALUATED_OPERATOR_COMMANDS:
                    self.skipped.append(call)
                    continue
            kept.append(call)
        return kept

    def check(self, calls: list[dict[str, Any]] | None = None) -> list[Denial]:
        """Evaluate `calls` (default: those taken now)."""
        calls = self.take() if calls is None else calls
        started = time.monotonic()
        if self.stack.seed is None or not calls:
            return []
        env = iam_policies.Env.of(self.stack)
        policies = iam_policies.principal_policies(env)
        kms_policies: dict[str, Any] = {}

        def key_policy(arn: str) -> dict[str, Any] | None:
            if arn not in kms_policies:
                region = arn.split(":")[3] if arn.count(":") >= 5 else local_stack.REGION
                try:
                    text = self.stack.client("kms", region=region).get_key_policy(
                        KeyId=arn, PolicyName="default")["Policy"]
                    kms_policies[arn] = json.loads(text)
                except Exception:
                    kms_policies[arn] = None
            return kms_policies[arn]

        denials = evaluate(calls, policies, key_policy, env.account_id)
        self.seconds += time.monotonic() - started
        if self.recording is not None:
            self.recording.parent.mkdir(parents=True, exist_ok=True)
            with self.recording.open("a") as out:
                out.write(json.dumps({"env": dataclasses.asdict(env)}) + "\n")
                for call in calls:
                    out.write(json.dumps(call, sort_keys=True) + "\n")
        return denials
