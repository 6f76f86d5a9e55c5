"""Member accounts found by the poller: what an instance's status means, which accounts a
run watches and names, and how long an answer is kept."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from poller import wiring
from poller.discovery import (
    CACHE_SECONDS,
    Members,
    StackSetAccounts,
    instance_problem,
    members_of,
    watched_accounts,
)
from poller.errors import DiscoveryError, ScopesUnreachableError
from poller.models import Scope
from poller.poll import PollResult
from poller.report import raise_on_failure
from poller.settings import Settings

OWN, A, B, C = "111111111111", "222222222222", "333333333333", "444444444444"
STACK_SET = "personalize-notifier-member"
BASE = {
    "SNAPSHOT_TABLE_NAME": "t",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:111111111111:events",
    "AWS_REGION": "us-east-1",
    "DISCOVER_STACK_SET": STACK_SET,
}


def instance(
    account: str, status: str = "CURRENT", detailed: str = "SUCCEEDED", **more: Any
) -> dict[str, Any]:
    return {
        "Account": account,
        "Region": "us-east-1",
        "Status": status,
        "StackInstanceStatus": {"DetailedStatus": detailed},
        **more,
    }


@pytest.mark.parametrize(
    ("summary", "problem"),
    [
        (instance(A), None),
        (instance(A, "OUTDATED", "RUNNING"), None),  # an update under way keeps the role
        (instance(A, "OUTDATED", "PENDING"), None),  # a joining account: its role is coming
        (
            instance(A, "INOPERABLE", "INOPERABLE", StatusReason="DeleteStackInstances failed"),
            "its instance in us-east-1 is INOPERABLE: DeleteStackInstances failed",
        ),
        (
            instance(A, "OUTDATED", "FAILED", StatusReason="Role already exists"),
            "its instance in us-east-1 is OUTDATED (FAILED): Role already exists",
        ),
        (
            instance(A, "OUTDATED", "SKIPPED_SUSPENDED_ACCOUNT"),
            "its instance in us-east-1 is OUTDATED (SKIPPED_SUSPENDED_ACCOUNT)",
        ),
        ({"Account": A, "Status": "INOPERABLE"}, "its instance in ? is INOPERABLE"),
    ],
)
def test_an_instance_is_usable_unless_it_failed_saying_why(
    summary: dict[str, Any], problem: str | None
) -> None:
    assert instance_problem(summary) == problem


def test_an_account_is_usable_if_one_of_its_instances_is() -> None:
    found = members_of(
        [
            instance(B),
            instance(A, "OUTDATED", "FAILED", Region="eu-west-1"),
            instance(A),
            instance(C, "OUTDATED", "FAILED", StatusReason="no"),
            {"Region": "us-east-1"},  # no account: nothing to watch
        ]
    )
    assert found == Members((A, B), {C: "its instance in us-east-1 is OUTDATED (FAILED): no"})


def test_without_a_list_the_own_account_and_every_usable_member_are_watched() -> None:
    found = Members((A, B), {C: "failed"})
    assert watched_accounts(OWN, (), found, STACK_SET) == (
        (OWN, A, B),
        {C: f"StackSet {STACK_SET}: failed"},
    )


def test_with_a_list_the_list_limits_what_is_watched_and_names_accounts_without_the_role() -> None:
    found = Members((A, B), {C: "failed"})
    # OWN is not listed: not watched. B is found but not listed: not watched. C listed, failed.
    usable, unusable = watched_accounts(OWN, (A, C, "555555555555"), found, STACK_SET)
    assert usable == (A,)
    assert unusable == {
        C: f"StackSet {STACK_SET}: failed",
        "555555555555": f"not an instance of StackSet {STACK_SET}: its member role is not "
        "deployed there",
    }
    assert watched_accounts(OWN, (OWN, A), found, STACK_SET) == ((OWN, A), {})


class FakeCloudFormation:
    """ListStackInstances' pages, or a failure; counts calls and keeps their arguments."""

    def __init__(self, *pages: list[dict[str, Any]]) -> None:
        self.pages = list(pages)
        self.requests: list[dict[str, Any]] = []
        self.failing = False

    def list_stack_instances(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.failing:
            raise ClientError(
                {"Error": {"Code": "StackSetNotFoundException", "Message": "gone"}},
                "ListStackInstances",
            )
        index = int(request.get("NextToken", "0"))
        more = {"NextToken": str(index + 1)} if index + 1 < len(self.pages) else {}
        return {"Summaries": self.pages[index], **more}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_every_page_is_read_as_the_stack_sets_administrator() -> None:
    client = FakeCloudFormation([instance(A)], [instance(B)])
    found = StackSetAccounts(STACK_SET, "DELEGATED_ADMIN", client).members()
    assert found.usable == (A, B)
    assert client.requests == [
        {"StackSetName": STACK_SET, "CallAs": "DELEGATED_ADMIN", "MaxResults": 100},
        {
            "StackSetName": STACK_SET,
            "CallAs": "DELEGATED_ADMIN",
            "MaxResults": 100,
            "NextToken": "1",
        },
    ]


def test_an_answer_is_kept_for_the_cache_period_then_asked_again() -> None:
    client, clock = FakeCloudFormation([instance(A)]), Clock()
    accounts = StackSetAccounts(STACK_SET, "SELF", client, clock=clock)
    assert accounts.members().usable == (A,)
    client.pages = [[instance(A), instance(B)]]  # B joins
    clock.now += CACHE_SECONDS - 1
    assert accounts.members().usable == (A,), "cached"
    assert len(client.requests) == 1
    clock.now += 1
    assert accounts.members().usable == (A, B)
    assert len(client.requests) == 2


def test_a_failed_call_keeps_the_last_answer_and_says_so_then_asks_again_next_run() -> None:
    client, clock = FakeCloudFormation([instance(A)]), Clock()
    accounts = StackSetAccounts(STACK_SET, "DELEGATED_ADMIN", client, clock=clock)
    accounts.members()
    client.failing = True
    clock.now += CACHE_SECONDS

    stale = accounts.members()

    assert stale.usable == (A,)
    assert stale.stale is not None
    assert "StackSetNotFoundException" in stale.stale
    assert STACK_SET in stale.stale
    accounts.members()
    assert len(client.requests) == 3, "each run asks until an answer comes"
    client.failing = False
    assert accounts.members().stale is None


def test_a_failed_call_without_an_earlier_answer_fails_the_run() -> None:
    client = FakeCloudFormation()
    client.failing = True
    accounts = StackSetAccounts(STACK_SET, "DELEGATED_ADMIN", client)
    with pytest.raises(DiscoveryError, match=f"StackSet {STACK_SET}.*no earlier answer"):
        accounts.members()
    with pytest.raises(DiscoveryError):
        wiring.poll_run(Settings.from_env(BASE), OWN, "run", lambda: 240.0, members=accounts)


def test_a_run_watches_the_found_accounts_and_names_the_failed_ones() -> None:
    client = FakeCloudFormation([instance(A), instance(C, "INOPERABLE", "INOPERABLE")])
    settings = Settings.from_env({**BASE, "WATCHED_REGIONS": "us-east-1,eu-west-1"})
    run = wiring.poll_run(
        settings, OWN, "run", lambda: 240.0, members=StackSetAccounts(STACK_SET, "SELF", client)
    )
    assert [s.key for s in run.scopes] == [
        f"{account}/{region}/*" for account in (OWN, A, C) for region in ("us-east-1", "eu-west-1")
    ]
    assert set(run.unusable) == {f"{C}/us-east-1/*", f"{C}/eu-west-1/*"}
    assert "INOPERABLE" in run.unusable[f"{C}/us-east-1/*"]
    assert run.discovery_stale is None


def test_without_discovery_the_list_is_watched_as_before() -> None:
    settings = Settings.from_env({**BASE, "DISCOVER_STACK_SET": "", "WATCHED_ACCOUNTS": A})
    run = wiring.poll_run(settings, OWN, "run", lambda: 240.0)
    assert run.scopes == (Scope(None, A, "us-east-1"),)
    assert run.unusable == {}


def test_a_run_fails_only_when_none_of_its_places_was_reached() -> None:
    result = PollResult(unreachable={f"{C}/us-east-1": "failed"})
    raise_on_failure(result, {f"{OWN}/us-east-1", f"{C}/us-east-1"})
    with pytest.raises(ScopesUnreachableError):
        raise_on_failure(result, {f"{C}/us-east-1"})
    raise_on_failure(PollResult(), set())
