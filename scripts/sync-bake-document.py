#!/usr/bin/env python3
"""Copy infra/bake-document.yaml into infra/template.yaml's BakeDocument Content.

CloudFormation cannot read a local file into an AWS::SSM::Document, so the template embeds the
document; this keeps the copy exact (the contract tests fail when the two differ).
Usage: scripts/sync-bake-document.py [--check]
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "infra" / "bake-document.yaml"
TEMPLATE = ROOT / "infra" / "template.yaml"
INDENT = " " * 8
MARKER = "      Content:\n"


def synced(template: str, document: str) -> str:
    start = template.index(MARKER, template.index("  BakeDocument:\n")) + len(MARKER)
    end = start
    lines = template[start:].splitlines(keepends=True)
    for line in lines:
        # The embedded block ends at the first non-blank line indented less than the content.
        if line.strip() and not line.startswith(INDENT):
            break
        end += len(line)
    body = "".join(INDENT + line if line.strip() else "\n" for line in document.splitlines(keepends=True))
    return template[:start] + body + template[end:]


def main() -> int:
    template = TEMPLATE.read_text()
    updated = synced(template, DOCUMENT.read_text())
    if "--check" in sys.argv:
        if updated != template:
            print("infra/template.yaml's BakeDocument differs from infra/bake-document.yaml: run scripts/sync-bake-document.py")
            return 1
        return 0
    TEMPLATE.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
