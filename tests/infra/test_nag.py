"""cdk-nag's AwsSolutions and Serverless packs find nothing unsuppressed in either stack, and
every suppression says why (and, for wildcards, which ones). app.py applies both packs, so
what it writes is what `cdk synth|deploy` reports and fails on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from infra.config import STACK_NAME
from infra.scopes import MEMBER_STACK_NAME
from tests.infra.conftest import app_output, cdk_messages

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
STACKS = {"notifier": STACK_NAME, "member": MEMBER_STACK_NAME}


@dataclass(frozen=True)
class Checked:
    """One stack as `python app.py` (which applies both packs) writes it, every option on."""

    name: str
    errors: list[str]
    warnings: list[str]
    template: dict[str, Any]


@pytest.fixture(scope="module", params=list(SUPPRESSED))
def checked(request: pytest.FixtureRequest) -> Checked:
    assembly = app_output("every option")
    stack = STACKS[request.param]
    return Checked(
        name=request.param,
        errors=cdk_messages(assembly, stack, "error"),
        warnings=cdk_messages(assembly, stack, "warning"),
        template=json.loads((assembly / f"{stack}.template.json").read_text()),
    )


def suppressions(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        rule
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


def test_no_unsuppressed_errors(checked: Checked) -> None:
    assert checked.errors == []


def test_no_unsuppressed_warnings(checked: Checked) -> None:
    assert checked.warnings == []


def test_every_suppression_has_a_specific_reason(checked: Checked) -> None:
    rules = suppressions(checked.template)
    assert rules, "expected the documented suppressions"
    for rule in rules:
        assert len(rule["reason"]) >= 40, json.dumps(rule)
    assert {rule["id"] for rule in rules} == SUPPRESSED[checked.name]


def test_wildcards_are_suppressed_one_by_one(checked: Checked) -> None:
    """An IAM5 suppression names the wildcards it allows, so a new one is still reported."""
    for rule in suppressions(checked.template):
        if rule["id"] == "AwsSolutions-IAM5":
            assert rule.get("applies_to"), json.dumps(rule)
