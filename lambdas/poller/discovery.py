"""The member accounts, found by the poller itself: the instances of the StackSet that
deploys the member role (in an organization, to every account of some OUs and to those
that join them later), asked for at most every few minutes and cached in between.

Exactly the accounts that have the role, and nothing more to register; an account whose
instance failed is named with why, never dropped in silence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import DISCOVERY_CONFIG
from poller.errors import DiscoveryError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

logger = Logger(child=True)

# A warm poller asks again only after this long: an account joining an OU is watched within
# a few minutes of its instance, for one call per few minutes whatever the schedule.
CACHE_SECONDS = 5 * 60
PAGE_SIZE = 100  # ListStackInstances' largest page
# Detailed statuses of an instance whose stack failed or was never made: its role may be
# missing or old. (PENDING and RUNNING are an operation under way: an update leaves the
# role in place, and a joining account's role comes within minutes.)
FAILED_DETAILED_STATUSES = frozenset(
    {"FAILED", "CANCELLED", "INOPERABLE", "SKIPPED_SUSPENDED_ACCOUNT", "FAILED_IMPORT"}
)


@dataclass(frozen=True, slots=True)
class Members:
    """What the StackSet says of the member accounts."""

    usable: tuple[str, ...] = ()  # accounts with an instance in good standing, sorted
    unusable: Mapping[str, str] = field(default_factory=dict)  # account -> why not
    # Why this answer is older than it should be: the last call failed (None: fresh).
    stale: str | None = None


def instance_problem(summary: Mapping[str, Any]) -> str | None:
    """Why a StackInstanceSummary's account cannot be relied on; None when it can."""
    status = summary.get("Status")
    detailed = (summary.get("StackInstanceStatus") or {}).get("DetailedStatus")
    if status != "INOPERABLE" and detailed not in FAILED_DETAILED_STATUSES:
        return None
    reason = summary.get("StatusReason")
    told = f"its instance in {summary.get('Region', '?')} is {status}"
    told += f" ({detailed})" if detailed and detailed != status else ""
    return f"{told}: {reason}" if reason else told


def members_of(summaries: Iterable[Mapping[str, Any]]) -> Members:
    """Each account once: usable if any of its instances is (the role is global, so one
    good instance made it), else named with its instances' problems."""
    good: set[str] = set()
    problems: dict[str, list[str]] = {}
    for summary in summaries:
        account = summary.get("Account")
        if not account:
            continue
        problem = instance_problem(summary)
        if problem is None:
            good.add(account)
        else:
            problems.setdefault(account, []).append(problem)
    unusable = {
        account: "; ".join(sorted(why))
        for account, why in sorted(problems.items())
        if account not in good
    }
    return Members(tuple(sorted(good)), unusable)


def watched_accounts(
    own_account: str, listed: Sequence[str], members: Members, stack_set: str
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The accounts to poll, and those to name as unreachable with why.

    The poller's own account first, as ever (the StackSet never deploys to the account
    that administers it), then every usable member. With a list too, the list limits what
    is watched, and a listed account that is not an instance is named: its role is not
    there.
    """

    def wanted(account: str) -> bool:
        return not listed or account in listed

    usable = tuple(a for a in dict.fromkeys((own_account, *members.usable)) if wanted(a))
    unusable = {
        account: f"StackSet {stack_set}: {why}"
        for account, why in members.unusable.items()
        if wanted(account) and account != own_account
    }
    for account in listed:
        if account not in usable and account not in unusable:
            unusable[account] = (
                f"not an instance of StackSet {stack_set}: its member role is not deployed there"
            )
    return usable, unusable


class StackSetAccounts:
    """The StackSet's member accounts, cached in the container for CACHE_SECONDS.

    A failed call keeps the last good answer (marked stale) until one succeeds; with none,
    DiscoveryError: a run never watches fewer accounts than it should without failing.
    """

    def __init__(
        self,
        stack_set: str,
        call_as: str,
        client: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.stack_set = stack_set
        self.call_as = call_as
        self._client = client or boto3.client("cloudformation", config=DISCOVERY_CONFIG)
        self.clock = clock  # injectable: tests move it instead of waiting
        self._cache_seconds = cache_seconds
        self._answer: Members | None = None
        self._asked_at = 0.0

    def members(self) -> Members:
        now = self.clock()
        if self._answer is not None and now - self._asked_at < self._cache_seconds:
            return self._answer
        try:
            answer = members_of(self._summaries())
        except (BotoCoreError, ClientError) as err:
            why = (
                f"could not list the instances of StackSet {self.stack_set} "
                f"(as {self.call_as}): {err}"
            )
            if self._answer is None:
                raise DiscoveryError(f"{why}; no earlier answer to watch by") from err
            logger.warning("member accounts from an earlier answer", extra={"error": why})
            return replace(self._answer, stale=why)  # asked again next run
        self._answer, self._asked_at = answer, now
        if answer.unusable:
            logger.warning("member accounts not usable", extra={"accounts": answer.unusable})
        return answer

    def _summaries(self) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "StackSetName": self.stack_set,
            "CallAs": self.call_as,
            "MaxResults": PAGE_SIZE,
        }
        while True:
            page = self._client.list_stack_instances(**request)
            summaries += page.get("Summaries", [])
            token = page.get("NextToken")
            if not token:
                return summaries
            request["NextToken"] = token
