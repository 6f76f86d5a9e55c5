from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from infra.config import ConfigError, MemberConfig, NotifierConfig
from local.template import run_app_py

if TYPE_CHECKING:
    from pathlib import Path


def config(**context: Any) -> NotifierConfig:
    return NotifierConfig.from_context(context.get)


def test_defaults() -> None:
    default = config()
    assert default.schedule_minutes == 5
    assert default.notify_emails == ()
    assert default.run_seconds == 240


def test_lists_accept_commas_and_lists() -> None:
    assert config(notifyEmails="a@x.com, b@y.org").notify_emails == ("a@x.com", "b@y.org")
    assert config(notifyEmails=["a@x.com"]).notify_emails == ("a@x.com",)


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"scheduleMinutes": "0"}, "scheduleMinutes"),
        ({"scheduleMinutes": "five"}, "scheduleMinutes"),
        ({"notifyEmails": "not-an-email"}, "notifyEmails"),
        ({"solutionVersionArns": "arn:aws:s3:::bucket"}, "solutionVersionArns"),
        ({"logLevel": "LOUD"}, "logLevel"),
        ({"tracing": "maybe"}, "tracing"),
        ({"logRetentionDays": "8"}, "logRetentionDays"),
        ({"notifyEmails": 42}, "notifyEmails"),
    ],
)
def test_bad_values_name_the_setting(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config(**context)


def test_reserved_concurrency_is_opt_in() -> None:
    assert config().reserved_concurrency is None
    assert config(reservedConcurrency="1").reserved_concurrency == 1
    assert config(reservedConcurrency=5).reserved_concurrency == 5


@pytest.mark.parametrize("raw", ["0", "-1", "one", "1.5"])
def test_reserved_concurrency_must_be_a_positive_whole_number(raw: str) -> None:
    with pytest.raises(ConfigError, match="reservedConcurrency"):
        config(reservedConcurrency=raw)


def test_schedule_accepts_the_documented_range() -> None:
    assert config(scheduleMinutes="1440").schedule_minutes == 1440
    with pytest.raises(ConfigError, match="scheduleMinutes"):
        config(scheduleMinutes="1441")


def test_a_scheduled_run_is_shorter_than_the_period() -> None:
    for minutes in (1, 5, 60, 1440):
        assert config(scheduleMinutes=minutes).run_seconds < minutes * 60


def test_app_py_exits_with_a_message_naming_the_value(tmp_path: Path) -> None:
    result = run_app_py({"notifyEmails": "bob"}, tmp_path, timeout=120)
    assert result.returncode == 1
    assert "Invalid configuration: notifyEmails: 'bob' is not an email address" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing synthesized


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"slackWorkspaceId": "T0123"}, "slackWorkspaceId and slackChannelId"),
        ({"slackWorkspaceId": "t-lower", "slackChannelId": "C1"}, "slackWorkspaceId"),
        ({"slackWorkspaceId": "T1", "slackChannelId": "#general"}, "slackChannelId"),
        ({"emailEventTypes": "JOB_FAILED,JOB_EXPLODED"}, "emailEventTypes"),
        ({"emailEventTypes": ""}, "emailEventTypes"),
    ],
)
def test_channel_settings_are_validated(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config(**context)


def test_scopes_default_to_the_stacks_own_account_and_region() -> None:
    default = config()
    assert default.accounts == ()
    assert default.regions == ()
    assert default.member_role_name == "PersonalizeBatchSegmentJobReader"
    assert default.member_organizational_units == ()
    assert default.stack_set_call_as == "DELEGATED_ADMIN"


def test_scopes_are_read_as_lists_without_duplicates() -> None:
    parsed = config(
        accounts="111122223333, 444455556666,111122223333",
        regions=["eu-west-1", "us-gov-west-1"],
        memberRoleName="Team.Reader@ml",
        memberOrganizationalUnits="ou-ab12-cdef3456,r-ab12",
        stackSetCallAs="self",
    )
    assert parsed.accounts == ("111122223333", "444455556666")
    assert parsed.regions == ("eu-west-1", "us-gov-west-1")
    assert parsed.member_role_name == "Team.Reader@ml"
    assert parsed.member_organizational_units == ("ou-ab12-cdef3456", "r-ab12")
    assert parsed.stack_set_call_as == "SELF"


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"accounts": "1111-2222-3333"}, "accounts: '1111-2222-3333' is not a 12-digit"),
        ({"accounts": "11112222333"}, "accounts"),
        ({"regions": "US-EAST-1"}, "regions: 'US-EAST-1' is not a region name"),
        ({"regions": "eu-west"}, "regions"),
        ({"memberRoleName": "role/with/path"}, "memberRoleName"),
        ({"memberRoleName": "r" * 65}, "memberRoleName"),
        ({"memberOrganizationalUnits": "ou-1"}, "memberOrganizationalUnits"),
        ({"memberOrganizationalUnits": "111122223333"}, "memberOrganizationalUnits"),
        ({"stackSetCallAs": "ADMIN"}, "stackSetCallAs"),
    ],
)
def test_scope_settings_are_validated(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config(**context)


def test_scopes_are_capped_one_alarm_each() -> None:
    accounts = ",".join(f"{n:012d}" for n in range(1, 26))
    assert (
        len(config(accounts=accounts, regions="eu-west-1,us-east-1,us-west-2,ap-south-1").accounts)
        == 25
    )
    with pytest.raises(ConfigError, match=r"at most 100 .* got 125"):
        config(accounts=accounts, regions="eu-west-1,us-east-1,us-west-2,ap-south-1,sa-east-1")


def test_the_member_stack_reads_the_central_account() -> None:
    assert MemberConfig.from_context({}.get) == MemberConfig(central_account=None)
    member = MemberConfig.from_context(
        {"centralAccount": "111122223333", "memberRoleName": "Reader"}.get
    )
    assert (member.central_account, member.role_name) == ("111122223333", "Reader")
    with pytest.raises(ConfigError, match="centralAccount: 'me' is not a 12-digit account ID"):
        MemberConfig.from_context({"centralAccount": "me"}.get)
    with pytest.raises(ConfigError, match="memberRoleName: 'no spaces' is not an IAM role name"):
        MemberConfig.from_context({"memberRoleName": "no spaces"}.get)


def test_accounts_are_capped_by_the_poller_roles_policy_size() -> None:
    def accounts(count: int) -> str:
        return ",".join(f"{n:012d}" for n in range(1, count + 1))

    # With the default role name, 100 accounts (in one region) fit.
    assert len(config(accounts=accounts(100)).accounts) == 100
    assert len(config(accounts=accounts(71), memberRoleName="R" * 64).accounts) == 71
    with pytest.raises(ConfigError, match=r"accounts: .* 10,240 characters: at most 71 accounts"):
        config(accounts=accounts(72), memberRoleName="R" * 64)
