"""SSM PutParameter: the parameter name rules and value sizes moto does not enforce.

What moto 5.2.5 checks on its own (read from its source): an empty value, the "aws" / "ssm"
prefixes (with AWS's wording), tags with overwrite, the type. It takes any other character in
a name, any length, any depth, and a value of any size.

What this module adds, checked before anything is written (synchronously, as AWS does), and the
page each line follows:
- Name characters: only a-zA-Z0-9_.- and "/" (which delimits the hierarchy); a name with any
  other character (a space between characters, "@", ...) -> ValidationException.
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html (Name,
  "Naming Constraints") and
  https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html
  ("Requirements and constraints for parameter names"). The reference says a name with spaces
  "fails with a ValidationException error"; the wording for other characters is not in the
  reference; our choice: the message AWS (and moto) use for a bad prefix, which describes the
  allowed characters: 'Parameter name: can't be prefixed with "ssm" (case-insensitive). If
  formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be
  formed as a mix of letters, numbers and the following 3 symbols .-_'.
  Spaces at the start or end of a name are removed by the service (same reference): not
  modelled (moto keeps them, and they fail the character rule here).
- Name length: "The maximum length for a parameter name that you create is 1011 characters.
  This includes the characters in the ARN that precede the name you specify, such as
  arn:aws:ssm:us-east-2:111122223333:parameter/" (PutParameter reference, Name) ->
  ValidationException (our wording).
- Hierarchy depth: at most 15 levels -> HierarchyLevelLimitExceededException ("A hierarchy can
  have a maximum of 15 levels.", PutParameter Errors, same reference). A level is a "/"-separated
  part of the name (our reading: /a/b/c has 3).
- Value size: "Standard parameters have a value limit of 4 KB. Advanced parameters have a value
  limit of 8 KB." (PutParameter reference, Value; Tier: Intelligent-Tiering makes a parameter
  Advanced when it needs to). Whether AWS counts bytes or characters is not documented (the
  reference says KB, its error message says characters); our choice: UTF-8 bytes, the stricter
  reading, equal for ASCII. The tier is the request's Tier, else the existing parameter's, else
  Standard. Over the limit -> ValidationException; Standard with AWS's wording as AWS answers it
  (reported by users: "Standard tier parameters support a maximum parameter value of 4096
  characters. To create a larger parameter value, upgrade the parameter to use the
  advanced-parameter tier. For more information, see https://docs.aws.amazon.com/
  systems-manager/latest/userguide/parameter-store-advanced-parameters.html"); Advanced with the
  same sentence for 8192 (our wording).
- GetParameter / DeleteParameter of a name with other characters (e.g. /x/approvals/rerun@dec/
  default): their references give the Name no pattern, and what AWS answers is not documented;
  not modelled (moto answers ParameterNotFound, which such a name always is, since no
  PutParameter can create it).
"""

import re
from typing import Any

from moto.core.responses import ActionResult
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.responses import SimpleSystemManagerResponse


NAME_CHARACTERS = re.compile(r"^[a-zA-Z0-9_.\-/]+$")
NAME_MAX = 1011
LEVELS_MAX = 15
VALUE_MAX = {"Standard": 4096, "Advanced": 8192, "Intelligent-Tiering": 8192}
BAD_NAME = ('Parameter name: can\'t be prefixed with "ssm" (case-insensitive). If formed as a '
            "path, it can consist of sub-paths divided by slash symbol; each sub-path can be "
            "formed as a mix of letters, numbers and the following 3 symbols .-_")
TOO_LARGE = ("{tier} tier parameters support a maximum parameter value of {limit} characters. "
             "To create a larger parameter value, upgrade the parameter to use the "
             "advanced-parameter tier. For more information, see https://docs.aws.amazon.com/"
             "systems-manager/latest/userguide/parameter-store-advanced-parameters.html")


class HierarchyLevelLimitExceededException(SSMException):
    def __init__(self) -> None:
        super().__init__("HierarchyLevelLimitExceededException",
                         "A hierarchy can have a maximum of 15 levels. For more information, see "
                         "Requirements and constraints for parameter names in the AWS Systems "
                         "Manager User Guide.")


_orig: dict[str, Any] = {}


def check_name(name: str, account: str, region: str) -> None:
    if not NAME_CHARACTERS.match(name or ""):
        raise ValidationException(BAD_NAME)
    arn_prefix = f"arn:aws:ssm:{region}:{account}:parameter/"
    if len(arn_prefix) + len(name.lstrip("/")) > NAME_MAX:
        raise ValidationException(
            f"Parameter name {name[:40]}... is too long: the maximum length for a parameter "
            f"name, including the {len(arn_prefix)} characters of its ARN before it "
            f"({arn_prefix}), is {NAME_MAX} characters.")
    if len([part for part in name.split("/") if part]) > LEVELS_MAX:
        raise HierarchyLevelLimitExceededException()


def check_value(value: str, tier: str) -> None:
    limit = VALUE_MAX.get(tier, VALUE_MAX["Standard"])
    if len((value or "").encode("utf-8")) > limit:
        shown = "Advanced" if limit > VALUE_MAX["Standard"] else "Standard"
        raise ValidationException(TOO_LARGE.format(tier=shown, limit=limit))


def put_parameter(self: SimpleSystemManagerResponse) -> ActionResult:
    name = self._get_param("Name") or ""
    check_name(name, self.current_account, self.region)
    tier = self._get_param("Tier")
    if tier is None:
        existing = self.ssm_backend._parameters.get(self.ssm_backend._parameters.normalize_name(name))
        tier = existing[-1].tier if existing else "Standard"
    check_value(self._get_param("Value"), tier)
    return _orig["put_parameter"](self)


def install() -> None:
    """Wrap what is installed now (ssm_params.py installs first: names are checked first)."""
    _orig["put_parameter"] = SimpleSystemManagerResponse.put_parameter
    SimpleSystemManagerResponse.put_parameter = put_parameter
