"""SNS Publish: the message size and subject limits, counted as AWS counts them.

What moto 5.2.5 does on its own (read from its source): Publish refuses a Message of more than
262,144 CHARACTERS (len of the string, attributes not counted) with InvalidParameter and a
message that repeats a whole client error text; it refuses a Subject longer than 100 characters
(InvalidParameter "Subject must be less than 100 characters"); it takes line breaks and control
characters in a Subject.

What this module enforces, and the page each line follows:
- Message size: "messages must be UTF-8 encoded strings and at most 256 KB in size (262,144
  bytes, not 262,144 characters)" (Publish, Message), and "All parts of the message attribute,
  including name, type, and value, are included in the message size restriction" (Publish,
  MessageAttributes; MessageAttributeValue). So the size is the UTF-8 bytes of Message plus, for
  every attribute, the bytes of its name, its DataType and its StringValue / BinaryValue.
  https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
  https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html
  Over 262,144 -> InvalidParameter (Publish Errors: "Indicates that a request parameter does not
  comply with the associated constraints"), message "Invalid parameter: Message too long" (the
  text moto quotes for AWS's answer). A topic's MaximumMessageSize attribute is not modelled.
- Subject: "Subjects must be UTF-8 text with no line breaks or control characters, and less than
  100 characters long" (Publish, Subject). The length rule stays moto's (more than 100
  characters is refused: moto found AWS accepting exactly 100, getmoto/moto#1503); line breaks
  and control characters are refused here -> InvalidParameter "Invalid parameter: Subject"
  (our wording).
"""

import re
from typing import Any

from moto.core.responses import ActionResult
from moto.sns.exceptions import SNSInvalidParameter
from moto.sns.responses import SNSResponse

MAX_MESSAGE_BYTES = 262144
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_orig: dict[str, Any] = {}


def message_size(message: str | None, attributes: dict[str, Any]) -> int:
    size = len((message or "").encode("utf-8"))
    for name, value in attributes.items():
        size += len(name.encode("utf-8")) + len(str(value.get("DataType", "")).encode("utf-8"))
        raw = value.get("StringValue", value.get("BinaryValue", b""))
        size += len(raw if isinstance(raw, bytes) else str(raw).encode("utf-8"))
    return size


def publish(self: SNSResponse) -> ActionResult:
    subject = self._get_param("Subject")
    if subject is not None and _CONTROL.search(subject):
        raise SNSInvalidParameter("Invalid parameter: Subject")
    if self._get_param("PhoneNumber") is None:  # SMS has its own limits (moto's)
        attributes = self._get_param("MessageAttributes", {}) or {}
        if message_size(self._get_param("Message"), attributes) > MAX_MESSAGE_BYTES:
            raise SNSInvalidParameter("Invalid parameter: Message too long")
    return _orig["publish"](self)


def install() -> None:
    _orig["publish"] = SNSResponse.publish
    SNSResponse.publish = publish
