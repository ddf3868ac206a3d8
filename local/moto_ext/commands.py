"""aws:runCommand of the pipeline's own Command documents, which moto cannot run: it has no
instance to run a command on, and implements no Run Command execution at all.

Scope, and nothing more:
- The document is recognised by its script: a one-step aws:runShellScript Command document (as
  scripts/sync-documents.py builds them) whose command is exactly infra/baseline/check.sh,
  updates.sh or apply.sh. Any other Command document fails the step, loudly.
- check.sh runs for real, the text the registered document holds, against a copy of
  local/fixtures/baseline/compliant standing for the instance's disk (root != / makes its
  runtime-only controls SKIP). The fault {"baselineFail": {"controls": [...]}} breaks those
  controls in that copy first. The script only reads the tree.
- updates.sh runs for real with GOLDEN_AMI_UPDATES_FROM pointing at raw dnf outputs in the tools'
  own formats (local/fixtures/updates/<scenario>, "pending" unless the fault
  {"updates": {"scenario": "none"}} says otherwise). The script only reads those files.
- apply.sh never runs here: it changes the machine it runs on. Its run is recorded, like the
  commands of AWS-RunShellScript.
The step's outputs are SSM's: CommandId, Status, ResponseCode and Output (the first 2,500
characters of stdout). A non-zero exit fails the step with SSM's message, which carries the
output. With OutputS3BucketName the whole stdout is stored in moto's S3 at
PREFIX/COMMAND-ID/INSTANCE-ID/awsrunShellScript/PLUGIN/stdout, as the SSM agent uploads it.

Pages followed (operation, field or behaviour, URL):
- aws:runCommand inputs (DocumentName, InstanceIds, Parameters, OutputS3BucketName,
  OutputS3KeyPrefix, TimeoutSeconds) and outputs (CommandId, Status, ResponseCode, Output: the
  first 2,500 characters): https://docs.aws.amazon.com/systems-manager/latest/userguide/automation-action-runcommand.html
- Not documented; our choice: the S3 output key layout
  PREFIX/COMMAND-ID/INSTANCE-ID/awsrunShellScript/PLUGIN/stdout, and the failed step's message.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from moto.s3.models import s3_backends
from moto.ssm.models import ssm_backends

from . import baseline
from .state import LOCK, STATE

OUTPUT_LIMIT = 2500
SCRIPTS = baseline.REPO / "infra" / "baseline"


def run(execution: Any, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
    """Run one aws:runCommand step of `execution` (an automation.Execution)."""
    from .automation import NOT_SUPPORTED, StepFailure

    name = inputs.get("DocumentName")
    instance_ids = inputs.get("InstanceIds") or []
    if inputs.get("Targets") or len(instance_ids) != 1:
        raise StepFailure(f"aws:runCommand of {name} on other than exactly one InstanceIds value "
                          f"{NOT_SUPPORTED}")
    instance_id = instance_ids[0]
    state = execution.ec2.get_instance(instance_id).state
    if state != "running":
        raise StepFailure(f"InvalidInstanceId: instance {instance_id} is {state}, not running")
    plugin, script = _document_script(execution, name)
    kind = next((p.stem for p in SCRIPTS.glob("*.sh") if p.read_text() == script), None)
    command_id = str(uuid.uuid4())
    if kind == "apply":
        execution.commands.append({"step": step["name"], "instanceIds": instance_ids,
                                   "document": name, "script": "infra/baseline/apply.sh"})
        code, stdout = 0, ""
    elif kind == "check":
        code, stdout = _check(script)
    elif kind == "updates":
        with LOCK:
            scenario = STATE.updates_scenario
        code, stdout = baseline.update_report(scenario, script)
    else:
        raise StepFailure(f"Command document {name}: its command is not one of "
                          f"infra/baseline/*.sh, and running any other document {NOT_SUPPORTED}")
    if inputs.get("OutputS3BucketName"):
        _upload(execution, inputs, command_id, instance_id, plugin, stdout)
    status = "Success" if code == 0 else "Failed"
    outputs = {"CommandId": [command_id], "Status": [status], "ResponseCode": [str(code)],
               "Output": [stdout[:OUTPUT_LIMIT]]}
    if code != 0:
        raise StepFailure(
            f"Step fails when it is Poll action status:Failed. Command {command_id} returns "
            f"unexpected invocation result: \n{{Status=[Failed], ResponseCode=[{code}], "
            f"Output=[{stdout[:OUTPUT_LIMIT]}], CommandId=[{command_id}]}}. Please refer to "
            f"Automation Service Troubleshooting Guide for more diagnosis details.", outputs)
    return outputs


def _document_script(execution: Any, name: str) -> tuple[str, str]:
    """(plugin name, script) of a one-step aws:runShellScript Command document."""
    from .automation import NOT_SUPPORTED, StepFailure

    backend = ssm_backends[execution.account][execution.region]
    try:
        document = backend._get_documents(name).find(None)
    except Exception:  # moto's InvalidDocument
        raise StepFailure(f"InvalidDocument: document {name} does not exist") from None
    content = document.content_json or {}
    steps = content.get("mainSteps") or []
    if (document.document_type != "Command" or len(steps) != 1
            or steps[0].get("action") != "aws:runShellScript"):
        raise StepFailure(f"Command document {name} is not a one-step aws:runShellScript "
                          f"document; anything else {NOT_SUPPORTED}")
    commands = (steps[0].get("inputs") or {}).get("runCommand") or []
    script = "\n".join(commands)
    if not script.endswith("\n"):
        script += "\n"
    return steps[0].get("name", "0.awsrunShellScript"), script


def _check(script: str) -> tuple[int, str]:
    """The document's check on a fresh compliant disk, broken where the fault hook says."""
    with LOCK:
        broken = list(STATE.baseline_fail)
    root = Path(tempfile.mkdtemp(prefix="golden-ami-disk-"))
    try:
        tree = baseline.prepare_tree(root / "disk")
        for control in broken:
            baseline.break_control(tree, control)
        return baseline.run_check(tree, script)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _upload(execution: Any, inputs: dict[str, Any], command_id: str, instance_id: str,
            plugin: str, stdout: str) -> None:
    from .automation import StepFailure

    bucket = inputs["OutputS3BucketName"]
    prefix = (inputs.get("OutputS3KeyPrefix") or "").strip("/")
    key = "/".join(part for part in (prefix, command_id, instance_id, "awsrunShellScript",
                                     plugin, "stdout") if part)
    backend = s3_backends[execution.account]["aws"]
    try:
        backend.get_bucket(bucket)
    except Exception:  # moto's MissingBucket
        raise StepFailure(f"the output bucket {bucket} does not exist") from None
    backend.put_object(bucket, key, stdout.encode())
