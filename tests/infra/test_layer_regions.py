"""The Powertools layer's architecture, region by region, as its documentation lists it.

The functions run on arm64 with the arm64 layer. A region whose documented table has only
the x86_64 layer, or no layer at all, refuses the deploy with a reason before anything is
created; every other documented region deploys with the arm64 layer of its publisher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from infra.constructs.powertools_function import (
    POWERTOOLS_ACCOUNT,
    POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION,
    POWERTOOLS_ARM64_REGIONS,
    POWERTOOLS_LAYER_DOCS,
    POWERTOOLS_X86_64_REGIONS,
    layer_refusal,
)
from tests.infra.test_partitions import Deployment

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

PARTITIONS = {"cn": "aws-cn", "us-gov": "aws-us-gov"}
# From the documentation's tables (POWERTOOLS_LAYER_DOCS, "All regional Layer ARNs"):
WITH_ARM64 = "eu-west-1"  # both tabs list it
WITHOUT_ARM64 = "ca-west-1"  # only the x86_64 tab lists it
# Launched after the tables were read (Powertools issue #7355 asks for its layer): neither lists it.
UNKNOWN = "ap-southeast-6"


def partition(region: str) -> str:
    return next((p for prefix, p in PARTITIONS.items() if region.startswith(f"{prefix}-")), "aws")


def deploy(template: Template, region: str) -> Deployment:
    return Deployment(template, partition(region), region)


def architectures(deployment: Deployment) -> list[list[str]]:
    return [
        resource["Properties"]["Architectures"]
        for resource in deployment.resources("AWS::Lambda::Function").values()
    ]


def test_the_region_lists_are_the_documented_ones() -> None:
    assert WITH_ARM64 in POWERTOOLS_ARM64_REGIONS & POWERTOOLS_X86_64_REGIONS
    assert WITHOUT_ARM64 in POWERTOOLS_X86_64_REGIONS - POWERTOOLS_ARM64_REGIONS
    assert UNKNOWN not in POWERTOOLS_ARM64_REGIONS | POWERTOOLS_X86_64_REGIONS
    assert UNKNOWN not in POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION
    # The aws partition's tables only: China and GovCloud have tables of their own.
    assert all(partition(r) == "aws" for r in POWERTOOLS_ARM64_REGIONS | POWERTOOLS_X86_64_REGIONS)
    assert {partition(r) for r in POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION} == {
        "aws-cn",
        "aws-us-gov",
    }


def test_a_region_with_the_arm64_layer_deploys_on_arm64(all_options_template: Template) -> None:
    deployment = deploy(all_options_template, WITH_ARM64)
    assert deployment.refusals() == []
    assert architectures(deployment) == [["arm64"], ["arm64"]]  # the poller, the forwarder
    assert deployment.layer_arns() == 2 * [
        f"arn:aws:lambda:{WITH_ARM64}:{POWERTOOLS_ACCOUNT}:layer:"
        "AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    ]


def test_a_region_with_only_the_x86_64_layer_refuses_the_deploy(
    default_template: Template,
) -> None:
    (reason,) = deploy(default_template, WITHOUT_ARM64).refusals()
    assert reason == (
        f"Only the x86_64 Powertools layer is published in {WITHOUT_ARM64} "
        f"({POWERTOOLS_LAYER_DOCS}), and this stack's functions run on arm64: deploy it in a "
        "region with the arm64 layer."
    )


def test_a_region_the_documentation_does_not_list_refuses_the_deploy(
    default_template: Template,
) -> None:
    (reason,) = deploy(default_template, UNKNOWN).refusals()
    assert reason == (
        "The public Powertools for AWS Lambda (Python) layer is not listed for this region in "
        f"{POWERTOOLS_LAYER_DOCS} (outside the aws partition it is published only in "
        "cn-north-1, us-gov-east-1, us-gov-west-1): this stack cannot be deployed here. Once "
        "the documentation lists the region, add it in infra/constructs/powertools_function.py."
    )


@pytest.mark.parametrize(
    "region",
    sorted(
        POWERTOOLS_ARM64_REGIONS
        | POWERTOOLS_X86_64_REGIONS
        | set(POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION)
    ),
)
def test_every_documented_region_deploys_exactly_where_its_arm64_layer_is(
    default_template: Template, region: str
) -> None:
    deployment = deploy(default_template, region)
    has_arm64 = region in POWERTOOLS_ARM64_REGIONS or region in (
        POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION
    )
    assert (deployment.refusals() == []) is has_arm64
    if has_arm64:
        publisher = POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION.get(region, POWERTOOLS_ACCOUNT)
        (arn,) = deployment.layer_arns()
        assert arn.startswith(f"arn:{partition(region)}:lambda:{region}:{publisher}:layer:")
        assert arn.endswith("-arm64:27")
        assert architectures(deployment) == [["arm64"]]


@pytest.mark.parametrize(
    "region",
    [
        WITH_ARM64,
        WITHOUT_ARM64,
        UNKNOWN,
        "cn-north-1",
        "cn-northwest-1",
        "us-gov-west-1",
        "us-iso-east-1",
    ],
)
def test_synth_can_give_the_deploys_reason_when_it_knows_the_region(
    default_template: Template, region: str
) -> None:
    refusals = deploy(default_template, region).refusals()
    assert layer_refusal(region) == (refusals[0] if refusals else None)
