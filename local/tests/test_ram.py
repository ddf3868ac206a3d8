"""AssociateResourceShare: a pointer the pipeline creates joins the region's pointer share."""

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def share(client):
    org = client("organizations").create_organization(FeatureSet="ALL")["Organization"]
    ram = client("ram")
    arn = ram.create_resource_share(name="golden-ami-pipeline-pointers",
                                    principals=[org["Arn"]])["resourceShare"]["resourceShareArn"]
    account = org["MasterAccountId"]
    return ram, arn, f"arn:aws:ssm:eu-west-1:{account}:parameter/golden-ami/arm64"


def associated(ram, share_arn):
    return [a["associatedEntity"] for a in ram.get_resource_share_associations(
        associationType="RESOURCE", resourceShareArns=[share_arn])["resourceShareAssociations"]]


def test_a_parameter_joins_the_share_once(share):
    ram, share_arn, parameter = share
    answer = ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[parameter])
    assert [(a["associatedEntity"], a["status"]) for a in answer["resourceShareAssociations"]] \
        == [(parameter, "ASSOCIATED")]
    # Again (a retried PublishPointer): still one association.
    ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[parameter])
    assert associated(ram, share_arn) == [parameter]


def test_an_unknown_or_deleted_share_is_unknown_resource(share):
    ram, share_arn, parameter = share
    missing = share_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    for arn in (missing, share_arn):
        if arn == share_arn:
            ram.delete_resource_share(resourceShareArn=share_arn)
        with pytest.raises(ClientError) as err:
            ram.associate_resource_share(resourceShareArn=arn, resourceArns=[parameter])
        assert err.value.response["Error"]["Code"] == "UnknownResourceException"


def test_a_malformed_resource_arn_is_refused(share):
    ram, share_arn, _ = share
    with pytest.raises(ClientError) as err:
        ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=["not-an-arn"])
    assert err.value.response["Error"]["Code"] == "MalformedArnException"
    assert associated(ram, share_arn) == []
