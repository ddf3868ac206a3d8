"""EC2 image lifecycle gaps of moto 5.2.5: deprecation, deregistration protection, last launch.

What the retention step needs, and what moto does on its own (read from its source):
- EnableImageDeprecation / DisableImageDeprecation, EnableImageDeregistrationProtection /
  DisableImageDeregistrationProtection: absent (moto answers 500). Added here.
- DescribeImages never reports DeprecationTime, DeregistrationProtection or LastLaunchedTime.
  Added as Ami properties that moto's serializer picks up: DeprecationTime when set
  ("2025-05-01T00:00:00.000Z", as in the EC2 User Guide's "Deprecate an AMI");
  DeregistrationProtection and LastLaunchedTime ("2025-02-17T20:22:19Z", as in "Check when an
  Amazon EC2 AMI was last used") for the image's owner only, as on AWS.
- DescribeImageAttribute: lastLaunchedTime crashes (500), deregistrationProtection is refused as
  InvalidRequest. Both answered here ({"Value": ...}; no Value for a never-launched image).
- DescribeImages ignores IncludeDeprecated and returns every image. That is AWS's behaviour for
  the owner (its deprecated images always appear), and only the owner can deprecate an image
  (EnableImageDeprecation on another's image: AuthFailure), so no image here is both deprecated
  and someone else's. Filters (e.g. the pipeline's tags) apply to deprecated images as to others.
- RunInstances: moto records nothing on the image. We set the launched image's last launched
  time to the moment of the call, for RunInstances API calls and automation launches alike (the
  backend method is wrapped). AWS reports it up to 24 hours later; locally it is immediate.

Values and rules, from the EC2 API reference and the AWS CLI examples:
- DeprecateAt is rounded to the nearest minute; a time in the past or more than 10 years ahead
  is refused (InvalidParameterValue, our wording; the docs name no code). "Now" is not the past:
  a time within the current minute is accepted. The 2-year limit of public AMIs is not modelled.
- Protection: EnableImageDeregistrationProtection returns and shows "enabled-without-cooldown"
  or, with WithCooldown, "enabled-with-cooldown"; Disable returns and shows "disabled" (aws-cli
  examples enable-/disable-image-deregistration-protection, terraform's acceptance test).
- Cooldown: after disabling protection that was enabled WithCooldown, the image stays protected
  for 24 hours (User Guide "Protect an Amazon EC2 AMI from deregistration"). The docs do not say
  what DescribeImages shows meanwhile; we show "disabled" (what the Disable call returns), so
  DeregistrationProtection alone does not tell whether DeregisterImage will succeed: the
  DeregisterImage error does. Enabling protection again does not end a running cooldown (else
  enable-without-cooldown then disable would bypass it). The 24 hours are real time.
- DeregisterImage of a protected image (or within the cooldown) fails with
  OperationNotPermitted and the image stays registered. Neither the API reference nor the User
  Guide names the code AWS returns; OperationNotPermitted ("the operation is not allowed") is
  our choice, so the pipeline should treat any client error of DeregisterImage on a protected
  image as "still protected" rather than match this code.

Seeding for tests (admin API, see admin.py): POST /_golden/images sets an image's CreationDate
and last launched time, so suites can build several "monthly" images of different ages.
The state lives on moto's Ami objects, so POST /_golden/reset (moto's reset) clears it.

Pages followed (operation, field or behaviour, URL):
- EnableImageDeprecation / DisableImageDeprecation, DeprecateAt (rounded to the minute, at most
  10 years ahead): https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableImageDeprecation.html
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deprecate.html
- Enable/DisableImageDeregistrationProtection, WithCooldown, the 24-hour cooldown:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableImageDeregistrationProtection.html
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deregistration-protection.html
- Image.DeprecationTime, Image.DeregistrationProtection, Image.LastLaunchedTime (DescribeImages):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html
- DescribeImageAttribute lastLaunchedTime / deregistrationProtection ({"Value"}):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImageAttribute.html
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-last-launched-time.html
- IncludeDeprecated (the owner always sees its deprecated images):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html
- Not documented; our choice: the InvalidParameterValue wording for DeprecateAt, AuthFailure
  for someone else's image, OperationNotPermitted for DeregisterImage of a protected image (see
  above), and LastLaunchedTime set at once (AWS: up to 24 hours later).
"""

from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import EC2ClientError, UnvailableAMIIdError
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import format_timestamp

COOLDOWN = timedelta(hours=24)
_ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"

_orig_deregister_image = AmisResponse.deregister_image
_orig_describe_image_attribute = AmisResponse.describe_image_attribute
_orig_run_instances = InstanceBackend.run_instances


# ---- per-image state (defaults on the class; moto's reset drops the Ami objects) ----------

def _owned(ami: Ami) -> bool:
    return ami.owner_id == ami.ec2_backend.account_id


def _deprecation_time(ami: Ami) -> str | None:
    return format_timestamp(ami.golden_deprecate_at) if ami.golden_deprecate_at else None


def _deregistration_protection(ami: Ami) -> str | None:
    return ami.golden_protection if _owned(ami) else None


def _last_launched_time(ami: Ami) -> str | None:
    launched = ami.golden_last_launched
    return launched.strftime(_ISO_SECONDS) if launched and _owned(ami) else None


def deregistration_refusal(ami: Any, now: datetime) -> str | None:
    """Why DeregisterImage must refuse this image at `now` (naive UTC), or None."""
    if ami.golden_protection != "disabled":
        return (f"The image {ami.id} has deregistration protection enabled "
                f"({ami.golden_protection}); disable it first.")
    if ami.golden_cooldown_until and now < ami.golden_cooldown_until:
        return (f"The image {ami.id} is in its deregistration protection cooldown until "
                f"{ami.golden_cooldown_until.strftime(_ISO_SECONDS)}.")
    return None


def _caller_image(self: AmisResponse, image_id: str) -> Ami:
    """The caller's own image, or the error EC2 gives for a missing or someone else's image."""
    backend = self.ec2_backend
    if image_id in backend.deleted_amis:
        raise UnvailableAMIIdError(image_id)
    ami = backend.describe_images(ami_ids=[image_id])[0]  # InvalidAMIID.Malformed / NotFound
    if not _owned(ami):
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{image_id}")
    return ami


# ---- API actions -------------------------------------------------------------------------

def enable_image_deprecation(self: AmisResponse) -> ActionResult:
    ami = _caller_image(self, self._get_param("ImageId"))
    deprecate_at: datetime = self._get_param("DeprecateAt")  # parsed by moto: naive UTC
    self.error_on_dryrun()
    rounded = (deprecate_at + timedelta(seconds=30)).replace(second=0, microsecond=0)
    now = utcnow()
    if rounded < now.replace(second=0, microsecond=0):
        raise EC2ClientError("InvalidParameterValue",
                             f"DeprecateAt {format_timestamp(rounded)} is in the past.")
    if rounded > _ten_years_after(now):
        raise EC2ClientError("InvalidParameterValue",
                             f"DeprecateAt {format_timestamp(rounded)} is more than 10 years "
                             f"from now.")
    ami.golden_deprecate_at = rounded
    return ActionResult({"Return": True})


def _ten_years_after(now: datetime) -> datetime:
    try:
        return now.replace(year=now.year + 10)
    except ValueError:  # 29 February
        return now.replace(year=now.year + 10, day=28)


def disable_image_deprecation(self: AmisResponse) -> ActionResult:
    ami = _caller_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    ami.golden_deprecate_at = None
    return ActionResult({"Return": True})


def enable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    ami = _caller_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    cooldown = self._get_bool_param("WithCooldown", False)
    ami.golden_protection = "enabled-with-cooldown" if cooldown else "enabled-without-cooldown"
    return ActionResult({"Return": ami.golden_protection})


def disable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    ami = _caller_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    if ami.golden_protection == "enabled-with-cooldown":
        ami.golden_cooldown_until = utcnow() + COOLDOWN
    ami.golden_protection = "disabled"
    return ActionResult({"Return": "disabled"})


def deregister_image(self: AmisResponse) -> ActionResult:
    self.error_on_dryrun()
    ami = self.ec2_backend.amis.get(self._get_param("ImageId"))
    refusal = deregistration_refusal(ami, utcnow()) if ami is not None else None
    if refusal:
        raise EC2ClientError("OperationNotPermitted", refusal)
    return _orig_deregister_image(self)


def describe_image_attribute(self: AmisResponse) -> ActionResult:
    attribute = self._get_param("Attribute")
    if attribute not in ("lastLaunchedTime", "deregistrationProtection"):
        return _orig_describe_image_attribute(self)
    ami = _caller_image(self, self._get_param("ImageId"))
    self.error_on_dryrun()
    if attribute == "lastLaunchedTime":
        key, value = "LastLaunchedTime", _last_launched_time(ami)
    else:
        key, value = "DeregistrationProtection", ami.golden_protection
    return ActionResult({"ImageId": ami.id, key: {"Value": value} if value else {}})


def run_instances(self: InstanceBackend, *args: Any, **kwargs: Any) -> Any:
    reservation = _orig_run_instances(self, *args, **kwargs)
    now = utcnow()
    for image_id in {instance.image_id for instance in reservation.instances}:
        ami = owned_image(image_id, self.region_name)
        if ami is not None:
            ami.golden_last_launched = now
    return reservation


def owned_image(image_id: str, region: str | None = None) -> Ami | None:
    """The image with this id, in the backend of the account that owns it (any account, the
    given region or any). moto's default images are in every account and owned by none."""
    from moto.ec2.models import ec2_backends

    for account in list(ec2_backends.values()):  # dict views: no backend is created
        for name, backend in list(account.items()):
            ami = backend.amis.get(image_id)
            if ami is not None and _owned(ami) and region in (None, name):
                return ami
    return None


# ---- admin: POST /_golden/images ---------------------------------------------------------

def seed_image(body: dict[str, Any]) -> dict[str, Any]:
    """{"ImageId", "creationDate"?, "lastLaunchedTime"? (null: never launched)} -> the image's
    values as DescribeImages shows them. ValueError (-> 400) for bad input."""
    unknown = sorted(set(body) - {"ImageId", "creationDate", "lastLaunchedTime"})
    if unknown or "ImageId" not in body:
        raise ValueError(f"expected ImageId and creationDate and/or lastLaunchedTime, got "
                         f"{sorted(body)}")
    if not {"creationDate", "lastLaunchedTime"} & set(body):
        raise ValueError("nothing to set: give creationDate and/or lastLaunchedTime")
    image_id = body["ImageId"]
    ami = owned_image(image_id) if isinstance(image_id, str) else None
    if ami is None:
        raise ValueError(f"no image {image_id!r} owned by any account (moto's default images "
                         f"cannot be seeded)")
    created = _timestamp("creationDate", body["creationDate"]) if "creationDate" in body else None
    launched = body.get("lastLaunchedTime")
    if launched is not None:
        launched = _timestamp("lastLaunchedTime", launched)
    if created is not None:
        ami.creation_date = created
    if "lastLaunchedTime" in body:
        ami.golden_last_launched = launched
    return {"ImageId": ami.id, "OwnerId": ami.owner_id, "Region": ami.ec2_backend.region_name,
            "creationDate": format_timestamp(ami.creation_date),
            "lastLaunchedTime": _last_launched_time(ami)}


def _timestamp(name: str, value: Any) -> datetime:
    """ISO 8601 with a zone ("2026-01-01T00:00:00.000Z", "...+02:00") -> naive UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"{name} must be an ISO 8601 time with a zone, like "
                         f"2026-01-01T00:00:00.000Z; got {value!r}")
    return parsed.astimezone(timezone.utc).replace(tzinfo=None)


def install() -> None:
    Ami.golden_deprecate_at = None
    Ami.golden_protection = "disabled"
    Ami.golden_cooldown_until = None
    Ami.golden_last_launched = None
    Ami.deprecation_time = property(_deprecation_time)
    Ami.deregistration_protection = property(_deregistration_protection)
    Ami.last_launched_time = property(_last_launched_time)
    AmisResponse.enable_image_deprecation = enable_image_deprecation
    AmisResponse.disable_image_deprecation = disable_image_deprecation
    AmisResponse.enable_image_deregistration_protection = enable_image_deregistration_protection
    AmisResponse.disable_image_deregistration_protection = disable_image_deregistration_protection
    AmisResponse.deregister_image = deregister_image
    AmisResponse.describe_image_attribute = describe_image_attribute
    InstanceBackend.run_instances = run_instances
