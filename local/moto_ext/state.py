"""Shared, lock-protected state of the extension: faults, config, automation executions, what
the simulated instances' disks look like (the baseline and the pending updates), and the task
tokens of the Step Functions callback pattern (tasktokens.py).

moto's server is threaded (one thread per request), so every read-modify-write of this state
goes through LOCK. Executions are kept here (not in moto's SSM backend) so that one admin call
can show and reset them; POST /_golden/reset clears it together with moto's own state.

Pages followed by what the config holds (each module cites the rest):
- pendingDescribes: an image is pending before it is available (Image State):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html
- parameterValidationReads: an aws:ec2:image value is validated after PutParameter returned
  (DataType): https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
- ramAssociationReads: an association is ASSOCIATING before ASSOCIATED or FAILED:
  https://docs.aws.amazon.com/ram/latest/APIReference/API_ResourceShareAssociation.html
- automationPollsPerStep: how many polls a step takes locally; AWS documents no step duration,
  so this is a local timing knob, not a behaviour of AWS.
"""

import threading
from typing import Any

LOCK = threading.RLock()

DEFAULT_CONFIG: dict[str, Any] = {
    # DescribeImages calls during which a new image (CreateImage / CopyImage API) is "pending".
    "pendingDescribes": 0,
    # GetAutomationExecution calls per automation step (1 = one step per poll).
    "automationPollsPerStep": 1,
    # Reads of an aws:ec2:image parameter before its PutParameter is validated and applied or
    # dropped (ssm_params.py); 0 = validated before PutParameter answers.
    "parameterValidationReads": 1,
    # GetResourceShareAssociations reads during which a new association is ASSOCIATING (ram.py).
    "ramAssociationReads": 1,
}


class State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        # [{"step": str, "message": str, "times": int}]
        self.step_faults: list[dict[str, Any]] = []
        # [{"service", "action", "code", "status", "message", "times"}]
        self.api_faults: list[dict[str, Any]] = []
        # [{"service", "action", "count", "timeout", "arrived", "released", "timedOut"}]
        self.barriers: list[dict[str, Any]] = []
        # execution id -> automation.Execution
        self.executions: dict[str, Any] = {}
        # image id -> DescribeImages calls left while pending
        self.pending_images: dict[str, int] = {}
        # baseline controls the boot test's disk has broken (commands.py)
        self.baseline_fail: list[str] = []
        # which raw dnf outputs the update report reads (local/fixtures/updates/<scenario>)
        self.updates_scenario: str = "pending"
        # held aws:ec2:image PutParameter writes, in order (ssm_params.py)
        self.pending_parameters: list[dict[str, Any]] = []
        # (share ARN, resource ARN) -> association record (ram.py)
        self.ram_associations: dict[tuple[str, str], dict[str, Any]] = {}
        # [{"resourceArnContains", "message", "times"}] (ram.py)
        self.ram_faults: list[dict[str, Any]] = []
        # task token -> {"token", "status", "heartbeats", "output", "error", "cause"} (tasktokens.py)
        self.task_tokens: dict[str, dict[str, Any]] = {}


STATE = State()
