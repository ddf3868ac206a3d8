"""infra/guardrails/: the Allowed AMIs declarative policy (audit, then enforce) and the SCP that
denies launching from images the golden account does not own. Each file is rendered with sample
values and checked against the documented shapes (see infra/guardrails/README.md for the pages);
every check is also shown to reject a broken copy."""

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUARDRAILS = REPO / "infra" / "guardrails"
AUDIT = GUARDRAILS / "allowed-amis.audit.json"
ENFORCE = GUARDRAILS / "allowed-amis.enforce.json"
SCP = GUARDRAILS / "deny-foreign-amis.scp.json"
README = GUARDRAILS / "README.md"

GOLDEN = "111122223333"
ROLE = "GoldenAmiBreakGlass"
PLACEHOLDERS = ("${GoldenAccountId}", "${BreakGlassRoleName}")


class PolicyError(ValueError):
    pass


def fail(path: str, message: str):
    raise PolicyError(f"{path}: {message}")


def render(text: str, golden: str = GOLDEN, role: str = ROLE) -> dict:
    """What the README's render() does: replace the two placeholders, parse."""
    return json.loads(text.replace("${GoldenAccountId}", golden).replace("${BreakGlassRoleName}", role))


def load(path: Path) -> dict:
    return render(path.read_text())


def no_placeholders(node, path="$"):
    if isinstance(node, dict):
        for key, value in node.items():
            no_placeholders(key, path)
            no_placeholders(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            no_placeholders(value, f"{path}[{i}]")
    elif isinstance(node, str) and "${" in node:
        fail(path, f"unrendered placeholder in {node!r}")


# --- the declarative policy (DECLARATIVE_POLICY_EC2, attribute allowed_images_settings) ---------

ACCOUNT_ID = re.compile(r"^\d{12}$")
# The declarative policy's spelling; the EC2 API spells them with hyphens.
PROVIDER_ALIASES = {"amazon", "aws_marketplace", "aws_backup_vault"}
STATES = {"audit_mode", "enabled"}  # "disabled" exists, but is no guardrail
LIST_OPERATORS = {"@@assign", "@@append", "@@remove"}
CHILD_CONTROL = "@@operators_allowed_for_child_policies"
CHILD_CONTROL_VALUES = {"@@all", "@@none"} | LIST_OPERATORS
CRITERIA = {f"criteria_{i}" for i in range(1, 11)}
CRITERION_FIELDS = {"allowed_image_providers", "image_names", "marketplace_product_codes"}
MAX_PROVIDERS = 200
MAX_NAMES = 50
PRODUCT_CODE = re.compile(r"^[A-Za-z0-9]{1,25}$")


def check_keys(node, path, allowed, required=()):
    if not isinstance(node, dict):
        fail(path, f"expected an object, got {json.dumps(node)}")
    unknown = set(node) - set(allowed) - {CHILD_CONTROL}
    if unknown:
        fail(path, f"unknown key(s) {sorted(unknown)}")
    missing = set(required) - set(node)
    if missing:
        fail(path, f"missing key(s) {sorted(missing)}")
    if CHILD_CONTROL in node:
        ops = node[CHILD_CONTROL]
        if not isinstance(ops, list) or not ops or not set(ops) <= CHILD_CONTROL_VALUES:
            fail(f"{path}.{CHILD_CONTROL}", f"expected a list of {sorted(CHILD_CONTROL_VALUES)}")


def assigned(node, path):
    """A single value: {"@@assign": value}."""
    check_keys(node, path, {"@@assign"}, required={"@@assign"})
    return node["@@assign"]


def operated_list(node, path):
    """A list value: exactly one of {"@@assign" | "@@append" | "@@remove": [str, ...]}."""
    check_keys(node, path, LIST_OPERATORS)
    ops = [k for k in node if k in LIST_OPERATORS]
    if len(ops) != 1:
        fail(path, f"expected exactly one of {sorted(LIST_OPERATORS)}, got {ops}")
    values = node[ops[0]]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        fail(f"{path}.{ops[0]}", "expected a non-empty list of strings")
    return ops[0], values


def validate_declarative(doc) -> str:
    """Checks an Allowed AMIs declarative policy; returns its state."""
    no_placeholders(doc)
    check_keys(doc, "$", {"ec2_attributes"}, required={"ec2_attributes"})
    attrs = doc["ec2_attributes"]
    check_keys(attrs, "ec2_attributes", {"allowed_images_settings", "exception_message"},
               required={"allowed_images_settings"})
    if "exception_message" in attrs and not isinstance(
            assigned(attrs["exception_message"], "ec2_attributes.exception_message"), str):
        fail("ec2_attributes.exception_message", "expected a string")
    path = "ec2_attributes.allowed_images_settings"
    settings = attrs["allowed_images_settings"]
    check_keys(settings, path, {"state", "image_criteria"}, required={"state", "image_criteria"})
    state = assigned(settings["state"], f"{path}.state")
    if state not in STATES:
        fail(f"{path}.state", f"{state!r} is not one of {sorted(STATES)}")
    criteria = settings["image_criteria"]
    check_keys(criteria, f"{path}.image_criteria", CRITERIA)
    names = [k for k in criteria if k in CRITERIA]
    if not names:
        fail(f"{path}.image_criteria", "no criterion (criteria_1 to criteria_10)")
    total = 0
    for name in names:
        cpath = f"{path}.image_criteria.{name}"
        criterion = criteria[name]
        check_keys(criterion, cpath, CRITERION_FIELDS, required={"allowed_image_providers"})
        _, providers = operated_list(criterion["allowed_image_providers"], f"{cpath}.allowed_image_providers")
        for provider in providers:
            if not ACCOUNT_ID.match(provider) and provider not in PROVIDER_ALIASES:
                fail(f"{cpath}.allowed_image_providers",
                     f"{provider!r} is neither a 12-digit account id nor one of {sorted(PROVIDER_ALIASES)}")
        total += len(providers)
        if "image_names" in criterion:
            _, image_names = operated_list(criterion["image_names"], f"{cpath}.image_names")
            if len(image_names) > MAX_NAMES:
                fail(f"{cpath}.image_names", f"more than {MAX_NAMES} names")
            for n in image_names:
                if not 1 <= len(n) <= 128 or ("?" in n and len(n) < 3):
                    fail(f"{cpath}.image_names", f"bad name {n!r}")
        if "marketplace_product_codes" in criterion:
            _, codes = operated_list(criterion["marketplace_product_codes"], f"{cpath}.marketplace_product_codes")
            if len(codes) > MAX_NAMES or not all(PRODUCT_CODE.match(c) for c in codes):
                fail(f"{cpath}.marketplace_product_codes", "at most 50 codes of 1-25 letters and digits")
    if total > MAX_PROVIDERS:
        fail(f"{path}.image_criteria", f"{total} providers, more than {MAX_PROVIDERS}")
    return state


# --- the SCP -------------------------------------------------------------------------------------

SCP_MAX_BYTES = 5120  # Organizations quota; counted here on the minified JSON, in UTF-8 bytes
IMAGE_ARN = "arn:aws:ec2:*::image/*"
STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
SID = re.compile(r"^[A-Za-z0-9]*$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
PRINCIPAL_ROLE_ARN = re.compile(r"^arn:aws:iam::(\*|\d{12}):role/[\w+=,.@/*-]+$")


def as_list(value):
    return value if isinstance(value, list) else [value]


def minified_size(doc) -> int:
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def strict_keys(node, path, allowed, required=()):
    if not isinstance(node, dict):
        fail(path, f"expected an object, got {json.dumps(node)}")
    if set(node) - set(allowed):
        fail(path, f"unknown key(s) {sorted(set(node) - set(allowed))}")
    if set(required) - set(node):
        fail(path, f"missing key(s) {sorted(set(required) - set(node))}")


def validate_scp(doc, golden: str = GOLDEN, role: str = ROLE) -> int:
    """Checks the deny-foreign-AMIs SCP for this golden account and break-glass role; returns
    its minified size."""
    assert ACCOUNT_ID.match(golden) and ROLE_NAME.match(role)
    no_placeholders(doc)
    size = minified_size(doc)
    if size > SCP_MAX_BYTES:
        fail("$", f"{size} bytes minified, over the SCP limit of {SCP_MAX_BYTES}")
    strict_keys(doc, "$", {"Version", "Statement"}, required={"Version", "Statement"})
    if doc["Version"] != "2012-10-17":
        fail("$.Version", f"{doc['Version']!r}, expected '2012-10-17'")
    statements = doc["Statement"]
    if not isinstance(statements, list) or not statements:
        fail("$.Statement", "expected a non-empty list")
    for i, s in enumerate(statements):
        strict_keys(s, f"$.Statement[{i}]", STATEMENT_KEYS, required={"Effect"})
        if s["Effect"] not in ("Allow", "Deny"):
            fail(f"$.Statement[{i}].Effect", repr(s["Effect"]))
        if not SID.match(s.get("Sid", "")):
            fail(f"$.Statement[{i}].Sid", "letters and digits only")
    launches = [i for i, s in enumerate(statements) if "ec2:RunInstances" in as_list(s.get("Action", []))]
    if len(launches) != 1:
        fail("$.Statement", f"expected exactly one statement on ec2:RunInstances, got {len(launches)}")
    path = f"$.Statement[{launches[0]}]"
    s = statements[launches[0]]
    if s["Effect"] != "Deny":
        fail(f"{path}.Effect", f"{s['Effect']!r}, expected 'Deny'")
    if as_list(s.get("Resource")) != [IMAGE_ARN]:
        fail(f"{path}.Resource", f"{s.get('Resource')!r}, expected {IMAGE_ARN!r}")
    condition = s.get("Condition")
    strict_keys(condition, f"{path}.Condition", {"StringNotEquals", "ArnNotLike"},
                required={"StringNotEquals", "ArnNotLike"})
    owners_block = condition["StringNotEquals"]
    strict_keys(owners_block, f"{path}.Condition.StringNotEquals", {"ec2:Owner"}, required={"ec2:Owner"})
    owners = as_list(owners_block["ec2:Owner"])
    for owner in owners:
        if not isinstance(owner, str) or not (ACCOUNT_ID.match(owner) or owner == "amazon"):
            fail(f"{path}.Condition.StringNotEquals.ec2:Owner", f"{owner!r} is neither a 12-digit id nor 'amazon'")
    if golden not in owners:
        fail(f"{path}.Condition.StringNotEquals.ec2:Owner", f"the golden account {golden} is not listed")
    principals_block = condition["ArnNotLike"]
    strict_keys(principals_block, f"{path}.Condition.ArnNotLike", {"aws:PrincipalArn"},
                required={"aws:PrincipalArn"})
    principals = as_list(principals_block["aws:PrincipalArn"])
    for arn in principals:
        if not isinstance(arn, str) or not PRINCIPAL_ROLE_ARN.match(arn):
            fail(f"{path}.Condition.ArnNotLike.aws:PrincipalArn", f"{arn!r} is not a role ARN pattern")
    if f"arn:aws:iam::*:role/{role}" not in principals:
        fail(f"{path}.Condition.ArnNotLike.aws:PrincipalArn", f"the break-glass role {role} is not exempt")
    return size


# --- the files -----------------------------------------------------------------------------------

def test_the_files_are_json_whose_only_placeholders_are_the_two_documented():
    for path in (AUDIT, ENFORCE, SCP):
        text = path.read_text()
        json.loads(text)
        found = set(re.findall(r"\$\{[^}]*\}", text))
        assert found <= set(PLACEHOLDERS), (path.name, found)
        assert "${GoldenAccountId}" in found, path.name
    assert "${BreakGlassRoleName}" in SCP.read_text()


def test_the_audit_policy_allows_the_golden_account_in_audit_mode():
    doc = load(AUDIT)
    assert validate_declarative(doc) == "audit_mode"
    providers = doc["ec2_attributes"]["allowed_images_settings"]["image_criteria"]["criteria_1"]
    assert providers == {"allowed_image_providers": {"@@assign": [GOLDEN]}}


def test_the_enforce_policy_allows_the_golden_account_enabled():
    doc = load(ENFORCE)
    assert validate_declarative(doc) == "enabled"
    providers = doc["ec2_attributes"]["allowed_images_settings"]["image_criteria"]["criteria_1"]
    assert providers == {"allowed_image_providers": {"@@assign": [GOLDEN]}}


def test_audit_and_enforce_differ_only_in_the_state():
    audit, enforce = json.loads(AUDIT.read_text()), json.loads(ENFORCE.read_text())
    assert audit != enforce
    audit["ec2_attributes"]["allowed_images_settings"]["state"]["@@assign"] = "enabled"
    assert audit == enforce


def test_the_scp_denies_images_of_other_owners_except_for_the_break_glass_role():
    doc = load(SCP)
    size = validate_scp(doc)
    statement = doc["Statement"][0]
    assert statement["Condition"]["StringNotEquals"]["ec2:Owner"] == [GOLDEN]
    assert statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [f"arn:aws:iam::*:role/{ROLE}"]
    assert size < SCP_MAX_BYTES
    # Even uploaded unminified (the CLI stores what it is given) it fits.
    rendered = SCP.read_text().replace("${GoldenAccountId}", GOLDEN).replace("${BreakGlassRoleName}", ROLE)
    assert len(rendered.encode()) < SCP_MAX_BYTES


def test_unrendered_files_are_rejected():
    for path in (AUDIT, ENFORCE):
        with pytest.raises(PolicyError, match="unrendered placeholder"):
            validate_declarative(json.loads(path.read_text()))
    with pytest.raises(PolicyError, match="unrendered placeholder"):
        validate_scp(json.loads(SCP.read_text()))


def test_a_bad_golden_account_id_is_rejected_once_rendered():
    for path in (AUDIT, ENFORCE):
        with pytest.raises(PolicyError, match="12-digit"):
            validate_declarative(render(path.read_text(), golden="11112222333"))
    with pytest.raises(PolicyError, match="12-digit"):
        validate_scp(render(SCP.read_text(), golden="11112222333"), golden="111122223333")


# --- broken copies of the declarative policy -----------------------------------------------------

def _settings(d):
    return d["ec2_attributes"]["allowed_images_settings"]


def _criterion(d, name="criteria_1"):
    return _settings(d)["image_criteria"][name]


def _set(d, path, value):
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


DECLARATIVE_BREAKS = {
    "state without @@assign": (lambda d: _settings(d).update(state="enabled"), "expected an object"),
    "state with @@append": (lambda d: _settings(d).update(state={"@@append": "enabled"}), "unknown key"),
    "state spelled as the EC2 API does": (lambda d: _settings(d)["state"].update({"@@assign": "audit-mode"}),
                                          "not one of"),
    "state disabled": (lambda d: _settings(d)["state"].update({"@@assign": "disabled"}), "not one of"),
    "state enforce": (lambda d: _settings(d)["state"].update({"@@assign": "enforce"}), "not one of"),
    "no state": (lambda d: _settings(d).pop("state"), "missing key"),
    "providers without an operator": (lambda d: _criterion(d).update(allowed_image_providers=[GOLDEN]),
                                      "expected an object"),
    "providers with two operators": (
        lambda d: _criterion(d).update(allowed_image_providers={"@@assign": [GOLDEN], "@@append": ["amazon"]}),
        "exactly one of"),
    "providers not a list": (lambda d: _criterion(d).update(allowed_image_providers={"@@assign": GOLDEN}),
                             "non-empty list"),
    "no provider": (lambda d: _criterion(d).update(allowed_image_providers={"@@assign": []}), "non-empty list"),
    "an 11-digit provider": (lambda d: _criterion(d).update(allowed_image_providers={"@@assign": ["11112222333"]}),
                             "12-digit"),
    "a provider alias spelled as the EC2 API does": (
        lambda d: _criterion(d).update(allowed_image_providers={"@@assign": [GOLDEN, "aws-marketplace"]}),
        "12-digit"),
    "an unknown criterion field": (lambda d: _criterion(d).update(allowed_image_owners={"@@assign": [GOLDEN]}),
                                   "unknown key"),
    "criteria_11": (lambda d: _settings(d)["image_criteria"].update(criteria_11=_criterion(d)), "unknown key"),
    "no criterion": (lambda d: _settings(d).update(image_criteria={}), "no criterion"),
    "201 providers": (lambda d: _settings(d).update(image_criteria={
        f"criteria_{i}": {"allowed_image_providers": {"@@assign": [f"{100000000000 + i * 1000 + j}"
                                                                    for j in range(21 if i == 1 else 20)]}}
        for i in range(1, 11)}), "more than 200"),
    "too many image names": (lambda d: _criterion(d).update(
        image_names={"@@assign": [f"golden-{i}" for i in range(51)]}), "more than 50"),
    "a bad product code": (lambda d: _criterion(d).update(
        marketplace_product_codes={"@@assign": ["not-a-code"]}), "letters and digits"),
    "a bad child-policy control": (lambda d: _settings(d).update({CHILD_CONTROL: ["@@everything"]}),
                                   "expected a list"),
    "another EC2 attribute": (lambda d: d["ec2_attributes"].update(
        image_block_public_access={"state": {"@@assign": "block_new_sharing"}}), "unknown key"),
    "wrapped in an extra key": (lambda d: d.update(ec2=d.pop("ec2_attributes")), "unknown key"),
    "a placeholder left in": (lambda d: _criterion(d).update(
        allowed_image_providers={"@@assign": ["${GoldenAccountId}"]}), "unrendered placeholder"),
}


@pytest.mark.parametrize("source", [AUDIT, ENFORCE], ids=["audit", "enforce"])
@pytest.mark.parametrize("name", list(DECLARATIVE_BREAKS))
def test_a_broken_declarative_policy_is_rejected(source, name):
    doc = load(source)
    validate_declarative(doc)
    broken = copy.deepcopy(doc)
    mutate, message = DECLARATIVE_BREAKS[name]
    mutate(broken)
    with pytest.raises(PolicyError, match=message):
        validate_declarative(broken)


def test_the_documented_optional_fields_are_accepted():
    doc = load(AUDIT)
    doc["ec2_attributes"]["exception_message"] = {"@@assign": "Launch from the golden AMI pointer."}
    _settings(doc)[CHILD_CONTROL] = ["@@none"]
    _criterion(doc)["allowed_image_providers"] = {"@@append": [GOLDEN, "amazon", "aws_backup_vault"]}
    _criterion(doc)["image_names"] = {"@@assign": ["golden-al2023-*"]}
    _settings(doc)["image_criteria"]["criteria_2"] = {
        "allowed_image_providers": {"@@assign": ["aws_marketplace"]},
        "marketplace_product_codes": {"@@assign": ["abcd1234efgh5678"]},
    }
    assert validate_declarative(doc) == "audit_mode"


# --- broken copies of the SCP --------------------------------------------------------------------

def _statement(d):
    return d["Statement"][0]


def _condition(d):
    return _statement(d)["Condition"]


SCP_BREAKS = {
    "an Allow": (lambda d: _statement(d).update(Effect="Allow"), "expected 'Deny'"),
    "an old Version": (lambda d: d.update(Version="2008-10-17"), "expected '2012-10-17'"),
    "no RunInstances": (lambda d: _statement(d).update(Action="ec2:StartInstances"), "exactly one statement"),
    "every resource": (lambda d: _statement(d).update(Resource="*"), "expected 'arn:aws:ec2:\\*::image/\\*'"),
    "instances, not images": (lambda d: _statement(d).update(Resource="arn:aws:ec2:*:*:instance/*"),
                              "expected 'arn:aws:ec2"),
    "StringEquals on the owner": (lambda d: _condition(d).update(StringEquals=_condition(d).pop("StringNotEquals")),
                                  "unknown key"),
    "the golden account missing": (lambda d: _condition(d)["StringNotEquals"].update({"ec2:Owner": ["444455556666"]}),
                                   "golden account"),
    "an 11-digit owner": (lambda d: _condition(d)["StringNotEquals"].update({"ec2:Owner": [GOLDEN, "11112222333"]}),
                          "12-digit"),
    "an owner condition on another key": (
        lambda d: _condition(d).update(StringNotEquals={"aws:ResourceTag/golden": "true"}), "unknown key"),
    "no break-glass condition": (lambda d: _condition(d).pop("ArnNotLike"), "missing key"),
    "ArnLike instead of ArnNotLike": (lambda d: _condition(d).update(ArnLike=_condition(d).pop("ArnNotLike")),
                                      "unknown key"),
    "another role exempt": (lambda d: _condition(d)["ArnNotLike"].update(
        {"aws:PrincipalArn": ["arn:aws:iam::*:role/SomeoneElse"]}), "break-glass role"),
    "a user, not a role": (lambda d: _condition(d)["ArnNotLike"].update(
        {"aws:PrincipalArn": [f"arn:aws:iam::*:user/{ROLE}"]}), "role ARN pattern"),
    "the exemption on aws:username": (lambda d: _condition(d).update(ArnNotLike={"aws:username": ROLE}),
                                      "unknown key"),
    "a Principal element": (lambda d: _statement(d).update(Principal="*"), "unknown key"),
    "a Sid with a dash": (lambda d: _statement(d).update(Sid="deny-foreign"), "letters and digits"),
    "no statement": (lambda d: d.update(Statement=[]), "non-empty list"),
    "over the size limit": (lambda d: _condition(d)["StringNotEquals"].update(
        {"ec2:Owner": [GOLDEN] + [str(200000000000 + i) for i in range(400)]}), "over the SCP limit"),
    "a placeholder left in": (lambda d: _condition(d)["ArnNotLike"].update(
        {"aws:PrincipalArn": ["arn:aws:iam::*:role/${BreakGlassRoleName}"]}), "unrendered placeholder"),
}


@pytest.mark.parametrize("name", list(SCP_BREAKS))
def test_a_broken_scp_is_rejected(name):
    doc = load(SCP)
    validate_scp(doc)
    broken = copy.deepcopy(doc)
    mutate, message = SCP_BREAKS[name]
    mutate(broken)
    with pytest.raises(PolicyError, match=message):
        validate_scp(broken)


def test_the_scp_size_limit_is_exact():
    doc = load(SCP)
    pad = SCP_MAX_BYTES - minified_size(doc)
    _statement(doc)["Sid"] += "A" * pad
    assert validate_scp(doc) == SCP_MAX_BYTES
    _statement(doc)["Sid"] += "A"
    with pytest.raises(PolicyError, match="over the SCP limit"):
        validate_scp(doc)


# --- the README's render one-liner ---------------------------------------------------------------

@pytest.mark.skipif(shutil.which("jq") is None, reason="the README's render() pipes through jq")
@pytest.mark.parametrize("source", [AUDIT, ENFORCE, SCP], ids=["audit", "enforce", "scp"])
def test_the_readme_render_function_renders_and_minifies(source):
    match = re.search(r"^render\(\) \{\n.*?^\}$", README.read_text(), re.MULTILINE | re.DOTALL)
    assert match, "README.md has no render() function"
    out = subprocess.run(
        ["bash", "-c", match.group(0) + '\nrender "$1"', "render", str(source)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GOLDEN_ACCOUNT_ID": GOLDEN, "BREAK_GLASS_ROLE": ROLE},
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.count("\n") == 1 and out.endswith("\n")  # one line: minified
    assert json.loads(out) == load(source)
    assert "${" not in out
