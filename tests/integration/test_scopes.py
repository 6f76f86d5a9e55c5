"""One deployment, every account and region: the real handler against local AWS, where
moto's STS issues each member account's credentials and the Personalize emulator answers
each caller with the jobs of its own account and region."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.loaders import JSONFileLoader

from local.demo import MEMBER_ACCOUNTS, MISSING_ACCOUNT, REGIONS, Layout
from local.lambda_context import LocalLambdaContext
from local.template import read_poller, synth
from poller.errors import ScopesUnreachableError
from poller.poll import SAFETY_MARGIN_SECONDS
from poller.scope_clients import ScopeClients
from tests.integration.test_iam_usage import ACTION_OF_OPERATION, PLATFORM_PREFIXES, granted_actions

if TYPE_CHECKING:
    from tests.integration.conftest import Stack

# The demo's accounts and regions, so its multi-scope stack serves these tests too.
OWN = LocalLambdaContext().account_id
MEMBER = MEMBER_ACCOUNTS[0]
MISSING = MISSING_ACCOUNT  # its reader role was never deployed
EAST, WEST = REGIONS[:2]
ROLE = "PersonalizeBatchSegmentJobReader"


def watch(stack: Stack, *accounts: str) -> None:
    stack.configure(
        WATCHED_ACCOUNTS=",".join(accounts),
        WATCHED_REGIONS=f"{EAST},{WEST}",
        MEMBER_ROLE_NAME=ROLE,
    )


def jobs_everywhere(stack: Stack, *accounts: str) -> dict[tuple[str, str], str]:
    return {
        (account, region): stack.personalize.add_job(
            f"job-{account}-{region}", "IN PROGRESS", account=account, region=region
        )
        for account in accounts
        for region in (EAST, WEST)
    }


def attributes(notification: dict[str, Any]) -> dict[str, str]:
    return {k: v["Value"] for k, v in notification["MessageAttributes"].items()}


def test_every_account_and_region_is_polled_and_named_in_its_events(stack: Stack) -> None:
    watch(stack, OWN, MEMBER)
    arns = jobs_everywhere(stack, OWN, MEMBER)
    stack.start_watching()
    for arn in arns.values():
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="bad input")

    result = stack.invoke()

    assert result["published"] == 4
    told = stack.notifications()
    scopes = {(attributes(n)["accountId"], attributes(n)["region"]) for n in told}
    assert scopes == set(arns)
    for notification in told:
        event = json.loads(notification["Message"])
        assert (event["accountId"], event["region"]) == (
            attributes(notification)["accountId"],
            attributes(notification)["region"],
        )
        assert event["consoleUrl"].startswith(f"https://{event['region']}.console.")
    assert set(stack.personalize.calls_by_scope) == set(arns), "each listed as itself"
    # Assumed once per member account, then its refreshing credentials are reused.
    assert stack.aws.moto.calls["sts:AssumeRole"] == 1
    stack.invoke()
    assert stack.aws.moto.calls["sts:AssumeRole"] == 1


def test_an_account_without_its_role_is_named_and_the_others_announced_once(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    watch(stack, OWN, MEMBER, MISSING)
    stack.aws.moto.missing_roles.add(f"arn:aws:iam::{MISSING}:role/{ROLE}")
    arns = jobs_everywhere(stack, OWN, MEMBER, MISSING)
    assert stack.invoke()["firstRun"] is True  # watching begins, for every scope
    for arn in arns.values():
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="bad input")
    capsys.readouterr()

    result = stack.invoke()

    assert set(result["unreachableScopes"]) == {f"{MISSING}/{EAST}", f"{MISSING}/{WEST}"}
    assert "AccessDenied" in result["unreachableScopes"][f"{MISSING}/{EAST}"]
    reachable = {s for s in arns if s[0] != MISSING}
    told = [(attributes(n)["accountId"], attributes(n)["region"]) for n in stack.notifications()]
    assert sorted(told) == sorted(reachable), "each reachable failure exactly once"
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    named = {m["scope"] for m in metrics if "ScopeErrors" in m}
    assert named == {f"{MISSING}/{EAST}", f"{MISSING}/{WEST}"}
    assert any(m.get("PollSucceeded") for m in metrics), "the reachable scopes keep the heartbeat"

    # Once its member stack is deployed: it was watched all along, so what its jobs did
    # since watching began is news (first seen: previousStatus NONE), as is a job created
    # since; each once.
    late = stack.personalize.add_job("late", "PENDING", account=MISSING, region=WEST)
    stack.aws.moto.missing_roles.clear()
    assert stack.invoke()["firstRun"] is True
    stack.personalize.set_status(late, "CREATE FAILED", failure_reason="bad input")
    stack.invoke()
    late_told = [
        (attributes(n)["jobName"], attributes(n)["previousStatus"], attributes(n)["accountId"])
        for n in stack.notifications()
    ]
    assert sorted(late_told) == sorted(
        [
            (f"job-{MISSING}-{EAST}", "NONE", MISSING),
            (f"job-{MISSING}-{WEST}", "NONE", MISSING),
            ("late", "NONE", MISSING),
            ("late", "PENDING", MISSING),
        ]
    )


def heard_jobs(stack: Stack) -> list[tuple[str, str]]:
    """(job name, region) of each notification since the last look, duplicates kept."""
    return sorted(
        (attributes(n)["jobName"], attributes(n)["region"]) for n in stack.notifications()
    )


# One account alone, and members too: their clients share a pool per region, so the hung
# region's pool must not hold up the healthy one's.
@pytest.mark.parametrize("accounts", [(OWN,), (OWN, *MEMBER_ACCOUNTS)], ids=["own", "members"])
def test_a_hung_region_is_named_and_the_others_are_announced_in_the_same_run(
    stack: Stack, capsys: pytest.CaptureFixture[str], accounts: tuple[str, ...]
) -> None:
    watch(stack, *accounts)
    arns = jobs_everywhere(stack, *accounts)
    stack.start_watching()
    for arn in arns.values():
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="bad input")
    stack.personalize.hang(WEST)  # accepts every request and never answers
    run = LocalLambdaContext(timeout_seconds=SAFETY_MARGIN_SECONDS + 10)
    capsys.readouterr()

    result = stack.invoke(context=run)

    hung = {f"{account}/{WEST}" for account in accounts}
    assert run.get_remaining_time_in_millis() > 0, "the run ended before its deadline"
    assert set(result["unreachableScopes"]) == hung
    assert all("did not finish" in why for why in result["unreachableScopes"].values())
    told = sorted(
        (attributes(n)["jobName"], attributes(n)["region"]) for n in stack.notifications()
    )
    assert told == sorted((f"job-{a}-{EAST}", EAST) for a in accounts), "the healthy region, now"
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert {m["scope"] for m in metrics if "ScopeErrors" in m} == hung

    stack.personalize.release()
    stack.invoke()
    stack.invoke()

    told = sorted(
        (attributes(n)["jobName"], attributes(n)["region"]) for n in stack.notifications()
    )
    assert told == sorted((f"job-{a}-{WEST}", WEST) for a in accounts), "once it answers: once"


def test_nothing_reachable_fails_the_run(stack: Stack) -> None:
    watch(stack, MISSING)
    stack.aws.moto.missing_roles.add(f"arn:aws:iam::{MISSING}:role/{ROLE}")

    with pytest.raises(ScopesUnreachableError, match=f"{MISSING}/{EAST}"):
        stack.invoke()


def test_the_role_of_a_multi_account_poller_grants_exactly_its_calls(stack: Stack) -> None:
    # The stack the demo deploys across two accounts and two regions.
    layout = Layout.sized(2, 2)
    assert (layout.accounts, layout.missing, layout.regions) == (
        (OWN, MEMBER),
        (MISSING,),
        (EAST, WEST),
    )
    template = synth(layout.context())
    environment = read_poller(template).environment
    assert environment["WATCHED_ACCOUNTS"] == f"{OWN},{MEMBER},{MISSING}"
    watch(stack, OWN, MEMBER)
    arns = jobs_everywhere(stack, OWN, MEMBER)
    stack.invoke()  # the first run: its baseline is written in batches
    for arn in arns.values():
        stack.personalize.set_status(arn, "ACTIVE")
    stack.invoke()
    stack.full_read_due()
    stack.invoke()

    used = {ACTION_OF_OPERATION.get(call, call) for call in stack.calls}
    used.add("sts:AssumeRole")  # sent by the credential fetcher before the first list
    used.add("lambda:InvokeFunction")  # a catch-up run: driven in test_iam_usage
    granted = granted_actions(template, read_poller(template).handler)
    code_grants = {a for a in granted if not a.startswith(PLATFORM_PREFIXES)}
    assert used - granted == set(), "called without a grant"
    assert code_grants - used == set(), "granted but never called"


def test_member_accounts_share_data_files_and_a_pool_per_region(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An organization's hundreds of accounts each have a session: botocore's data files
    # (endpoints, the service model) are parsed once for all of them, and a region's
    # members list through one pool of connections. Each member parsing the files again
    # took seconds of CPU; a pool (and TLS context) per client took 0.65 MiB each in AWS.
    members = [f"{300000000000 + i:012d}" for i in range(5)]
    session = boto3.session.Session()
    sts_clients: list[str] = []
    session.events.register(
        "creating-client-class.sts", lambda event_name, **_: sts_clients.append(event_name)
    )
    clients = ScopeClients(OWN, "aws", ROLE, session)
    clients.personalize(members[0], EAST).list_batch_segment_jobs()
    own = clients.personalize(OWN, EAST)  # from the poller's own session, and its loader
    files_read: Counter[str] = Counter()
    read_file = JSONFileLoader.load_file

    def counted(self: JSONFileLoader, file_path: str, *args: Any) -> Any:
        files_read[file_path] += 1
        return read_file(self, file_path, *args)

    monkeypatch.setattr(JSONFileLoader, "load_file", counted)
    connections = stack.personalize.connections

    for member in members[1:]:
        for region in (EAST, WEST):
            clients.personalize(member, region).list_batch_segment_jobs()
    own.list_batch_segment_jobs()

    assert files_read == Counter()
    # Each AssumeRole has a client of its own, as botocore makes it, and so its own retry
    # budget: one client's would be spent by a few members' throttling, for all of them.
    assert len(sts_clients) == len(members)
    # The members' pool in EAST, kept alive; one more for WEST's; the own account's own.
    assert stack.personalize.connections == connections + 2
    listed = {scope for scope in stack.personalize.calls_by_scope if scope[0] in members}
    assert listed == {(members[0], EAST)} | {(m, r) for m in members[1:] for r in (EAST, WEST)}
