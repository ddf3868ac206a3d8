"""parliament over every IAM policy of the three templates, rendered as the e2e check renders them:
fails on an unknown action, a resource of the wrong type for its action or a condition key its
action does not support, unless the finding is listed in infra/iam-allowed-findings.yaml with a
reason. An allowed finding that no longer occurs fails too (the list stays true).

    .venv/bin/python -m local.iam.lint
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from local import stack as local_stack

from . import policies as iam_policies

REPO = local_stack.REPO
TEMPLATES = [REPO / "infra" / n for n in ("template.yaml", "region.yaml", "consumer-access.yaml")]
ALLOWED = REPO / "infra" / "iam-allowed-findings.yaml"
FAILING = {"UNKNOWN_ACTION", "UNKNOWN_PREFIX", "RESOURCE_MISMATCH", "UNKNOWN_CONDITION_FOR_ACTION"}


# Values of the other templates' parameters without a default, in the shape they require.
PARAMETER_EXAMPLES = {
    "GoldenKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/mrk-example",
    "PointerParameterArn": "arn:aws:ssm:eu-west-1:123456789012:parameter/golden-ami/current",
}


class _Refs(dict):
    """The refs of policies.refs, and a stand-in physical name for anything else."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> Any:
        if key.endswith(".Arn"):
            return f"arn:aws:iam::123456789012:role/{key[:-4]}"
        return f"local-{key.replace('::', '-').replace('.', '-')}"


def _documents(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, rendered document) of every identity, key and resource policy of a template."""
    template = local_stack.load_template(path)
    env = iam_policies.Env("123456789012", "o-example", "arn:aws:organizations::123456789012:organization/o-example",
                           "mrk-example", regions=[local_stack.REGION, "us-east-1"])
    refs = _Refs()
    if path.name == "template.yaml":
        base, _ = iam_policies.refs(template, env)
        refs.update(base)
    else:
        refs.update({k: v.get("Default", PARAMETER_EXAMPLES.get(k, f"local-{k}"))
                     for k, v in template.get("Parameters", {}).items()})
        refs.update({"AWS::AccountId": "123456789012", "AWS::Region": local_stack.REGION,
                     "AWS::Partition": "aws", "AWS::StackName": "golden-ami-region",
                     "AWS::URLSuffix": "amazonaws.com"})
    conditions = _Conditions()
    out = []
    for logical, body in template.get("Resources", {}).items():
        props = body.get("Properties", {})
        found: list[tuple[str, Any]] = []
        for key in ("PolicyDocument", "KeyPolicy"):
            if key in props:
                found.append((key, props[key]))
        for n, item in enumerate(props.get("Policies", []) or []):
            if isinstance(item, dict) and "Statement" in item:
                found.append((f"Policies[{n}]", item))
            elif isinstance(item, dict) and "PolicyDocument" in item:
                found.append((item.get("PolicyName", f"Policies[{n}]"), item["PolicyDocument"]))
        for name, doc in found:
            rendered = iam_policies.render(doc, refs, conditions)
            rendered.setdefault("Version", "2012-10-17")
            out.append((f"{path.name}:{logical}:{name}", rendered))
    return out


class _Conditions(dict):
    def __getitem__(self, key: str) -> bool:
        return key in ("HasTargetRegions",)


def findings() -> list[dict[str, str]]:
    from parliament import analyze_policy_string

    out = []
    for path in TEMPLATES:
        for where, doc in _documents(path):
            key_or_resource = ":KeyPolicy" in where or any("Principal" in s for s in doc["Statement"])
            policy = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True,
                                           include_community_auditors=False)
            for f in policy.findings:
                if f.issue not in FAILING:
                    continue
                detail = f.detail if isinstance(f.detail, str) else json.dumps(f.detail, sort_keys=True, default=str)
                if key_or_resource and f.issue == "RESOURCE_MISMATCH":
                    continue  # a key or resource policy's Resource "*" means the resource itself
                sid = ""
                for st in doc["Statement"]:
                    if st.get("Sid") and st["Sid"] in json.dumps(f.location, default=str):
                        sid = st["Sid"]
                out.append({"where": where, "issue": f.issue, "detail": detail, "sid": sid})
    return out


def main() -> int:
    allowed = yaml.safe_load(ALLOWED.read_text()) or []
    for entry in allowed:
        if not str(entry.get("reason", "")).strip():
            print(f"{ALLOWED.name}: an allowed finding without a reason: {entry}")
            return 1
    found = findings()

    def is_allowed(f: dict[str, str]) -> bool:
        return any(a["where"] == f["where"] and a["issue"] == f["issue"]
                   and a.get("match", "") in f["detail"] for a in allowed)

    new = [f for f in found if not is_allowed(f)]
    stale = [a for a in allowed if not any(
        a["where"] == f["where"] and a["issue"] == f["issue"] and a.get("match", "") in f["detail"]
        for f in found)]
    for f in new:
        print(f"parliament: {f['where']} {f['issue']}: {f['detail']}")
    for a in stale:
        print(f"{ALLOWED.name}: no longer found, remove it: {a['where']} {a['issue']} {a.get('match', '')}")
    print(f"parliament: {len(found)} finding(s), {len(found) - len(new)} allowed with a reason, "
          f"{len(new)} not allowed, {len(stale)} stale allowance(s)")
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
