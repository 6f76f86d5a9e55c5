"""cdk-nag's AwsSolutions and Serverless packs find nothing unsuppressed in either stack, and
every suppression says why (and, for wildcards, which ones)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import STACK_NAME, NotifierConfig
from infra.member_stack import JobReaderStack
from infra.scopes import MEMBER_STACK_NAME
from infra.stack import NotifierStack
from job_events.vocabulary import DEFAULT_MEMBER_ROLE_NAME
from tests.infra.conftest import ALL_OPTIONS

if TYPE_CHECKING:
    from aws_cdk import Stack

CENTRAL = "111122223333"
# The rules each stack suppresses somewhere, each with its reason.
SUPPRESSED = {
    "notifier": {
        "AwsSolutions-IAM5",
        "AwsSolutions-L1",
        "AwsSolutions-SQS3",
        "Serverless-LambdaDLQ",
        "Serverless-LambdaLatestVersion",
        "Serverless-SQSRedrivePolicy",
    },
    "member": {"AwsSolutions-IAM5"},
}


def build(app: cdk.App, name: str) -> Stack:
    if name == "member":
        return JobReaderStack(
            app,
            MEMBER_STACK_NAME,
            role_name=DEFAULT_MEMBER_ROLE_NAME,
            central_account=CENTRAL,
        )
    return NotifierStack(
        app, STACK_NAME, config=NotifierConfig.from_context(app.node.try_get_context)
    )


@pytest.fixture(scope="module", params=list(SUPPRESSED))
def checked(request: pytest.FixtureRequest) -> tuple[str, Annotations, Template]:
    app = cdk.App(context=ALL_OPTIONS)
    stack = build(app, request.param)
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    cdk.Aspects.of(app).add(ServerlessChecks())
    return request.param, Annotations.from_stack(stack), Template.from_stack(stack)


def findings(annotations: Annotations, kind: str) -> list[str]:
    found = getattr(annotations, f"find_{kind}")("*", Match.string_like_regexp(".*"))
    return [f"{m.id}: {m.entry.data}" for m in found]


def suppressions(template: Template) -> list[dict[str, Any]]:
    return [
        rule
        for resource in template.to_json()["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


def test_no_unsuppressed_errors(checked: tuple[str, Annotations, Template]) -> None:
    assert findings(checked[1], "error") == []


def test_no_unsuppressed_warnings(checked: tuple[str, Annotations, Template]) -> None:
    assert findings(checked[1], "warning") == []


def test_every_suppression_has_a_specific_reason(
    checked: tuple[str, Annotations, Template],
) -> None:
    name, _, template = checked
    rules = suppressions(template)
    assert rules, "expected the documented suppressions"
    for rule in rules:
        assert len(rule["reason"]) >= 40, json.dumps(rule)
    assert {rule["id"] for rule in rules} == SUPPRESSED[name]


def test_wildcards_are_suppressed_one_by_one(checked: tuple[str, Annotations, Template]) -> None:
    """An IAM5 suppression names the wildcards it allows, so a new one is still reported."""
    for rule in suppressions(checked[2]):
        if rule["id"] == "AwsSolutions-IAM5":
            assert rule.get("applies_to"), json.dumps(rule)
