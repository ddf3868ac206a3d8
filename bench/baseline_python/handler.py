"""BASELINE USED ONLY FOR COMPARISON: not part of the pipeline, never deployed.

A Python (boto3) equivalent of the Rust ReadCurrentAmi step (crates/read-current-ami), written
the way a Python Lambda usually is, so bench/bench.py can compare cold starts, warm invocations
and memory under awslambdaric (the Runtime Interface Client of Lambda's Python images).

It makes the same three calls as the Rust step, with the same inputs, in the same order:
  1. ssm:GetParameter(POINTER_PARAMETER_NAME)
  2. ec2:DescribeImages(ImageIds=[that id])                 -> must exist and be available
  3. ssm:DescribeAutomationExecutions(DocumentNamePrefix=BAKE_DOCUMENT_NAME,
                                      ExecutionStatus=Pending|InProgress|Waiting|Cancelling)
and returns the same JSON (parameterName, parameterVersion, amiId, amiName[, bakeInProgress]).

What differs, on purpose, because it is how each language is normally written:
  - Clients: boto3 clients for SSM and EC2 only, created at import (module scope). The Rust step
    builds all five SDK clients of the pipeline (no I/O in Rust) from one shared config.
  - Configuration: the two variables this handler uses, read at import. The Rust step reads and
    validates the whole pipeline configuration (crates/core/src/config.rs) at start.
  - Errors: raised as exceptions named like the Rust step's error types, with less detail.
"""

import os
import re

import boto3

POINTER_PARAMETER_NAME = os.environ["POINTER_PARAMETER_NAME"]
BAKE_DOCUMENT_NAME = os.environ["BAKE_DOCUMENT_NAME"]
ACTIVE_STATUSES = ["Pending", "InProgress", "Waiting", "Cancelling"]
AMI_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")

ssm = boto3.client("ssm")
ec2 = boto3.client("ec2")


class PointerNotFound(Exception):
    pass


class InvalidInput(Exception):
    pass


class SourceImageNotFound(Exception):
    pass


def lambda_handler(event, context):
    try:
        parameter = ssm.get_parameter(Name=POINTER_PARAMETER_NAME)["Parameter"]
    except ssm.exceptions.ParameterNotFound as error:
        raise PointerNotFound(f"parameter {POINTER_PARAMETER_NAME} does not exist") from error
    ami_id = parameter["Value"].strip()
    if not AMI_ID.match(ami_id):
        raise InvalidInput(f"parameter {POINTER_PARAMETER_NAME} holds {ami_id!r}, which is not an AMI id")

    images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    if not images or images[0].get("State") != "available":
        raise SourceImageNotFound(f"image {ami_id} from {POINTER_PARAMETER_NAME} is missing or not available")
    image = images[0]

    executions = ssm.describe_automation_executions(
        Filters=[
            {"Key": "DocumentNamePrefix", "Values": [BAKE_DOCUMENT_NAME]},
            {"Key": "ExecutionStatus", "Values": ACTIVE_STATUSES},
        ]
    )["AutomationExecutionMetadataList"]
    bake_in_progress = next(
        (
            e["AutomationExecutionId"]
            for e in executions
            if e.get("DocumentName") == BAKE_DOCUMENT_NAME and e.get("AutomationExecutionStatus") in ACTIVE_STATUSES
        ),
        None,
    )

    result = {
        "parameterName": POINTER_PARAMETER_NAME,
        "parameterVersion": parameter["Version"],
        "amiId": ami_id,
    }
    if image.get("Name"):
        result["amiName"] = image["Name"]
    if bake_in_progress:
        result["bakeInProgress"] = bake_in_progress
    return result
