"""AWS RAM gap of moto 5.2.5: AssociateResourceShare (asynchronous, as in AWS), the filters of
GetResourceShareAssociations, and SSM parameters as shareable resources.

What moto does on its own (read from its source): CreateResourceShare, GetResourceShares
(ignoring the name filter: callers filter by name themselves), GetResourceShareAssociations,
UpdateResourceShare and DeleteResourceShare. It has no AssociateResourceShare at all; its
GetResourceShareAssociations shows every association ASSOCIATED and does not filter by
associationStatus (it answers every association WITH the status asked for); its list of
shareable resource types lacks "parameter".

What this module adds, and the page each line follows:
- "parameter" is a shareable resource type: AWS RAM shares SSM parameters of the Advanced tier.
  https://docs.aws.amazon.com/ram/latest/userguide/shareable.html (Systems Manager: parameters)
- AssociateResourceShare (resourceShareArn, resourceArns) answers resourceShareAssociations, one
  per resource ARN given, with the fields of ResourceShareAssociation: resourceShareArn,
  resourceShareName, associatedEntity, associationType RESOURCE, status, creationTime,
  lastUpdatedTime, external (false), and statusMessage when FAILED.
  https://docs.aws.amazon.com/ram/latest/APIReference/API_AssociateResourceShare.html
  https://docs.aws.amazon.com/ram/latest/APIReference/API_ResourceShareAssociation.html
- The association is asynchronous: its status is one of ASSOCIATING | ASSOCIATED | FAILED |
  DISASSOCIATING | DISASSOCIATED (ResourceShareAssociation.status, same page). A new association
  is answered ASSOCIATING and GetResourceShareAssociations shows it ASSOCIATING for config
  `ramAssociationReads` reads (default 1; a read is a GetResourceShareAssociations call that
  would show it, whatever its associationStatus filter), then ASSOCIATED; or FAILED with a
  statusMessage when the fault {"ramAssociationFail": {"resourceArnContains", "message",
  "times"}} matched it (admin.py). How long ASSOCIATING lasts is not documented; our choice:
  that many reads. A FAILED resource is not in the share (moto's resource list) but its FAILED
  association stays visible.
- Associating a resource that is ASSOCIATING or ASSOCIATED again is a no-op: it answers the
  association as it is. A FAILED one is associated anew (ASSOCIATING). Not documented either
  way; our choice (the pipeline retries PublishPointer, which associates again).
- An unknown or deleted share answers UnknownResourceException (AssociateResourceShare Errors,
  same page); a malformed ARN MalformedArnException (moto's add_resources validates).
- GetResourceShareAssociations with associationType RESOURCE: the resourceShareArns,
  resourceArn and associationStatus filters, applied to the statuses above.
  https://docs.aws.amazon.com/ram/latest/APIReference/API_GetResourceShareAssociations.html
  Resources given to CreateResourceShare are shown ASSOCIATED at once (moto's, not modelled).
"""

import json
from typing import Any

from moto.core.utils import unix_time, utcnow
from moto.ram import urls
from moto.ram.exceptions import InvalidParameterException, UnknownResourceException
from moto.ram.models import ResourceShare
from moto.ram.responses import ResourceAccessManagerResponse

from .state import LOCK, STATE

STATUSES = ("ASSOCIATING", "ASSOCIATED", "FAILED", "DISASSOCIATING", "DISASSOCIATED")
_orig: dict[str, Any] = {}


def _view(share: Any, record: dict[str, Any]) -> dict[str, Any]:
    view = {"resourceShareArn": share.arn, "resourceShareName": share.name,
            "associatedEntity": record["resourceArn"], "associationType": "RESOURCE",
            "status": record["status"], "creationTime": unix_time(record["created"]),
            "lastUpdatedTime": unix_time(record["updated"]), "external": False}
    if record["status"] == "FAILED":
        view["statusMessage"] = record["statusMessage"]
    return view


def _take_fault(resource_arn: str) -> str | None:
    for fault in STATE.ram_faults:
        if fault["times"] > 0 and fault["resourceArnContains"] in resource_arn:
            fault["times"] -= 1
            return fault["message"]
    return None


def associate_resource_share(self: ResourceAccessManagerResponse) -> str:
    share_arn = self._get_param("resourceShareArn")
    resource_arns = list(dict.fromkeys(self._get_param("resourceArns") or []))
    share = next((s for s in self.ram_backend.resource_shares
                  if s.arn == share_arn and s.status != "DELETED"), None)
    if share is None:
        raise UnknownResourceException(f"ResourceShare {share_arn} could not be found.")
    with LOCK:
        records = STATE.ram_associations
        new = [arn for arn in resource_arns
               if records.get((share.arn, arn), {}).get("status") in (None, "FAILED")
               and not (arn in share.resource_arns and (share.arn, arn) not in records)]
        share.add_resources(new)  # MalformedArnException before anything changes
        now = utcnow()
        for arn in new:
            records[(share.arn, arn)] = {
                "resourceArn": arn, "status": "ASSOCIATING", "created": now, "updated": now,
                "readsLeft": int(STATE.config.get("ramAssociationReads", 1)),
                "failWith": _take_fault(arn), "statusMessage": None}
        share.last_updated_time = now if new else share.last_updated_time
        answer = []
        for arn in resource_arns:
            record = records.get((share.arn, arn)) or {  # associated by CreateResourceShare
                "resourceArn": arn, "status": "ASSOCIATED", "created": share.creation_time,
                "updated": share.last_updated_time}
            answer.append(_view(share, record))
    return json.dumps({"resourceShareAssociations": answer})


def _settle(share: Any, record: dict[str, Any]) -> None:
    if record["status"] != "ASSOCIATING" or record["readsLeft"] > 0:
        return
    record["updated"] = utcnow()
    if record["failWith"] is not None:
        record.update(status="FAILED", statusMessage=record["failWith"])
        if record["resourceArn"] in share.resource_arns:
            share.resource_arns.remove(record["resourceArn"])
    else:
        record["status"] = "ASSOCIATED"


def get_resource_share_associations(self: ResourceAccessManagerResponse) -> str:
    if self._get_param("associationType") != "RESOURCE":
        return _orig["get_resource_share_associations"](self)
    status = self._get_param("associationStatus")
    if status and status not in STATUSES:
        raise InvalidParameterException(f"{status} is not a valid association status.")
    if self._get_param("principal"):
        raise InvalidParameterException(
            "You cannot specify a principal when the association type is RESOURCE.")
    share_arns = self._get_param("resourceShareArns") or []
    resource_arn = self._get_param("resourceArn")
    found = []
    with LOCK:
        for share in self.ram_backend.resource_shares:
            if share_arns and share.arn not in share_arns:
                continue
            mine = {arn: rec for (s, arn), rec in STATE.ram_associations.items() if s == share.arn}
            arns = list(dict.fromkeys([*share.resource_arns, *mine]))
            for arn in arns:
                if resource_arn and arn != resource_arn:
                    continue
                record = mine.get(arn)
                if record is not None:
                    _settle(share, record)
                    view = _view(share, record)
                    if record["status"] == "ASSOCIATING":
                        record["readsLeft"] -= 1
                else:
                    view = _view(share, {"resourceArn": arn, "status": "ASSOCIATED",
                                         "created": share.creation_time,
                                         "updated": share.last_updated_time})
                if status in (None, view["status"]):
                    found.append(view)
    return json.dumps({"resourceShareAssociations": found})


def admin_view() -> list[dict[str, Any]]:
    with LOCK:
        return [{"resourceShareArn": share, "resourceArn": arn, "status": r["status"],
                 "readsLeft": r["readsLeft"], "statusMessage": r["statusMessage"]}
                for (share, arn), r in STATE.ram_associations.items()]


def install() -> None:
    if "parameter" not in ResourceShare.SHAREABLE_RESOURCES:
        ResourceShare.SHAREABLE_RESOURCES.append("parameter")
    _orig["get_resource_share_associations"] = \
        ResourceAccessManagerResponse.get_resource_share_associations
    ResourceAccessManagerResponse.associate_resource_share = associate_resource_share
    ResourceAccessManagerResponse.get_resource_share_associations = get_resource_share_associations
    urls.url_paths.setdefault("{0}/associateresourceshare$", ResourceAccessManagerResponse.dispatch)
