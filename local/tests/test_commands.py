"""The stack's Command documents run by the extension (commands.py), through the real bake and
test documents: the update report, the up-to-date branch, the baseline check on the boot test's
instance, a broken control, and the output uploads."""

import json
import urllib.error

import pytest

from conftest import admin, bake_parameters, boot_test_parameters
from test_automation import instance_of, poll_until_done, steps


def run_bake(ssm, env, **overrides):
    exec_id = ssm.start_automation_execution(
        DocumentName=env["document"], Parameters=bake_parameters(env, **overrides),
    )["AutomationExecutionId"]
    return exec_id, poll_until_done(ssm, exec_id)[0]


def run_test(ssm, env, image_id):
    exec_id = ssm.start_automation_execution(
        DocumentName=env["test_document"], Parameters=boot_test_parameters(env, image_id),
    )["AutomationExecutionId"]
    return exec_id, poll_until_done(ssm, exec_id)[0]


def report_keys(s3, bucket, prefix):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_the_update_report_summarises_and_uploads_the_raw_listings(client, bake_env):
    ssm, s3 = client("ssm"), client("s3")
    _, exe = run_bake(ssm, bake_env)
    assert exe["AutomationExecutionStatus"] == "Success"
    output = exe["Outputs"]["listUpdates.Output"][0]
    summary = json.loads(output.splitlines()[0])
    assert (summary["packages"], summary["advisories"], summary["cves"]) == (12, 3, 7)
    assert summary["severities"]["Critical"] == 1
    command_id = exe["Outputs"]["listUpdates.CommandId"][0]
    instance_id = exe["Outputs"]["launchInstance.InstanceId"][0]
    [key] = report_keys(s3, bake_env["bucket"], "updates/golden-2026-11/")
    assert key == (f"updates/golden-2026-11/{command_id}/{instance_id}/awsrunShellScript/"
                   f"listUpdates/stdout")
    body = s3.get_object(Bucket=bake_env["bucket"], Key=key)["Body"].read().decode()
    assert body.startswith(output.splitlines()[0])
    assert "ALAS2023-" in body and "CVE-" in body  # the raw listings, not only the summary


def test_nothing_to_update_ends_without_an_image(client, endpoint, bake_env):
    ssm, ec2 = client("ssm"), client("ec2")
    admin(endpoint, "faults", {"updates": {"scenario": "none"}})
    exec_id, exe = run_bake(ssm, bake_env)
    assert exe["AutomationExecutionStatus"] == "Success"
    assert steps(exe) == [(s, "Success") for s in (
        "launchInstance", "waitForSsm", "listUpdates", "anythingToUpdate", "terminateInstance")]
    assert exe["Outputs"]["listUpdates.Output"][0].startswith('{"upToDate":true')
    assert exe["Outputs"]["createImage.ImageId"][0].startswith("No output available")
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert instance_of(ec2, exec_id)["State"]["Name"] == "terminated"


def test_a_rebuild_bakes_even_when_nothing_is_pending(client, endpoint, bake_env):
    ssm = client("ssm")
    admin(endpoint, "faults", {"updates": {"scenario": "none"}})
    _, exe = run_bake(ssm, bake_env, RebuildWhenUpToDate="true")
    assert exe["AutomationExecutionStatus"] == "Success"
    assert exe["Outputs"]["createImage.ImageId"][0].startswith("ami-")


def test_the_boot_test_runs_the_real_check_on_an_instance_of_the_image(client, bake_env):
    ssm, ec2, s3 = client("ssm"), client("ec2"), client("s3")
    _, bake = run_bake(ssm, bake_env)
    image_id = bake["Outputs"]["createImage.ImageId"][0]
    exec_id, exe = run_test(ssm, bake_env, image_id)
    assert exe["AutomationExecutionStatus"] == "Success"
    assert steps(exe) == [(s, "Success") for s in (
        "launchInstance", "waitForSsm", "runCheck", "terminateInstance")]
    output = exe["Outputs"]["runCheck.Output"][0]
    lines = output.splitlines()
    assert lines[-1].startswith("SUMMARY pass=") and " fail=0 " in lines[-1], output
    assert all(line.split()[0] in ("PASS", "SKIP") for line in lines[:-1]), output
    instance = instance_of(ec2, exec_id)
    assert instance["ImageId"] == image_id  # launched FROM the image under test
    assert instance["State"]["Name"] == "terminated"
    keys = report_keys(s3, bake_env["bucket"], "tests/golden-2026-11/")
    assert keys and keys[0].endswith("/awsrunShellScript/checkBaseline/stdout")


def test_a_broken_control_fails_the_check_and_says_which(client, endpoint, bake_env):
    ssm, ec2 = client("ssm"), client("ec2")
    _, bake = run_bake(ssm, bake_env)
    admin(endpoint, "faults", {"baselineFail": {"controls": ["ssh-ciphers"]}})
    exec_id, exe = run_test(ssm, bake_env, bake["Outputs"]["createImage.ImageId"][0])
    assert exe["AutomationExecutionStatus"] == "Failed"
    assert steps(exe)[-2:] == [("runCheck", "Failed"), ("terminateInstance", "Success")]
    check = exe["StepExecutions"][2]
    failed = [line for line in check["Outputs"]["Output"][0].splitlines()
              if line.startswith("FAIL ")]
    assert [line.split()[1] for line in failed] == ["ssh-ciphers"]
    assert "FAIL ssh-ciphers" in check["FailureMessage"]
    assert check["Outputs"]["ResponseCode"] == ["1"]
    assert instance_of(ec2, exec_id)["State"]["Name"] == "terminated"


def test_a_command_document_that_is_not_ours_fails_loudly(client, bake_env):
    ssm = client("ssm")
    ssm.create_document(Name="someone-elses", DocumentType="Command", DocumentFormat="YAML",
                        Content="schemaVersion: '2.2'\ndescription: x\nmainSteps:\n"
                                "  - action: aws:runShellScript\n    name: x\n"
                                "    inputs:\n      runCommand: ['rm -rf /tmp/x']\n")
    _, exe = run_bake(ssm, bake_env, UpdateReportDocumentName="someone-elses")
    assert exe["AutomationExecutionStatus"] == "Failed"
    failed = dict(steps(exe))
    assert failed["listUpdates"] == "Failed"
    assert "not one of infra/baseline/*.sh" in exe["FailureMessage"]


def test_the_fault_hooks_reject_what_they_do_not_know(endpoint):
    for body, words in [({"baselineFail": {"controls": ["no-such-control"]}}, "unknown baseline"),
                        ({"updates": {"scenario": "someday"}}, "no update scenario")]:
        with pytest.raises(urllib.error.HTTPError) as error:
            admin(endpoint, "faults", body)
        assert error.value.code == 400
        assert words in error.value.read().decode()
