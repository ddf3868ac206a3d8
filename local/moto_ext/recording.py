"""Who called what: every AWS request that reaches the extension, and every call an automation
step, an instance or AWS itself makes on someone's behalf, recorded with the calling principal,
the IAM action, the resources that action authorizes on and the request's condition context, so
that local/iam can evaluate each against the caller's policies from the templates (moto enforces
no IAM at all).

The principal:
- a Lambda function: its SDK's app name, `app/<AWS_LAMBDA_FUNCTION_NAME>` in the User-Agent
  (crates/core/src/deps.rs; Lambda and `cargo lambda watch` set the variable);
- "operator": the Rust SDK without an app name (the operator CLI, crates/cli);
- "automation": an Automation document step (automation.py runs them; the AutomationAssumeRole);
- "instance": the bake / test instance's own calls (the report upload; the instance profile's role);
- the test harness (boto3 / botocore, no app name) is no principal of the stack: not recorded.

Each record: {"principal", "action", "region", "resources": [{"arn", "context"}], "context",
"via"}; `context` holds the request-wide keys (aws:RequestedRegion, aws:RequestTag/*,
aws:TagKeys, kms:ViaService, iam:PassedToService, ...), each resource's own `context` its keys
(aws:ResourceTag/* as the resource was before the request, ec2:Vpc, ssm:resourceTag/*, ...); a
resource "*" stands for an action that has no resource-level permissions. `via` names the call a
record is implied by (e.g. "ec2:CopyImage" for the KMS operations EC2 makes with the caller's
rights). An operation this module has no model for is recorded with `unmodeled`: the evaluation
fails on it rather than guess.

Admin API (admin.py): GET /_golden/calls (the records so far), POST /_golden/calls/take (the
records, and forget them), POST /_golden/calls/clear. POST /_golden/reset does not clear them: a
test's calls are taken after the test, before the next test resets.

Pages followed (the resource types and condition keys per action, the implied calls):
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
  (RunInstances: image, instance, network-interface, security-group, subnet, volume, snapshot;
  ec2:Vpc on subnet / security-group / network-interface, ec2:InstanceProfile and
  ec2:MetadataHttpTokens on instance; CreateImage: image, instance, snapshot; CopyImage: image,
  snapshot; CreateTags with ec2:CreateAction; aws:RequestTag / aws:TagKeys / aws:ResourceTag)
- https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html
  (tagging on create: ec2:CreateTags is authorized with ec2:CreateAction = the creating action)
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html
  (SendCommand: document, instance, the output bucket; ssm:resourceTag/*; StartAutomationExecution:
  automation-definition, document, automation-execution; parameter ARNs)
- https://docs.aws.amazon.com/systems-manager/latest/userguide/automation-setup-iam.html
  (iam:PassRole of the AutomationAssumeRole, iam:PassedToService ssm.amazonaws.com)
- https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/iam-roles-for-amazon-ec2.html#permission-to-pass-iam-roles
  (RunInstances with an instance profile: iam:PassRole of its role, PassedToService ec2)
- https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html
  (EC2 uses the volumes' keys with the caller's rights: kms:CreateGrant, Decrypt, DescribeKey,
  GenerateDataKeyWithoutPlaintext, ReEncrypt*; kms:ViaService ec2.<region>.amazonaws.com)
- https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
  (an aws:ec2:image value is validated with the caller's ec2:DescribeImages)
- https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-instance-permissions.html
  (the SSM agent's S3 output: s3:PutObject, s3:GetEncryptionConfiguration, kms:GenerateDataKey
  with the instance profile's role)
- https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html (publishing to an encrypted
  topic: kms:GenerateDataKey and kms:Decrypt with the publisher's rights, via SNS)
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Iterable
from urllib.parse import parse_qs, unquote

from moto.core import DEFAULT_ACCOUNT_ID

_LOCK = threading.Lock()
_CALLS: list[dict[str, Any]] = []
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_APP = re.compile(r"(?:^|\s)app/([A-Za-z0-9!#$%&'*+\-.^_`|~]+)")
_KEY_OPS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
            "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo")
# AWS RAM is a REST API: its operations are paths (the RAM API reference, each operation's URI).
_RAM_PATHS = {"getresourceshares": "GetResourceShares", "associateresourceshare": "AssociateResourceShare",
              "getresourceshareassociations": "GetResourceShareAssociations",
              "disassociateresourceshare": "DisassociateResourceShare"}
_IAM_PREFIX = {"states": "states", "monitoring": "cloudwatch", "email": "ses"}


# ---- the records -----------------------------------------------------------------------------

def add(principal: str, action: str, region: str, resources: Iterable[tuple[str, dict]] = (("*", {}),),
        context: dict[str, Any] | None = None, via: str | None = None, **extra: Any) -> None:
    rec = {"principal": principal, "action": action, "region": region,
           "resources": [{"arn": arn, "context": ctx} for arn, ctx in resources],
           "context": {"aws:RequestedRegion": region, "aws:SecureTransport": "true",
                       **_org_context(), **(context or {})},
           **({"via": via} if via else {}), **extra}
    with _LOCK:
        _CALLS.append(rec)


def calls(take: bool = False) -> list[dict[str, Any]]:
    with _LOCK:
        out = list(_CALLS)
        if take:
            _CALLS.clear()
    return out


def clear() -> None:
    with _LOCK:
        _CALLS.clear()


def _org_context() -> dict[str, str]:
    from moto.organizations.models import organizations_backends
    org = getattr(organizations_backends[DEFAULT_ACCOUNT_ID]["aws"], "org", None)
    ctx = {"aws:PrincipalAccount": DEFAULT_ACCOUNT_ID}
    if org is not None:
        ctx["aws:PrincipalOrgID"] = org.id
    return ctx


# ---- the HTTP hook (admin.py calls it for every AWS request) ---------------------------------

def principal_of(user_agent: str) -> str | None:
    """The stack principal a User-Agent names; None for the test harness (boto3)."""
    app = _APP.search(user_agent)
    if app:
        return f"function:{app.group(1)}"
    if "aws-sdk-rust" in user_agent:
        return "operator"
    return None if ("Boto3" in user_agent or "Botocore" in user_agent) else f"unknown:{user_agent[:80]}"


def record_request(environ: dict[str, Any], body: bytes) -> None:
    principal = principal_of(environ.get("HTTP_USER_AGENT", ""))
    if principal is None:
        return
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not scope:
        return
    region, service = scope.group(1), scope.group(2)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        operation = target.rsplit(".", 1)[-1]
        params = json.loads(body or b"{}")
    elif service == "s3":
        operation, params = _s3_operation(environ), {}
    elif service == "ram":
        path = environ.get("PATH_INFO", "").strip("/").split("/")[0]
        operation = _RAM_PATHS.get(path, path)
        params = json.loads(body or b"{}")
    else:
        form = parse_qs(environ.get("QUERY_STRING", ""))
        form.update(parse_qs(body.decode("utf-8", "replace")))
        params = {k: v[0] for k, v in form.items()}
        operation = params.get("Action", "")
    prefix = _IAM_PREFIX.get(service, service)
    try:
        model = _MODELS.get(f"{prefix}:{operation}")
        if model is None:
            add(principal, f"{prefix}:{operation}", region, unmodeled=True)
        else:
            model(principal, region, params)
    except Exception as exc:  # never break the request: the evaluation names the gap
        add(principal, f"{prefix}:{operation}", region, unmodeled=True,
            error=f"{type(exc).__name__}: {exc}")


def _s3_operation(environ: dict[str, Any]) -> str:
    method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
    return {"PUT": "PutObject" if path.strip("/").count("/") else "CreateBucket",
            "GET": "GetObject" if path.strip("/").count("/") else "ListBucket"}.get(method, method)


# ---- ARNs and resource state -------------------------------------------------------------------

def ec2_arn(region: str, resource_id: str) -> str:
    kind = {"ami": "image", "snap": "snapshot", "i": "instance", "vol": "volume",
            "subnet": "subnet", "sg": "security-group", "eni": "network-interface",
            "vpc": "vpc"}[resource_id.split("-", 1)[0]]
    account = "" if kind in ("image", "snapshot") else DEFAULT_ACCOUNT_ID
    return f"arn:aws:ec2:{region}:{account}:{kind}/{resource_id}"


def ec2_tags(region: str, resource_id: str, prefix: str = "aws:ResourceTag/") -> dict[str, str]:
    from moto.ec2.models import ec2_backends
    tags = ec2_backends[DEFAULT_ACCOUNT_ID][region].tags.get(resource_id, {})
    return {f"{prefix}{k}": v for k, v in tags.items()}


def _ec2_resource(region: str, resource_id: str, **more: Any) -> tuple[str, dict]:
    return ec2_arn(region, resource_id), {**ec2_tags(region, resource_id), **more}


def _indexed(params: dict[str, str], prefix: str) -> list[str]:
    """Values of Prefix.1, Prefix.2, ... (EC2 query lists)."""
    found = []
    for n in range(1, 1000):
        value = params.get(f"{prefix}.{n}")
        if value is None:
            return found
        found.append(value)
    return found


def _query_tags(params: dict[str, str], prefix: str) -> dict[str, str]:
    return {params[f"{prefix}.{n}.Key"]: params.get(f"{prefix}.{n}.Value", "")
            for n in range(1, 100) if f"{prefix}.{n}.Key" in params}


def _tag_specs(params: dict[str, str]) -> dict[str, dict[str, str]]:
    """TagSpecification.N (query) -> resource type -> tags."""
    out: dict[str, dict[str, str]] = {}
    for n in range(1, 20):
        kind = params.get(f"TagSpecification.{n}.ResourceType")
        if kind is None:
            break
        out.setdefault(kind, {}).update(_query_tags(params, f"TagSpecification.{n}.Tag"))
    return out


def request_tags(tags: dict[str, str]) -> dict[str, Any]:
    ctx: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    if tags:
        ctx["aws:TagKeys"] = sorted(tags)
    return ctx


def tag_on_create(principal: str, region: str, create_action: str,
                  specs: dict[str, dict[str, str]], arns: dict[str, str], via: str) -> None:
    """ec2:CreateTags for each resource type tagged in a creating call (ec2:CreateAction)."""
    for kind, tags in specs.items():
        if kind in arns:
            add(principal, "ec2:CreateTags", region, [(arns[kind], {})],
                {"ec2:CreateAction": create_action, **request_tags(tags)}, via=via)


def key_arn(region: str, key_ref: str | None) -> str | None:
    if not key_ref:
        return None
    from moto.kms.models import kms_backends
    backend = kms_backends[DEFAULT_ACCOUNT_ID][region]
    try:
        key_id = backend.any_id_to_key_id(key_ref) if not key_ref.startswith("arn:") or ":alias/" in key_ref \
            else key_ref.rsplit("/", 1)[-1]
        return backend.keys[key_id].arn
    except Exception:
        return key_ref if key_ref.startswith("arn:") else None


def ec2_uses_keys(principal: str, region: str, keys: Iterable[tuple[str, str]], via: str) -> None:
    """What EC2 does with the volumes' keys on the caller's behalf (ebs-encryption-requirements)."""
    for key, key_region in sorted(set(keys)):
        for action in _KEY_OPS:
            extra = {"kms:GrantIsForAWSResource": "true"} if action == "kms:CreateGrant" else {}
            add(principal, action, key_region, [(key, {})],
                {"kms:ViaService": f"ec2.{key_region}.amazonaws.com", **extra}, via=via)


def pass_role(principal: str, region: str, role_arn: str, service: str, via: str) -> None:
    add(principal, "iam:PassRole", region, [(role_arn, {})],
        {"iam:PassedToService": service}, via=via)


def profile_role(profile: dict[str, str]) -> tuple[str, str] | None:
    """(profile ARN, its role's ARN) of {"Arn"} or {"Name"}."""
    from moto.iam.models import iam_backends
    backend = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
    try:
        found = (backend.get_instance_profile_by_arn(profile["Arn"]) if profile.get("Arn")
                 else backend.get_instance_profile(profile["Name"]))
    except Exception:
        return None
    return found.arn, found.roles[0].arn if found.roles else ""


def _image_snapshots(region: str, image_id: str) -> list[Any]:
    from moto.ec2.models import ec2_backends
    image = ec2_backends[DEFAULT_ACCOUNT_ID][region].amis.get(image_id)
    snap = getattr(image, "ebs_snapshot", None) if image is not None else None
    return [snap] if snap is not None else []


# ---- the modelled operations -----------------------------------------------------------------

def _star(action: str):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        add(principal, action, region)
    return model


def _image_op(action: str):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        add(principal, action, region, [_ec2_resource(region, params["ImageId"])])
    return model


def _ec2_ids(action: str, key: str):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        ids = _indexed(params, key) or ([params[key]] if key in params else [])
        add(principal, action, region, [_ec2_resource(region, i) for i in ids])
    return model


def _tags(action: str):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        tags = _query_tags(params, "Tag")
        add(principal, action, region,
            [_ec2_resource(region, i) for i in _indexed(params, "ResourceId")], request_tags(tags))
    return model


def _copy_image(principal: str, region: str, params: dict[str, Any]) -> None:
    source_region, source = params["SourceRegion"], params["SourceImageId"]
    specs = _tag_specs(params)
    new = {"image": f"arn:aws:ec2:{region}::image/*", "snapshot": f"arn:aws:ec2:{region}::snapshot/*"}
    add(principal, "ec2:CopyImage", region,
        [_ec2_resource(source_region, source), (new["image"], {}), (new["snapshot"], {})],
        request_tags(specs.get("image", {})))
    tag_on_create(principal, region, "CopyImage", specs, new, "ec2:CopyImage")
    keys = [(s.kms_key_id, source_region) for s in _image_snapshots(source_region, source)
            if s.encrypted and s.kms_key_id]
    destination = key_arn(region, params.get("KmsKeyId"))
    if destination:
        keys.append((destination, region))
    keys = [(key_arn(r, k) or k, r) for k, r in keys]
    ec2_uses_keys(principal, region, keys, "ec2:CopyImage")


def _ssm_parameter(action: str, name_key: str = "Name"):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        name = params[name_key]
        if name_key == "Name" and not name.startswith("arn:"):
            name = name.split(":", 1)[0]  # Name:version / Name:label selects; the resource is the parameter
        # AWS's public parameters (/aws/service/...) are AWS's: their ARNs name no account
        # (https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-public-parameters.html).
        owner = "" if name.startswith("/aws/service/") else DEFAULT_ACCOUNT_ID
        arn = name if name.startswith("arn:") else \
            f"arn:aws:ssm:{region}:{owner}:parameter/{name.lstrip('/')}"
        ctx = {}
        if action == "ssm:PutParameter":
            ctx["ssm:Overwrite"] = "true" if params.get("Overwrite") else "false"
            ctx.update(request_tags({t["Key"]: t["Value"] for t in params.get("Tags", [])}))
        if action == "ssm:GetParametersByPath":
            ctx["ssm:Recursive"] = "true" if params.get("Recursive") else "false"
        add(principal, action, region, [(arn, {})], ctx)
        if action == "ssm:PutParameter" and params.get("DataType") == "aws:ec2:image":
            add(principal, "ec2:DescribeImages", region, via="ssm:PutParameter")
    return model


def _start_automation(principal: str, region: str, params: dict[str, Any]) -> None:
    name = params["DocumentName"]
    base = f"arn:aws:ssm:{region}:{DEFAULT_ACCOUNT_ID}"
    version = params.get("DocumentVersion", "$DEFAULT")
    add(principal, "ssm:StartAutomationExecution", region,
        [(f"{base}:automation-definition/{name}:{version}", {}), (f"{base}:document/{name}", {}),
         (f"{base}:automation-execution/*", {})])
    for role in (params.get("Parameters") or {}).get("AutomationAssumeRole", []):
        pass_role(principal, region, role, "ssm.amazonaws.com", "ssm:StartAutomationExecution")


def _automation_execution(action: str):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        add(principal, action, region, [(f"arn:aws:ssm:{region}:{DEFAULT_ACCOUNT_ID}:"
                                         f"automation-execution/{params['AutomationExecutionId']}", {})])
    return model


def _kms_key(action: str):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        add(principal, action, region, [(key_arn(region, params["KeyId"]) or params["KeyId"], {})])
    return model


def _associate_share(principal: str, region: str, params: dict[str, Any]) -> None:
    from moto.ram.models import ram_backends
    arn = params["resourceShareArn"]
    share = next((s for s in ram_backends[DEFAULT_ACCOUNT_ID][region].resource_shares
                  if s.arn == arn), None)
    ctx: dict[str, Any] = {"ram:RequestedResourceType": "ssm:Parameter"} \
        if any(":ssm:" in r and ":parameter/" in r for r in params.get("resourceArns", [])) else {}
    res_ctx = {"ram:ResourceShareName": share.name,
               "ram:AllowsExternalPrincipals": str(share.allow_external_principals).lower()} \
        if share is not None else {}
    add(principal, "ram:AssociateResourceShare", region, [(arn, res_ctx)],
        {**ctx, **({"ram:ResourceShareName": share.name} if share is not None else {})})


def _publish(principal: str, region: str, params: dict[str, Any]) -> None:
    from moto.sns.models import sns_backends
    arn = params.get("TopicArn") or params.get("TargetArn")
    add(principal, "sns:Publish", region, [(arn, {})])
    topic = sns_backends[DEFAULT_ACCOUNT_ID][region].topics.get(arn)
    key = key_arn(region, getattr(topic, "kms_master_key_id", None)) if topic else None
    if key:
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            add(principal, action, region, [(key, {})],
                {"kms:ViaService": f"sns.{region}.amazonaws.com"}, via="sns:Publish")


def _describe_stacks(principal: str, region: str, params: dict[str, Any]) -> None:
    name = params.get("StackName", "*")
    arn = name if name.startswith("arn:") else \
        f"arn:aws:cloudformation:{region}:{DEFAULT_ACCOUNT_ID}:stack/{name}/*"
    add(principal, "cloudformation:DescribeStacks", region, [(arn, {})])


def _execution(action: str, key: str):
    def model(principal: str, region: str, params: dict[str, Any]) -> None:
        add(principal, action, region, [(params[key], {})])
    return model


_MODELS: dict[str, Any] = {
    **{f"ec2:{op}": _star(f"ec2:{op}") for op in (
        "DescribeImages", "DescribeSnapshots", "DescribeInstances", "DescribeInstanceStatus",
        "DescribeRegions", "DescribeSubnets", "DescribeSecurityGroups", "DescribeVpcs")},
    **{f"ec2:{op}": _image_op(f"ec2:{op}") for op in (
        "DescribeImageAttribute", "ModifyImageAttribute", "DeregisterImage", "DisableImage",
        "EnableImage", "EnableImageDeprecation", "DisableImageDeprecation",
        "EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection")},
    "ec2:DeleteSnapshot": _ec2_ids("ec2:DeleteSnapshot", "SnapshotId"),
    "ec2:TerminateInstances": _ec2_ids("ec2:TerminateInstances", "InstanceId"),
    "ec2:StopInstances": _ec2_ids("ec2:StopInstances", "InstanceId"),
    "ec2:CreateTags": _tags("ec2:CreateTags"),
    "ec2:DeleteTags": _tags("ec2:DeleteTags"),
    "ec2:CopyImage": _copy_image,
    **{f"ssm:{op}": _ssm_parameter(f"ssm:{op}") for op in (
        "GetParameter", "PutParameter", "DeleteParameter", "GetParameterHistory",
        "LabelParameterVersion")},
    "ssm:GetParametersByPath": _ssm_parameter("ssm:GetParametersByPath", "Path"),
    "ssm:PutResourcePolicy": _ssm_parameter("ssm:PutResourcePolicy", "ResourceArn"),
    "ssm:GetResourcePolicies": _ssm_parameter("ssm:GetResourcePolicies", "ResourceArn"),
    "ssm:StartAutomationExecution": _start_automation,
    "ssm:GetAutomationExecution": _automation_execution("ssm:GetAutomationExecution"),
    "ssm:StopAutomationExecution": _automation_execution("ssm:StopAutomationExecution"),
    "ssm:DescribeAutomationExecutions": _star("ssm:DescribeAutomationExecutions"),
    "kms:DescribeKey": _kms_key("kms:DescribeKey"),
    "ram:GetResourceShares": _star("ram:GetResourceShares"),
    "ram:GetResourceShareAssociations": _star("ram:GetResourceShareAssociations"),
    "ram:AssociateResourceShare": _associate_share,
    "sns:Publish": _publish,
    "organizations:DescribeOrganization": _star("organizations:DescribeOrganization"),
    "sts:GetCallerIdentity": lambda p, r, params: None,  # needs no permission (STS API reference)
    "cloudformation:DescribeStacks": _describe_stacks,
    "states:SendTaskSuccess": _star("states:SendTaskSuccess"),
    "states:SendTaskFailure": _star("states:SendTaskFailure"),
    "states:SendTaskHeartbeat": _star("states:SendTaskHeartbeat"),
    "states:DescribeExecution": _execution("states:DescribeExecution", "executionArn"),
    "states:StopExecution": _execution("states:StopExecution", "executionArn"),
    "states:StartExecution": _execution("states:StartExecution", "stateMachineArn"),
}


def modelled_actions() -> list[str]:
    return sorted(_MODELS)


# ---- automation steps and the instances' own calls (wrapped around automation.py, commands.py) --

AUTOMATION = "automation"
INSTANCE = "instance"


def _subnet_vpc(region: str, subnet_id: str | None) -> str | None:
    from moto.ec2.models import ec2_backends
    if not subnet_id:
        return None
    try:
        vpc = ec2_backends[DEFAULT_ACCOUNT_ID][region].get_subnet(subnet_id).vpc_id
    except Exception:
        return None
    return f"arn:aws:ec2:{region}:{DEFAULT_ACCOUNT_ID}:vpc/{vpc}"


def record_run_instances(region: str, inputs: dict[str, Any]) -> None:
    specs = {s.get("ResourceType"): {t["Key"]: t["Value"] for t in s.get("Tags", [])}
             for s in inputs.get("TagSpecifications", [])}
    nics = inputs.get("NetworkInterfaces") or []
    subnet = inputs.get("SubnetId") or next((n.get("SubnetId") for n in nics if n.get("SubnetId")), None)
    groups = list(inputs.get("SecurityGroupIds") or []) + [g for n in nics for g in n.get("Groups", [])]
    vpc = _subnet_vpc(region, subnet)
    vpc_ctx = {"ec2:Vpc": vpc} if vpc else {}
    profile = inputs.get("IamInstanceProfile") or {}
    found = profile_role(profile) if profile else None
    instance_ctx: dict[str, Any] = {
        "ec2:MetadataHttpTokens": (inputs.get("MetadataOptions") or {}).get("HttpTokens", "optional"),
        **request_tags(specs.get("instance", {}))}
    if found:
        instance_ctx["ec2:InstanceProfile"] = found[0]
    image_id = inputs.get("ImageId", "")
    snapshots = _image_snapshots(region, image_id)
    resources = [(f"arn:aws:ec2:{region}:{DEFAULT_ACCOUNT_ID}:instance/*", instance_ctx),
                 _ec2_resource(region, image_id),
                 (f"arn:aws:ec2:{region}:{DEFAULT_ACCOUNT_ID}:network-interface/*",
                  {**vpc_ctx, **({"ec2:Subnet": ec2_arn(region, subnet)} if subnet else {})}),
                 (f"arn:aws:ec2:{region}:{DEFAULT_ACCOUNT_ID}:volume/*",
                  request_tags(specs.get("volume", {})))]
    resources += [_ec2_resource(region, s.id) for s in snapshots]
    if subnet:
        resources.append(_ec2_resource(region, subnet, **vpc_ctx))
    resources += [_ec2_resource(region, g, **vpc_ctx) for g in groups]
    add(AUTOMATION, "ec2:RunInstances", region, resources)
    tag_on_create(AUTOMATION, region, "RunInstances", specs,
                  {"instance": resources[0][0], "volume": resources[3][0]}, "ec2:RunInstances")
    if found and found[1]:
        pass_role(AUTOMATION, region, found[1], "ec2.amazonaws.com", "ec2:RunInstances")
    keys = [(s.kms_key_id, region) for s in snapshots if s.encrypted and s.kms_key_id]
    keys += [(m["Ebs"]["KmsKeyId"], region) for m in inputs.get("BlockDeviceMappings") or []
             if (m.get("Ebs") or {}).get("KmsKeyId")]
    ec2_uses_keys(AUTOMATION, region, [(key_arn(region, k) or k, r) for k, r in keys],
                  "ec2:RunInstances")


def record_create_image(region: str, inputs: dict[str, Any]) -> None:
    specs: dict[str, dict[str, str]] = {}
    for spec in inputs.get("TagSpecifications", []):
        specs.setdefault(spec.get("ResourceType"), {}).update(
            {t["Key"]: t["Value"] for t in spec.get("Tags", [])})
    new = {"image": f"arn:aws:ec2:{region}::image/*", "snapshot": f"arn:aws:ec2:{region}::snapshot/*"}
    add(AUTOMATION, "ec2:CreateImage", region,
        [_ec2_resource(region, inputs.get("InstanceId", "")),
         (new["image"], request_tags(specs.get("image", {}))),
         (new["snapshot"], request_tags(specs.get("snapshot", {})))])
    tag_on_create(AUTOMATION, region, "CreateImage", specs, new, "ec2:CreateImage")


def record_send_command(region: str, inputs: dict[str, Any]) -> None:
    name = inputs.get("DocumentName", "")
    owner = "" if name.startswith("AWS-") else DEFAULT_ACCOUNT_ID
    resources = [(f"arn:aws:ssm:{region}:{owner}:document/{name}", {})]
    for iid in inputs.get("InstanceIds") or []:
        resources.append(_ec2_resource(region, iid, **ec2_tags(region, iid, "ssm:resourceTag/")))
    if inputs.get("OutputS3BucketName"):
        resources.append((f"arn:aws:s3:::{inputs['OutputS3BucketName']}", {}))
    add(AUTOMATION, "ssm:SendCommand", region, resources)


def record_upload(region: str, bucket: str, key: str) -> None:
    """The SSM agent's upload of a command's output, with the instance profile's role."""
    from moto.s3.models import s3_backends
    add(INSTANCE, "s3:GetEncryptionConfiguration", region, [(f"arn:aws:s3:::{bucket}", {})])
    add(INSTANCE, "s3:PutObject", region, [(f"arn:aws:s3:::{bucket}/{key}", {})])
    try:
        rules = (s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(bucket).encryption or {}).get("Rule", {})
    except Exception:
        rules = {}
    default = (rules[0] if isinstance(rules, list) and rules else rules) if rules else {}
    default = default.get("ApplyServerSideEncryptionByDefault", {})
    if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
        add(INSTANCE, "kms:GenerateDataKey", region,
            [(key_arn(region, default["KMSMasterKeyID"]) or default["KMSMasterKeyID"], {})],
            {"kms:ViaService": f"s3.{region}.amazonaws.com"}, via="s3:PutObject")


def install() -> None:
    """Wrap the automation's backend calls and the agent's upload (idempotent by marker)."""
    from . import automation, commands

    cls = automation.Execution
    if getattr(cls, "_recorded", False):
        return
    cls._recorded = True

    def before(method: Any, hook: Any) -> Any:
        def wrapped(self: Any, *args: Any) -> Any:
            inputs = args[-1] if args else {}
            try:
                hook(self, inputs)
            except Exception as exc:  # never break a step: the evaluation names the gap
                add(AUTOMATION, f"record:{method.__name__}", self.region, unmodeled=True,
                    error=f"{type(exc).__name__}: {exc}")
            return method(self, *args)
        return wrapped

    def state_change(self: Any, inputs: dict[str, Any]) -> None:
        action = {"stopped": "ec2:StopInstances", "running": "ec2:StartInstances",
                  "terminated": "ec2:TerminateInstances"}.get(inputs.get("DesiredState"))
        if action:
            add(AUTOMATION, action, self.region,
                [_ec2_resource(self.region, i) for i in inputs.get("InstanceIds", [])])

    def wait_for(self: Any, inputs: dict[str, Any]) -> None:
        add(AUTOMATION, f"{inputs.get('Service')}:{inputs.get('Api')}", self.region)

    def create_tags(self: Any, inputs: dict[str, Any]) -> None:
        tags = {t["Key"]: t["Value"] for t in inputs.get("Tags", [])}
        add(AUTOMATION, "ec2:CreateTags", self.region,
            [_ec2_resource(self.region, i) for i in inputs.get("ResourceIds", [])], request_tags(tags))

    def execute_api(self: Any, inputs: dict[str, Any]) -> None:
        # At the step's request (not _create_image_api, which a halfway fault also calls with
        # the tags taken off to leave an untagged image: AWS authorized the tagged request).
        api = (inputs.get("Service"), inputs.get("Api"))
        if api == ("ec2", "RunInstances"):
            record_run_instances(self.region, inputs)
        elif api == ("ec2", "CreateImage"):
            record_create_image(self.region, inputs)

    cls._execute_aws_api = before(cls._execute_aws_api, execute_api)
    cls._create_image = before(cls._create_image, lambda s, i: record_create_image(s.region, i))
    cls._run_command = before(cls._run_command, lambda s, i: record_send_command(s.region, i))
    cls._change_instance_state = before(cls._change_instance_state, state_change)
    cls._wait_for_property = before(cls._wait_for_property, wait_for)
    cls._create_tags = before(cls._create_tags, create_tags)

    upload = commands._upload

    def recorded_upload(execution: Any, inputs: dict[str, Any], command_id: str, instance_id: str,
                        plugin: str, stdout: str) -> None:
        prefix = (inputs.get("OutputS3KeyPrefix") or "").strip("/")
        key = "/".join(p for p in (prefix, command_id, instance_id, "awsrunShellScript", plugin,
                                   "stdout") if p)
        record_upload(execution.region, inputs.get("OutputS3BucketName", ""), key)
        upload(execution, inputs, command_id, instance_id, plugin, stdout)

    commands._upload = recorded_upload
