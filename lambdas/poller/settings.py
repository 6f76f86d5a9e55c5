"""The poller's environment, parsed once into a typed model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from job_events.arns import arn_part
from job_events.vocabulary import (
    ACCOUNT_ID_PATTERN,
    DEFAULT_MEMBER_ROLE_NAME,
    DEFAULT_PEOPLE_EVENT_TYPES,
    DEFAULT_STORM_THRESHOLD,
    DEFAULT_STUCK_AFTER_MINUTES,
    PERSONALIZE_REGIONS,
    PERSONALIZE_REGIONS_URL,
    REGION_PATTERN,
    ROLE_NAME_PATTERN,
    SOLUTION_VERSION_ARN_PATTERN,
    EventType,
)
from poller.errors import ConfigurationError
from poller.models import Scope

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

TABLE_ENV = "SNAPSHOT_TABLE_NAME"
TOPIC_ENV = "TOPIC_ARN"
SOLUTION_VERSIONS_ENV = "SOLUTION_VERSION_ARNS"
REGION_ENV = "AWS_REGION"
STUCK_AFTER_ENV = "STUCK_AFTER_MINUTES"
EVENT_BUS_ENV = "EVENT_BUS_NAME"
PEOPLE_TOPIC_ENV = "PEOPLE_TOPIC_ARN"
PEOPLE_EVENT_TYPES_ENV = "PEOPLE_EVENT_TYPES"
STORM_THRESHOLD_ENV = "STORM_THRESHOLD"
WATCHED_ACCOUNTS_ENV = "WATCHED_ACCOUNTS"
WATCHED_REGIONS_ENV = "WATCHED_REGIONS"
MEMBER_ROLE_ENV = "MEMBER_ROLE_NAME"
RUN_SECONDS_ENV = "RUN_SECONDS"
ALLOWED_REGIONS_ENV = "ALLOWED_REGIONS"
DISCOVER_STACK_SET_ENV = "DISCOVER_STACK_SET"
STACK_SET_CALL_AS_ENV = "STACK_SET_CALL_AS"
_SOLUTION_VERSION_ARN = re.compile(SOLUTION_VERSION_ARN_PATTERN)
_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN)
_REGION = re.compile(REGION_PATTERN)
_ROLE_NAME = re.compile(ROLE_NAME_PATTERN)
_TOPIC_ARN = re.compile(r"^arn:[a-z\d-]+:sns:[^:]+:\d{12}:[\w-]{1,256}$")


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    topic_arn: str
    region: str
    solution_version_arns: tuple[str, ...] = ()
    event_bus_name: str = "default"
    people_topic_arn: str | None = None
    people_event_types: frozenset[EventType] = frozenset(DEFAULT_PEOPLE_EVENT_TYPES)
    storm_threshold: int = DEFAULT_STORM_THRESHOLD
    stuck_after: timedelta = timedelta(minutes=DEFAULT_STUCK_AFTER_MINUTES)

    watched_accounts: tuple[str, ...] = ()  # none: only the poller's own account
    watched_regions: tuple[str, ...] = ()  # none: only the poller's own region
    member_role_name: str = DEFAULT_MEMBER_ROLE_NAME
    # A scheduled run's time, shorter than the period so runs do not overlap; the function's
    # timeout is longer, for catch-up runs. None: the function's timeout.
    run_seconds: int | None = None
    # Regions Amazon Personalize launched in after PERSONALIZE_REGIONS was written (the
    # stack's allowRegions): watched there too.
    allowed_regions: tuple[str, ...] = ()
    # The StackSet whose instances are the member accounts to watch (in an organization,
    # without a list); None: only `watched_accounts`. With both, the list limits it.
    discover_stack_set: str | None = None
    stack_set_call_as: str = "DELEGATED_ADMIN"  # ListStackInstances' CallAs

    def scopes(self, own_account: str, accounts: Sequence[str] | None = None) -> tuple[Scope, ...]:
        """Every watched (account, region), each whole or, with solution versions given,
        narrowed to the versions that live there. `accounts`: the accounts found by
        discovery, instead of the list."""
        if accounts is None:
            accounts = self.watched_accounts or (own_account,)
        regions = self.watched_regions or (self.region,)
        return tuple(
            scope
            for account in accounts
            for region in regions
            for scope in self._at(account, region)
        )

    def _at(self, account: str, region: str) -> list[Scope]:
        if not self.solution_version_arns:
            return [Scope(None, account, region)]
        return [
            Scope(arn, account, region)
            for arn in self.solution_version_arns
            if arn_part(arn, 4) in (None, account) and arn_part(arn, 3) in (None, region)
        ]

    def to_env(self) -> dict[str, str]:
        """The function's environment that from_env() reads back as these settings: the
        stack builds it here, so the names are written once. AWS_REGION is Lambda's own."""
        return {
            TABLE_ENV: self.table_name,
            TOPIC_ENV: self.topic_arn,
            SOLUTION_VERSIONS_ENV: ",".join(self.solution_version_arns),
            EVENT_BUS_ENV: self.event_bus_name,
            PEOPLE_TOPIC_ENV: self.people_topic_arn or "",
            PEOPLE_EVENT_TYPES_ENV: ",".join(t for t in EventType if t in self.people_event_types),
            STORM_THRESHOLD_ENV: str(self.storm_threshold),
            STUCK_AFTER_ENV: str(int(self.stuck_after.total_seconds() // 60)),
            WATCHED_ACCOUNTS_ENV: ",".join(self.watched_accounts),
            WATCHED_REGIONS_ENV: ",".join(self.watched_regions),
            MEMBER_ROLE_ENV: self.member_role_name,
            RUN_SECONDS_ENV: str(self.run_seconds or ""),
            ALLOWED_REGIONS_ENV: ",".join(self.allowed_regions),
            DISCOVER_STACK_SET_ENV: self.discover_stack_set or "",
            STACK_SET_CALL_AS_ENV: self.stack_set_call_as,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"environment variable {name} is not set")
            return value

        topic_arn = _topic(env, TOPIC_ENV) or required(TOPIC_ENV)
        # Each once: a version listed twice would be two scans racing for each claim.
        arns = tuple(
            dict.fromkeys(
                a.strip() for a in env.get(SOLUTION_VERSIONS_ENV, "").split(",") if a.strip()
            )
        )
        for arn in arns:
            if not _SOLUTION_VERSION_ARN.match(arn):
                raise ConfigurationError(
                    f"{SOLUTION_VERSIONS_ENV} holds {arn!r}, which is not a solution version ARN"
                )
        return cls(
            table_name=required(TABLE_ENV),
            topic_arn=topic_arn,
            region=required(REGION_ENV),
            solution_version_arns=arns,
            event_bus_name=env.get(EVENT_BUS_ENV, "").strip() or "default",
            people_topic_arn=_topic(env, PEOPLE_TOPIC_ENV),
            people_event_types=_event_types(env),
            storm_threshold=_count(env, STORM_THRESHOLD_ENV, DEFAULT_STORM_THRESHOLD),
            stuck_after=_minutes(env, STUCK_AFTER_ENV, DEFAULT_STUCK_AFTER_MINUTES),
            watched_accounts=_listed(env, WATCHED_ACCOUNTS_ENV, _ACCOUNT, "an account ID"),
            watched_regions=_listed(env, WATCHED_REGIONS_ENV, _REGION, "a region"),
            run_seconds=_count(env, RUN_SECONDS_ENV, 0) or None,
            allowed_regions=_listed(env, ALLOWED_REGIONS_ENV, _REGION, "a region"),
            discover_stack_set=env.get(DISCOVER_STACK_SET_ENV, "").strip() or None,
            stack_set_call_as=_call_as(env),
            member_role_name=next(
                iter(_listed(env, MEMBER_ROLE_ENV, _ROLE_NAME, "a role name")),
                DEFAULT_MEMBER_ROLE_NAME,
            ),
        )


def _listed(
    env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str
) -> tuple[str, ...]:
    values = tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
    for value in values:
        if not pattern.match(value):
            raise ConfigurationError(f"{name} holds {value!r}, which is not {what}")
    return tuple(dict.fromkeys(values))


def _call_as(env: Mapping[str, str]) -> str:
    value = env.get(STACK_SET_CALL_AS_ENV, "").strip() or "DELEGATED_ADMIN"
    if value not in ("DELEGATED_ADMIN", "SELF"):
        raise ConfigurationError(f"{STACK_SET_CALL_AS_ENV} must be DELEGATED_ADMIN or SELF")
    return value


def _minutes(env: Mapping[str, str], name: str, default: int) -> timedelta:
    raw = env.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{name} must be a whole number of minutes >= 1, got {raw!r}")
    return timedelta(minutes=int(raw))


def _topic(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if value and not _TOPIC_ARN.match(value):
        raise ConfigurationError(f"{name} is not an SNS topic ARN: {value!r}")
    return value or None


def _event_types(env: Mapping[str, str]) -> frozenset[EventType]:
    raw = env.get(PEOPLE_EVENT_TYPES_ENV, "").strip()
    if not raw:
        return frozenset(DEFAULT_PEOPLE_EVENT_TYPES)
    try:
        return frozenset(EventType(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as err:
        raise ConfigurationError(f"{PEOPLE_EVENT_TYPES_ENV}: {err}") from err


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    if not raw.isdigit():
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def check_scopes(scopes: Sequence[Scope], extra_regions: Collection[str] = ()) -> tuple[Scope, ...]:
    """The scopes a run polls, when they can be polled as meant; else ConfigurationError,
    naming why: no scope at all (every solution version lies outside the watched accounts
    and regions), a scope listed twice (its scans would race each other for every claim),
    or a region without Amazon Personalize (not in PERSONALIZE_REGIONS, nor in
    `extra_regions`: regions it launched in since, the stack's `allowRegions`)."""
    if not scopes:
        raise ConfigurationError(
            f"no scope to poll: every solution version in {SOLUTION_VERSIONS_ENV} is outside "
            f"the watched accounts and regions"
        )
    repeated = sorted({scope.key for scope in scopes if scopes.count(scope) > 1})
    if repeated:
        raise ConfigurationError(f"scopes listed more than once: {', '.join(repeated)}")
    allowed = {*PERSONALIZE_REGIONS, *extra_regions}
    missing = sorted({s.region for s in scopes if s.region and s.region not in allowed})
    if missing:
        raise ConfigurationError(
            f"Amazon Personalize is not in {', '.join(missing)} (its regions: "
            f"{PERSONALIZE_REGIONS_URL}); if it has launched there since, add "
            f"{'them' if len(missing) > 1 else 'it'} to the stack's allowRegions"
        )
    return tuple(scopes)
