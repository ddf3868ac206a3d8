"""EC2 images that cannot be used: disabled, deregistered or not `available` images are refused
as a launch's image and as a copy's source, and DisableImage does what EC2 documents.

What moto 5.2.5 does on its own (read from its source):
- DisableImage / EnableImage only set the image's state ("disabled" / "available"); the image
  keeps its launch permissions, and DescribeImages keeps returning it (moto reads no
  IncludeDisabled).
- RunInstances checks nothing about the image (unless MOTO_ENABLE_AMI_VALIDATION, off by
  default): a disabled, pending or deregistered image launches.
- CopyImage copies a disabled or pending source; a deregistered source crashes (HTTP 500).

What this module adds, and the page each line follows:
- DisableImage: the image becomes private (all launch permissions removed) and only its owner
  may disable it. https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DisableImage.html
  and https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/disable-an-ami.html
  ("Sets the AMI state to disabled and removes all launch permissions from the AMI. A disabled
  AMI can't be used for instance launches. ... Only the AMI owner can disable an AMI.")
  The error for someone else's image is not documented; our choice: AuthFailure
  "Not authorized for image:ID" (what lifecycle.py answers for the owner-only image calls).
- DescribeImages: a disabled image is not returned unless IncludeDisabled is true, also when it
  is asked for by ImageIds ("A disabled AMI does not appear in DescribeImages API calls by
  default"). https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html
  (request parameter IncludeDisabled). What AWS answers when every ImageIds value is a disabled
  image is not documented; our choice: an empty Images list (what moto answers for a
  deregistered one).
- RunInstances (API calls and the automation's launches alike: the backend method is wrapped)
  and CopyImage (its source, in SourceRegion) refuse an image that is not usable:
    deregistered               -> InvalidAMIID.Unavailable
    disabled, pending, failed  -> InvalidAMIID.Unavailable
    unknown                    -> InvalidAMIID.NotFound
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html documents
  InvalidAMIID.Unavailable ("The specified AMI has been deregistered or is in an unusable
  state") and InvalidAMIID.NotFound ("The specified AMI doesn't exist ..."); the disabled-image
  rule itself is the DisableImage reference above. Which of the two codes AWS sends for a
  disabled or pending image is not documented separately; our choice: InvalidAMIID.Unavailable
  (the "unusable state" one), with our wording "The image id '[ID]' is STATE, not available".
  The launch still checks the image in the caller's region only (RunInstances has no source
  region).
"""

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError, UnvailableAMIIdError
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.amis import AmisResponse


def unusable(backend: Any, image_id: str | None) -> EC2ClientError | None:
    """Why `image_id` cannot be launched or copied from `backend` (an EC2 region backend)."""
    if not image_id:
        return InvalidAMIIdError(str(image_id))
    if image_id in backend.deleted_amis:
        return UnvailableAMIIdError(image_id)
    ami = backend.amis.get(image_id)
    if ami is None:
        return InvalidAMIIdError(image_id)
    if ami.state != "available":
        return EC2ClientError("InvalidAMIID.Unavailable",
                              f"The image id '[{image_id}]' is {ami.state}, not available")
    return None


def _owned(ami: Any) -> bool:
    return ami.owner_id == ami.ec2_backend.account_id


def disable_image(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    ami = self.ec2_backend.amis.get(image_id)
    if ami is not None and not _owned(ami):
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{image_id}")
    result = _orig["disable_image"](self)  # InvalidAMIID.NotFound / .Unavailable, DryRun
    self.ec2_backend.amis[image_id].launch_permissions.clear()
    return result


def describe_images(self: AmisResponse) -> ActionResult:
    result = _orig["describe_images"](self)
    if not self._get_bool_param("IncludeDisabled", False):
        result.result["Images"] = [ami for ami in result.result["Images"]
                                   if ami.state != "disabled"]
    return result


def copy_image(self: AmisResponse) -> ActionResult:
    from moto.ec2.models import ec2_backends

    source_region = self._get_param("SourceRegion") or self.region
    refusal = unusable(ec2_backends[self.current_account][source_region],
                       self._get_param("SourceImageId"))
    if refusal is not None:
        raise refusal
    return _orig["copy_image"](self)


def run_instances(self: InstanceBackend, image_id: str, *args: Any, **kwargs: Any) -> Any:
    refusal = unusable(self, image_id)
    if refusal is not None:
        raise refusal
    return _orig["run_instances"](self, image_id, *args, **kwargs)


_orig: dict[str, Any] = {}


def install() -> None:
    """Wrap what is installed now (images.py / lifecycle.py install first)."""
    _orig.update(disable_image=AmisResponse.disable_image,
                 describe_images=AmisResponse.describe_images,
                 copy_image=AmisResponse.copy_image,
                 run_instances=InstanceBackend.run_instances)
    AmisResponse.disable_image = disable_image
    AmisResponse.describe_images = describe_images
    AmisResponse.copy_image = copy_image
    InstanceBackend.run_instances = run_instances
