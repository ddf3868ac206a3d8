"""local/moto_ext/RESPONSE_FIELDS.md held equal to the Rust code, by reading the crates (no build).

The table lists every AWS response field the non-test code reads, per operation, with the AWS page
that documents it as returned; the stand-in may return only such fields (DESIGN.md, "Real AWS, not
a kind stand-in"). These tests fail when the code reads a field, or sends an operation, that the
table does not know, when a row no longer matches the code, and while the code reads a field AWS
does not return (the DescribeImages Ebs.KmsKeyId of copy-image).

Test code is left out: `#[cfg(test)]` items and crates/core/src/testing.rs.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "local" / "moto_ext" / "RESPONSE_FIELDS.md"
TABLE_NAME = TABLE.relative_to(REPO).as_posix()
TEST_ONLY_FILES = {"crates/core/src/testing.rs"}

# How the code reaches each SDK client (crates/core/src/deps.rs: `ec2()`, `ssm()`, ... on Clients
# and RegionClients; crates/cli/src/aws.rs: the fields `aws.ec2`, ... and `ssm_in(region)`;
# handlers also take a client as a parameter named after it), and the IAM prefix of its service.
CLIENTS = {
    "ec2": "ec2",
    "ssm": "ssm",
    "kms": "kms",
    "ram": "ram",
    "sns": "sns",
    "sfn": "states",
    "organizations": "organizations",
    "cloudformation": "cloudformation",
    "sts": "sts",
}
# Methods called on something named like a client that are not AWS operations: Lazy::get in
# deps.rs, Client::clone in aws.rs, and share-image's `organizations` iterator.
NOT_OPERATIONS = {"get", "clone", "chain"}
CLIENT_CALL = re.compile(
    r"\b(" + "|".join(CLIENTS) + r")(?:\(\)|_in\([^()]*\))?\s*\.\s*([a-z][a-z0-9_]*)\s*\("
)


# ---- the Rust side ---------------------------------------------------------------------------

def _skip_literal(src: str, i: int) -> int | None:
    """The index after a comment, string or char literal starting at i; None if none starts there."""
    if src.startswith("//", i):
        end = src.find("\n", i)
        return len(src) if end < 0 else end
    if src.startswith("/*", i):
        return src.index("*/", i) + 2
    raw = re.match(r'b?r(#*)"', src[i:i + 12])
    if raw and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
        close = '"' + raw.group(1)
        return src.index(close, i + raw.end()) + len(close)
    if src[i] == '"':
        j = i + 1
        while src[j] != '"':
            j += 2 if src[j] == "\\" else 1
        return j + 1
    if src[i] == "'":
        char = re.match(r"'(?:\\[^']+|[^\\'])'", src[i:i + 12])
        if char:
            return i + char.end()
    return None


def strip_test_items(src: str) -> str:
    """The source with every `#[cfg(test)]` item blanked (newlines kept, so lines stay put)."""
    out = list(src)
    for attribute in re.finditer(r"#\[cfg\(test\)\]", src):
        i = src.index("{", attribute.end())
        depth = 0
        while i < len(src):
            skipped = _skip_literal(src, i)
            if skipped is not None:
                i = skipped
                continue
            if src[i] == "{":
                depth += 1
            elif src[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        for k in range(attribute.start(), i + 1):
            if out[k] != "\n":
                out[k] = " "
    return "".join(out)


@cache
def sources() -> dict[str, str]:
    """Non-test code of every crate source file, by path from the repository root."""
    found = {}
    for path in sorted(REPO.glob("crates/*/src/**/*.rs")):
        name = path.relative_to(REPO).as_posix()
        if name not in TEST_ONLY_FILES:
            found[name] = strip_test_items(path.read_text())
    return found


def operation_calls(src: str) -> list[tuple[str, str]]:
    """(IAM prefix, snake_case operation) of every SDK operation call in src."""
    return [
        (CLIENTS[client], method)
        for client, method in CLIENT_CALL.findall(src)
        if method not in NOT_OPERATIONS
    ]


def snake(action: str) -> str:
    """DescribeImageAttribute -> describe_image_attribute: the SDK's fluent method."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def sends(src: str, operation: str) -> bool:
    """Whether src calls the fluent method of `operation` (e.g. `.describe_images()`)."""
    return re.search(r"\.\s*" + snake(operation.split(":", 1)[1]) + r"\s*\(", src) is not None


def reads(src: str, accessor: str) -> bool:
    """Whether src calls `accessor` (`.name(`) or names it as a path (`Type::name`)."""
    return re.search(r"(?:\.\s*" + accessor + r"\s*\(|::" + accessor + r"\b)", src) is not None


def names(src: str, function: str) -> bool:
    """Whether src defines or calls `function`."""
    return re.search(r"\b" + function + r"\s*\(", src) is not None


# ---- the table -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reader:
    path: str
    via: str | None


@dataclass(frozen=True)
class Row:
    line: int
    operation: str
    field: str
    accessors: tuple[str, ...]
    readers: tuple[Reader, ...]
    url: str
    notes: str

    def where(self) -> str:
        return f"{TABLE_NAME}:{self.line} ({self.operation} {self.field})"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _readers(cell: str) -> tuple[Reader, ...]:
    return tuple(
        Reader(path, via or None)
        for path, via in re.findall(r"`(crates/[^`]+\.rs)`(?:\s*\(via `(\w+)`\))?", cell)
    )


@cache
def sections() -> dict[str, list[tuple[int, list[str]]]]:
    """The table rows (line number, cells) of each `## ` section, header and rule left out."""
    found: dict[str, list[tuple[int, list[str]]]] = {}
    current = None
    for number, line in enumerate(TABLE.read_text().splitlines(), start=1):
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = []
        elif current and line.startswith("| `"):
            found[current].append((number, _cells(line)))
    return found


def section(title: str) -> list[tuple[int, list[str]]]:
    assert title in sections(), f"{TABLE_NAME} has no section '## {title}': restore it"
    return sections()[title]


@cache
def rows() -> tuple[Row, ...]:
    parsed = []
    for line, cells in section("Fields the code reads"):
        assert len(cells) == 6, (
            f"{TABLE_NAME}:{line}: a row has 6 cells (operation, field, accessor, read in, "
            f"documented as returned, notes), this one {len(cells)}"
        )
        operation, field, accessor, read_in, url, notes = cells
        parsed.append(Row(
            line=line,
            operation=operation.strip("`"),
            field=field.strip("`"),
            accessors=tuple(re.findall(r"(\w+)\(\)", accessor)),
            readers=_readers(read_in),
            url=url,
            notes=notes,
        ))
    return tuple(parsed)


@cache
def not_read() -> dict[str, tuple[str, ...]]:
    """Operation -> the files that send it and read nothing of its response."""
    return {
        cells[0].strip("`"): tuple(reader.path for reader in _readers(cells[1]))
        for _, cells in section("Operations whose response is not read")
    }


# ---- the tests -------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _reset():
    """Overrides conftest's: these tests read files only, they need no emulator."""


def test_the_table_is_read_whole():
    """A guard on the parser: a table that parses to nothing would let every test pass."""
    assert len(rows()) >= 50, f"{TABLE_NAME}: only {len(rows())} rows parsed"
    for row in rows():
        assert re.fullmatch(r"[a-z0-9]+:[A-Z][A-Za-z]+", row.operation), (
            f"{row.where()}: the operation is PREFIX:Action, e.g. ec2:DescribeImages"
        )
        assert row.accessors, f"{row.where()}: name the accessor(s), e.g. `snapshot_id()`"
        assert row.readers, f"{row.where()}: name the file(s) that read it, e.g. `crates/x/src/lib.rs`"
    assert not_read(), f"{TABLE_NAME}: the section of operations whose response is not read is empty"


def test_every_row_is_read_where_it_says():
    """(a) Each row's accessors occur in each file it names (outside tests), and that file sends
    the row's operation, itself or through the helper named after `via`."""
    code = sources()
    problems = []
    for row in rows():
        fluent = f".{snake(row.operation.split(':', 1)[1])}()"
        for reader in row.readers:
            src = code.get(reader.path)
            if src is None:
                problems.append(
                    f"{row.where()}: {reader.path} does not exist (or holds only test code): "
                    "fix the path in the table"
                )
                continue
            wrong = [
                f"does not call {accessor}()"
                for accessor in row.accessors
                if not reads(src, accessor)
            ]
            if reader.via is None and not sends(src, row.operation):
                wrong.append(f"does not send {row.operation} ({fluent})")
            if reader.via is not None:
                senders = [path for path, other in code.items()
                           if sends(other, row.operation) and names(other, reader.via)]
                if not names(src, reader.via):
                    wrong.append(f"does not name {reader.via}, the helper its `via` names")
                elif not senders:
                    wrong.append(f"reaches {reader.via}, but no file that sends {fluent} names it")
            if wrong:
                problems.append(
                    f"{row.where()}: {reader.path} {'; '.join(wrong)} (outside its tests). "
                    f"If the code stopped reading {row.field} there, drop the file from the row (or "
                    f"the row); if it reads the response through a helper, write `(via helper)` after "
                    f"the file; if the row describes a change still to land, land it"
                    + (f" (the row says: {row.notes})" if row.notes else "")
                )
    assert not problems, "\n".join(problems)


def test_every_operation_sent_is_in_the_table():
    """(b) Each operation a file sends has a row naming that file, or is listed for that file
    under "Operations whose response is not read"."""
    in_rows: dict[str, set[str]] = {}
    for row in rows():
        in_rows.setdefault(row.operation, set()).update(r.path for r in row.readers)
    ignored = not_read()
    problems = []
    for path, src in sources().items():
        for prefix, method in sorted(set(operation_calls(src))):
            operation = next(
                (op for op in set(in_rows) | set(ignored)
                 if op.split(":")[0] == prefix and snake(op.split(":", 1)[1]) == method),
                f"{prefix}:{''.join(part.title() for part in method.split('_'))}",
            )
            if path in in_rows.get(operation, set()) or path in ignored.get(operation, ()):
                continue
            problems.append(
                f"{path} sends {operation} (.{method}()) but {TABLE_NAME} has no row for it in "
                f"that file: add a row per response field the file reads (with the AWS page that "
                f"documents it as returned), or add the file to the operation's entry under "
                f"'Operations whose response is not read'"
            )
    assert not problems, "\n".join(problems)


def test_every_operation_call_is_seen():
    """The collection above sees every call: each `.send()` belongs to one operation call of a
    known client. Otherwise a client reached by another name escapes test (b)."""
    problems = []
    for path, src in sources().items():
        sent = len(re.findall(r"\.\s*send\s*\(\s*\)", src))
        seen = len(operation_calls(src))
        if sent != seen:
            problems.append(
                f"{path}: {sent} .send() calls but {seen} operation calls of known clients "
                f"({', '.join(f'{m}' for _, m in operation_calls(src)) or 'none'}): a client is reached "
                "by a name this test does not know; add it to CLIENTS (or a non-operation method to "
                "NOT_OPERATIONS) in local/tests/test_response_fields.py"
            )
    assert not problems, "\n".join(problems)


def test_operations_not_read_are_still_sent():
    """An entry of "Operations whose response is not read" names files that send the operation."""
    code = sources()
    problems = [
        f"{TABLE_NAME}: {path} is listed as sending {operation} without reading it, but it does "
        f"not send it: remove it from that entry"
        for operation, paths in not_read().items()
        for path in paths
        if path not in code or not sends(code[path], operation)
    ]
    assert not problems, "\n".join(problems)


def test_every_row_cites_the_aws_documentation():
    """(c) Every row, and every entry of "Not returned by AWS", cites an AWS documentation page."""
    problems = [
        f"{row.where()}: '{row.url}' is not an https://docs.aws.amazon.com page: cite the API "
        "reference page (the response element or the data type) that documents the field as returned"
        for row in rows()
        if not row.url.startswith("https://docs.aws.amazon.com/")
    ]
    for line, cells in section("Not returned by AWS"):
        if "https://docs.aws.amazon.com/" not in cells[4]:
            problems.append(f"{TABLE_NAME}:{line}: cite the AWS page that is the evidence")
    assert not problems, "\n".join(problems)


# ---- DescribeImages Ebs.KmsKeyId: an input of RunInstances, never in a DescribeImages answer ----

EBS_DEVICE_BINDING = [
    # let ebs = mapping.ebs()?;   if let Some(ebs) = mapping.ebs()   let Some(ebs) = m.ebs() else
    re.compile(r"\blet\s+(?:Some\s*\(\s*)?(\w+)\s*\)?\s*=\s*[^;{]*?\.ebs\s*\(\s*\)"),
    # .ebs().and_then(|ebs| ...)   .ebs().map(|ebs| ...)
    re.compile(r"\.ebs\s*\(\s*\)\s*\??\s*\.\s*\w+\s*\(\s*\|\s*(\w+)\s*\|"),
]
EBS_KEY_DIRECT = [
    re.compile(r"\.ebs\s*\(\s*\)\s*\??\s*\.\s*kms_key_id\s*\("),
    re.compile(r"\bEbsBlockDevice\s*::\s*kms_key_id\b"),
]


def ebs_key_reads(src: str) -> list[int]:
    """Lines of src that read `kms_key_id()` of an EbsBlockDevice (a block device mapping's Ebs):
    through `.ebs()` directly, as `EbsBlockDevice::kms_key_id`, or on a name bound to `.ebs()`."""
    offsets = [m.start() for pattern in EBS_KEY_DIRECT for m in pattern.finditer(src)]
    bound = {m.group(1) for pattern in EBS_DEVICE_BINDING for m in pattern.finditer(src)}
    for name in bound:
        offsets += [m.start() for m in re.finditer(r"\b" + name + r"\s*\.\s*kms_key_id\s*\(", src)]
    return sorted({src.count("\n", 0, offset) + 1 for offset in offsets})


def test_the_ebs_key_detector_sees_the_shapes_it_claims():
    """The detector below must find each way of reading a mapping's key, and not a snapshot's."""
    found = [
        "let ebs = mapping.ebs()?;\nlet key = ebs.kms_key_id();",
        "if let Some(device) = mapping.ebs() { device.kms_key_id() }",
        "mapping.ebs().and_then(|e| e.kms_key_id())",
        "mapping.ebs()?.kms_key_id()",
        "mappings.iter().filter_map(|m| m.ebs()).filter_map(EbsBlockDevice::kms_key_id)",
    ]
    not_found = [
        "snapshots.iter().filter_map(Snapshot::kms_key_id)",
        "let ebs = mapping.ebs()?;\nlet id = ebs.snapshot_id();\nsnapshot.kms_key_id()",
        ".copy_image().kms_key_id(key_arn)",
    ]
    for src in found:
        assert ebs_key_reads(src), f"the detector misses: {src!r}"
    for src in not_found:
        assert not ebs_key_reads(src), f"the detector wrongly flags: {src!r}"


def test_no_code_reads_an_image_mapping_s_kms_key_id():
    """(d) DescribeImages never returns BlockDeviceMappings[].Ebs.KmsKeyId (see the section "Not
    returned by AWS"): code that reads it works against the stand-in only."""
    entries = [cells for _, cells in section("Not returned by AWS")
               if cells[0] == "`ec2:DescribeImages`" and "Ebs.KmsKeyId" in cells[1]]
    assert entries, (
        f"{TABLE_NAME}: the section 'Not returned by AWS' must keep the DescribeImages "
        "Ebs.KmsKeyId entry while this test guards it"
    )
    problems = [
        f"{path}:{line}: reads kms_key_id() of an image's block device mapping (ec2:DescribeImages "
        f"Images[].BlockDeviceMappings[].Ebs.KmsKeyId), which AWS does not return (KmsKeyId is a "
        f"RunInstances input): take the key from ec2:DescribeSnapshots Snapshots[].KmsKeyId of the "
        f"mapping's Ebs.SnapshotId, as crates/verify-image/src/lib.rs does"
        for path, src in sources().items()
        if sends(src, "ec2:DescribeImages")
        for line in ebs_key_reads(src)
    ]
    assert not problems, "\n".join(problems)
