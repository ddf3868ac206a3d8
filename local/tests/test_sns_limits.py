"""SNS Publish's size and subject limits (sns_limits.py)."""

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def topic(client):
    sns = client("sns")
    return sns, sns.create_topic(Name="golden-ami-notices")["TopicArn"]


def error(call, **kwargs):
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_the_limit_is_262144_utf8_bytes(topic):
    """Plain moto counts characters: 131,073 two-byte characters (262,146 bytes) pass there."""
    sns, arn = topic
    sns.publish(TopicArn=arn, Message="x" * 262144)
    assert error(sns.publish, TopicArn=arn, Message="é" * 131073) == \
        ("InvalidParameter", "Invalid parameter: Message too long")


def test_message_attributes_count_toward_the_limit(topic):
    """Plain moto does not count attributes: this message passes there."""
    sns, arn = topic
    attributes = {"family": {"DataType": "String", "StringValue": "default"}}
    overhead = len("family") + len("String") + len("default")
    sns.publish(TopicArn=arn, Message="x" * (262144 - overhead), MessageAttributes=attributes)
    assert error(sns.publish, TopicArn=arn, Message="x" * (262145 - overhead),
                 MessageAttributes=attributes)[0] == "InvalidParameter"


def test_a_subject_has_at_most_100_characters_and_no_line_breaks(topic):
    """Plain moto refuses over 100 characters too, but takes a line break."""
    sns, arn = topic
    sns.publish(TopicArn=arn, Message="m", Subject="s" * 100)
    assert error(sns.publish, TopicArn=arn, Message="m", Subject="s" * 101)[0] == "InvalidParameter"
    assert error(sns.publish, TopicArn=arn, Message="m", Subject="two\nlines")[0] == "InvalidParameter"
