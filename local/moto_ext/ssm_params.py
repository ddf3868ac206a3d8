"""SSM parameters of data type aws:ec2:image: validated asynchronously, as AWS does.

What moto 5.2.5 does on its own (read from its source): PutParameter with DataType aws:ec2:image
writes the new version at once and never checks the value (its comment: "The check of the
existence of an AMI ID ... is not supported. The parameter will be created.").

What AWS does, and this module follows:
- PutParameter, DataType aws:ec2:image: "a successful HTTP 200 response does not guarantee that
  your parameter was successfully created or updated. The aws:ec2:image value is validated
  asynchronously, and the PutParameter call returns before the validation is complete. If you
  submit an invalid AMI value, the PutParameter operation will return success, but the
  asynchronous validation will fail and the parameter will not be created or updated."
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html (DataType)
  https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
- What is validated: "the parameter value is in the required format, such as
  ami-12345abcdeEXAMPLE, and that the specified AMI is available in your Amazon Web Services
  account" (same DataType text). The FORMAT is validated asynchronously too: "For most data
  types, Parameter Store validates the value during the PutParameter operation and rejects
  values that don't conform. The exception is aws:ec2:image. For this data type, Parameter Store
  validates the value asynchronously."
  https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-data-types.html
  So any value answers 200; a value that is not an image id (ami- and 8 or 17 hex digits), or an
  image that is not in that account's backend in that region, or is not `available` (pending,
  failed, disabled, deregistered) is never written.

The model (nothing runs in the background): PutParameter answers 200 with the Version and Tier
moto computes (synchronous checks, e.g. ParameterAlreadyExists, still apply at once); the write
is held pending and applied (if valid) or dropped (if not) when its reads are used up: config
`parameterValidationReads` (default 1) reads of that parameter, where a read is a GetParameter,
GetParameters or GetParameterHistory naming it, a GetParametersByPath whose path holds it, or any
DescribeParameters in its account and region. Until then every read shows the parameter as it
was (ParameterNotFound / InvalidParameters for a create), and its history has nothing new. So
with the default, the first read after the put shows the old value and the second the new one.
`parameterValidationReads` 0: validated at once (applied or dropped before PutParameter answers).
GET /_golden/state lists the pending writes ("pendingParameters").

Choices where AWS documents nothing (not documented; our choice):
- The Version PutParameter returns is the one the write will get if every write before it is
  applied: the visible latest version + the writes of that name still pending + 1. A write that
  is dropped gives its version to nobody: the next applied write takes the visible latest + 1.
- A second write of the same name while one is pending is queued behind it; each is validated
  and applied (or dropped) on its own, in order.
- PutParameter Overwrite=false while a create of that name is pending: ParameterAlreadyExists
  (the conservative answer: the create was accepted; a caller must read to know its outcome).
- DeleteParameter / DeleteParameters of a name drops its pending writes (answered as moto
  answers for the visible parameter: ParameterNotFound if only a create is pending).
- Tags given with a create are applied with it (dropped with it).
- Only writes with DataType aws:ec2:image are held; moto's 100-version rotation is not applied
  to a held write.
"""

import re
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import ParameterAlreadyExists
from moto.ssm.models import ParameterDict
from moto.ssm.responses import SimpleSystemManagerResponse

from .state import LOCK, STATE

IMAGE_DATA_TYPE = "aws:ec2:image"
_IMAGE_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")

_orig: dict[str, Any] = {}


def _key(name: str) -> str:
    return ParameterDict.normalize_name(name)


def _bare(self: SimpleSystemManagerResponse, name: Any) -> str:
    """A name as GetParameter takes it (ARN, :version or :label) -> the parameter's key."""
    name = self.ssm_backend._strip_parameter_arn(str(name or ""))
    return _key(name.split(":")[0])


def _mine(self: SimpleSystemManagerResponse) -> list[dict[str, Any]]:
    return [w for w in STATE.pending_parameters
            if (w["account"], w["region"]) == (self.current_account, self.region)]


def valid_image(account: str, region: str, value: str) -> bool:
    if not _IMAGE_ID.match(value or ""):
        return False
    ami = ec2_backends[account][region].amis.get(value)
    return ami is not None and ami.state == "available"


def _settle(backend: Any, write: dict[str, Any]) -> None:
    """Apply (if valid) or drop a pending write whose reads are used up. Call under LOCK."""
    STATE.pending_parameters.remove(write)
    param = write["parameter"]
    if not valid_image(write["account"], write["region"], param.value):
        return
    versions = backend._parameters[write["key"]]
    param.version = versions[-1].version + 1 if versions else 1
    versions.append(param)
    if write["tags"]:
        backend.add_tags_to_resource("Parameter", param.name, write["tags"])


def _read(self: SimpleSystemManagerResponse, action: str, concerns: Any) -> ActionResult:
    """Run a read: settle the writes it would show whose reads are used up, read, then count the
    read against the writes still pending."""
    with LOCK:
        mine = [w for w in _mine(self) if concerns(w["key"])]
        for write in mine:
            if write["readsLeft"] <= 0:
                _settle(self.ssm_backend, write)
        try:
            return _orig[action](self)
        finally:
            for write in mine:
                if write in STATE.pending_parameters:
                    write["readsLeft"] -= 1


def get_parameter(self: SimpleSystemManagerResponse) -> ActionResult:
    key = _bare(self, self._get_param("Name"))
    return _read(self, "get_parameter", lambda k: k == key)


def get_parameters(self: SimpleSystemManagerResponse) -> ActionResult:
    keys = {_bare(self, n) for n in self._get_param("Names") or []}
    return _read(self, "get_parameters", lambda k: k in keys)


def get_parameter_history(self: SimpleSystemManagerResponse) -> ActionResult:
    key = _bare(self, self._get_param("Name"))
    return _read(self, "get_parameter_history", lambda k: k == key)


def get_parameters_by_path(self: SimpleSystemManagerResponse) -> ActionResult:
    path = (self._get_param("Path") or "/").rstrip("/") + "/"
    recursive = bool(self._get_param("Recursive", False))

    def under(key: str) -> bool:
        name = key if key.startswith("/") else "/" + key
        rest = name[len(path):] if path == "/" or name.startswith(path) else None
        return rest is not None and (recursive or "/" not in rest)

    return _read(self, "get_parameters_by_path", under)


def describe_parameters(self: SimpleSystemManagerResponse) -> ActionResult:
    return _read(self, "describe_parameters", lambda k: True)


def put_parameter(self: SimpleSystemManagerResponse) -> ActionResult:
    if self._get_param("DataType") != IMAGE_DATA_TYPE:
        return _orig["put_parameter"](self)
    name = self._get_param("Name")
    key = _key(name)
    backend = self.ssm_backend
    with LOCK:
        queued = [w for w in _mine(self) if w["key"] == key]
        if queued and not self._get_param("Overwrite", False):
            raise ParameterAlreadyExists()
        before = list(backend._parameters.get(key, []))
        tags_before = dict(backend._resource_tags.get("Parameter", {}).get(key, {}))
        result = _orig["put_parameter"](self)  # moto's synchronous checks, then its write
        # Take moto's write back: it becomes the pending write.
        versions = backend._parameters[key]
        param = versions.pop()
        versions[:] = before  # (moto may have rotated out its oldest version)
        if not before:
            del backend._parameters[key]
        tags = dict(backend._resource_tags.get("Parameter", {}).get(key, {}))
        if tags != tags_before:
            backend._resource_tags["Parameter"][key] = tags_before
            if not tags_before:
                del backend._resource_tags["Parameter"][key]
        visible = before[-1].version if before else 0
        param.version = visible + len(queued) + 1
        result.result["Version"] = param.version
        write = {"account": self.current_account, "region": self.region, "key": key,
                 "parameter": param, "tags": {k: v for k, v in tags.items()
                                              if tags_before.get(k) != v},
                 "create": not before and not queued,
                 "readsLeft": int(STATE.config.get("parameterValidationReads", 1))}
        STATE.pending_parameters.append(write)
        if write["readsLeft"] <= 0:
            _settle(backend, write)
        return result


def _drop_pending(self: SimpleSystemManagerResponse, names: list[str]) -> None:
    keys = {_key(n) for n in names}
    with LOCK:
        for write in [w for w in _mine(self) if w["key"] in keys]:
            STATE.pending_parameters.remove(write)


def delete_parameter(self: SimpleSystemManagerResponse) -> ActionResult:
    _drop_pending(self, [self._get_param("Name")])
    return _orig["delete_parameter"](self)


def delete_parameters(self: SimpleSystemManagerResponse) -> ActionResult:
    _drop_pending(self, self._get_param("Names") or [])
    return _orig["delete_parameters"](self)


def admin_view() -> list[dict[str, Any]]:
    with LOCK:
        return [{"account": w["account"], "region": w["region"], "name": w["parameter"].name,
                 "value": w["parameter"].value, "version": w["parameter"].version,
                 "create": w["create"], "readsLeft": w["readsLeft"],
                 "valid": valid_image(w["account"], w["region"], w["parameter"].value)}
                for w in STATE.pending_parameters]


_WRAPPED = (put_parameter, get_parameter, get_parameters, get_parameter_history,
            get_parameters_by_path, describe_parameters, delete_parameter, delete_parameters)


def install() -> None:
    for fn in _WRAPPED:
        _orig[fn.__name__] = getattr(SimpleSystemManagerResponse, fn.__name__)
        setattr(SimpleSystemManagerResponse, fn.__name__, fn)
