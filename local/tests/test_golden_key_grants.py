"""Who the golden key lets grant its use to Auto Scaling: an organization account's admin may
grant the key to the Auto Scaling service-linked role of their own account only, never of an
account outside the organization (infra/template.yaml and infra/region.yaml, statement
OrganizationGrantsForAutoScalingRole). Evaluated with the same key-policy evaluation the e2e
suite's IAM check uses (local/iam/evaluate.py), policy variables included."""

import pytest

from local.iam import evaluate as ev
from local.iam import policies as iam_policies
from local.stack import REPO, load_template, resolve_intrinsics

ORG = "o-a1b2c3d4e5"
MEMBER = "444455556666"
OUTSIDER = "777788889999"
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OPERATIONS = ["Decrypt", "DescribeKey", "CreateGrant", "GenerateDataKeyWithoutPlaintext",
              "ReEncryptFrom", "ReEncryptTo"]
ENV = iam_policies.Env(account_id="111122223333", organization_id=ORG,
                       organization_arn=f"arn:aws:organizations::111122223333:organization/{ORG}",
                       golden_key_id=KEY.rsplit("/", 1)[-1])


def slr(account: str) -> str:
    return (f"arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/"
            "AWSServiceRoleForAutoScaling")


def home_key_policy():
    return iam_policies.key_policies(ENV)[ENV.golden_key_id]


def replica_key_policy():
    template = load_template(REPO / "infra" / "region.yaml")
    refs = {"AWS::Partition": "aws", "AWS::Region": "eu-central-1",
            "AWS::AccountId": ENV.account_id, "OrganizationId": ORG}
    policy = template["Resources"]["GoldenKeyReplica"]["Properties"]["KeyPolicy"]
    return resolve_intrinsics(policy, refs)


def decision(policy, caller_account: str, grantee: str) -> str:
    ctx = ev.CaseInsensitiveDict({
        "aws:PrincipalAccount": caller_account, "aws:PrincipalOrgID": ORG,
        "kms:GranteePrincipal": grantee, "kms:GrantOperations": OPERATIONS,
        "aws:RequestedRegion": "eu-west-1"})
    return ev._key_policy_decision(policy, ENV.account_id, "kms:CreateGrant", KEY, ctx)


@pytest.mark.parametrize("policy", [home_key_policy, replica_key_policy], ids=["home", "replica"])
def test_a_member_grants_its_own_auto_scaling_role_and_no_other_accounts(policy):
    policy = policy()
    # The caller is in another account than the key's: only a statement that names it (here
    # Principal "*" with conditions: "direct") can allow it; the account's own root statement
    # delegates to the key account's IAM, which does not govern other accounts' principals.
    assert decision(policy, MEMBER, slr(MEMBER)) == "direct"
    # The grantee in an account outside the organization (or any other account): no statement
    # allows it, whoever in the organization asks.
    assert decision(policy, MEMBER, slr(OUTSIDER)) != "direct"
    assert decision(policy, MEMBER, slr("*")) != "direct"


def test_a_policy_variable_the_request_lacks_matches_nothing():
    doc = {"Statement": [{"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": "*",
                          "Condition": {"StringLike": {"kms:GranteePrincipal":
                                                       "arn:aws:iam::${aws:PrincipalAccount}:role/*"}}}]}
    ctx = ev.CaseInsensitiveDict({"kms:GranteePrincipal": slr(MEMBER)})
    assert not ev.policy_has_matching_statement(ev.with_variables(doc, ctx), "Allow",
                                                "kms:CreateGrant", KEY, ctx)
    ctx["aws:PrincipalAccount"] = MEMBER
    assert ev.policy_has_matching_statement(ev.with_variables(doc, ctx), "Allow",
                                            "kms:CreateGrant", KEY, ctx)
