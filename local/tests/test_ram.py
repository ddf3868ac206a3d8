"""AssociateResourceShare: a pointer the pipeline creates joins the region's pointer share,
asynchronously (ASSOCIATING, then ASSOCIATED or FAILED), as in AWS RAM."""

import pytest
from botocore.exceptions import ClientError

from conftest import admin


@pytest.fixture
def share(client):
    org = client("organizations").create_organization(FeatureSet="ALL")["Organization"]
    ram = client("ram")
    arn = ram.create_resource_share(name="golden-ami-pipeline-pointers",
                                    principals=[org["Arn"]])["resourceShare"]["resourceShareArn"]
    account = org["MasterAccountId"]
    return ram, arn, f"arn:aws:ssm:eu-west-1:{account}:parameter/golden-ami/arm64"


def associated(ram, share_arn, **filters):
    return [(a["associatedEntity"], a["status"]) for a in ram.get_resource_share_associations(
        associationType="RESOURCE", resourceShareArns=[share_arn],
        **filters)["resourceShareAssociations"]]


def test_a_parameter_joins_the_share_once_after_associating(share):
    """Plain moto has no AssociateResourceShare (HTTP 500); the extension used to answer
    ASSOCIATED at once."""
    ram, share_arn, parameter = share
    answer = ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[parameter])
    assert [(a["associatedEntity"], a["status"]) for a in answer["resourceShareAssociations"]] \
        == [(parameter, "ASSOCIATING")]
    assert associated(ram, share_arn) == [(parameter, "ASSOCIATING")]  # ramAssociationReads 1
    assert associated(ram, share_arn) == [(parameter, "ASSOCIATED")]
    # Again (a retried PublishPointer): a no-op, still one association.
    again = ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[parameter])
    assert [a["status"] for a in again["resourceShareAssociations"]] == ["ASSOCIATED"]
    assert associated(ram, share_arn) == [(parameter, "ASSOCIATED")]


def test_association_reads_are_configurable_and_the_status_filter_filters(share, endpoint):
    """Plain moto's associationStatus does not filter: it answers every association with the
    status asked for."""
    ram, share_arn, parameter = share
    admin(endpoint, "config", {"ramAssociationReads": 2})
    ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[parameter])
    assert associated(ram, share_arn, associationStatus="ASSOCIATED") == []
    assert associated(ram, share_arn, associationStatus="ASSOCIATING") == [(parameter, "ASSOCIATING")]
    assert associated(ram, share_arn, resourceArn=parameter) == [(parameter, "ASSOCIATED")]
    assert associated(ram, share_arn, resourceArn=parameter + "-other") == []
    assert associated(ram, share_arn, associationStatus="ASSOCIATING") == []


def test_a_fault_makes_the_association_fail_with_a_message(share, endpoint):
    """Plain moto has no association that fails."""
    ram, share_arn, parameter = share
    admin(endpoint, "faults", {"ramAssociationFail": {"resourceArnContains": "/golden-ami/arm",
                                                      "message": "The resource is not Advanced tier"}})
    ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[parameter])
    assert associated(ram, share_arn) == [(parameter, "ASSOCIATING")]
    [failed] = ram.get_resource_share_associations(
        associationType="RESOURCE", resourceArn=parameter)["resourceShareAssociations"]
    assert (failed["status"], failed["statusMessage"]) == ("FAILED", "The resource is not Advanced tier")
    # Associating it again starts anew (the fault was used once).
    again = ram.associate_resource_share(resourceShareArn=share_arn, resourceArns=[parameter])
    assert [a["status"] for a in again["resourceShareAssociations"]] == ["ASSOCIATING"]
    associated(ram, share_arn)
    assert associated(ram, share_arn) == [(parameter, "ASSOCIATED")]


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
