#!/usr/bin/env python3
"""Builds the CDK app from typed configuration. `cdk synth|deploy` runs this.

Two stacks: the notifier (PersonalizeSegmentJobNotifier) and the member stack
(PersonalizeJobReader) that each member account deploys; name the one to deploy.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import STACK_NAME, ConfigError, MemberConfig, NotifierConfig
from infra.member_stack import JobReaderStack
from infra.scopes import MEMBER_STACK_NAME
from infra.stack import NotifierStack


def build(app: cdk.App) -> None:
    """Both stacks from the app's context, with the best-practice rule packs applied.

    Raises ConfigError naming the first setting that is wrong.
    """
    config = NotifierConfig.from_context(app.node.try_get_context)
    member = MemberConfig.from_context(app.node.try_get_context)
    NotifierStack(app, STACK_NAME, config=config)
    # Without centralAccount it carries an error, so synthesizing or deploying it fails
    # with that message while the notifier stack still synthesizes and deploys.
    JobReaderStack(
        app,
        MEMBER_STACK_NAME,
        role_name=member.role_name,
        central_account=member.central_account,
    )
    # An unsuppressed finding is an error, so it fails synth and deploy.
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    cdk.Aspects.of(app).add(ServerlessChecks())


def main() -> None:
    app = cdk.App()
    try:
        build(app)
    except ConfigError as err:
        sys.exit(f"Invalid configuration: {err}")
    app.synth()


if __name__ == "__main__":
    main()
