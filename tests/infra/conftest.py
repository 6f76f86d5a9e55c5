from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.config import STACK_NAME, NotifierConfig
from infra.stack import NotifierStack
from local.template import cli_context, cloud_assembly

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

CENTRAL = "111122223333"  # the central account that member stacks trust
# Every optional part switched on, so every resource and every delivery path is synthesized
# (the member stack's central account included, so `python app.py` writes both stacks clean).
ALL_OPTIONS: dict[str, Any] = {
    "notifyEmails": "ops@example.com,ml-team@example.com",
    "alarmEmails": "oncall@example.com",
    "solutionVersionArns": "arn:aws:personalize:us-east-1:111122223333:solution/s/1",
    "slackWorkspaceId": "T0123ABCD",
    "slackChannelId": "C0456EFGH",
    "slackWebhookSecretName": "notifier/slack-webhook",
    "eventBusName": "ml-pipelines",
    "reservedConcurrency": "1",
    "accounts": "111122223333,444455556666",
    "regions": "us-east-1,eu-west-1",
    "memberOrganizationalUnits": "ou-ab12-cdef3456",
    "centralAccount": CENTRAL,
}
CONFIGURATIONS: dict[str, dict[str, Any]] = {"default": {}, "every option": ALL_OPTIONS}


def synth(context: dict[str, Any] | None = None) -> Template:
    app = cdk.App(context=cli_context(context))
    config = NotifierConfig.from_context(app.node.try_get_context)
    return Template.from_stack(NotifierStack(app, STACK_NAME, config=config))


@cache
def configured(name: str) -> Template:
    """The template of one of CONFIGURATIONS, synthesized once per test process."""
    return synth(CONFIGURATIONS[name])


def allowed(statements: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each action that Allow statements grant, with its resources, however cdk.json's
    minimizePolicies merged the statements."""
    found: dict[str, list[Any]] = {}
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions, resources = statement["Action"], statement["Resource"]
        for action in actions if isinstance(actions, list) else [actions]:
            found.setdefault(action, []).extend(
                resources if isinstance(resources, list) else [resources]
            )
    return {action: sorted(resources, key=json.dumps) for action, resources in found.items()}


def app_output(name: str) -> Path:
    """What `python app.py` writes for one of CONFIGURATIONS (run once, then kept)."""
    return cloud_assembly(CONFIGURATIONS[name])


def cdk_messages(assembly: Path, stack: str, level: str) -> list[str]:
    """The messages of one level (error, warning) that `cdk synth|deploy` reports for a stack:
    an error fails them."""
    metadata = json.loads((assembly / f"{stack}.metadata.json").read_text())
    return [
        f"{path}: {entry['data']}"
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == f"aws:cdk:{level}"
    ]


@pytest.fixture(scope="session")
def template() -> Template:
    return synth(
        {
            "notifyEmails": "ops@example.com,ml-team@example.com",
            "solutionVersionArns": "arn:aws:personalize:us-east-1:123456789012:solution/s/1",
        }
    )


@pytest.fixture(scope="session")
def default_template() -> Template:
    return configured("default")


@pytest.fixture(scope="session")
def all_options_template() -> Template:
    return configured("every option")


@pytest.fixture(scope="session", params=list(CONFIGURATIONS))
def each_configuration(request: pytest.FixtureRequest) -> Template:
    """Runs a test once on the default configuration and once with every option on."""
    name: str = request.param
    return configured(name)
