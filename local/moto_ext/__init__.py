"""golden-ami-pipeline's small extension of moto's server (moto[server] 5.2.5), for the local run.

It fills moto's gaps that the pipeline hits; it is not an emulator of whole services:
- automation.py: SSM Automation executions of OUR bake document (infra/bake-document.yaml),
  one step per GetAutomationExecution, against moto's EC2 backend; unsupported things fail loudly.
- images.py: CopyImage honours Encrypted / KmsKeyId / ClientToken; images can stay "pending"
  for N DescribeImages calls; DescribeImages reports Ebs.Encrypted (never Ebs.KmsKeyId: keys
  come from DescribeSnapshots).
- image_use.py: disabled, deregistered or not-available images are refused by RunInstances
  (API and automation launches) and CopyImage; DisableImage makes the image private and
  DescribeImages hides it unless IncludeDisabled.
- lifecycle.py: image deprecation, deregistration protection (with its 24 h cooldown), last
  launched time (set by RunInstances), and seeding image ages for tests (POST /_golden/images).
- ssm_params.py: PutParameter of DataType aws:ec2:image is validated asynchronously: held
  pending for N reads of the parameter, then applied, or dropped if the image is not usable.
- ssm_names.py: PutParameter enforces the name rules (characters, length, depth) and the value
  sizes (4 KB Standard, 8 KB Advanced).
- sns_limits.py: Publish's 256 KiB limit counts UTF-8 bytes of the message and its attributes;
  a Subject with line breaks or control characters is refused.
- ram.py: AssociateResourceShare (moto has none), asynchronous: ASSOCIATING for N reads of
  GetResourceShareAssociations (whose filters it completes), then ASSOCIATED or (fault) FAILED;
  SSM parameters as shareable resources.
- tasktokens.py: task tokens of the Step Functions callback pattern (waitForTaskToken) for the
  local runner: SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat record the answer of a
  token the runner registered (moto's own are no-ops), TaskTimedOut / TaskDoesNotExist for dead
  ones; the runner registers, polls and expires tokens through POST /_golden/task-tokens[/...].
- recording.py: who called what: every call of the stack's principals (functions, the operator
  CLI, automation steps, the instances, AWS on a caller's behalf) with its IAM action, resources
  and condition context, for local/iam to evaluate against the templates' policies.
- admin.py: POST /_golden/faults|config|reset|images|task-tokens[/poll|/expire],
  GET /_golden/state (fault injection, config, seeding, task tokens).

Start it (from the repository root; binds 127.0.0.1 only):

    .venv/bin/python -m local.moto_ext --port 5000
    # or, from anywhere:  .venv/bin/python local/moto_ext/server.py --port 5000

Ready when `GET http://127.0.0.1:5000/_golden/state` answers 200 (moto's own
`GET /moto-api/data.json` answers too). Stop it with SIGTERM / SIGINT to its PID.

Technique: moto's response classes dispatch each API action to the method of the same
snake_case name, so we add or wrap such methods on the classes (and a few Ami properties, and
moto's RunInstances backend method) before the server starts; models stay in moto's
per-account, per-region backends.
"""

_installed = False


def install() -> None:
    """Patch moto (idempotent). Must run before the server handles a request."""
    global _installed
    if _installed:
        return
    from . import (automation, image_use, images, lifecycle, ram, recording, sns_limits,
                   ssm_names, ssm_params, tasktokens)

    automation.install()
    images.install()
    lifecycle.install()
    image_use.install()  # wraps what images.py and lifecycle.py installed
    ram.install()
    sns_limits.install()
    ssm_params.install()
    ssm_names.install()  # wraps ssm_params' PutParameter: names and sizes are checked first
    tasktokens.install()
    recording.install()  # wraps automation.py's steps and commands.py's upload
    _installed = True
