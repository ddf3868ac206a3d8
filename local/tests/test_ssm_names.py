"""PutParameter's name rules and value sizes (ssm_names.py). Plain moto accepts every name below
(any character, any length, any depth) and a value of any size."""

import pytest
from botocore.exceptions import ClientError


def code_and_message(call, **kwargs):
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


@pytest.mark.parametrize("name", ["/x/approvals/rerun@dec/default", "/a b/c", "/golden-ami/é",
                                  "/x/y:1", "/x/y*"])
def test_names_take_only_letters_digits_and_underscore_dot_dash_slash(client, name):
    ssm = client("ssm")
    code, message = code_and_message(ssm.put_parameter, Name=name, Value="v", Type="String")
    assert code == "ValidationException"
    assert "letters, numbers and the following 3 symbols .-_" in message
    with pytest.raises(ClientError):
        ssm.get_parameter(Name=name)  # nothing was written


def test_the_allowed_characters_are_accepted(client):
    ssm = client("ssm")
    ssm.put_parameter(Name="/Golden-AMI_1.0/x", Value="v", Type="String")
    assert ssm.get_parameter(Name="/Golden-AMI_1.0/x")["Parameter"]["Value"] == "v"


def test_a_name_is_at_most_1011_characters_with_its_arn_prefix(client):
    ssm = client("ssm")
    prefix = "arn:aws:ssm:eu-west-1:123456789012:parameter/"
    longest = "/" + "a" * (1011 - len(prefix))
    ssm.put_parameter(Name=longest, Value="v", Type="String")
    code, _ = code_and_message(ssm.put_parameter, Name=longest + "a", Value="v", Type="String")
    assert code == "ValidationException"


def test_a_hierarchy_has_at_most_15_levels(client):
    ssm = client("ssm")
    ssm.put_parameter(Name="/l" * 15, Value="v", Type="String")
    code, _ = code_and_message(ssm.put_parameter, Name="/l" * 16, Value="v", Type="String")
    assert code == "HierarchyLevelLimitExceededException"


def test_values_are_at_most_4_kb_standard_and_8_kb_advanced(client):
    ssm = client("ssm")
    ssm.put_parameter(Name="/v/standard", Value="x" * 4096, Type="String")
    code, message = code_and_message(ssm.put_parameter, Name="/v/standard", Value="x" * 4097,
                                     Type="String", Overwrite=True)
    assert code == "ValidationException"
    assert message.startswith("Standard tier parameters support a maximum parameter value of 4096")
    # Bytes, not characters: 2,049 two-byte characters are 4,098 bytes.
    assert code_and_message(ssm.put_parameter, Name="/v/wide", Value="é" * 2049,
                            Type="String")[0] == "ValidationException"
    ssm.put_parameter(Name="/v/advanced", Value="x" * 8192, Type="String", Tier="Advanced")
    # An overwrite without Tier keeps the parameter's tier (Advanced: 8 KB).
    ssm.put_parameter(Name="/v/advanced", Value="y" * 8192, Type="String", Overwrite=True)
    assert code_and_message(ssm.put_parameter, Name="/v/advanced", Value="x" * 8193,
                            Type="String", Overwrite=True)[0] == "ValidationException"
    assert ssm.get_parameter(Name="/v/advanced")["Parameter"]["Value"] == "y" * 8192
