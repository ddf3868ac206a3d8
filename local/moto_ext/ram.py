"""AWS RAM gap of moto 5.2.5: AssociateResourceShare, and SSM parameters as shareable resources.

What moto does on its own (read from its source): CreateResourceShare, GetResourceShares
(ignoring the name filter: callers filter by name themselves), GetResourceShareAssociations,
UpdateResourceShare and DeleteResourceShare. It has no AssociateResourceShare at all, and its
list of shareable resource types lacks "parameter" (SSM parameters, which AWS RAM shares when
they are in the Advanced tier).

PublishPointer adds a pointer it creates to the region's pointer share with
AssociateResourceShare. Here that appends the resource ARNs to moto's own ResourceShare model
(its add_resources validates them), once each: associating a resource again is a no-op, as in
AWS. An unknown or deleted share answers UnknownResourceException, as AWS does.
"""

import json

from moto.ram import urls
from moto.ram.exceptions import UnknownResourceException
from moto.ram.models import ResourceShare
from moto.ram.responses import ResourceAccessManagerResponse
from moto.core.utils import unix_time


def associate_resource_share(self: ResourceAccessManagerResponse) -> str:
    share_arn = self._get_param("resourceShareArn")
    resource_arns = self._get_param("resourceArns") or []
    share = next((s for s in self.ram_backend.resource_shares
                  if s.arn == share_arn and s.status != "DELETED"), None)
    if share is None:
        raise UnknownResourceException(
            f"ResourceShare {share_arn} could not be found.")
    new = [arn for arn in dict.fromkeys(resource_arns) if arn not in share.resource_arns]
    share.add_resources(new)
    return json.dumps({"resourceShareAssociations": [
        {"resourceShareArn": share.arn, "resourceShareName": share.name, "associatedEntity": arn,
         "associationType": "RESOURCE", "status": "ASSOCIATED",
         "creationTime": unix_time(share.last_updated_time), "external": False}
        for arn in resource_arns]})


def install() -> None:
    if "parameter" not in ResourceShare.SHAREABLE_RESOURCES:
        ResourceShare.SHAREABLE_RESOURCES.append("parameter")
    ResourceAccessManagerResponse.associate_resource_share = associate_resource_share
    urls.url_paths.setdefault("{0}/associateresourceshare$", ResourceAccessManagerResponse.dispatch)
