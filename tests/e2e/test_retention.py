"""Retention end to end: a family with a history of monthly golden images (pointer versions, a
launch, an earlier protection and deprecation), one real run, and exactly which images end
protected, deprecated and removed. The dry run runs the real Retain binary with RETAIN_DRY_RUN
(the stack parameter) against the same history and must change nothing."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from checks import cold_invoke
from local.stack import POINTER_PARAMETER_NAME, REGION, LocalStack, read_facts

DAY = timedelta(days=1)


def image_table(stack: LocalStack, ids: dict[str, str]) -> dict[str, dict]:
    """name -> what DescribeImages shows of it (None: gone)."""
    ec2 = stack.client("ec2")
    found = {i["ImageId"]: i for i in ec2.describe_images(Owners=["self"])["Images"]}
    return {name: None if image_id not in found else {
        "deprecated": "DeprecationTime" in found[image_id],
        "protection": found[image_id].get("DeregistrationProtection", "disabled"),
        "snapshots": [m["Ebs"]["SnapshotId"] for m in found[image_id]["BlockDeviceMappings"]],
    } for name, image_id in ids.items()}


def render(before: dict, after: dict) -> str:
    def cell(row):
        if row is None:
            return "removed"
        return ", ".join(filter(None, ["deprecated" if row["deprecated"] else "",
                                       "protected" if row["protection"].startswith("enabled") else ""])) or "-"
    lines = ["| image | before | after |", "|---|---|---|"]
    lines += [f"| {name} | {cell(before[name]) if name in before else 'not made yet'} | "
              f"{cell(after[name])} |" for name in after]
    return "\n".join(lines)


def test_a_run_protects_deprecates_and_removes_exactly_what_the_rules_say(fresh: LocalStack):
    ids = fresh.seed_history()
    ec2 = fresh.client("ec2")
    before = image_table(fresh, ids)
    seeded = fresh.seed.golden_ami_id  # the pipeline's image from before families: no family tag

    result = fresh.run()
    assert result.succeeded, result.stderr[-3000:]
    facts = read_facts(fresh)
    ids["NEW"] = facts.pointer["value"]
    after = image_table(fresh, ids)
    print("\n" + render(before, after))

    assert after["NEW"] == {**after["NEW"], "deprecated": False, "protection": "enabled-without-cooldown"}
    assert after["F"]["protection"].startswith("enabled") and after["F"]["deprecated"]  # rollback target
    assert after["E"]["deprecated"] and after["C"]["deprecated"]  # kept, superseded
    assert after["B"]["deprecated"]  # deprecated before, kept: launched ten days ago
    assert after["A"] is None and after["D"] is None  # old, unused, beyond Keep
    for name in ("A", "D"):
        assert not set(before[name]["snapshots"]) & set(facts.snapshots), f"{name}'s snapshots are left"
    for name in ("B", "C", "E"):
        assert after[name]["protection"] == "disabled", name
    # B keeps its own (earlier) deprecation time.
    b = ec2.describe_images(ImageIds=[ids["B"]])["Images"][0]
    assert b["DeprecationTime"][:10] == (datetime.now(timezone.utc) + 5 * DAY).strftime("%Y-%m-%d")
    # Never touched: the image without the family's tags.
    untouched = ec2.describe_images(ImageIds=[seeded])["Images"][0]
    assert "DeprecationTime" not in untouched
    assert untouched.get("DeregistrationProtection", "disabled") == "disabled"

    # A protected image cannot be deregistered.
    with pytest.raises(ClientError) as refused:
        ec2.deregister_image(ImageId=ids["NEW"])
    assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert ec2.describe_images(ImageIds=[ids["NEW"]])["Images"]

    [notice] = [n for n in facts.notifications if n["event"] == "SUCCEEDED"]
    message = notice["message"]
    assert (f"Retention in {REGION}: protect {ids['NEW']}, {ids['F']}; deprecate {ids['F']} (from "
            in message), message
    assert f"remove the protection of {ids['D']}; remove {ids['D']} and 1 snapshot(s), {ids['A']} and 1 snapshot(s)." in message
    assert f"kept {ids['C']}: held by the pointer within its newest 3 versions" in message
    assert f"kept {ids['B']}: launched within 30 days" in message
    assert f"kept {ids['E']}: among the newest 3 golden images" in message


def test_a_failing_retention_does_not_fail_the_published_run(fresh: LocalStack):
    denied = {"service": "ec2", "action": "DescribeImages", "code": "UnauthorizedOperation",
              "status": 403, "message": "You are not authorized to perform this operation (injected)"}
    result = fresh.run(on_enter=[("Retain", {"apiFail": denied})])
    assert result.succeeded, result.stderr[-3000:]
    facts = read_facts(fresh)
    assert facts.pointer["value"] != fresh.seed.golden_ami_id  # published all the same
    assert facts.events() == ["STARTED", "SUCCEEDED"]
    message = facts.notifications[-1]["message"]
    assert ("Retention could not read the family's images and pointer: "
            in message and "the image is published all the same" in message), message


def test_a_dry_run_reports_the_same_decisions_and_changes_nothing(fresh: LocalStack):
    ids = fresh.seed_history()
    before = image_table(fresh, ids)
    event = {"context": {"executionId": f"arn:aws:states:{REGION}:{fresh.seed.account_id}:execution:"
                                        "golden-ami-pipeline:dry-run", "startedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
             "state": {"family": {
                 "name": "default", "pointer": POINTER_PARAMETER_NAME, "architecture": "x86_64",
                 "instanceType": "t3.small", "subnetId": fresh.seed.subnet_id,
                 "instanceProfile": fresh.seed.instance_profile_name, "homeRegion": REGION,
                 "regions": [{"region": REGION, "kmsKeyArn": fresh.seed.kms_key_arn}]},
                 "pointers": [{"publish": {"parameterName": POINTER_PARAMETER_NAME, "region": REGION,
                                           "version": 4, "newAmiId": ids["F"]}}]}}
    invocation, _ = cold_invoke("retain", {**fresh.watch_env, "RETAIN_DRY_RUN": "true"},
                                json.dumps(event).encode())
    assert invocation.completed is not None, "retain answered nothing"
    assert invocation.outcome == "response", invocation.body
    result = invocation.json()
    [region] = result["regions"]
    assert result["dryRun"] is True
    # Without this run's image: F is current, C (the pin) the rollback target, and F, E, D are
    # the newest three; only A is old, unused and held by nothing.
    assert region["protected"] == [ids["F"], ids["C"]]
    assert region["unprotected"] == [ids["D"]]
    assert [r["imageId"] for r in region["removed"]] == [ids["A"]]
    assert {d["imageId"] for d in region["deprecated"]} == {ids["E"], ids["D"], ids["C"]}
    assert image_table(fresh, ids) == before  # nothing changed
