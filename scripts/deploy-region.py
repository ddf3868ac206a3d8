"""`make deploy-region REGION=us-east-1 [STACK=golden-ami-pipeline]`: prepare one more target region.

Reads the pipeline stack (its GoldenKeyArn output and its OrganizationId / OrganizationArn
parameters) in its home region and deploys infra/region.yaml in REGION as the stack
<STACK>-region-<REGION>: the golden key's replica there and the region's pointer share. Needs AWS
credentials for the pipeline's account; refuses clearly without them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REPO = Path(__file__).resolve().parents[1]


def refuse(message: str) -> int:
    print(f"deploy-region: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True, help="the target region to prepare")
    parser.add_argument("--stack-name", default="golden-ami-pipeline", help="the pipeline stack")
    parser.add_argument("--home-region", default=None,
                        help="the pipeline stack's region (default: the configured region)")
    args = parser.parse_args(argv)

    session = boto3.Session(region_name=args.home_region)
    if session.get_credentials() is None:
        return refuse("no AWS credentials: set AWS_PROFILE (or run `aws sso login`) for the "
                      "pipeline's account, then run it again")
    if session.region_name is None:
        return refuse("no home region: pass HOME_REGION=... (or set AWS_DEFAULT_REGION)")
    if args.region == session.region_name:
        return refuse(f"{args.region} is the pipeline's home region: the main stack serves it already")
    quick = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2})
    try:
        stacks = session.client("cloudformation", config=quick).describe_stacks(
            StackName=args.stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        return refuse(f"cannot read the stack {args.stack_name} in {session.region_name}: {error}")
    stack = stacks[0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    missing = [k for k in ("GoldenKeyArn",) if k not in outputs] + \
        [k for k in ("OrganizationId", "OrganizationArn") if not parameters.get(k)]
    if missing:
        return refuse(f"the stack {args.stack_name} lacks {', '.join(missing)}: deploy the main "
                      "stack (make deploy) first")
    command = [
        "sam", "deploy", "--template-file", str(REPO / "infra" / "region.yaml"),
        "--stack-name", f"{args.stack_name}-region-{args.region}", "--region", args.region,
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        f"PipelineStackName={args.stack_name}",
        f"PrimaryKeyArn={outputs['GoldenKeyArn']}",
        f"OrganizationId={parameters['OrganizationId']}",
        f"OrganizationArn={parameters['OrganizationArn']}",
    ]
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=REPO, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
