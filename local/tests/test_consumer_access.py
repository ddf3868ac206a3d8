"""What infra/consumer-access.yaml lets a consumer account's roles do: use the golden key and
read the pointer in every region the pipeline publishes to (the key's replicas keep its key id;
each region has its own pointer of the same name), and nothing of another key, account or
parameter. Evaluated with the e2e suite's IAM evaluation (local/iam/evaluate.py)."""

import pytest

from local.iam import evaluate as ev
from local.iam import policies as iam_policies
from local.stack import REPO, load_template

PIPELINE = "111122223333"
CONSUMER = "444455556666"
KEY_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"
KEY = f"arn:aws:kms:eu-west-1:{PIPELINE}:key/{KEY_ID}"
POINTER = f"arn:aws:ssm:eu-west-1:{PIPELINE}:parameter/golden-ami/current"


def consumer_policy():
    template = load_template(REPO / "infra" / "consumer-access.yaml")
    refs = {"AWS::Partition": "aws", "AWS::Region": "eu-central-1", "AWS::AccountId": CONSUMER,
            "GoldenKeyArn": KEY, "PointerParameterArn": POINTER}
    document = template["Resources"]["GoldenAmiConsumerPolicy"]["Properties"]["PolicyDocument"]
    return [("GoldenAmiConsumerPolicy", iam_policies.render(document, refs, {}))]


def allowed(action: str, resource: str, region: str, **context) -> bool:
    call = {"principal": "consumer", "action": action, "region": region,
            "context": {"aws:RequestedRegion": region, "aws:PrincipalAccount": CONSUMER,
                        **context},
            "resources": [{"arn": resource, "context": {}}]}
    # The key policy lets the consumer's account in (as the golden key's organization statements
    # do): the consumer's own IAM policy then decides, which is what this file grants.
    delegate = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CONSUMER}:root"},
                               "Action": "kms:*", "Resource": "*"}]}
    denials = ev.evaluate([call], {"consumer": consumer_policy()}, key_policy=lambda arn: delegate,
                          account=CONSUMER)
    return not denials


@pytest.mark.parametrize("region", ["eu-west-1", "eu-central-1", "us-east-1"])
def test_a_launch_in_any_target_region_may_use_that_regions_replica_and_pointer(region):
    replica = f"arn:aws:kms:{region}:{PIPELINE}:key/{KEY_ID}"
    for action in ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom",
                   "kms:GenerateDataKeyWithoutPlaintext"]:
        assert allowed(action, replica, region), action
    assert allowed("kms:CreateGrant", replica, region, **{"kms:GrantIsForAWSResource": "true"})
    pointer = f"arn:aws:ssm:{region}:{PIPELINE}:parameter/golden-ami/current"
    assert allowed("ssm:GetParameter", pointer, region)


def test_nothing_of_another_key_account_or_parameter():
    assert not allowed("kms:Decrypt", f"arn:aws:kms:eu-west-1:{PIPELINE}:key/mrk-other", "eu-west-1")
    assert not allowed("kms:Decrypt", f"arn:aws:kms:eu-west-1:999988887777:key/{KEY_ID}", "eu-west-1")
    assert not allowed("kms:CreateGrant", KEY, "eu-west-1", **{"kms:GrantIsForAWSResource": "false"})
    assert not allowed("ssm:GetParameter", f"arn:aws:ssm:eu-west-1:{PIPELINE}:parameter/golden-ami/other",
                       "eu-west-1")
