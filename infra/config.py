"""The stack's configuration: typed, validated in one place, read from CDK context.

The settings live in settings.toml, which app.py reads (`read_settings`) as the context's
defaults; `cdk synth|deploy -c name=value` overrides one for one run. A bad value, an
unknown name, or a combination that cannot work fails synth with a message that names it.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_cdk import aws_logs as logs

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

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

STACK_NAME = "PersonalizeSegmentJobNotifier"
LAMBDA_MAX_TIMEOUT_SECONDS = 900
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_SOLUTION_VERSION_ARN = re.compile(SOLUTION_VERSION_ARN_PATTERN)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EVENT_TYPES = tuple(t.value for t in EventType)
PEOPLE_EVENT_TYPES = tuple(t.value for t in DEFAULT_PEOPLE_EVENT_TYPES)
_SLACK_WORKSPACE = re.compile(r"^[0-9A-Z]{1,255}$")
_EVENT_BUS = re.compile(r"^[\w.\-/]{1,256}$")
_SECRET_NAME = re.compile(r"^[\w/+=.@-]{1,512}$")
_SLACK_CHANNEL = re.compile(r"^[A-Za-z0-9]{1,255}$")
# Region names: us-east-1, eu-central-2, us-gov-west-1, ... (as the poller validates them)
_REGION = re.compile(REGION_PATTERN)
_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN)
_ROLE_NAME = re.compile(ROLE_NAME_PATTERN)
# DeploymentTargets.OrganizationalUnitIds takes OU IDs and the organization root's ID.
_ORGANIZATIONAL_UNIT = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
# Who creates the StackSet: a delegated administrator of CloudFormation StackSets, or the
# organization's management account itself.
STACK_SET_CALLERS = ("DELEGATED_ADMIN", "SELF")
# Without OUs, the poller's role names each listed account's member role in an inline policy.
# IAM allows a role 10,240 characters of inline policy in all; its other statements take
# under 2,500 of them. (With OUs it names the role once, for every account: no such cap.)
MEMBER_ROLE_ARNS_BUDGET = 7_500
# With OUs, `accounts` only limits what is watched, and reaches the poller as WATCHED_ACCOUNTS:
# Lambda allows a function 4 KB of environment variables in all, 13 characters an account.
MAX_LISTED_ACCOUNTS_WITH_OUS = 100
_LONGEST_ROLE_ARN_PREFIX = len('"arn:aws-us-gov:iam::123456789012:role/",')
# The poller's memory, from `make bench` (docs/benchmarks.md): about 70 MiB, 0.3 MiB more
# per watched account and region (each has its clients), and up to 130 MiB more for 50,000
# jobs. 512 MB holds SCOPES_IN_512_MB scopes and that many jobs with room to spare,
# 1,024 MB about 2,800 scopes; CPU grows with memory too. With OUs the accounts are found
# at run time, so an organization gets the larger size.
POLLER_MB = 512
LARGE_POLLER_MB = 1024
SCOPES_IN_512_MB = 600
MAX_LAMBDA_MB = 10_240
# The retention periods CloudWatch Logs accepts, by day count.
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
}


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the value."""


def _as_list(name: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(item.strip() for item in raw if item.strip())
    raise ConfigError(
        f"{name}: expected a comma-separated string or a list of strings, got {raw!r}"
    )


def _as_int(name: str, raw: Any, default: int, low: int, high: int) -> int:
    value = _as_optional_int(name, raw, low, high)
    return default if value is None else value


def _as_optional_int(name: str, raw: Any, low: int, high: int) -> int | None:
    if raw is None:
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _as_bool(name: str, raw: Any, default: bool) -> bool:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _event_types(name: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return PEOPLE_EVENT_TYPES
    types = _as_list(name, raw)
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown or not types:
        raise ConfigError(f"{name}: expected some of {', '.join(EVENT_TYPES)}, got {raw!r}")
    return types


def _emails(name: str, raw: Any) -> tuple[str, ...]:
    emails = _as_list(name, raw)
    for email in emails:
        if not _EMAIL.match(email):
            raise ConfigError(f"{name}: {email!r} is not an email address")
    return emails


def _matching(name: str, raw: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """A list whose every value matches; duplicates are dropped, the order kept."""
    values = tuple(dict.fromkeys(_as_list(name, raw)))
    for value in values:
        if not pattern.match(value):
            raise ConfigError(f"{name}: {value!r} is not {what}")
    return values


def _optional_match(name: str, raw: Any, pattern: re.Pattern[str], what: str) -> str | None:
    if raw is None:
        return None
    if not pattern.match(str(raw)):
        raise ConfigError(f"{name}: {raw!r} is not {what}")
    return str(raw)


def _one_of(name: str, raw: Any, allowed: tuple[str, ...], default: str) -> str:
    value = default if raw is None else str(raw).strip().upper()
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}, got {raw!r}")
    return value


def _slack_channel(get: Any) -> tuple[str | None, str | None]:
    workspace = _optional_match(
        "slackWorkspaceId", get("slackWorkspaceId"), _SLACK_WORKSPACE, "a workspace ID"
    )
    channel = _optional_match(
        "slackChannelId", get("slackChannelId"), _SLACK_CHANNEL, "a channel ID"
    )
    if (workspace is None) != (channel is None):
        raise ConfigError("slackWorkspaceId and slackChannelId: give both or neither")
    return workspace, channel


def _scopes(get: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The accounts and regions to watch; none given: the stack's own."""
    accounts = _matching("accounts", get("accounts"), _ACCOUNT, "a 12-digit account ID")
    regions = _matching("regions", get("regions"), _REGION, "a region name")
    return accounts, regions


def _role_name(raw: Any) -> str:
    return (
        _optional_match("memberRoleName", raw, _ROLE_NAME, "an IAM role name")
        or DEFAULT_MEMBER_ROLE_NAME
    )


def max_accounts(role_name: str) -> int:
    """How many accounts' member roles fit in the poller role's inline policy."""
    return MEMBER_ROLE_ARNS_BUDGET // (_LONGEST_ROLE_ARN_PREFIX + len(role_name))


def _member_role_name(get: Any, accounts: tuple[str, ...], organization: bool) -> str:
    role_name = _role_name(get("memberRoleName"))
    if organization:
        if len(accounts) > MAX_LISTED_ACCOUNTS_WITH_OUS:
            raise ConfigError(
                f"accounts: with memberOrganizationalUnits the poller finds the accounts itself "
                f"and the list only limits them; it reaches the poller in its environment, "
                f"which Lambda limits to 4 KB: at most {MAX_LISTED_ACCOUNTS_WITH_OUS} accounts, "
                f"got {len(accounts)} (leave accounts out to watch every account of the OUs)"
            )
    elif len(accounts) > max_accounts(role_name):
        raise ConfigError(
            f"accounts: the poller's role names each account's member role, and IAM limits a "
            f"role's inline policies to 10,240 characters: at most {max_accounts(role_name)} "
            f"accounts with a memberRoleName of {len(role_name)} characters, got {len(accounts)}"
        )
    return role_name


def _retention(raw: Any) -> logs.RetentionDays:
    days = _as_int("logRetentionDays", raw, 30, 1, 1827)
    if days not in _RETENTION:
        allowed = ", ".join(map(str, _RETENTION))
        raise ConfigError(f"logRetentionDays: must be one of {allowed}, got {days}")
    return _RETENTION[days]


@dataclass(frozen=True)
class NotifierConfig:
    schedule_minutes: int = 5
    notify_emails: tuple[str, ...] = ()
    alarm_emails: tuple[str, ...] = ()
    solution_version_arns: tuple[str, ...] = ()
    log_level: str = "INFO"
    tracing: bool = True
    powertools_layer_version: int = 27
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    stuck_after_minutes: int = DEFAULT_STUCK_AFTER_MINUTES
    email_event_types: tuple[str, ...] = PEOPLE_EVENT_TYPES
    slack_event_types: tuple[str, ...] = PEOPLE_EVENT_TYPES
    storm_threshold: int = DEFAULT_STORM_THRESHOLD
    slack_workspace_id: str | None = None
    slack_channel_id: str | None = None
    event_bus_name: str = "default"
    slack_webhook_secret_name: str | None = None
    # None: the poller draws on the account's unreserved concurrency.
    reserved_concurrency: int | None = None
    # None: sized from the scopes watched (`poller_memory`).
    poller_memory_mb: int | None = None
    # The watched scopes are every (account, region) pair; none given: the stack's own.
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    member_role_name: str = DEFAULT_MEMBER_ROLE_NAME
    # With OUs, a service-managed StackSet creates the member role in their accounts, and the
    # poller watches every account that has it (its instances): see `discovers_accounts`.
    member_organizational_units: tuple[str, ...] = ()
    stack_set_call_as: str = "DELEGATED_ADMIN"
    # Regions accepted beyond PERSONALIZE_REGIONS: Amazon Personalize launched there since.
    allow_regions: tuple[str, ...] = ()

    @property
    def discovers_accounts(self) -> bool:
        """Organization mode: the poller finds the member accounts at run time, from the
        member StackSet's instances; `accounts`, if given, limits them."""
        return bool(self.member_organizational_units)

    @property
    def watches_other_accounts(self) -> bool:
        """The poller assumes member roles: its role has the name they trust."""
        return bool(self.accounts) or self.discovers_accounts

    @property
    def poller_memory(self) -> int:
        """The poller's memory in MB: as set, else enough for the scopes watched."""
        if self.poller_memory_mb is not None:
            return self.poller_memory_mb
        listed_scopes = max(1, len(self.accounts)) * max(1, len(self.regions))
        if self.discovers_accounts or listed_scopes > SCOPES_IN_512_MB:
            return LARGE_POLLER_MB
        return POLLER_MB

    @property
    def people_event_types(self) -> tuple[str, ...]:
        """What the people topic carries: whatever emails or Slack asked for."""
        wanted = set(self.email_event_types) | set(self.slack_event_types)
        return tuple(t for t in EVENT_TYPES if t in wanted)

    @property
    def run_seconds(self) -> int:
        """A scheduled run's time: shorter than the schedule period, so one run ends before
        the next starts. (The function's timeout is Lambda's longest, for catch-up runs.)"""
        return min(LAMBDA_MAX_TIMEOUT_SECONDS, int(self.schedule_minutes * 60 * 0.8))

    @classmethod
    def from_context(cls, get: Any) -> NotifierConfig:
        """Build from a context lookup such as `app.node.try_get_context`."""
        emails = _emails("notifyEmails", get("notifyEmails"))
        alarm_emails = (
            _emails("alarmEmails", get("alarmEmails")) if get("alarmEmails") is not None else emails
        )
        slack_workspace, slack_channel = _slack_channel(get)
        accounts, regions = _scopes(get)
        organizational_units = _matching(
            "memberOrganizationalUnits",
            get("memberOrganizationalUnits"),
            _ORGANIZATIONAL_UNIT,
            "an organizational unit ID (ou-...) or root ID (r-...)",
        )
        webhook_secret = _optional_match(
            "slackWebhookSecretName", get("slackWebhookSecretName"), _SECRET_NAME, "a secret name"
        )
        return cls(
            reserved_concurrency=_as_optional_int(
                "reservedConcurrency", get("reservedConcurrency"), 1, 10_000
            ),
            poller_memory_mb=_as_optional_int(
                "pollerMemoryMB", get("pollerMemoryMB"), POLLER_MB, MAX_LAMBDA_MB
            ),
            slack_webhook_secret_name=webhook_secret or None,
            event_bus_name=_optional_match(
                "eventBusName", get("eventBusName") or None, _EVENT_BUS, "an event bus name"
            )
            or "default",
            email_event_types=_event_types("emailEventTypes", get("emailEventTypes")),
            slack_event_types=_event_types("slackEventTypes", get("slackEventTypes")),
            storm_threshold=_as_int(
                "stormThreshold", get("stormThreshold"), DEFAULT_STORM_THRESHOLD, 1, 10_000
            ),
            slack_workspace_id=slack_workspace,
            slack_channel_id=slack_channel,
            schedule_minutes=_as_int("scheduleMinutes", get("scheduleMinutes"), 5, 1, 1440),
            notify_emails=emails,
            alarm_emails=alarm_emails,
            solution_version_arns=_solution_version_arns(get("solutionVersionArns")),
            log_level=_one_of("logLevel", get("logLevel") or None, _LOG_LEVELS, "INFO"),
            tracing=_as_bool("tracing", get("tracing"), True),
            powertools_layer_version=_as_int(
                "powertoolsLayerVersion", get("powertoolsLayerVersion"), 27, 1, 10_000
            ),
            log_retention=_retention(get("logRetentionDays")),
            stuck_after_minutes=_as_int(
                "stuckAfterMinutes",
                get("stuckAfterMinutes"),
                DEFAULT_STUCK_AFTER_MINUTES,
                10,
                7 * 24 * 60,
            ),
            accounts=accounts,
            regions=regions,
            member_role_name=_member_role_name(get, accounts, bool(organizational_units)),
            member_organizational_units=organizational_units,
            stack_set_call_as=_one_of(
                "stackSetCallAs", get("stackSetCallAs"), STACK_SET_CALLERS, "DELEGATED_ADMIN"
            ),
            allow_regions=_matching("allowRegions", get("allowRegions"), _REGION, "a region name"),
        )


@dataclass(frozen=True)
class MemberConfig:
    """The member stack's configuration: whose poller its role trusts, and its name."""

    # The account the notifier (its poller) runs in; required to synthesize the member stack.
    central_account: str | None = None
    role_name: str = DEFAULT_MEMBER_ROLE_NAME

    @classmethod
    def from_context(cls, get: Any) -> MemberConfig:
        return cls(
            central_account=_optional_match(
                "centralAccount", get("centralAccount"), _ACCOUNT, "a 12-digit account ID"
            ),
            role_name=_role_name(get("memberRoleName")),
        )


def _solution_version_arns(raw: Any) -> tuple[str, ...]:
    """Each once: a version listed twice means the same as once (the poller would otherwise
    scan it twice, each scan racing the other for every claim)."""
    arns = tuple(dict.fromkeys(_as_list("solutionVersionArns", raw)))
    for arn in arns:
        if not _SOLUTION_VERSION_ARN.match(arn):
            raise ConfigError(f"solutionVersionArns: {arn!r} is not a solution version ARN")
    return arns


# Context keys that are the CDK's own, never ours: feature flags (`@aws-cdk/...`), the CLI's
# and the library's settings (`aws:cdk:...`, `aws-cdk:...`, `cdk-...`, `cli-telemetry`),
# cached lookups (`availability-zones:account=...:region=...`), `acknowledged-issue-numbers`.
# Every key of ours is one camelCase word, so none of these ever shadows a typo of ours.
_CDK_KEY_PREFIXES = ("@", "aws:", "aws-cdk", "cdk", "cli-")
_CDK_KEYS = frozenset({"acknowledged-issue-numbers"})


def is_cdk_key(key: str) -> bool:
    """Whether a context key belongs to the CDK (left alone), rather than to this app."""
    return key.startswith(_CDK_KEY_PREFIXES) or ":" in key or "/" in key or key in _CDK_KEYS


@cache
def known_settings() -> frozenset[str]:
    """Every setting the app reads: the configurations ask for each of their keys, given or
    not, so recording what they ask for lists them all (and a new setting joins by itself)."""
    names: set[str] = set()

    def record(name: str) -> None:
        names.add(name)

    NotifierConfig.from_context(record)
    MemberConfig.from_context(record)
    return frozenset(names)


def _fold(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


def _unknown(key: str) -> str:
    """`key` is no setting: say so, naming the nearest setting if one is near."""
    known = {_fold(name): name for name in known_settings()}
    nearest = difflib.get_close_matches(_fold(key), known, n=1, cutoff=0.6)
    if nearest:
        return f"{key}: no such setting (did you mean {known[nearest[0]]}?)"
    return f"{key}: no such setting (README.md, Configuration, lists them)"


def check_keys(keys: Iterable[str]) -> None:
    """Refuse context keys that are neither a setting nor the CDK's own: a mistyped name
    would otherwise be ignored, and its setting left at its default."""
    unknown = [key for key in keys if key not in known_settings() and not is_cdk_key(key)]
    if unknown:
        raise ConfigError("; ".join(_unknown(key) for key in unknown))


# What a settings file's value may be: what `-c` could give (a string), or its typed form.
_SETTING_TYPES = (str, int, float, bool)


def read_settings(path: Path) -> dict[str, Any]:
    """The settings a TOML file gives, by their context names; every name must be a setting.

    Raises ConfigError naming the file, and the key at fault.
    """
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path.name}: {err}") from None
    problems = [
        _misplaced(key, value) for key, value in settings.items() if key not in known_settings()
    ]
    problems += [
        f"{key}: expected a string, a number, true or false, or a list of strings, got {value!r}"
        for key, value in settings.items()
        if key in known_settings() and not _plain(value)
    ]
    if problems:
        raise ConfigError(f"{path.name}: " + "; ".join(problems))
    return settings


def _misplaced(key: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"[{key}]: a table, but settings are top-level `name = value` lines"
    if is_cdk_key(key):
        return f"{key}: a CDK setting, which belongs in cdk.json's context"
    return _unknown(key)


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    return isinstance(value, _SETTING_TYPES)


@dataclass(frozen=True)
class Home:
    """Where the notifier stack deploys, as far as synth knows it. The stack is
    environment-agnostic: it deploys to the account and region of the CDK CLI's credentials,
    which the CLI passes to the app as CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION."""

    account: str | None = None
    region: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Home:
        account = environ.get("CDK_DEFAULT_ACCOUNT", "")
        region = environ.get("CDK_DEFAULT_REGION", "")
        return cls(
            account=account if _ACCOUNT.match(account) else None,
            region=region if _REGION.match(region) else None,
        )


def check_watchable(config: NotifierConfig, home: Home | None = None) -> None:
    """Refuse what the poller could not watch: a region without Amazon Personalize, a
    solution version outside the watched accounts and regions. Without `home`, what the
    settings alone decide; with it, the stack's own account and region (watched when
    `accounts` or `regions` is not given) too.
    """
    home = home or Home()
    _check_regions(config, home)
    _check_solution_versions(config, home)


def _check_regions(config: NotifierConfig, home: Home) -> None:
    allowed = {*PERSONALIZE_REGIONS, *config.allow_regions}
    where = f"(its regions: {PERSONALIZE_REGIONS_URL})"
    if config.regions:
        missing = [region for region in config.regions if region not in allowed]
        if missing:
            raise ConfigError(
                f"regions: Amazon Personalize is not in {', '.join(missing)} {where}; if it "
                f"has launched there since, add {'them' if len(missing) > 1 else 'it'} to "
                f"allowRegions"
            )
    elif home.region and home.region not in allowed:
        raise ConfigError(
            f"regions: not given, so the stack watches its own region, {home.region}, where "
            f"Amazon Personalize is not {where}; list the regions to watch in regions, or if "
            f"Personalize has launched in {home.region} since, add it to allowRegions"
        )


def _check_solution_versions(config: NotifierConfig, home: Home) -> None:
    accounts = config.accounts or ((home.account,) if home.account else ())
    regions = config.regions or ((home.region,) if home.region else ())
    outside = [
        arn
        for arn in config.solution_version_arns
        if not _within(arn_part(arn, 4), accounts) or not _within(arn_part(arn, 3), regions)
    ]
    if outside:
        raise ConfigError(
            f"solutionVersionArns: outside the watched accounts "
            f"({_watched(config.accounts, home.account)}) and regions "
            f"({_watched(config.regions, home.region)}), so never polled: {', '.join(outside)}"
        )


def _within(part: str | None, watched: tuple[str, ...]) -> bool:
    """An ARN's account or region is watched: it is, or either is not known (the poller
    matches an ARN without one in every scope)."""
    return part is None or not watched or part in watched


def _watched(given: tuple[str, ...], own: str | None) -> str:
    if given:
        return ", ".join(given)
    return f"this stack's, {own}" if own else "this stack's"
