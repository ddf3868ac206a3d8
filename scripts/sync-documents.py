#!/usr/bin/env python3
"""Copy the SSM documents of infra/ into infra/template.yaml.

CloudFormation cannot read a local file into an AWS::SSM::Document, so the template embeds each
document; this keeps every copy exact (the contract tests and `--check` fail when they differ):
- the Automation documents infra/bake-document.yaml and infra/test-document.yaml, as written;
- the Command documents that run the scripts of infra/baseline/ on an instance: each is a
  one-step aws:runShellScript document whose command is the script itself.
The local stack registers the same documents from the same files (local/stack.py imports
`document_content`).

Usage: scripts/sync-documents.py [--check]
"""
from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
INDENT = " " * 8
MARKER = "      Content:\n"

# Template resource -> (source file, kind, plugin name, timeout seconds, description).
DOCUMENTS: dict[str, tuple[str, str, str, int, str]] = {
    "BakeDocument": ("infra/bake-document.yaml", "Automation", "", 0, ""),
    "TestDocument": ("infra/test-document.yaml", "Automation", "", 0, ""),
    "UpdateReportDocument": (
        "infra/baseline/updates.sh", "Command", "listUpdates", 900,
        "List the pending updates (advisories, severities, CVEs, packages, kernel): the first "
        "line of the output is the JSON summary, the rest the raw dnf listings. Changes nothing."),
    "BaselineApplyDocument": (
        "infra/baseline/apply.sh", "Command", "applyBaseline", 1800,
        "Apply the golden AMI hardening baseline (idempotent; AIDE's database last)."),
    "BaselineCheckDocument": (
        "infra/baseline/check.sh", "Command", "checkBaseline", 600,
        "Check the golden AMI hardening baseline: one line per control, PASS/FAIL/SKIP with the "
        "evidence; fails when a control fails. Changes nothing."),
}


def document_content(resource: str) -> str:
    """The document's content as YAML text (what the stack deploys)."""
    source, kind, plugin, timeout, description = DOCUMENTS[resource]
    text = (ROOT / source).read_text()
    if kind == "Automation":
        return text
    if not text.endswith("\n") or text.endswith("\n\n"):
        raise SystemExit(f"{source} must end with exactly one newline (a YAML block keeps one)")
    script = "".join(" " * 10 + line if line.strip() else "\n"
                     for line in text.splitlines(keepends=True))
    return (
        f"# Generated from {source} by scripts/sync-documents.py: edit the script, not this.\n"
        "schemaVersion: '2.2'\n"
        f"description: >-\n  {description}\n"
        "mainSteps:\n"
        "  - action: aws:runShellScript\n"
        f"    name: {plugin}\n"
        "    inputs:\n"
        f"      timeoutSeconds: '{timeout}'\n"
        "      runCommand:\n"
        "        - |\n"
        f"{script}"
    )


def synced(template: str, resource: str) -> str:
    start = template.index(MARKER, template.index(f"  {resource}:\n")) + len(MARKER)
    end = start
    for line in template[start:].splitlines(keepends=True):
        # The embedded block ends at the first non-blank line indented less than the content.
        if line.strip() and not line.startswith(INDENT):
            break
        end += len(line)
    body = "".join(INDENT + line if line.strip() else "\n"
                   for line in document_content(resource).splitlines(keepends=True))
    return template[:start] + body + template[end:]


def main() -> int:
    template = TEMPLATE.read_text()
    updated = template
    for resource in DOCUMENTS:
        updated = synced(updated, resource)
    if "--check" in sys.argv:
        if updated != template:
            print("infra/template.yaml's documents differ from infra/: run scripts/sync-documents.py")
            return 1
        return 0
    TEMPLATE.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
