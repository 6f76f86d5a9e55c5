#!/usr/bin/env python3
"""Builds the CDK app from typed configuration. `cdk synth|deploy` runs this."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import STACK_NAME, ConfigError, NotifierConfig
from infra.stack import NotifierStack


def main() -> None:
    app = cdk.App()
    try:
        config = NotifierConfig.from_context(app.node.try_get_context)
    except ConfigError as err:
        sys.exit(f"Invalid configuration: {err}")
    NotifierStack(app, STACK_NAME, config=config)
    # Best-practice rule packs: an unsuppressed finding fails synth, so it fails deploy too.
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    cdk.Aspects.of(app).add(ServerlessChecks())
    app.synth()


if __name__ == "__main__":
    main()
