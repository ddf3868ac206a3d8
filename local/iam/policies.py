"""The identity policies of each principal of the stack, rendered from infra/template.yaml for the
local account, organization and regions, as CloudFormation would render them.

Principals (the names local/moto_ext/recording.py records):
- function:<binary>: the SAM function whose BuildProperties.Binary is <binary>; its Policies (inline
  statements and the stack's managed policies it references). SAM's AWSLambdaBasicExecutionRole
  (logs only) is left out: no call of the handlers goes to CloudWatch Logs.
- automation: BakeAutomationRole's inline policies (AutomationAssumeRole of the documents).
- instance: BakeInstanceRole's inline policies (the report upload; AmazonSSMManagedInstanceCore,
  an AWS managed policy for the agent's own channel, is not modelled).
- operator:approve / operator:deny: ApproverPolicy (what `golden-ami approve|deny` runs with).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import stack as local_stack

TEMPLATE = local_stack.TEMPLATE


@dataclass
class Env:
    """What the template's intrinsics resolve to locally."""
    account_id: str
    organization_id: str
    organization_arn: str
    golden_key_id: str
    pipeline_key_id: str = "pipeline-key"
    topic_arn: str = ""
    subnet_id: str = ""
    vpc_id: str = ""
    security_group_id: str = ""
    regions: list[str] = field(default_factory=lambda: [local_stack.REGION])

    @classmethod
    def of(cls, stack: Any) -> "Env":
        s = stack.seed
        return cls(account_id=s.account_id, organization_id=s.organization_id,
                   organization_arn=s.organization_arn,
                   golden_key_id=s.kms_key_arn.rsplit("/", 1)[-1],
                   pipeline_key_id=getattr(s, "pipeline_key_arn", "").rsplit("/", 1)[-1] or "pipeline-key",
                   topic_arn=s.topic_arn, subnet_id=s.subnet_id, vpc_id=s.vpc_id,
                   security_group_id=s.security_group_id, regions=list(stack.regions))


def refs(template: dict[str, Any], env: Env) -> tuple[dict[str, Any], dict[str, bool]]:
    region, account = local_stack.REGION, env.account_id
    params = {k: v.get("Default", "") for k, v in template["Parameters"].items()}
    targets = [r for r in env.regions if r != region]
    iam = f"arn:aws:iam::{account}"
    kms = f"arn:aws:kms:{region}:{account}:key"
    r: dict[str, Any] = {
        **params,
        "AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws",
        "AWS::StackName": local_stack.STACK_NAME, "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{local_stack.STACK_NAME}/*",
        "OrganizationId": env.organization_id, "OrganizationArn": env.organization_arn,
        "ImageNamePrefix": local_stack.IMAGE_NAME_PREFIX, "TargetRegions": targets,
        "BakeSubnetId": env.subnet_id, "BakeVpcId": env.vpc_id,
        "TargetsParameter": local_stack.TARGETS_PARAMETER_NAME,
        "Pointer": local_stack.POINTER_PARAMETER_NAME,
        "NotificationTopic": env.topic_arn, "NotificationTopic.TopicName": local_stack.TOPIC_NAME,
        "GoldenKey": env.golden_key_id, "GoldenKey.Arn": f"{kms}/{env.golden_key_id}",
        "PipelineKey": env.pipeline_key_id, "PipelineKey.Arn": f"{kms}/{env.pipeline_key_id}",
        "ReportBucket": local_stack.REPORT_BUCKET,
        "ReportBucket.Arn": f"arn:aws:s3:::{local_stack.REPORT_BUCKET}",
        "BakeSecurityGroup.GroupId": env.security_group_id,
        "BakeAutomationRole": local_stack.AUTOMATION_ROLE,
        "BakeAutomationRole.Arn": f"{iam}:role/{local_stack.AUTOMATION_ROLE}",
        "BakeInstanceRole": local_stack.BAKE_INSTANCE_ROLE,
        "BakeInstanceRole.Arn": f"{iam}:role/{local_stack.BAKE_INSTANCE_ROLE}",
        "BakeInstanceProfile": local_stack.BAKE_INSTANCE_PROFILE,
        "BakeInstanceProfile.Arn": f"{iam}:instance-profile/{local_stack.BAKE_INSTANCE_PROFILE}",
        "PipelineStateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{local_stack.STACK_NAME}",
        **{res: name for res, name in local_stack.DOCUMENT_NAMES.items()},
    }
    for name, res in template["Resources"].items():  # anything else: a stand-in physical name
        r.setdefault(name, f"{local_stack.STACK_NAME}-{name}")
        kind = {"AWS::Serverless::Function": f"lambda:{region}:{account}:function:",
                "AWS::SQS::Queue": f"sqs:{region}:{account}:", "AWS::IAM::Role": f"iam::{account}:role/",
                "AWS::Logs::LogGroup": f"logs:{region}:{account}:log-group:"}.get(res["Type"])
        r.setdefault(f"{name}.Arn", f"arn:aws:{kind}{local_stack.STACK_NAME}-{name}" if kind
                     else f"arn:aws:local:{region}:{account}:{name}")
    conditions = {"HasTargetRegions": bool(targets), "HasImageFamilies": False,
                  "ApprovalRequired": False, "DirectEncryption": False, "HasNotificationEmail": False}
    return r, conditions


def render(value: Any, r: dict[str, Any], conditions: dict[str, bool]) -> Any:
    """Ref, GetAtt, Sub, Join, Split, Select, If (a superset of local.stack.resolve_intrinsics)."""
    if isinstance(value, list):
        return [render(v, r, conditions) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (name, arg), = value.items()
        if name == "Ref":
            return r[arg]
        if name == "Fn::GetAtt":
            return r[".".join(arg)]
        if name == "Fn::Sub":
            if isinstance(arg, str):
                return local_stack._substitute(arg, r)
            text, variables = arg
            return local_stack._substitute(text, {**r, **{k: render(v, r, conditions)
                                                          for k, v in variables.items()}})
        if name == "Fn::Join":
            sep, items = arg
            return sep.join(str(v) for v in render(items, r, conditions))
        if name == "Fn::Split":
            sep, text = arg
            return [p for p in str(render(text, r, conditions)).split(sep)]
        if name == "Fn::Select":
            index, items = arg
            return render(items, r, conditions)[int(index)]
        if name == "Fn::If":
            cond, yes, no = arg
            return render(yes if conditions[cond] else no, r, conditions)
        if name.startswith("Fn::"):
            raise ValueError(f"unsupported intrinsic {name}")
    return {k: render(v, r, conditions) for k, v in value.items()}


def _documents(template: dict[str, Any], logical: str) -> list[tuple[str, dict[str, Any]]]:
    """(policy name, document) of a SAM function's Policies / a role's Policies; an inline
    policy is named <resource>.<name or index>, a managed one by its resource."""
    out = []
    for n, item in enumerate(template["Resources"][logical]["Properties"].get("Policies", [])):
        if isinstance(item, dict) and set(item) == {"Ref"}:
            res = template["Resources"][item["Ref"]]
            out.append((item["Ref"], res["Properties"]["PolicyDocument"]))
        elif isinstance(item, dict) and "Statement" in item:
            out.append((f"{logical}.inline{n}", item))
        elif isinstance(item, dict) and "PolicyDocument" in item:
            out.append((f"{logical}.{item.get('PolicyName', n)}", item["PolicyDocument"]))
        else:
            raise ValueError(f"a policy the evaluation cannot model: {item!r}")
    return out


def principal_policies(env: Env, template: dict[str, Any] | None = None
                       ) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """principal -> [(policy name, rendered document)]."""
    template = copy.deepcopy(template) if template is not None else local_stack.load_template()
    r, conditions = refs(template, env)
    res = template["Resources"]
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, body in res.items():
        if body["Type"] == "AWS::Serverless::Function":
            binary = body["Metadata"]["BuildProperties"]["Binary"]
            out[f"function:{binary}"] = _documents(template, name)
    out["automation"] = _documents(template, "BakeAutomationRole")
    out["instance"] = _documents(template, "BakeInstanceRole")
    approver = [("ApproverPolicy", res["ApproverPolicy"]["Properties"]["PolicyDocument"])]
    out["operator:approve"] = out["operator:deny"] = approver
    return {p: [(n, render(d, r, conditions)) for n, d in docs] for p, docs in out.items()}


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    return local_stack.load_template(path)


def dump(policies: dict[str, list[tuple[str, dict[str, Any]]]]) -> str:
    return json.dumps(policies, indent=1, default=str)


def key_policies(env: Env, template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """key id -> the rendered key policy of the stack's keys (the golden key's replicas keep its
    key id; infra/region.yaml gives them the same statements)."""
    template = template if template is not None else local_stack.load_template()
    r, conditions = refs(template, env)
    res = template["Resources"]
    return {env.golden_key_id: render(res["GoldenKey"]["Properties"]["KeyPolicy"], r, conditions),
            env.pipeline_key_id: render(res["PipelineKey"]["Properties"]["KeyPolicy"], r, conditions)}


def statement_locators(template: dict[str, Any]) -> list[tuple[str, str, list[Any], int]]:
    """(policy name as principal_policies names it, Sid, the statement list, index) of every
    identity-policy statement in the template (not key or resource policies)."""
    res = template["Resources"]
    out = []

    def walk(name: str, doc: dict[str, Any]) -> None:
        statements = doc["Statement"]
        for i, st in enumerate(statements):
            out.append((name, st.get("Sid", f"#{i}"), statements, i))

    for logical, body in res.items():
        props = body.get("Properties", {})
        if body["Type"] == "AWS::IAM::ManagedPolicy":
            walk(logical, props["PolicyDocument"])
        elif body["Type"] == "AWS::Serverless::Function":
            for n, item in enumerate(props.get("Policies", [])):
                if isinstance(item, dict) and "Statement" in item:
                    walk(f"{logical}.inline{n}", item)
        elif body["Type"] == "AWS::IAM::Role":
            for n, item in enumerate(props.get("Policies", [])):
                walk(f"{logical}.{item.get('PolicyName', n)}", item["PolicyDocument"])
    return out
