"""EC2 image gaps of moto 5.2.5: CopyImage encryption, tags, ClientToken; pending images.

What moto does on its own (read from its source):
- CopyImage ignores Encrypted, KmsKeyId, ClientToken, TagSpecifications and CopyImageTags
  (the copy gets no tags at all; AWS tags it on create, "image" and "snapshot" resource types). Every Ami (copy included) gets a NEW,
  unencrypted snapshot in its constructor, tagged from_ami=<ami id>, so the copy's snapshots
  are already distinct from the source's; we only record their encryption.
- DescribeImages' BlockDeviceMappings never carry Ebs.Encrypted; we add it from the image's
  snapshot. Ebs.KmsKeyId is NOT returned: the EbsBlockDevice reference documents KmsKeyId as
  supported only on the BlockDeviceMapping objects given to RunInstances, RequestSpotFleet and
  RequestSpotInstances (an input); an image's key is its snapshots' key, which DescribeSnapshots
  reports (moto already does). The Ebs fields returned are the ones moto returns plus Encrypted:
  SnapshotId, VolumeSize, VolumeType, DeleteOnTermination, Encrypted, all members of
  EbsBlockDevice, the type of DescribeImages' Image.BlockDeviceMappings[].Ebs:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html
- Images are "available" at once; config pendingDescribes holds new images (CreateImage and
  CopyImage API calls) "pending" for that many DescribeImages calls that return them.
- DeregisterImage then DeleteSnapshot works; DeleteSnapshot while the image exists answers
  InvalidSnapshot.InUse, as AWS does. Nothing to patch there.
- RunInstances' BlockDeviceMappings (the bake's direct encryption mode): moto makes a volume
  per mapping and keeps its KmsKeyId as given, but neither checks the key nor takes the
  snapshot of the image's root device. `launch_block_device_mappings` does both, as EC2 does.
- CreateImage gives the image a new, unencrypted snapshot whatever the instance's volumes are;
  `carry_root_volume_encryption` puts the root volume's encryption and key on it (EC2 snapshots
  an encrypted volume under the volume's key).

KMS errors: a real CopyImage with a bad key is often accepted and the copy then turns "failed"
asynchronously. Locally we reject it synchronously, which is easier to test and to act on:
- unknown key  -> InvalidParameterValue "The specified KMS key is not accessible ..." (the wording
  EC2 uses for an inaccessible key on ImportImage);
- disabled / pending-deletion key -> InvalidKMSKey.InvalidState "The KMS key provided is in an
  incorrect state" (the wording EC2 uses when it cannot use a key that is not Enabled).

Pages followed (operation, field or behaviour, URL):
- CopyImage Encrypted, KmsKeyId (needs Encrypted; default key alias/aws/ebs), ClientToken
  (idempotency), TagSpecifications (image, snapshot), CopyImageTags; an encrypted source stays
  encrypted: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html
- Image State (pending -> available), DescribeImages:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html
- RunInstances BlockDeviceMappings (Ebs Encrypted, KmsKeyId, SnapshotId, VolumeSize,
  DeleteOnTermination): https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html
  and API_EbsBlockDevice.html (above); default key and snapshot-of-an-encrypted-volume rules:
  https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html
- CreateImage TagSpecifications (image, snapshot), its snapshot under the volume's key:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html
- DeleteSnapshot of a snapshot an image uses: InvalidSnapshot.InUse (moto's own):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
- The KMS error codes and wordings above (InvalidParameterValue, InvalidKMSKey.InvalidState,
  InvalidParameterCombination, InvalidParameterDependency, InvalidBlockDeviceMapping) are in the
  EC2 error codes page (errors-overview.html, above); which one AWS sends for each key problem on
  CopyImage / RunInstances, and the synchronous refusal, are not documented; our choice.
"""

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse
from moto.kms.models import kms_backends

from .state import LOCK, STATE

_orig_copy_image = AmisResponse.copy_image
_orig_create_image = AmisResponse.create_image
_orig_describe_images = AmisResponse.describe_images

# ClientToken -> image id, per account/region: a retried CopyImage must not copy twice.
_copy_tokens: dict[tuple[str, str, str], str] = {}


def _resolve_kms_key(account: str, region: str, key_ref: str) -> str:
    """Key id, key ARN, alias name or alias ARN -> the key's ARN; errors like EC2 would."""
    kms = kms_backends[account][region]
    try:
        key = kms.keys[kms.any_id_to_key_id(key_ref)]
    except (KeyError, TypeError, AttributeError):  # unknown alias -> get_key_id(None)
        raise EC2ClientError(
            "InvalidParameterValue",
            f"The specified KMS key is not accessible: {key_ref} does not exist in {region}")
    if key.key_state != "Enabled":
        raise EC2ClientError(
            "InvalidKMSKey.InvalidState",
            f"The KMS key provided is in an incorrect state: {key.arn} is {key.key_state}")
    return key.arn


def _hold_pending(ami: Ami) -> None:
    with LOCK:
        n = int(STATE.config.get("pendingDescribes", 0))
        if n > 0:
            ami.state = "pending"
            STATE.pending_images[ami.id] = n


def copy_image(self: AmisResponse) -> ActionResult:
    encrypted = self._get_bool_param("Encrypted", False)
    key_ref = self._get_param("KmsKeyId")
    token = self._get_param("ClientToken")
    token_key = (self.current_account, self.region, token)
    if token and token_key in _copy_tokens:
        return ActionResult({"ImageId": _copy_tokens[token_key]})
    if key_ref and not encrypted:
        raise EC2ClientError("InvalidParameterCombination",
                             "KmsKeyId requires Encrypted to be true")
    tag_specs = _copy_tag_specifications(self)
    key_arn = None
    if encrypted:
        # Without KmsKeyId AWS uses the account's default EBS key (alias aws/ebs).
        key_arn = _resolve_kms_key(self.current_account, self.region, key_ref or "alias/aws/ebs")
    result = _orig_copy_image(self)
    image_id = result.result["ImageId"]
    copy = self.ec2_backend.amis[image_id]
    source_region = self._get_param("SourceRegion")
    from moto.ec2.models import ec2_backends
    source = ec2_backends[self.current_account][source_region].amis.get(
        self._get_param("SourceImageId"))
    if key_arn is None and source is not None and source.ebs_snapshot.encrypted:
        key_arn = source.ebs_snapshot.kms_key_id  # an encrypted source stays encrypted
    if key_arn:
        copy.ebs_snapshot.encrypted = True
        copy.ebs_snapshot.kms_key_id = key_arn
    _tag_copy(self, copy, source, tag_specs)
    _hold_pending(copy)
    if token:
        _copy_tokens[token_key] = image_id
    return result


def _copy_tag_specifications(self: AmisResponse) -> tuple[dict[str, str], dict[str, str]]:
    """TagSpecifications of a CopyImage request -> (image tags, snapshot tags); checked first,
    so a bad resource type creates nothing, as on AWS."""
    image_tags: dict[str, str] = {}
    snapshot_tags: dict[str, str] = {}
    for spec in self._get_param("TagSpecifications", []) or []:
        tags = {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
        kind = spec.get("ResourceType")
        if kind == "image":
            image_tags.update(tags)
        elif kind == "snapshot":
            snapshot_tags.update(tags)
        else:
            raise EC2ClientError("InvalidParameterValue",
                                 f"'{kind}' is not a valid taggable resource type for this operation.")
    return image_tags, snapshot_tags


def _tag_copy(self: AmisResponse, copy: Ami, source: Ami | None,
              specs: tuple[dict[str, str], dict[str, str]]) -> None:
    """CopyImageTags copies the source image's tags; TagSpecifications (image, snapshot) win."""
    image_tags: dict[str, str] = {}
    if self._get_bool_param("CopyImageTags", False) and source is not None:
        image_tags.update(self.ec2_backend.tags.get(source.id, {}))
    image_tags.update(specs[0])
    if image_tags:
        self.ec2_backend.create_tags([copy.id], image_tags)
    if specs[1]:
        self.ec2_backend.create_tags([copy.ebs_snapshot.id], specs[1])


def create_image(self: AmisResponse) -> ActionResult:
    result = _orig_create_image(self)
    image = self.ec2_backend.amis[result.result["ImageId"]]
    carry_root_volume_encryption(self.ec2_backend, self._get_param("InstanceId"), image)
    _hold_pending(image)
    return result


def _true(value: Any) -> bool:
    return value in (True, "true", "True")


def launch_block_device_mappings(ec2_backend: Any, account: str, region: str, image_id: str,
                                 mappings: list[Any]) -> list[dict[str, Any]]:
    """RunInstances' BlockDeviceMappings as moto's run_instances takes them, checked like EC2:
    a KmsKeyId needs Encrypted, the key must exist and be enabled (its ARN is kept, as EC2
    reports it), an encrypted snapshot cannot launch unencrypted, and a mapping of the image's
    root device launches from the image's snapshot. The image's root device is launched as the
    image has it when no mapping names it."""
    ami = ec2_backend.amis.get(image_id)
    snapshot = ami.ebs_snapshot if ami is not None else None
    root = ami.root_device_name if ami is not None else None
    launched: list[dict[str, Any]] = []
    for i, mapping in enumerate(mappings):
        where = f"BlockDeviceMappings[{i}]"
        if not isinstance(mapping, dict) or not mapping.get("DeviceName"):
            raise EC2ClientError("InvalidBlockDeviceMapping", f"{where} has no DeviceName")
        if not isinstance(mapping.get("Ebs"), dict):
            raise EC2ClientError("InvalidBlockDeviceMapping",
                                 f"{where} ({mapping['DeviceName']}): only EBS mappings are "
                                 f"supported by the local stand-in (local/moto_ext)")
        ebs = dict(mapping["Ebs"])
        encrypted = _true(ebs.get("Encrypted"))
        if ebs.get("KmsKeyId") and not encrypted:
            raise EC2ClientError("InvalidParameterDependency",
                                 "The parameter KmsKeyId requires the parameter Encrypted to be set.")
        if mapping["DeviceName"] == root and snapshot is not None and not ebs.get("SnapshotId"):
            ebs["SnapshotId"] = snapshot.id
            ebs.setdefault("VolumeSize", snapshot.volume.size)
            if snapshot.encrypted and "Encrypted" in ebs and not encrypted:
                raise EC2ClientError("InvalidBlockDeviceMapping",
                                     f"{where} ({root}): the image's snapshot {snapshot.id} is "
                                     f"encrypted; its volume cannot be launched unencrypted")
            if snapshot.encrypted and not ebs.get("KmsKeyId"):
                encrypted, ebs["KmsKeyId"] = True, snapshot.kms_key_id
        elif not ebs.get("SnapshotId") and not ebs.get("VolumeSize"):
            raise EC2ClientError("InvalidBlockDeviceMapping",
                                 f"{where} ({mapping['DeviceName']}) is not a device of image "
                                 f"{image_id}: give it a VolumeSize or a SnapshotId")
        if encrypted:
            # Without KmsKeyId EC2 uses the account's default EBS key (alias aws/ebs).
            ebs["KmsKeyId"] = _resolve_kms_key(account, region, ebs.get("KmsKeyId") or "alias/aws/ebs")
        ebs["Encrypted"] = encrypted
        ebs["DeleteOnTermination"] = _true(ebs.get("DeleteOnTermination"))
        launched.append({"DeviceName": mapping["DeviceName"], "Ebs": ebs})
    if root is not None and snapshot is not None and launched \
            and root not in {m["DeviceName"] for m in launched}:
        launched.insert(0, {"DeviceName": root, "Ebs": {
            "SnapshotId": snapshot.id, "VolumeSize": snapshot.volume.size,
            "DeleteOnTermination": True, "Encrypted": bool(snapshot.encrypted),
            "KmsKeyId": snapshot.kms_key_id}})
    return launched


def carry_root_volume_encryption(ec2_backend: Any, instance_id: str, image: Ami) -> None:
    """The new image's snapshot is under the key of the instance's root volume, as on EC2."""
    instance = ec2_backend.get_instance(instance_id)
    device = instance.block_device_mapping.get(instance.root_device_name)
    if device is None or not device.volume_id:
        return
    volume = ec2_backend.get_volume(device.volume_id)
    if volume.encrypted:
        image.ebs_snapshot.encrypted = True
        image.ebs_snapshot.kms_key_id = volume.kms_key_id


def describe_images(self: AmisResponse) -> ActionResult:
    with LOCK:
        # Images whose pending describes are used up become available before this call filters.
        for image_id, left in list(STATE.pending_images.items()):
            if left <= 0:
                ami = self.ec2_backend.amis.get(image_id)
                if ami is not None and ami.state == "pending":
                    ami.state = "available"
                del STATE.pending_images[image_id]
        result = _orig_describe_images(self)
        for ami in result.result["Images"]:
            if ami.id in STATE.pending_images:
                STATE.pending_images[ami.id] -= 1
        return result


def _block_device_mappings(self: Ami) -> list[dict[str, Any]]:
    snapshot = self.ebs_snapshot
    # No KmsKeyId: see the module docstring (the key is the snapshot's, from DescribeSnapshots).
    ebs = {"SnapshotId": snapshot.id, "VolumeSize": 15, "DeleteOnTermination": False,
           "VolumeType": "standard", "Encrypted": bool(snapshot.encrypted)}
    return [{"DeviceName": self.root_device_name, "Ebs": ebs}]


def reset() -> None:
    _copy_tokens.clear()


def install() -> None:
    AmisResponse.copy_image = copy_image
    AmisResponse.create_image = create_image
    AmisResponse.describe_images = describe_images
    Ami.block_device_mappings = property(_block_device_mappings)
