#!/usr/bin/env python3
"""Builds the CDK app from typed configuration. `cdk synth|diff|deploy` runs this.

Two stacks: the notifier (PersonalizeSegmentJobNotifier) and the member stack
(PersonalizeJobReader) that each member account deploys; name the one to deploy.

The CDK CLI runs `python3 app.py --settings settings.toml` (cdk.json): the file's settings
are the context's defaults, and `-c name=value` overrides one for one run. Run without
`--settings`, the app synthesizes from the context it is given alone (as the tests do).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import (
    STACK_NAME,
    ConfigError,
    Home,
    MemberConfig,
    NotifierConfig,
    check_keys,
    check_watchable,
    read_settings,
)
from infra.constructs.powertools_function import layer_refusal
from infra.member_stack import JobReaderStack
from infra.scopes import MEMBER_STACK_NAME
from infra.stack import NotifierStack

if TYPE_CHECKING:
    from collections.abc import Sequence


def build(app: cdk.App, *, home: Home | None = None) -> None:
    """Both stacks from the app's context, with the best-practice rule packs applied.

    Raises ConfigError naming every unknown setting, or else the first setting that is
    wrong. What depends on where the notifier deploys (`home`: its own account and region,
    watched when `accounts` or `regions` is not given; the Powertools layer there) is an
    error on the notifier stack only, so the member stack still deploys into a member
    account from anywhere.
    """
    check_keys(app.node.get_all_context())
    config = NotifierConfig.from_context(app.node.try_get_context)
    check_watchable(config)
    member = MemberConfig.from_context(app.node.try_get_context)
    notifier = NotifierStack(app, STACK_NAME, config=config)
    try:
        check_watchable(config, home)
    except ConfigError as err:
        cdk.Annotations.of(notifier).add_error(f"Invalid configuration: {err}")
    refusal = layer_refusal(home.region) if home and home.region else None
    if refusal:
        cdk.Annotations.of(notifier).add_error(refusal)
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


def overridden(app: cdk.App, settings: dict[str, Any]) -> list[str]:
    """The file's settings that the command line overrides for this run."""
    return [name for name, value in settings.items() if app.node.try_get_context(name) != value]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--settings", type=Path, help="the deployment's settings file (TOML), e.g. settings.toml"
    )
    args = parser.parse_args(argv)
    try:
        settings = read_settings(args.settings) if args.settings else {}
        app = cdk.App(context=settings)
        for name in overridden(app, settings):
            print(f"{args.settings.name}: {name} is overridden for this run by -c", file=sys.stderr)
        build(app, home=Home.from_environ(os.environ))
    except ConfigError as err:
        sys.exit(f"Invalid configuration: {err}")
    app.synth()


if __name__ == "__main__":
    main()
