from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.config import STACK_NAME, NotifierConfig
from infra.stack import NotifierStack


def synth(context: dict[str, Any] | None = None) -> Template:
    app = cdk.App(context=context or {})
    config = NotifierConfig.from_context(app.node.try_get_context)
    return Template.from_stack(NotifierStack(app, STACK_NAME, config=config))


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
    return synth()
