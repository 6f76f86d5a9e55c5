"""Every account the member role reaches, without a list: the real handler against local
AWS, where moto's CloudFormation holds the member StackSet and its instances, moto's STS
issues each member account's credentials, and the Personalize emulator answers each
caller with the jobs of its own account and region.

moto keeps StackSets (self-managed here: its service-managed ones need an organization
in its Organizations backend) and answers ListStackInstances without paging, ignoring
CallAs, with every instance CURRENT and SUCCEEDED; an instance that failed is made by
changing moto's own instance in its backend (moto's server runs in this process).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from moto.cloudformation.models import cloudformation_backends

from local.demo import MEMBER_ACCOUNTS, MISSING_ACCOUNT, REGIONS
from local.lambda_context import LocalLambdaContext
from poller.discovery import CACHE_SECONDS
from poller.errors import DiscoveryError
from tests.integration.conftest import poller_handler, reset_handler_caches

if TYPE_CHECKING:
    from tests.integration.conftest import Stack

OWN = LocalLambdaContext().account_id  # the administrator: never an instance
FIRST, SECOND = MEMBER_ACCOUNTS
MISSING = MISSING_ACCOUNT  # an instance, but its role is not there (AssumeRole denied)
JOINING = "555566667777"
EAST, WEST = REGIONS[:2]
ROLE = "PersonalizeBatchSegmentJobReader"
STACK_SET = "personalize-notifier-member"
LISTED = "cloudformation:ListStackInstances"
# The member role, as the StackSet deploys it (the role is global: in one region).
TEMPLATE = json.dumps(
    {
        "Resources": {
            "Reader": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": ROLE,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{OWN}:root"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                },
            }
        }
    }
)


class Clock:
    """The discovery cache's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cloudformation() -> Any:
    from tests.integration.conftest import observer_client  # noqa: PLC0415

    return observer_client("cloudformation")


def join(*accounts: str) -> None:
    cloudformation().create_stack_instances(
        StackSetName=STACK_SET, Accounts=list(accounts), Regions=[EAST]
    )


def discover(stack: Stack, *members: str) -> Clock:
    """The member StackSet with an instance in each of `members`, and a poller that finds
    them (a new container, whose discovery cache runs on the returned clock)."""
    cloudformation().create_stack_set(StackSetName=STACK_SET, TemplateBody=TEMPLATE)
    join(*members)
    stack.configure(
        DISCOVER_STACK_SET=STACK_SET,
        STACK_SET_CALL_AS="DELEGATED_ADMIN",
        WATCHED_ACCOUNTS="",
        WATCHED_REGIONS=f"{EAST},{WEST}",
        MEMBER_ROLE_NAME=ROLE,
    )
    reset_handler_caches(stack.spec)
    clock = Clock()
    accounts = poller_handler(stack.spec).discovery()
    assert accounts is not None
    accounts.clock = clock
    return clock


def jobs_everywhere(stack: Stack, *accounts: str, status: str = "ACTIVE") -> None:
    for account in accounts:
        for region in (EAST, WEST):
            stack.personalize.add_job(
                f"old-{account}-{region}", status, account=account, region=region
            )


def places(*accounts: str) -> set[str]:
    return {f"{account}/{region}" for account in accounts for region in (EAST, WEST)}


def scope_errors(out: str) -> set[str]:
    metrics = [json.loads(line) for line in out.splitlines() if "_aws" in line]
    return {m["scope"] for m in metrics if "ScopeErrors" in m}


def test_the_stack_sets_accounts_are_watched_a_joining_one_silently_and_a_missing_role_named(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = discover(stack, FIRST, SECOND, MISSING)
    stack.aws.moto.missing_roles.add(f"arn:aws:iam::{MISSING}:role/{ROLE}")
    jobs_everywhere(stack, OWN, FIRST, SECOND, MISSING, JOINING)
    capsys.readouterr()

    first = stack.invoke()

    assert first["firstRun"] is True
    assert stack.heard() == [], "what each account already had is not news"
    assert set(first["unreachableScopes"]) == places(MISSING)
    assert "AccessDenied" in first["unreachableScopes"][f"{MISSING}/{EAST}"]
    assert scope_errors(capsys.readouterr().out) == places(MISSING)
    assert set(stack.personalize.calls_by_scope) == {
        (account, region) for account in (OWN, FIRST, SECOND) for region in (EAST, WEST)
    }, "the own account and every member whose role answers"
    assert stack.calls[LISTED] == 1

    # A fourth account joins the OU, and the StackSet gives it the role. Until the cache
    # period ends the poller does not ask again, nor watch it.
    join(JOINING)
    clock.now += CACHE_SECONDS - 1
    assert f"{JOINING}/{EAST}" not in json.dumps(stack.invoke())
    assert stack.calls[LISTED] == 1
    assert (JOINING, EAST) not in stack.personalize.calls_by_scope

    clock.now += 1
    joined = stack.invoke()

    assert stack.calls[LISTED] == 2, "once per cache period"
    assert joined["firstRun"] is True, "its silent baseline"
    assert stack.heard() == [], "the joining account's existing jobs are not news"
    assert {(JOINING, EAST), (JOINING, WEST)} <= set(stack.personalize.calls_by_scope)
    assert set(joined["unreachableScopes"]) == places(MISSING), "named every run"
    assert f"{JOINING}/{EAST}/*" in stack.markers()

    # From then on, what happens there is news; the missing role is still named.
    stack.personalize.add_job("fresh", "CREATE PENDING", account=JOINING, region=WEST)
    capsys.readouterr()
    later = stack.invoke()

    assert stack.heard() == [("fresh", None, "CREATE PENDING")]
    assert set(later["unreachableScopes"]) == places(MISSING)
    assert scope_errors(capsys.readouterr().out) == places(MISSING)
    assert stack.calls[LISTED] == 2

    # An account that leaves is named once, by the run that stops watching it.
    cloudformation().delete_stack_instances(
        StackSetName=STACK_SET, Accounts=[JOINING], Regions=[EAST], RetainStacks=False
    )
    clock.now += CACHE_SECONDS
    assert stack.invoke()["scopesDropped"] == sorted(f"{place}/*" for place in places(JOINING))
    assert stack.invoke()["scopesDropped"] == []
    assert stack.calls[LISTED] == 3


def test_an_account_whose_instance_failed_is_named_with_why_and_stays_watched(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    discover(stack, FIRST, SECOND)
    stack_set = cloudformation_backends[OWN][EAST].describe_stack_set(STACK_SET)
    (failed,) = [i for i in stack_set.instances.stack_instances if i.account_id == SECOND]
    summary = {
        **failed.to_dict(),
        "Status": "OUTDATED",
        "StackInstanceStatus": {"DetailedStatus": "FAILED"},
        "StatusReason": "Role PersonalizeBatchSegmentJobReader already exists",
    }
    monkeypatch.setattr(failed, "to_dict", lambda: summary)

    result = stack.invoke()

    assert set(result["unreachableScopes"]) == places(SECOND)
    why = result["unreachableScopes"][f"{SECOND}/{EAST}"]
    assert all(part in why for part in ("FAILED", "already exists", STACK_SET)), why
    assert (SECOND, EAST) not in stack.personalize.calls_by_scope, "not listed"
    assert stack.aws.moto.calls["sts:AssumeRole"] == 1, "only the usable member's role"
    assert {f"{SECOND}/{EAST}/*", f"{SECOND}/{WEST}/*"} <= set(stack.markers()), "still watched"


def test_a_failed_discovery_keeps_the_last_answer_or_fails_the_run(stack: Stack) -> None:
    clock = discover(stack, FIRST)
    stack.aws.inject_fault(LISTED, "StackSetNotFoundException", message="no such StackSet")

    with pytest.raises(DiscoveryError, match=f"StackSet {STACK_SET}.*no earlier answer"):
        stack.invoke()

    assert stack.invoke()["discoveryStale"] is None
    clock.now += CACHE_SECONDS
    stack.aws.inject_fault(LISTED, "StackSetNotFoundException", message="no such StackSet")

    result = stack.invoke()

    assert "no such StackSet" in result["discoveryStale"]
    assert (FIRST, WEST) in stack.personalize.calls_by_scope, "watched as the last answer said"
    assert stack.calls[LISTED] == 3
