"""SSM Automation executions for moto, which implements none of the Automation APIs.

Scope: exactly what infra/bake-document.yaml and infra/test-document.yaml need, run against
moto's EC2 backend.
- API: StartAutomationExecution, GetAutomationExecution, StopAutomationExecution (Type Cancel),
  DescribeAutomationExecutions (filters DocumentNamePrefix, ExecutionStatus, ExecutionId).
- Parameter types: String, StringList, MapList (one JSON object per value).
- Step actions: aws:executeAwsApi (ec2 RunInstances, with BlockDeviceMappings checked and
  their KmsKeyId honoured (images.py); ec2 CreateImage with image and snapshot
  TagSpecifications, its snapshot under the root volume's key), aws:waitForAwsResourceProperty (ssm DescribeInstanceInformation, ec2
  DescribeImages), aws:runCommand (AWS-RunShellScript is recorded; the stack's own Command
  documents run through commands.py), aws:branch (And/Or/Not of StringEquals, StartsWith,
  EndsWith, Contains, BooleanEquals), aws:changeInstanceState (stopped / running / terminated),
  aws:createImage, aws:createTags (EC2).
Anything else fails the step (or the request) with a message saying the local stand-in does not
support it: a document that would not work on AWS must never pass here by accident.

Timing model: nothing runs in the background. Each GetAutomationExecution call runs ONE step
(config automationPollsPerStep makes a step take more polls), so a caller's polling loop really
loops. StopAutomationExecution runs the onCancel path synchronously (so a caller that stops and
walks away still gets its instance terminated) and returns with the execution Cancelled.

Pages followed (operation, field or behaviour, URL):
- StartAutomationExecution (DocumentName, DocumentVersion, Parameters, ClientToken, Mode),
  GetAutomationExecution (AutomationExecution: StepExecutions, Outputs, FailureMessage,
  CurrentStepName, CurrentAction, ...), StopAutomationExecution (Type Cancel),
  DescribeAutomationExecutions (filters DocumentNamePrefix, ExecutionStatus, ExecutionId;
  AutomationExecutionMetadata incl. AutomationType Local):
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartAutomationExecution.html
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AutomationExecution.html
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StepExecution.html
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StopAutomationExecution.html
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeAutomationExecutions.html
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AutomationExecutionMetadata.html
- Error codes AutomationDefinitionNotFoundException, InvalidAutomationExecutionParametersException,
  AutomationExecutionNotFoundException, InvalidAutomationStatusUpdateException (the references
  above, Errors); their wordings are ours.
- Step actions, their inputs and outputs (onFailure, onCancel, isCritical, maxAttempts, nextStep,
  isEnd; aws:executeAwsApi Selector outputs, aws:branch operators, ...):
  https://docs.aws.amazon.com/systems-manager/latest/userguide/automation-actions.html
- Parameter types String, StringList, MapList; allowedPattern, allowedValues:
  https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-syntax-data-elements-parameters.html
- Not documented; our choice: one step per GetAutomationExecution (AWS runs steps in the
  background), the onCancel path run synchronously by StopAutomationExecution, the "No output
  available yet ..." text of an output whose step has not succeeded, and "Online" for an instance this automation launched while it runs.
"""

import copy
import json
import re
import uuid
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ec2.utils import convert_tag_spec, filter_iam_instance_profiles
from moto.ssm.models import ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse

from . import commands as command_documents
from .images import carry_root_volume_encryption, launch_block_device_mappings
from .state import LOCK, STATE

NOT_SUPPORTED = "is not supported by the local stand-in (local/moto_ext)"
NO_OUTPUT = "No output available yet because the step is not successfully executed"


class SSMError(ServiceException):
    """An SSM API error; moto serializes it with the protocol's error shape."""


class StepFailure(Exception):
    """A step failed; the message becomes the step's FailureMessage. `outputs` are recorded on
    the failed step (as SSM shows a failed command's Output)."""

    def __init__(self, message: str, outputs: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.outputs = outputs or {}


class Execution:
    def __init__(self, exec_id: str, account: str, region: str, document: Any,
                 params: dict[str, Any], raw_params: dict[str, list[str]]):
        self.id = exec_id
        self.account = account
        self.region = region
        self.document_name = document.name
        self.document_version = document.document_version
        self.content = document.content_json
        self.steps = {s["name"]: s for s in self.content.get("mainSteps", [])}
        self.order = [s["name"] for s in self.content.get("mainSteps", [])]
        self.params = params
        self.raw_params = raw_params
        self.status = "InProgress"
        self.start_time = utcnow()
        self.end_time: Any = None
        self.current: str | None = self.order[0] if self.order else None
        self.polls_in_step = 0
        self.step_executions: list[dict[str, Any]] = []
        self.step_outputs: dict[str, Any] = {}  # "step.Output" -> str | list
        self.failure_message: str | None = None
        self.critical_failed = False
        self.launched_instances: set[str] = set()
        self.commands: list[dict[str, Any]] = []  # what aws:runCommand would have run
        self._branch_next: str | None = None  # the step an aws:branch chose

    @property
    def ec2(self) -> Any:
        return ec2_backends[self.account][self.region]

    # ---- running ----------------------------------------------------------------------

    def poll(self) -> None:
        """One GetAutomationExecution call: run at most one step."""
        if self.status != "InProgress" or self.current is None:
            return
        self.polls_in_step += 1
        if self.polls_in_step < max(1, int(STATE.config.get("automationPollsPerStep", 1))):
            return
        self.polls_in_step = 0
        self.current = self._run_step(self.current)
        if self.current is None:
            self._finish("Failed" if self.critical_failed else "Success")

    def cancel(self) -> None:
        """StopAutomationExecution Type=Cancel: follow the pending step's onCancel, then stop.

        The pending step has not started yet (steps run inside polls), so it is recorded as
        Cancelled. If no step ran yet, nothing exists to clean up and onCancel is skipped
        (on AWS the first step would already be running; its onCancel would find nothing).
        """
        pending = self.current
        self.current = None
        if pending is not None and self.step_executions:
            step = self.steps[pending]
            self._record(step, "Cancelled", {}, {}, "Step cancelled by StopAutomationExecution")
            target = step.get("onCancel", "Abort")
            nxt = target[len("step:"):] if target.startswith("step:") else None
            for _ in range(len(self.order) * 2):  # bounded: a document could loop
                if nxt is None:
                    break
                nxt = self._run_step(nxt)
        self._finish("Cancelled")

    def _finish(self, status: str) -> None:
        self.status = status
        self.current = None
        self.end_time = utcnow()

    def _run_step(self, name: str) -> str | None:
        """Run one step (with its maxAttempts); return the next step's name or None at the end."""
        step = self.steps.get(name)
        if step is None:
            self.failure_message = f"Step {name} does not exist in the document"
            self.critical_failed = True
            return None
        started = utcnow()
        inputs: dict[str, Any] = {}
        outputs: dict[str, list[str]] = {}
        error = None
        for _attempt in range(max(1, int(step.get("maxAttempts", 1)))):
            try:
                fault = _take_step_fault(name, self.document_name, self.params)
                inputs = self._resolve(step.get("inputs", {}))
                if fault is not None:
                    if fault["halfway"]:
                        # The call got as far as creating the image, without its tags.
                        self._create_image_api({**inputs, "TagSpecifications": []})
                    raise StepFailure(fault["message"])
                outputs = self._run_action(step, inputs)
                error = None
                break
            except StepFailure as exc:
                error = str(exc)
                outputs = exc.outputs
                if fault is not None:  # an injected failure is final, no retry
                    break
            except ServiceException as exc:  # a moto backend error, as the AWS API would answer
                error = f"{exc.code}: {exc.message}"
            except Exception as exc:  # anything else moto raises: fail the step, never hide it
                error = f"{type(exc).__name__} in the local stand-in: {exc}"
        if error is None:
            self._record(step, "Success", inputs, outputs, None, started)
            for key, value in outputs.items():
                self.step_outputs[f"{name}.{key}"] = value
            return self._next_on_success(step)
        self._record(step, "Failed", inputs, outputs, error, started)
        if step.get("isCritical", True) in (True, "true", "True"):
            self.critical_failed = True
            if self.failure_message is None:  # the first failure is the cause; keep it
                self.failure_message = f"Step {name} ({step['action']}) failed: {error}"
        on_failure = step.get("onFailure", "Abort")
        if on_failure == "Abort":
            self.critical_failed = True
            if self.failure_message is None:
                self.failure_message = f"Step {name} ({step['action']}) failed: {error}"
            return None
        if on_failure == "Continue":
            return self._next_on_success(step)
        if on_failure.startswith("step:"):
            return on_failure[len("step:"):]
        self.failure_message = f"onFailure {on_failure!r} of step {name} {NOT_SUPPORTED}"
        self.critical_failed = True
        return None

    def _next_on_success(self, step: dict[str, Any]) -> str | None:
        if self._branch_next is not None:
            chosen, self._branch_next = self._branch_next, None
            return chosen
        if step.get("isEnd") in (True, "true", "True"):
            return None
        if step.get("nextStep"):
            return step["nextStep"]
        idx = self.order.index(step["name"]) + 1
        return self.order[idx] if idx < len(self.order) else None

    def _record(self, step: dict[str, Any], status: str, inputs: dict[str, Any],
                outputs: dict[str, list[str]], failure: str | None, started: Any = None) -> None:
        rec: dict[str, Any] = {
            "StepName": step["name"],
            "Action": step.get("action"),
            "StepStatus": status,
            "StepExecutionId": str(uuid.uuid4()),
            "ExecutionStartTime": started or utcnow(),
            "ExecutionEndTime": utcnow(),
            "OnFailure": step.get("onFailure", "Abort"),
            "MaxAttempts": int(step.get("maxAttempts", 1)),
            "IsEnd": bool(step.get("isEnd", False)),
            "IsCritical": bool(step.get("isCritical", True)),
            # AWS shows each input as a JSON string.
            "Inputs": {k: json.dumps(v) for k, v in inputs.items()},
            "Outputs": outputs,
        }
        if step.get("nextStep"):
            rec["NextStep"] = step["nextStep"]
        if step.get("timeoutSeconds") is not None:
            rec["TimeoutSeconds"] = int(step["timeoutSeconds"])
        if failure:
            rec["FailureMessage"] = failure
        self.step_executions.append(rec)

    # ---- {{ variable }} substitution ---------------------------------------------------

    _VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")

    def _lookup(self, ref: str) -> Any:
        if ref == "automation:EXECUTION_ID":
            return self.id
        if ref in self.params:
            return self.params[ref]
        if ref in self.step_outputs:
            return self.step_outputs[ref]
        raise StepFailure(f"variable {{{{ {ref} }}}} cannot be resolved (unknown parameter, an "
                          f"output of a step that has not succeeded, or a variable {NOT_SUPPORTED})")

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if not isinstance(value, str):
            return value
        whole = self._VAR.fullmatch(value.strip())
        if whole:  # a lone reference keeps its type (e.g. a StringList stays a list)
            return _scalar(self._lookup(whole.group(1)))
        return self._VAR.sub(lambda m: str(_scalar(self._lookup(m.group(1)))), value)

    # ---- actions ---------------------------------------------------------------------

    def _run_action(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        action = step.get("action")
        handler = {
            "aws:executeAwsApi": self._execute_aws_api,
            "aws:waitForAwsResourceProperty": self._wait_for_property,
            "aws:runCommand": self._run_command,
            "aws:changeInstanceState": self._change_instance_state,
            "aws:createImage": self._create_image,
            "aws:createTags": self._create_tags,
            "aws:branch": self._branch,
        }.get(action)
        if handler is None:
            raise StepFailure(f"action {action} {NOT_SUPPORTED}")
        return handler(step, inputs)

    def _execute_aws_api(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        service, api = inputs.get("Service"), inputs.get("Api")
        call = {("ec2", "RunInstances"): self._run_instances,
                ("ec2", "CreateImage"): self._create_image_api}.get((service, api))
        if call is None:
            raise StepFailure(f"aws:executeAwsApi {service} {api} {NOT_SUPPORTED}")
        return _select_outputs(step.get("outputs", []), call(inputs))

    _CREATE_IMAGE_INPUTS = {"Service", "Api", "InstanceId", "Name", "Description", "NoReboot",
                            "TagSpecifications"}

    def _create_image_api(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """CreateImage with TagSpecifications: moto tags the image but raises NotImplemented for
        snapshot tags, so the snapshot is tagged here, in the same step, as AWS does at once."""
        unknown = sorted(set(inputs) - self._CREATE_IMAGE_INPUTS)
        if unknown:
            raise StepFailure(f"CreateImage input(s) {unknown} {NOT_SUPPORTED}")
        by_type: dict[str, list[dict[str, str]]] = {}
        for spec in inputs.get("TagSpecifications", []):
            kind = spec.get("ResourceType")
            if kind not in ("image", "snapshot"):
                raise StepFailure(f"InvalidParameterValue: '{kind}' is not a valid taggable "
                                  f"resource type for this operation.")
            by_type.setdefault(kind, []).extend(spec.get("Tags", []))
        instance_id = inputs.get("InstanceId")
        self.ec2.get_instance(instance_id)  # InvalidInstanceID.NotFound like AWS
        image = self.ec2.create_image(
            instance_id, inputs.get("Name"), inputs.get("Description", ""),
            tag_specifications=[{"ResourceType": "image", "Tags": by_type.get("image", [])}]
            if by_type.get("image") else [])
        carry_root_volume_encryption(self.ec2, instance_id, image)
        if by_type.get("snapshot"):
            self.ec2.create_tags([image.ebs_snapshot.id],
                                 {t["Key"]: t["Value"] for t in by_type["snapshot"]})
        return {"ImageId": image.id}

    def _branch(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        """Pick the first choice whose condition holds, else Default; a document that names a
        step it does not have fails the step."""
        chosen = inputs.get("Default")
        for choice in inputs.get("Choices", []):
            if _condition(choice):
                chosen = choice.get("NextStep")
                break
        if chosen is None:
            raise StepFailure("no choice of the branch matched and it has no Default")
        if chosen not in self.steps:
            raise StepFailure(f"the branch chose step {chosen}, which the document does not have")
        self._branch_next = chosen
        return {}

    _RUN_INSTANCES_INPUTS = {
        "Service", "Api", "ImageId", "InstanceType", "MinCount", "MaxCount", "IamInstanceProfile",
        "MetadataOptions", "NetworkInterfaces", "TagSpecifications", "SubnetId",
        "SecurityGroupIds", "ClientToken", "BlockDeviceMappings",
    }

    def _run_instances(self, inputs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(inputs) - self._RUN_INSTANCES_INPUTS)
        if unknown:
            raise StepFailure(f"RunInstances input(s) {unknown} {NOT_SUPPORTED}")
        if int(inputs.get("MinCount", 1)) != 1 or int(inputs.get("MaxCount", 1)) != 1:
            raise StepFailure(f"RunInstances with a count other than 1 {NOT_SUPPORTED}")
        image_id = inputs.get("ImageId")
        # moto does not check the image by default; AWS does, and so do we.
        if not image_id or not self.ec2.describe_images(ami_ids=[image_id]):
            raise StepFailure(f"InvalidAMIID.NotFound: The image id '[{image_id}]' does not exist")
        profile = inputs.get("IamInstanceProfile") or {}
        if profile:
            # Same check as moto's RunInstances response: the profile must exist.
            filter_iam_instance_profiles(self.account, "aws", profile.get("Arn"), profile.get("Name"))
        mappings = inputs.get("BlockDeviceMappings") or []
        if not isinstance(mappings, list):
            raise StepFailure("InvalidParameterValue: BlockDeviceMappings must be a list of maps")
        extra: dict[str, Any] = {}
        if mappings:  # without any, moto gives the instance its default root volume
            extra["block_device_mappings"] = launch_block_device_mappings(
                self.ec2, self.account, self.region, image_id, mappings)
        reservation = self.ec2.run_instances(
            image_id, 1, None, [],
            instance_type=inputs.get("InstanceType", "m1.small"),
            is_instance_type_default=not inputs.get("InstanceType"),
            region_name=self.region,
            subnet_id=inputs.get("SubnetId"),
            security_group_ids=inputs.get("SecurityGroupIds", []),
            nics=copy.deepcopy(inputs.get("NetworkInterfaces", [])),
            tags=convert_tag_spec(inputs.get("TagSpecifications", [])),
            metadata_options=inputs.get("MetadataOptions", {}),
            iam_instance_profile_name=profile.get("Name"),
            iam_instance_profile_arn=profile.get("Arn"),
            client_token=inputs.get("ClientToken", ""),
            **extra,
        )
        instance = reservation.instances[0]
        if profile:
            self.ec2.associate_iam_instance_profile(
                instance_id=instance.id, iam_instance_profile_name=profile.get("Name"),
                iam_instance_profile_arn=profile.get("Arn"))
        self.launched_instances.add(instance.id)
        return {"ReservationId": reservation.id, "Instances": [{
            "InstanceId": instance.id, "ImageId": instance.image_id,
            "InstanceType": instance.instance_type, "SubnetId": instance.subnet_id,
            "State": {"Name": instance.state}}]}

    def _wait_for_property(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        target = (inputs.get("Service"), inputs.get("Api"))
        if target == ("ec2", "DescribeImages"):
            return self._wait_for_image(inputs)
        if target != ("ssm", "DescribeInstanceInformation"):
            raise StepFailure(f"aws:waitForAwsResourceProperty {inputs.get('Service')} "
                              f"{inputs.get('Api')} {NOT_SUPPORTED}")
        ids = [v for f in inputs.get("Filters", []) if f.get("Key") == "InstanceIds"
               for v in f.get("Values", [])]
        if len(ids) != 1:
            raise StepFailure(f"DescribeInstanceInformation without exactly one InstanceIds "
                              f"filter value {NOT_SUPPORTED}")
        # moto has no SSM agent: an instance this automation launched counts as "Online" while
        # it is running. Any other instance is unknown to us: fail rather than guess.
        if ids[0] not in self.launched_instances:
            raise StepFailure(f"the SSM agent state of {ids[0]} (not launched by this "
                              f"automation) {NOT_SUPPORTED}")
        state = self.ec2.get_instance(ids[0]).state
        if state != "running":
            raise StepFailure(f"instance {ids[0]} is {state}; it can never become Online")
        response = {"InstanceInformationList": [{"InstanceId": ids[0], "PingStatus": "Online"}]}
        value = _json_path(inputs.get("PropertySelector", ""), response)
        desired = [str(v) for v in inputs.get("DesiredValues", [])]
        if str(value) not in desired:
            raise StepFailure(f"property {inputs.get('PropertySelector')} is {value!r}, which is "
                              f"never going to become one of {desired} locally")
        return {}

    def _wait_for_image(self, inputs: dict[str, Any]) -> dict[str, list[str]]:
        ids = inputs.get("ImageIds") or []
        if len(ids) != 1:
            raise StepFailure(f"DescribeImages without exactly one ImageIds value {NOT_SUPPORTED}")
        images = self.ec2.describe_images(ami_ids=ids)
        if not images:
            raise StepFailure(f"InvalidAMIID.NotFound: The image id '[{ids[0]}]' does not exist")
        response = {"Images": [{"ImageId": images[0].id, "State": images[0].state}]}
        value = _json_path(inputs.get("PropertySelector", ""), response)
        desired = [str(v) for v in inputs.get("DesiredValues", [])]
        if str(value) not in desired:
            raise StepFailure(f"property {inputs.get('PropertySelector')} is {value!r}, which is "
                              f"never going to become one of {desired} locally")
        return {}

    _RUN_COMMAND_INPUTS = {"DocumentName", "InstanceIds", "Parameters", "Targets",
                           "OutputS3BucketName", "OutputS3KeyPrefix", "TimeoutSeconds"}

    def _run_command(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        unknown = sorted(set(inputs) - self._RUN_COMMAND_INPUTS)
        if unknown:
            raise StepFailure(f"aws:runCommand input(s) {unknown} {NOT_SUPPORTED}")
        if inputs.get("DocumentName") != "AWS-RunShellScript":
            return command_documents.run(self, step, inputs)
        if inputs.get("Targets"):
            raise StepFailure(f"aws:runCommand Targets {NOT_SUPPORTED} (use InstanceIds)")
        instance_ids = inputs.get("InstanceIds", [])
        for iid in instance_ids:
            state = self.ec2.get_instance(iid).state
            if state != "running":
                raise StepFailure(f"InvalidInstanceId: instance {iid} is {state}, not running")
        # The commands cannot really run: record them so tests can see what would have run.
        commands = (inputs.get("Parameters") or {}).get("commands", [])
        self.commands.append({"step": step["name"], "instanceIds": instance_ids,
                              "commands": commands})
        return {"CommandId": [str(uuid.uuid4())], "Status": ["Success"], "ResponseCode": ["0"]}

    def _change_instance_state(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        ids, desired = inputs.get("InstanceIds", []), inputs.get("DesiredState")
        operation = {"stopped": self.ec2.stop_instances, "running": self.ec2.start_instances,
                     "terminated": self.ec2.terminate_instances}.get(desired)
        if operation is None:
            raise StepFailure(f"aws:changeInstanceState DesiredState {desired} {NOT_SUPPORTED}")
        operation(ids)
        return {}

    def _create_image(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        instance_id = inputs.get("InstanceId")
        self.ec2.get_instance(instance_id)  # InvalidInstanceID.NotFound like AWS
        image = self.ec2.create_image(instance_id, inputs.get("ImageName"),
                                      inputs.get("ImageDescription", ""), tag_specifications=[])
        carry_root_volume_encryption(self.ec2, instance_id, image)
        # aws:createImage waits until the image is available, so no "pending" here.
        return {"ImageId": [image.id], "ImageState": [image.state]}

    def _create_tags(self, step: dict[str, Any], inputs: dict[str, Any]) -> dict[str, list[str]]:
        if inputs.get("ResourceType", "EC2") != "EC2":
            raise StepFailure(f"aws:createTags ResourceType {inputs.get('ResourceType')} {NOT_SUPPORTED}")
        ids = inputs.get("ResourceIds", [])
        for rid in ids:  # moto tags anything; AWS rejects unknown images
            if rid.startswith("ami-") and rid not in self.ec2.amis:
                raise StepFailure(f"InvalidAMIID.NotFound: The image id '[{rid}]' does not exist")
        self.ec2.create_tags(ids, {t["Key"]: t["Value"] for t in inputs.get("Tags", [])})
        return {}

    # ---- views -----------------------------------------------------------------------

    def outputs(self) -> dict[str, list[str]]:
        result = {}
        for name in self.content.get("outputs", []) or []:
            value = self.step_outputs.get(name)
            result[name] = value if isinstance(value, list) else [value] if value else [NO_OUTPUT]
        return result

    def describe(self) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "AutomationExecutionId": self.id,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "ExecutionStartTime": self.start_time,
            "AutomationExecutionStatus": self.status,
            "StepExecutions": copy.deepcopy(self.step_executions),
            "StepExecutionsTruncated": False,
            "Parameters": self.raw_params,
            "Outputs": self.outputs(),
            "Mode": "Auto",
        }
        if self.end_time:
            desc["ExecutionEndTime"] = self.end_time
        if self.failure_message and self.status == "Failed":
            desc["FailureMessage"] = self.failure_message
        if self.current:
            desc["CurrentStepName"] = self.current
            desc["CurrentAction"] = self.steps[self.current].get("action")
        return desc

    def metadata(self) -> dict[str, Any]:
        desc = self.describe()
        keep = ["AutomationExecutionId", "DocumentName", "DocumentVersion", "ExecutionStartTime",
                "ExecutionEndTime", "AutomationExecutionStatus", "Outputs", "Mode",
                "FailureMessage", "CurrentStepName", "CurrentAction"]
        return {k: desc[k] for k in keep if k in desc} | {"AutomationType": "Local"}

    def admin_view(self) -> dict[str, Any]:
        return {"id": self.id, "document": self.document_name, "status": self.status,
                "currentStep": self.current, "failureMessage": self.failure_message,
                "parameters": self.params, "outputs": self.outputs(),
                "launchedInstances": sorted(self.launched_instances),
                "commands": self.commands,
                "steps": [{"name": s["StepName"], "action": s["Action"], "status": s["StepStatus"],
                           "failureMessage": s.get("FailureMessage"), "outputs": s["Outputs"]}
                          for s in self.step_executions]}


# ---- helpers -------------------------------------------------------------------------------

class MapList(list):
    """A MapList parameter's value: a list of maps, substituted as a list even with one map."""


def _scalar(value: Any) -> Any:
    # Step outputs are stored as lists (AWS shape); a String output substitutes as its value.
    if isinstance(value, MapList):
        return list(value)
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


_CONDITIONS = {
    "StringEquals": lambda value, expected: str(value) == str(expected),
    "StartsWith": lambda value, expected: str(value).startswith(str(expected)),
    "EndsWith": lambda value, expected: str(value).endswith(str(expected)),
    "Contains": lambda value, expected: str(expected) in str(value),
    "BooleanEquals": lambda value, expected: str(value).lower() == str(expected).lower(),
}


def _condition(choice: dict[str, Any]) -> bool:
    """One aws:branch condition (variables already substituted)."""
    if "And" in choice:
        return all(_condition(c) for c in choice["And"])
    if "Or" in choice:
        return any(_condition(c) for c in choice["Or"])
    if "Not" in choice:
        return not _condition(choice["Not"])
    operators = [k for k in choice if k not in ("Variable", "NextStep")]
    if len(operators) != 1 or operators[0] not in _CONDITIONS or "Variable" not in choice:
        raise StepFailure(f"aws:branch condition {sorted(choice)} {NOT_SUPPORTED}")
    return _CONDITIONS[operators[0]](choice["Variable"], choice[operators[0]])


def _take_step_fault(step_name: str, document: str,
                     params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The next injected failure of this step: {"message", "halfway"} (halfway: createImage
    makes its image, untagged, before it fails, as a create that failed half way would). A fault
    with "nameContains" hits only an automation whose TargetAmiName or TestName contains it
    (one image family of a run)."""
    names = [str(v[0] if isinstance(v, list) and v else v)
             for k, v in (params or {}).items() if k in ("TargetAmiName", "TestName")]
    with LOCK:
        for fault in STATE.step_faults:
            wanted = fault.get("nameContains")
            if (fault["step"] == step_name and fault["times"] > 0
                    and fault.get("document") in (None, document)
                    and (wanted is None or any(wanted in n for n in names))):
                fault["times"] -= 1
                return {"message": fault.get("message") or f"injected failure of step {step_name}",
                        "halfway": bool(fault.get("halfway"))}
    return None


_PATH_PART = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")


def _json_path(selector: str, data: Any) -> Any:
    """The subset of JSONPath the document uses: $.Key.Key[0].Key. Anything else fails."""
    if not selector.startswith("$"):
        raise StepFailure(f"selector {selector!r} {NOT_SUPPORTED}")
    rest, value = selector[1:], data
    while rest:
        match = _PATH_PART.match(rest)
        if not match:
            raise StepFailure(f"selector {selector!r} {NOT_SUPPORTED}")
        try:
            value = value[match.group(1)] if match.group(1) else value[int(match.group(2))]
        except (KeyError, IndexError, TypeError):
            raise StepFailure(f"selector {selector!r} matches nothing in the API response")
        rest = rest[match.end():]
    return value


def _select_outputs(specs: list[dict[str, Any]], response: dict[str, Any]) -> dict[str, list[str]]:
    outputs = {}
    for spec in specs:
        value = _json_path(spec["Selector"], response)
        kind = spec.get("Type", "String")
        if kind == "StringList":
            outputs[spec["Name"]] = [str(v) for v in value]
        elif kind in ("String", "Integer", "Boolean"):
            outputs[spec["Name"]] = [str(value)]
        else:
            raise StepFailure(f"output type {kind} {NOT_SUPPORTED}")
    return outputs


def _typed_params(document: Any, given: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Check the Parameters like AWS (unknown, missing, allowedPattern) and apply defaults."""
    declared = document.content_json.get("parameters", {}) or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise SSMError("InvalidAutomationExecutionParametersException",
                       f"Parameters {unknown} are not defined in document {document.name}")
    typed, raw = {}, {}
    for name, spec in declared.items():
        if name in given:
            values = [str(v) for v in given[name]]
        elif "default" in spec:
            default = spec["default"]
            values = [str(v) for v in default] if isinstance(default, list) else [str(default)]
        else:
            raise SSMError("InvalidAutomationExecutionParametersException",
                           f"Parameter {name} is required by document {document.name}")
        kind = spec.get("type", "String")
        if kind not in ("String", "StringList", "MapList"):
            raise SSMError("InvalidAutomationExecutionParametersException",
                           f"parameter type {kind} (of {name}) {NOT_SUPPORTED}")
        if kind == "MapList":
            typed[name] = MapList(_map(name, v) for v in values) if name in given \
                else MapList(spec["default"])
            raw[name] = values
            continue
        pattern = spec.get("allowedPattern")
        for v in values:
            if pattern and not re.search(pattern, v):
                raise SSMError("InvalidAutomationExecutionParametersException",
                               f"Parameter {name} value {v!r} does not match allowedPattern {pattern}")
            if spec.get("allowedValues") and v not in spec["allowedValues"]:
                raise SSMError("InvalidAutomationExecutionParametersException",
                               f"Parameter {name} value {v!r} is not one of {spec['allowedValues']}")
        typed[name] = values if kind == "StringList" else (values[0] if values else "")
        raw[name] = values
    return typed, raw


def _map(name: str, value: str) -> dict[str, Any]:
    """One value of a MapList parameter: a JSON object."""
    try:
        item = json.loads(value)
    except ValueError:
        item = None
    if not isinstance(item, dict):
        raise SSMError("InvalidAutomationExecutionParametersException",
                       f"Parameter {name} value {value!r} is not a JSON object (a MapList takes "
                       f"one JSON object per value)")
    return item


def _get_execution(exec_id: str) -> Execution:
    exe = STATE.executions.get(exec_id)
    if exe is None:
        raise SSMError("AutomationExecutionNotFoundException",
                       f"Automation execution {exec_id} does not exist")
    return exe


# ---- the SSM API methods added to moto's response class ------------------------------------

_UNSUPPORTED_START_ARGS = ["Targets", "TargetMaps", "TargetParameterName", "TargetLocations",
                           "TargetLocationsURL", "AlarmConfiguration", "MaxConcurrency",
                           "MaxErrors"]


def start_automation_execution(self: SimpleSystemManagerResponse) -> ActionResult:
    for arg in _UNSUPPORTED_START_ARGS:
        if self._get_param(arg):
            raise SSMError("ValidationException", f"StartAutomationExecution {arg} {NOT_SUPPORTED}")
    if self._get_param("Mode", "Auto") != "Auto":
        raise SSMError("ValidationException", f"Mode {self._get_param('Mode')} {NOT_SUPPORTED}")
    name = self._get_param("DocumentName")
    backend = ssm_backends[self.current_account][self.region]
    try:
        document = backend._get_documents(name).find(self._get_param("DocumentVersion"))
    except ServiceException:
        raise SSMError("AutomationDefinitionNotFoundException",
                       f"Automation definition {name} not found")
    if document.document_type != "Automation":
        raise SSMError("InvalidAutomationExecutionParametersException",
                       f"Document {name} is of type {document.document_type}, not Automation")
    params, raw = _typed_params(document, self._get_param("Parameters") or {})
    token = self._get_param("ClientToken")
    with LOCK:
        # Idempotency: the same ClientToken returns the execution it started.
        for exe in STATE.executions.values():
            if token and getattr(exe, "client_token", None) == token:
                return ActionResult({"AutomationExecutionId": exe.id})
        exe = Execution(str(uuid.uuid4()), self.current_account, self.region, document, params, raw)
        exe.client_token = token
        STATE.executions[exe.id] = exe
    return ActionResult({"AutomationExecutionId": exe.id})


def get_automation_execution(self: SimpleSystemManagerResponse) -> ActionResult:
    with LOCK:
        exe = _get_execution(self._get_param("AutomationExecutionId"))
        exe.poll()
        return ActionResult({"AutomationExecution": exe.describe()})


def stop_automation_execution(self: SimpleSystemManagerResponse) -> ActionResult:
    kind = self._get_param("Type", "Cancel")
    if kind != "Cancel":
        raise SSMError("ValidationException", f"StopAutomationExecution Type {kind} {NOT_SUPPORTED}")
    with LOCK:
        exe = _get_execution(self._get_param("AutomationExecutionId"))
        if exe.status != "InProgress":
            raise SSMError("InvalidAutomationStatusUpdateException",
                           f"Automation execution {exe.id} is {exe.status} and cannot be stopped")
        exe.cancel()
    return EmptyResult()


def describe_automation_executions(self: SimpleSystemManagerResponse) -> ActionResult:
    if self._get_param("NextToken"):
        raise SSMError("ValidationException", f"NextToken {NOT_SUPPORTED} (all results fit in one page)")
    with LOCK:
        found = [e for e in STATE.executions.values()
                 if (e.account, e.region) == (self.current_account, self.region)]
        for flt in self._get_param("Filters") or []:
            key, values = flt.get("Key"), flt.get("Values", [])
            if key == "DocumentNamePrefix":
                found = [e for e in found if any(e.document_name.startswith(v) for v in values)]
            elif key == "ExecutionStatus":
                found = [e for e in found if e.status in values]
            elif key == "ExecutionId":
                found = [e for e in found if e.id in values]
            else:
                raise SSMError("ValidationException", f"filter key {key} {NOT_SUPPORTED}")
        found.sort(key=lambda e: e.start_time, reverse=True)
        return ActionResult({"AutomationExecutionMetadataList": [e.metadata() for e in found]})


def install() -> None:
    for fn in (start_automation_execution, get_automation_execution, stop_automation_execution,
               describe_automation_executions):
        setattr(SimpleSystemManagerResponse, fn.__name__, fn)
