"""Evaluate recorded calls (local/moto_ext/recording.py) against the callers' policies
(policies.py) with principalmapper's local policy simulation: each resource of a call is allowed
when no statement denies it and one allows it, with the call's and the resource's condition
context; a KMS call also needs the key's policy: a statement for the account (root), which then
leaves the decision to the identity policy, or one that names the caller (e.g. Principal "*" with
aws:PrincipalOrgID and kms:ViaService), which allows it by itself
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
A policy variable in a condition value (`${aws:PrincipalAccount}`) is replaced with the request's
value of that key before matching, and matches nothing when the request has no such key
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html);
principalmapper substitutes variables in the Resource element only.

    denials = evaluate(calls, policies, key_policies)   # [] when every call is allowed
    print(explain(denials))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from principalmapper.querying.local_policy_simulation import (
    _get_condition_match, _listify_dictionary, _listify_string, _matches_after_expansion,
    policy_has_matching_statement)
from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict


@dataclass
class Denial:
    call: dict[str, Any]
    resource: str
    context: dict[str, Any]
    reason: str
    closest: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        c = self.call
        via = f" (implied by {c['via']})" if c.get("via") else ""
        lines = [f"DENIED {c['principal']} {c['action']}{via} on {self.resource} in {c['region']}: "
                 f"{self.reason}",
                 f"  context: {json.dumps(self.context, sort_keys=True)}"]
        lines += [f"  closest: {s}" for s in self.closest] or ["  closest: no statement names the action"]
        return "\n".join(lines)


def explain(denials: list[Denial]) -> str:
    return "\n".join(str(d) for d in denials)


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def with_variables(doc: dict[str, Any], ctx: CaseInsensitiveDict) -> dict[str, Any]:
    """`doc` with the policy variables of its statements' condition values replaced by the
    request's values."""
    def value(v: Any) -> Any:
        if isinstance(v, list):
            return [value(x) for x in v]
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        if isinstance(v, str) and "${" in v:
            # A key the request lacks leaves a value no request string equals.
            return _VARIABLE.sub(lambda m: str(ctx.get(m.group(1), "\x00no " + m.group(1))), v)
        return v
    statements = [{**st, "Condition": value(st["Condition"])} if "Condition" in st else st
                  for st in _listify_dictionary(doc["Statement"])]
    return {**doc, "Statement": statements}


def _allowed_by(documents: list[tuple[str, dict[str, Any]]], effect: str, action: str,
                resource: str, ctx: CaseInsensitiveDict) -> bool:
    return any(policy_has_matching_statement(with_variables(doc, ctx), effect, action, resource, ctx)
               for _name, doc in documents)


def closest(documents: list[tuple[str, dict[str, Any]]], action: str, resource: str,
            ctx: CaseInsensitiveDict) -> list[str]:
    """The Allow statements naming the action, each with what did not match."""
    found = []
    for name, doc in documents:
        for st in _listify_dictionary(with_variables(doc, ctx)["Statement"]):
            if st.get("Effect") != "Allow":
                continue
            actions = _listify_string(st.get("Action", []))
            if not any(_matches_after_expansion(action, a) for a in actions):
                continue
            resources = _listify_string(st.get("Resource", "*"))
            res_ok = any(_matches_after_expansion(resource, r, ctx) for r in resources)
            cond_ok = _get_condition_match(st["Condition"], ctx) if "Condition" in st else True
            why = ("matches" if res_ok and cond_ok else
                   f"resource not in {resources}" if not res_ok else
                   f"condition {json.dumps(st['Condition'], sort_keys=True)} not met")
            found.append(f"{name}/{st.get('Sid', '?')}: {why}")
    return found[:4]


def _key_policy_decision(key_policy: dict[str, Any] | None, account: str, action: str,
                         resource: str, ctx: CaseInsensitiveDict) -> str:
    """'deny', 'direct' (the key policy allows the caller itself), 'root' (it delegates to IAM)
    or 'none'."""
    if key_policy is None:
        return "root"  # a key the stack does not own (e.g. aws/ebs): its default policy
    root = f"arn:aws:iam::{account}:root"
    decision = "none"
    for st in _listify_dictionary(key_policy["Statement"]):
        principals = st.get("Principal", {})
        aws = _listify_string(principals.get("AWS", [])) if isinstance(principals, dict) else [principals]
        if not aws:
            continue
        one = {k: v for k, v in st.items() if k != "Principal"}
        one.setdefault("Resource", "*")
        if not policy_has_matching_statement(with_variables({"Statement": [one]}, ctx), st["Effect"],
                                             action, resource, ctx):
            continue
        if st["Effect"] == "Deny":
            return "deny"
        if "*" in aws or any(p != root and p != account for p in aws):
            decision = "direct"
        elif decision == "none":
            decision = "root"
    return decision


def evaluate(calls: list[dict[str, Any]], policies: dict[str, list[tuple[str, dict[str, Any]]]],
             key_policy: Callable[[str], dict[str, Any] | None] = lambda arn: None,
             account: str = "") -> list[Denial]:
    denials: list[Denial] = []
    for call in calls:
        principal, action = call["principal"], call["action"]
        if call.get("unmodeled"):
            denials.append(Denial(call, "?", call.get("context", {}),
                                  "no model of this operation's resources in "
                                  "local/moto_ext/recording.py " + call.get("error", "")))
            continue
        documents = policies.get(principal)
        if documents is None:
            denials.append(Denial(call, "?", call.get("context", {}),
                                  f"no policy of the templates is known for {principal}"))
            continue
        for res in call["resources"]:
            merged = {**call["context"], **res["context"]}
            ctx = CaseInsensitiveDict(merged)
            arn = res["arn"]
            if _allowed_by(documents, "Deny", action, arn, ctx):
                denials.append(Denial(call, arn, merged, "an identity policy denies it"))
                continue
            iam_allows = _allowed_by(documents, "Allow", action, arn, ctx)
            if action.startswith("kms:"):
                decision = _key_policy_decision(key_policy(arn), account, action, arn, ctx)
                if decision == "deny" or decision == "none" or (decision == "root" and not iam_allows):
                    reason = {"deny": "the key policy denies it",
                              "none": "the key policy allows it to no one"}.get(
                        decision, "no identity policy statement allows it")
                    denials.append(Denial(call, arn, merged, reason,
                                          closest(documents, action, arn, ctx)))
                continue
            if not iam_allows:
                denials.append(Denial(call, arn, merged, "no identity policy statement allows it",
                                      closest(documents, action, arn, ctx)))
    return denials


def granted_actions(documents: list[tuple[str, dict[str, Any]]]) -> set[str]:
    """The Allow statements' actions (as written, wildcards kept)."""
    out: set[str] = set()
    for _name, doc in documents:
        for st in _listify_dictionary(doc["Statement"]):
            if st.get("Effect") == "Allow":
                out.update(_listify_string(st.get("Action", [])))
    return out
