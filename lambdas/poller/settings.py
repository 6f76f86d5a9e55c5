"""The poller's environment, parsed once into a typed model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from poller.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

TABLE_ENV = "SNAPSHOT_TABLE_NAME"
TOPIC_ENV = "TOPIC_ARN"
SOLUTION_VERSIONS_ENV = "SOLUTION_VERSION_ARNS"
REGION_ENV = "AWS_REGION"
STUCK_AFTER_ENV = "STUCK_AFTER_MINUTES"
DEFAULT_STUCK_AFTER_MINUTES = 360
EVENT_BUS_ENV = "EVENT_BUS_NAME"
SCHEDULE_ENV = "SCHEDULE_MINUTES"
DEFAULT_SCHEDULE_MINUTES = 5

_SOLUTION_VERSION_ARN = re.compile(r"^arn:[a-z\d-]+:personalize:[^:]*:[^:]*:solution/.+$")
_TOPIC_ARN = re.compile(r"^arn:[a-z\d-]+:sns:[^:]+:\d{12}:[\w-]{1,256}$")


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    topic_arn: str
    region: str
    solution_version_arns: tuple[str, ...] = ()
    event_bus_name: str = "default"
    stuck_after: timedelta = timedelta(minutes=DEFAULT_STUCK_AFTER_MINUTES)
    schedule_period: timedelta = timedelta(minutes=DEFAULT_SCHEDULE_MINUTES)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"environment variable {name} is not set")
            return value

        topic_arn = required(TOPIC_ENV)
        if not _TOPIC_ARN.match(topic_arn):
            raise ConfigurationError(f"{TOPIC_ENV} is not an SNS topic ARN: {topic_arn!r}")
        arns = tuple(a.strip() for a in env.get(SOLUTION_VERSIONS_ENV, "").split(",") if a.strip())
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
            stuck_after=_minutes(env, STUCK_AFTER_ENV, DEFAULT_STUCK_AFTER_MINUTES),
            schedule_period=_minutes(env, SCHEDULE_ENV, DEFAULT_SCHEDULE_MINUTES),
        )


def _minutes(env: Mapping[str, str], name: str, default: int) -> timedelta:
    raw = env.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{name} must be a whole number of minutes >= 1, got {raw!r}")
    return timedelta(minutes=int(raw))
