"""End-to-end: a family's own subnetId. The automation role may launch in any subnet of the bake
VPC (its RunInstances statement holds the subnet to ec2:Vpc), so a family baked in its own subnet
of that VPC runs under a policy AWS would allow; a subnet of another VPC is a call AWS would deny.
A family's own instanceProfile is refused by PlanRun (the role may pass only the stack's role)."""

import json

from local.stack import POINTER_PARAMETER_NAME, LocalStack

DEFAULT = {"name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
           "instanceType": "t3.small"}


def bake_subnets(stack: LocalStack, result) -> set[str]:
    ec2 = stack.client("ec2")
    found = ec2.describe_instances(Filters=[{"Name": "tag:golden-ami:execution",
                                             "Values": [result.execution_arn]}])
    return {i["SubnetId"] for r in found["Reservations"] for i in r["Instances"]}


def test_a_family_bakes_and_boots_in_its_own_subnet_of_the_bake_vpc(fresh: LocalStack):
    ec2 = fresh.client("ec2")
    own = ec2.create_subnet(VpcId=fresh.seed.vpc_id, CidrBlock="10.42.7.0/24")["Subnet"]["SubnetId"]
    fresh.set_targets([{**DEFAULT, "subnetId": own}])
    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    # The bake's and the boot test's instances ran there; the autouse IAM check then finds every
    # call, RunInstances in that subnet included, allowed.
    assert bake_subnets(fresh, result) == {own}


def test_a_subnet_outside_the_bake_vpc_is_a_launch_aws_would_deny(fresh: LocalStack):
    ec2 = fresh.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    elsewhere = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    fresh.set_targets([{**DEFAULT, "subnetId": elsewhere}])
    fresh.run()
    denials = fresh.iam.check()
    denied = {(d.call["principal"], d.call["action"], d.resource) for d in denials}
    assert ("automation", "ec2:RunInstances",
            f"arn:aws:ec2:eu-west-1:{fresh.seed.account_id}:subnet/{elsewhere}") in denied, denials


def test_a_familys_own_instance_profile_is_refused_by_name(fresh: LocalStack):
    fresh.set_targets([{**DEFAULT, "instanceProfile": "team-profile"}])
    result = fresh.run()
    assert result.status == "FAILED"
    root = result.root_cause or {}
    assert root.get("Error") == "ConfigError", root
    message = json.loads(root["Cause"])["errorMessage"]
    assert 'instanceProfile "team-profile" cannot be used' in message, message
