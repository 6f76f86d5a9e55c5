"""Before `make deploy` removes what people or member accounts rely on, the person deploying
sees it: the decision, on two synthesized templates (the deployed one and the new one)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk.assertions import Template
from botocore.stub import Stubber

from infra.deploy_check import (
    Loss,
    UnreadableError,
    _profile,
    deployed_template,
    losses,
    main,
    proceed,
)
from infra.member_stack import JobReaderStack
from infra.scopes import MEMBER_STACK_NAME, POLLER_ROLE_NAME
from job_events.vocabulary import DEFAULT_MEMBER_ROLE_NAME
from tests.infra.conftest import ALL_OPTIONS, CENTRAL, configured, synth

if TYPE_CHECKING:
    from pathlib import Path

OU, OTHER_OU = "ou-ab12-cdef3456", "ou-ab12-99998888"
ACCOUNTS = "111122223333,444455556666"


def template(context: dict[str, Any] | None = None) -> dict[str, Any]:
    return dict(synth(context).to_json())


def member(role_name: str) -> dict[str, Any]:
    app = cdk.App()
    stack = JobReaderStack(app, MEMBER_STACK_NAME, role_name=role_name, central_account=CENTRAL)
    return dict(Template.from_stack(stack).to_json())


def of_type(found: list[Loss], deployed: dict[str, Any], kind: str) -> list[Loss]:
    return [loss for loss in found if deployed["Resources"][loss.resource]["Type"] == kind]


def test_a_first_deploy_or_the_same_settings_lose_nothing() -> None:
    every = configured("every option").to_json()
    assert losses(None, every) == []
    assert losses(every, every) == []


def test_adding_settings_loses_nothing() -> None:
    assert losses(configured("default").to_json(), configured("every option").to_json()) == []


def test_dropping_notify_emails_removes_both_topics_subscriptions() -> None:
    """The issue's first case: alarmEmails defaults to notifyEmails, so the alarm topic's
    subscriptions go with the people topic's."""
    deployed = template({"notifyEmails": "ops@example.com"})
    found = losses(deployed, configured("default").to_json())
    assert [loss.what for loss in found] == [
        "the email subscription ops@example.com of the topic ChannelsPeople is removed",
        "the email subscription ops@example.com of the topic ChannelsAlarms is removed",
    ]
    assert of_type(found, deployed, "AWS::SNS::Subscription") == found


def test_a_changed_address_is_a_removal_too() -> None:
    found = losses(
        template({"notifyEmails": "ops@example.com", "alarmEmails": "oncall@example.com"}),
        template({"notifyEmails": "ops@example.com", "alarmEmails": "pager@example.com"}),
    )
    assert [loss.what for loss in found] == [
        "the email subscription oncall@example.com of the topic ChannelsAlarms is removed"
    ]


def test_dropping_slack_removes_the_channel_and_the_webhook() -> None:
    every = dict(ALL_OPTIONS)
    for key in ("slackWorkspaceId", "slackChannelId", "slackWebhookSecretName"):
        del every[key]
    found = {loss.what for loss in losses(configured("every option").to_json(), template(every))}
    assert found == {
        "the Slack channel C0456EFGH no longer gets the topic's messages (its AWS Chatbot "
        "configuration is deleted)",
        "the lambda subscription SlackWebhookForwarderFunction of the topic ChannelsPeople is "
        "removed",
    }


def test_dropping_accounts_renames_the_poller_role() -> None:
    """The issue's third case: the member roles trust the poller's role by its name."""
    deployed = template({"accounts": ACCOUNTS})
    found = losses(deployed, configured("default").to_json())
    assert [loss.what for loss in found] == [
        f"the role {POLLER_ROLE_NAME} is renamed to a generated name: whatever trusts or "
        "assumes it by that name no longer matches it"
    ]
    assert of_type(found, deployed, "AWS::IAM::Role") == found


def test_dropping_the_organizational_units_deletes_the_stack_set() -> None:
    """The issue's second case: the StackSet, and every member role it created."""
    deployed = template({"memberOrganizationalUnits": f"{OU},{OTHER_OU}"})
    found = losses(deployed, configured("default").to_json())
    assert [loss.what for loss in found] == [
        "the StackSet PersonalizeSegmentJobNotifier-PersonalizeJobReader is deleted, and with "
        f"it the member role in every account of {OU}, {OTHER_OU}",
        # In an organization the poller watches the StackSet's accounts, by the role's name.
        f"the role {POLLER_ROLE_NAME} is renamed to a generated name: whatever trusts or "
        "assumes it by that name no longer matches it",
    ]
    assert of_type(found, deployed, "AWS::CloudFormation::StackSet") == found[:1]


def test_dropping_one_organizational_unit_removes_the_role_from_its_accounts() -> None:
    found = losses(
        template({"memberOrganizationalUnits": f"{OU},{OTHER_OU}"}),
        template({"memberOrganizationalUnits": OU}),
    )
    assert [loss.what for loss in found] == [
        f"the StackSet PersonalizeSegmentJobNotifier-PersonalizeJobReader no longer targets "
        f"{OTHER_OU}: their accounts lose the member role"
    ]


def test_a_new_member_role_name_renames_the_role_in_every_member_account() -> None:
    found = losses(
        template({"memberOrganizationalUnits": OU}),
        template({"memberOrganizationalUnits": OU, "memberRoleName": "JobReader"}),
    )
    assert [loss.what for loss in found] == [
        f"the role {DEFAULT_MEMBER_ROLE_NAME} in every account of the StackSet "
        "PersonalizeSegmentJobNotifier-PersonalizeJobReader is renamed to JobReader: whatever "
        "trusts or assumes it by that name no longer matches it"
    ]


def test_the_member_stacks_role_renamed_is_seen() -> None:
    assert losses(member(DEFAULT_MEMBER_ROLE_NAME), member(DEFAULT_MEMBER_ROLE_NAME)) == []
    found = losses(member(DEFAULT_MEMBER_ROLE_NAME), member("JobReader"))
    assert [loss.what for loss in found] == [
        f"the role {DEFAULT_MEMBER_ROLE_NAME} is renamed to JobReader: whatever trusts or "
        "assumes it by that name no longer matches it"
    ]


LOST = [Loss("Sub", "the email subscription ops@example.com of the topic People is removed")]


@pytest.mark.parametrize(
    ("found", "confirmed", "answer", "deploys"),
    [
        ([], False, None, True),  # nothing lost: no question
        (LOST, True, None, True),  # CONFIRM=yes
        (LOST, False, None, False),  # no one to ask (CI): stop
        (LOST, False, "yes", True),
        (LOST, False, "y", True),
        (LOST, False, "", False),
        (LOST, False, "no", False),
    ],
)
def test_a_loss_is_deployed_only_once_confirmed(
    found: list[Loss], confirmed: bool, answer: str | None, deploys: bool
) -> None:
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return answer or ""

    assert proceed(found, confirmed=confirmed, ask=None if answer is None else ask) == deploys
    assert len(asked) == (answer is not None)


def test_the_check_names_each_loss_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed, new = tmp_path / "deployed.json", tmp_path / "new.json"
    deployed.write_text(json.dumps(template({"notifyEmails": "ops@example.com"})))
    new.write_text(json.dumps(configured("default").to_json()))
    arguments = ["PersonalizeSegmentJobNotifier", str(new), "--deployed", str(deployed)]
    assert main(arguments) == 1  # pytest's stdin is no terminal: no one to ask
    assert capsys.readouterr().err == (
        "Deploying PersonalizeSegmentJobNotifier would remove what people or other accounts "
        "rely on:\n"
        "  - the email subscription ops@example.com of the topic ChannelsPeople is removed "
        "(ChannelsPeopleopsexamplecomE92B783D)\n"
        "  - the email subscription ops@example.com of the topic ChannelsAlarms is removed "
        "(ChannelsAlarmsopsexamplecom0D92DEE0)\n"
        "If a setting was left out by mistake, put it back in settings.toml (a -c flag lasts "
        "one run only).\n"
        "Not deployed. To deploy anyway: make deploy CONFIRM=yes\n"
    )
    assert main([*arguments, "--yes", "--", "--profile", "prod"]) == 0
    assert main([str(new), str(new), "--deployed", str(new)]) == 0


class Session:
    """boto3's Session as deployed_template makes it, with a stubbed CloudFormation client."""

    def __init__(self, profile_name: str | None = None) -> None:
        self.profile_name = profile_name
        self.region_name = None  # none configured: the CDK CLI's us-east-1
        self.cloudformation = boto3.client(
            "cloudformation",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.stub = Stubber(self.cloudformation)

    def client(self, service: str, region_name: str) -> Any:
        assert (service, region_name) == ("cloudformation", "us-east-1")
        return self.cloudformation


REQUEST = {"StackName": "Notifier", "TemplateStage": "Original"}


def test_the_deployed_template_is_read_where_the_cdk_cli_deploys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body: dict[str, Any] = {"Resources": {}}
    made: list[Session] = []

    def session(profile_name: str | None = None) -> Session:
        stubbed = Session(profile_name)
        if profile_name:
            stubbed.stub.add_response("get_template", {"TemplateBody": json.dumps(body)}, REQUEST)
        else:
            stubbed.stub.add_client_error(
                "get_template",
                "ValidationError",
                "Stack with id Notifier does not exist",
                expected_params=REQUEST,
            )
        stubbed.stub.activate()
        made.append(stubbed)
        return stubbed

    monkeypatch.setattr(boto3.session, "Session", session)
    assert deployed_template("Notifier", "prod") == body
    assert made[0].profile_name == "prod"
    assert deployed_template("Notifier", None) is None  # a first deploy


def test_an_unreadable_deployed_template_stops_the_deploy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def session(profile_name: str | None = None) -> Session:
        stubbed = Session(profile_name)
        stubbed.stub.add_client_error("get_template", "AccessDenied", "not allowed")
        stubbed.stub.activate()
        return stubbed

    monkeypatch.setattr(boto3.session, "Session", session)
    with pytest.raises(UnreadableError, match="cannot read the deployed template of Notifier"):
        deployed_template("Notifier", None)


@pytest.mark.parametrize(
    ("cdk_args", "profile"),
    [
        ([], None),
        (["-c", "regions=us-east-1", "--profile", "member-account"], "member-account"),
        (["--profile=prod"], "prod"),
    ],
)
def test_the_profile_is_the_cdk_clis(cdk_args: list[str], profile: str | None) -> None:
    assert _profile(cdk_args) == profile
