from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

from app import build
from infra.config import (
    STACK_NAME,
    ConfigError,
    Home,
    MemberConfig,
    NotifierConfig,
    check_keys,
    check_watchable,
    known_settings,
)
from infra.constructs.powertools_function import layer_refusal
from infra.scopes import MEMBER_STACK_NAME
from job_events.vocabulary import PERSONALIZE_REGIONS, PERSONALIZE_REGIONS_URL
from local.template import ROOT, cli_context, run_app_py
from tests.infra.conftest import CENTRAL

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


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("256", "pollerMemoryMB: must be between 512 and 10240, got 256"),
        ("20000", "pollerMemoryMB: must be between 512 and 10240, got 20000"),
        ("1GB", "pollerMemoryMB: expected a whole number, got '1GB'"),
    ],
)
def test_poller_memory_is_one_lambda_accepts_and_the_poller_fits(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config(pollerMemoryMB=raw)
    assert str(refused.value) == message


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


def test_scopes_are_not_capped_by_alarms() -> None:
    """One ScopeErrors alarm covers every scope: no cap on accounts x regions of its own."""
    accounts = ",".join(f"{n:012d}" for n in range(1, 26))
    regions = "eu-west-1,us-east-1,us-west-2,ap-south-1,sa-east-1"
    assert len(config(accounts=accounts, regions=regions).regions) == 5


def test_in_an_organization_no_account_cap_but_a_listed_one() -> None:
    """With OUs the poller's role names the member role once: the policy-size cap does not
    apply; the list, which only limits what is watched, is capped by Lambda's 4 KB."""

    def accounts(count: int) -> str:
        return ",".join(f"{n:012d}" for n in range(1, count + 1))

    ou = {"memberOrganizationalUnits": "ou-ab12-cdef3456"}
    assert config(**ou).discovers_accounts
    assert not config(accounts=accounts(3)).discovers_accounts
    assert len(config(accounts=accounts(100), memberRoleName="R" * 64, **ou).accounts) == 100
    with pytest.raises(ConfigError, match=r"accounts: with memberOrganizationalUnits .* got 101"):
        config(accounts=accounts(101), **ou)


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


# Unknown settings: a mistyped name is refused, naming the setting nearest to it.


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["notifyEmail"], "notifyEmail: no such setting (did you mean notifyEmails?)"),
        (["notify_emails"], "notify_emails: no such setting (did you mean notifyEmails?)"),
        (["Regions"], "Regions: no such setting (did you mean regions?)"),
        (["regoins"], "regoins: no such setting (did you mean regions?)"),
        (["allowRegion"], "allowRegion: no such setting (did you mean allowRegions?)"),
        (["colour"], "colour: no such setting (README.md, Configuration, lists them)"),
        (
            ["accounts", "acount", "stuckAfter"],
            "acount: no such setting (did you mean accounts?); "
            "stuckAfter: no such setting (did you mean stuckAfterMinutes?)",
        ),
    ],
)
def test_an_unknown_setting_is_refused_naming_the_nearest(keys: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_keys(keys)
    assert str(refused.value) == message


# What the CDK CLI 2.1148 passes (seen in CDK_CONTEXT_JSON), what cdk.context.json and
# ~/.cdk.json hold (lookups, acknowledged notices, telemetry), and the library's own keys.
CDK_KEYS = [
    "aws:cdk:enable-path-metadata",
    "aws:cdk:enable-asset-metadata",
    "aws:cdk:version-reporting",
    "aws:cdk:bundling-stacks",
    "@aws-cdk/core:failSynthOnValidationErrors",
    "@aws-cdk/core:bootstrapQualifier",
    "aws-cdk:enableDiffNoFail",
    "availability-zones:account=111122223333:region=us-east-1",
    "ssm:account=111122223333:parameterName=/x:region=us-east-1",
    "acknowledged-issue-numbers",
    "cli-telemetry",
    "cdk-version",
]


def test_the_cdks_own_context_keys_are_left_alone() -> None:
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    check_keys([*CDK_KEYS, *cdk_json["context"], *known_settings()])


def test_a_synth_run_as_the_cli_runs_it_passes_the_key_check() -> None:
    """The app's whole context, cdk.json's and the CDK library's included, is accepted."""
    app = cdk.App(context=cli_context({key: True for key in CDK_KEYS}))
    check_keys(app.node.get_all_context())


def test_every_setting_is_known() -> None:
    assert {"notifyEmails", "regions", "allowRegions", "centralAccount"} <= known_settings()
    assert all(not key.startswith(("@", "aws", "cdk", "cli")) for key in known_settings())


def test_app_py_refuses_an_unknown_flag(tmp_path: Path) -> None:
    result = run_app_py({"notifyEmail": "ops@example.com"}, tmp_path, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "Invalid configuration: notifyEmail: no such setting (did you mean notifyEmails?)"
    )
    assert not list(tmp_path.iterdir())


# Regions without Amazon Personalize: refused, naming them, unless allowed.

NOT_DOCUMENTED = f"(its regions: {PERSONALIZE_REGIONS_URL})"


def test_the_documented_regions_are_accepted() -> None:
    check_watchable(config(regions=",".join(PERSONALIZE_REGIONS)))
    for region in PERSONALIZE_REGIONS:
        check_watchable(config(), Home(region=region))


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (
            "us-east-1,eu-west-2",
            f"regions: Amazon Personalize is not in eu-west-2 {NOT_DOCUMENTED}; if it has "
            "launched there since, add it to allowRegions",
        ),
        (
            "sa-east-1,ca-west-1,eu-west-1",
            f"regions: Amazon Personalize is not in sa-east-1, ca-west-1 {NOT_DOCUMENTED}; if "
            "it has launched there since, add them to allowRegions",
        ),
    ],
)
def test_a_watched_region_without_personalize_is_refused(regions: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_watchable(config(regions=regions))
    assert str(refused.value) == message


def test_allow_regions_accepts_a_region_launched_later() -> None:
    allowed = config(regions="us-east-1,eu-west-2", allowRegions="eu-west-2")
    assert allowed.allow_regions == ("eu-west-2",)
    check_watchable(allowed)
    check_watchable(config(allowRegions=["eu-west-2"]), Home(region="eu-west-2"))
    with pytest.raises(ConfigError, match="allowRegions: 'Paris' is not a region name"):
        config(allowRegions="Paris")


OWN_REGION_REFUSED = (
    f"regions: not given, so the stack watches its own region, eu-west-2, where Amazon "
    f"Personalize is not {NOT_DOCUMENTED}; list the regions to watch in regions, or if "
    f"Personalize has launched in eu-west-2 since, add it to allowRegions"
)


def test_the_stacks_own_region_is_checked_when_synth_knows_it() -> None:
    with pytest.raises(ConfigError) as refused:
        check_watchable(config(), Home(region="eu-west-2"))
    assert str(refused.value) == OWN_REGION_REFUSED
    # Watching other regions, the stack itself may live where Personalize is not.
    check_watchable(config(regions="eu-west-1"), Home(region="eu-west-2"))
    check_watchable(config())  # not known: the poller checks it at its first run


def test_synth_learns_the_stacks_home_from_the_cdk_cli() -> None:
    cli = {"CDK_DEFAULT_ACCOUNT": "111122223333", "CDK_DEFAULT_REGION": "eu-west-2"}
    assert Home.from_environ(cli) == Home("111122223333", "eu-west-2")
    assert Home.from_environ({}) == Home()
    assert Home.from_environ({"CDK_DEFAULT_REGION": "unknown"}) == Home()


def test_a_refused_own_region_fails_the_notifier_stack_only() -> None:
    """The member stack deploys into member accounts from any region; the notifier stack
    cannot deploy where it would watch a region without Personalize."""
    app = cdk.App(context=cli_context({"centralAccount": CENTRAL}))
    build(app, home=Home(region="eu-west-2"))
    notifier = Annotations.from_stack(cdk.Stack.of(app.node.find_child(STACK_NAME)))
    notifier.has_error("*", f"Invalid configuration: {OWN_REGION_REFUSED}")
    member = Annotations.from_stack(cdk.Stack.of(app.node.find_child(MEMBER_STACK_NAME)))
    member.has_no_error("*", Match.any_value())


def test_the_powertools_layer_is_checked_in_the_stacks_own_region() -> None:
    app = cdk.App(context=cli_context({"regions": "eu-west-1"}))
    build(app, home=Home(region="ca-west-1"))
    notifier = Annotations.from_stack(cdk.Stack.of(app.node.find_child(STACK_NAME)))
    refusal = layer_refusal("ca-west-1")
    assert refusal
    notifier.has_error("*", refusal)


def test_app_py_refuses_a_watched_region_without_personalize(tmp_path: Path) -> None:
    result = run_app_py({"regions": "eu-west-2"}, tmp_path, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f"Invalid configuration: regions: Amazon Personalize is not in eu-west-2 "
        f"{NOT_DOCUMENTED}; if it has launched there since, add it to allowRegions"
    )


# Solution versions outside the watched accounts and regions: refused, naming them.

VERSION = "arn:aws:personalize:{region}:{account}:solution/segments/{n}"


def version(account: str = "111122223333", region: str = "us-east-1", n: int = 1) -> str:
    return VERSION.format(account=account, region=region, n=n)


@pytest.mark.parametrize(
    ("context", "home", "message"),
    [
        (
            {
                "accounts": "111122223333,444455556666",
                "solutionVersionArns": version("999988887777"),
            },
            Home(),
            "solutionVersionArns: outside the watched accounts (111122223333, 444455556666) and "
            "regions (this stack's), so never polled: "
            "arn:aws:personalize:us-east-1:999988887777:solution/segments/1",
        ),
        (
            {
                "regions": "us-east-1",
                "solutionVersionArns": f"{version()},{version(region='eu-west-1', n=2)}",
            },
            Home(),
            "solutionVersionArns: outside the watched accounts (this stack's) and regions "
            "(us-east-1), so never polled: "
            "arn:aws:personalize:eu-west-1:111122223333:solution/segments/2",
        ),
        (
            {"solutionVersionArns": f"{version()},{version('999988887777', 'eu-west-1', 2)}"},
            Home("111122223333", "us-east-1"),
            "solutionVersionArns: outside the watched accounts (this stack's, 111122223333) and "
            "regions (this stack's, us-east-1), so never polled: "
            "arn:aws:personalize:eu-west-1:999988887777:solution/segments/2",
        ),
    ],
    ids=["other account", "other region", "not the stack's own"],
)
def test_a_solution_version_outside_the_watched_scopes_is_refused(
    context: dict[str, str], home: Home, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        check_watchable(config(**context), home)
    assert str(refused.value) == message


def test_solution_versions_inside_the_watched_scopes_are_accepted() -> None:
    inside = config(
        accounts="111122223333,444455556666",
        regions="us-east-1,eu-west-1",
        solutionVersionArns=f"{version()},{version('444455556666', 'eu-west-1')}",
    )
    check_watchable(inside, Home("555566667777", "ap-south-1"))  # given scopes: home is moot
    check_watchable(config(solutionVersionArns=version()))  # the stack's own: not known yet
    check_watchable(config(solutionVersionArns=version()), Home("111122223333", "us-east-1"))


def test_a_solution_version_listed_twice_is_watched_once() -> None:
    """Merged, not refused: listing a version twice can only mean watching it."""
    twice = config(solutionVersionArns=f"{version()}, {version(n=2)},{version()}")
    assert twice.solution_version_arns == (version(), version(n=2))
    assert config(solutionVersionArns=[version(), version()]).solution_version_arns == (version(),)


def test_app_py_refuses_a_solution_version_outside_the_watched_scopes(tmp_path: Path) -> None:
    result = run_app_py(
        {"accounts": "111122223333", "solutionVersionArns": version("444455556666")},
        tmp_path,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "Invalid configuration: solutionVersionArns: outside the watched accounts "
        "(111122223333) and regions (this stack's), so never polled: "
        "arn:aws:personalize:us-east-1:444455556666:solution/segments/1"
    )
