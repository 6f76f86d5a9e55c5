"""The member stack (PersonalizeJobReader): one role, trusted by the central poller's role
only, that may list and describe batch segment jobs and nothing else."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk.assertions import Annotations, Match, Template

from infra.config import STACK_NAME, MemberConfig
from infra.member_stack import JobReaderStack, member_template
from infra.scopes import MEMBER_STACK_NAME, POLLER_ROLE_NAME
from job_events.vocabulary import DEFAULT_MEMBER_ROLE_NAME
from local.template import cli_context, run_app_py
from tests.infra.conftest import CENTRAL, app_output, cdk_messages, synth
from tests.infra.test_partitions import Deployment

if TYPE_CHECKING:
    from pathlib import Path

MEMBER = "444455556666"


def member_stack(context: dict[str, Any]) -> JobReaderStack:
    app = cdk.App(context=cli_context(context))
    config = MemberConfig.from_context(app.node.try_get_context)
    return JobReaderStack(
        app,
        MEMBER_STACK_NAME,
        role_name=config.role_name,
        central_account=config.central_account,
    )


def member(context: dict[str, Any] | None = None) -> Template:
    return Template.from_stack(member_stack({"centralAccount": CENTRAL, **(context or {})}))


def the_role(template: Template) -> dict[str, Any]:
    resources = template.to_json()["Resources"]
    ((_, role),) = resources.items()  # nothing but the role
    assert role["Type"] == "AWS::IAM::Role"
    properties: dict[str, Any] = role["Properties"]
    return properties


def test_one_role_named_as_configured() -> None:
    assert the_role(member())["RoleName"] == DEFAULT_MEMBER_ROLE_NAME
    assert the_role(member({"memberRoleName": "JobReader"}))["RoleName"] == "JobReader"


def test_it_trusts_only_the_central_poller_role() -> None:
    template = member()
    assert template.to_json()["Parameters"]["CentralAccountId"] == {
        "Type": "String",
        "AllowedPattern": r"^\d{12}$",
        "Default": CENTRAL,
        "Description": "The account the notifier's poller runs in",
    }
    deployment = Deployment(
        template, "aws", "eu-west-1", account=MEMBER, parameters={"CentralAccountId": CENTRAL}
    )
    trust = deployment.resolve(the_role(template)["AssumeRolePolicyDocument"])
    assert trust["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{CENTRAL}:root"},
            # The account, narrowed to the one role: valid before that role exists, and
            # still valid after it is replaced.
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{CENTRAL}:role/{POLLER_ROLE_NAME}"}
            },
        }
    ]


def test_it_may_list_and_describe_jobs_in_every_region_and_nothing_else() -> None:
    template = member()
    role = the_role(template)
    assert set(role) == {
        "AssumeRolePolicyDocument",
        "Description",
        "Policies",
        "RoleName",
    }  # no managed policies, no permissions boundary to rely on
    (policy,) = role["Policies"]
    deployment = Deployment(template, "aws-cn", "cn-north-1", account=MEMBER)
    assert deployment.resolve(policy["PolicyDocument"]["Statement"]) == [
        {"Action": "personalize:ListBatchSegmentJobs", "Effect": "Allow", "Resource": "*"},
        {
            "Action": "personalize:DescribeBatchSegmentJob",
            "Effect": "Allow",
            "Resource": f"arn:aws-cn:personalize:*:{MEMBER}:batch-segment-job/*",
        },
    ]


def test_it_needs_no_bootstrap_in_member_accounts() -> None:
    template = member().to_json()
    assert list(template["Parameters"]) == ["CentralAccountId"]  # no BootstrapVersion
    assert "Rules" not in template


def test_the_central_poller_has_the_name_members_trust() -> None:
    central = synth({"accounts": MEMBER})
    roles = [
        r["Properties"].get("RoleName") for r in central.find_resources("AWS::IAM::Role").values()
    ]
    assert POLLER_ROLE_NAME in roles


def test_without_the_central_account_the_member_stack_fails_with_a_reason() -> None:
    annotations = Annotations.from_stack(member_stack({}))
    annotations.has_error(
        f"/{MEMBER_STACK_NAME}", Match.string_like_regexp(r"^centralAccount: required .*")
    )
    # Its template still has the parameter, without a default.
    assert (
        "Default" not in member_template(DEFAULT_MEMBER_ROLE_NAME)["Parameters"]["CentralAccountId"]
    )


def test_python_app_py_writes_both_stacks_and_only_the_member_needs_the_central_account(
    tmp_path: Path,
) -> None:
    """`python app.py` as the CDK CLI runs it (the other tests read the same build, made in
    their own process and kept): the same templates, and the member stack's error."""
    result = run_app_py({}, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = [
        name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"
    ]
    assert sorted(stacks) == [MEMBER_STACK_NAME, STACK_NAME]
    kept = app_output("default")
    for stack in stacks:
        written = json.loads((tmp_path / f"{stack}.template.json").read_text())
        assert written == json.loads((kept / f"{stack}.template.json").read_text()), stack
    assert cdk_messages(tmp_path, STACK_NAME, "error") == []
    (error,) = cdk_messages(tmp_path, MEMBER_STACK_NAME, "error")
    assert "centralAccount" in error
    assert f"npx cdk deploy {MEMBER_STACK_NAME} -c centralAccount=" in error


def test_with_the_central_account_the_member_stack_synthesizes() -> None:
    assembly = app_output("every option")
    assert cdk_messages(assembly, MEMBER_STACK_NAME, "error") == []
    template = json.loads((assembly / f"{MEMBER_STACK_NAME}.template.json").read_text())
    assert template["Parameters"]["CentralAccountId"]["Default"] == CENTRAL
