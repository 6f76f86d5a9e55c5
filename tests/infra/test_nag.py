"""cdk-nag's AwsSolutions and Serverless packs find nothing unsuppressed, and every
suppression says why."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import STACK_NAME, NotifierConfig
from infra.stack import NotifierStack
from tests.infra.conftest import ALL_OPTIONS


@pytest.fixture(scope="module")
def checked() -> tuple[Annotations, Template]:
    app = cdk.App(context=ALL_OPTIONS)
    stack = NotifierStack(
        app, STACK_NAME, config=NotifierConfig.from_context(app.node.try_get_context)
    )
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    cdk.Aspects.of(app).add(ServerlessChecks())
    return Annotations.from_stack(stack), Template.from_stack(stack)


def findings(annotations: Annotations, kind: str) -> list[str]:
    found = getattr(annotations, f"find_{kind}")("*", Match.string_like_regexp(".*"))
    return [f"{m.id}: {m.entry.data}" for m in found]


def test_no_unsuppressed_errors(checked: tuple[Annotations, Template]) -> None:
    assert findings(checked[0], "error") == []


def test_no_unsuppressed_warnings(checked: tuple[Annotations, Template]) -> None:
    assert findings(checked[0], "warning") == []


def test_every_suppression_has_a_specific_reason(checked: tuple[Annotations, Template]) -> None:
    suppressions = [
        rule
        for resource in checked[1].to_json()["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert suppressions, "expected the documented suppressions"
    for rule in suppressions:
        assert len(rule["reason"]) >= 40, json.dumps(rule)
    assert {rule["id"] for rule in suppressions} == {
        "AwsSolutions-IAM5",
        "AwsSolutions-L1",
        "AwsSolutions-SQS3",
        "Serverless-LambdaDLQ",
        "Serverless-LambdaLatestVersion",
        "Serverless-SQSRedrivePolicy",
    }
