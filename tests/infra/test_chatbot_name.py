"""The Slack channel configuration's name is unique per stack and region.

Amazon Q Developer in chat applications (formerly AWS Chatbot) names a configuration once per
account, whatever the region, so the same stack deployed in a second region must not reuse
the name ("already exists"). CreateSlackChannelConfiguration takes 1 to 128 characters of
A-Z, a-z, 0-9, "-" and "_".
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.config import NotifierConfig
from infra.stack import NotifierStack
from local.template import cli_context
from tests.infra.test_partitions import Deployment

SLACK = {"slackWorkspaceId": "T0123ABCD", "slackChannelId": "C0456EFGH"}
NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
LONGEST_STACK_NAME = "N" + "x" * 127  # CloudFormation's longest: 128 characters
LONG_REGION = "ap-southeast-7"  # among the longest region codes today


def slack_template(stack_name: str) -> Template:
    app = cdk.App(context=cli_context(SLACK))
    config = NotifierConfig.from_context(app.node.try_get_context)
    return Template.from_stack(NotifierStack(app, stack_name, config=config))


def configuration_name(template: Template) -> Any:
    (configuration,) = template.find_resources("AWS::Chatbot::SlackChannelConfiguration").values()
    return configuration["Properties"]["ConfigurationName"]


def named_in(template: Template, partition: str, region: str) -> str:
    name: str = Deployment(template, partition, region).resolve(configuration_name(template))
    return name


@pytest.fixture(scope="module")
def template() -> Template:
    return slack_template("PersonalizeSegmentJobNotifier")


def test_the_name_is_the_stack_and_its_region(template: Template) -> None:
    assert configuration_name(template) == {
        "Fn::Join": ["", ["PersonalizeSegmentJobNotifier-", {"Ref": "AWS::Region"}, "-jobs"]]
    }


@pytest.mark.parametrize(
    ("partition", "region"),
    [("aws", "us-east-1"), ("aws", LONG_REGION), ("aws-cn", "cn-north-1")],
)
def test_the_name_is_one_chatbot_accepts(template: Template, partition: str, region: str) -> None:
    assert NAME.fullmatch(named_in(template, partition, region))


def test_a_second_region_gets_a_name_of_its_own(template: Template) -> None:
    assert named_in(template, "aws", "us-east-1") == "PersonalizeSegmentJobNotifier-us-east-1-jobs"
    assert named_in(template, "aws", "eu-west-1") == "PersonalizeSegmentJobNotifier-eu-west-1-jobs"


def test_the_longest_stack_name_still_fits() -> None:
    long = slack_template(LONGEST_STACK_NAME)
    name = named_in(long, "aws", LONG_REGION)
    assert NAME.fullmatch(name)
    assert name.endswith(f"-{LONG_REGION}-jobs")
    # Room is kept for region codes up to 20 characters.
    assert len(name) + 20 - len(LONG_REGION) <= 128
