from __future__ import annotations

from functools import cache
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.config import STACK_NAME, NotifierConfig
from infra.stack import NotifierStack

# Every optional part switched on, so every resource and every delivery path is synthesized.
ALL_OPTIONS: dict[str, Any] = {
    "notifyEmails": "ops@example.com,ml-team@example.com",
    "alarmEmails": "oncall@example.com",
    "solutionVersionArns": "arn:aws:personalize:us-east-1:123456789012:solution/s/1",
    "slackWorkspaceId": "T0123ABCD",
    "slackChannelId": "C0456EFGH",
    "slackWebhookSecretName": "notifier/slack-webhook",
    "eventBusName": "ml-pipelines",
    "reservedConcurrency": "1",
    "accounts": "111122223333,444455556666",
    "regions": "us-east-1,eu-west-1",
    "memberOrganizationalUnits": "ou-ab12-cdef3456",
}
CONFIGURATIONS: dict[str, dict[str, Any]] = {"default": {}, "every option": ALL_OPTIONS}


def synth(context: dict[str, Any] | None = None) -> Template:
    app = cdk.App(context=context or {})
    config = NotifierConfig.from_context(app.node.try_get_context)
    return Template.from_stack(NotifierStack(app, STACK_NAME, config=config))


@cache
def configured(name: str) -> Template:
    """The template of one of CONFIGURATIONS, synthesized once per test process."""
    return synth(CONFIGURATIONS[name])


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
