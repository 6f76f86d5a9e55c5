"""JobEvent and JobDigest: the typed forms of the documented event JSON (docs/events.md).

Each serializes itself to exactly the documented document, and parses it back, so both
functions read the contract through one type rather than by string keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from job_events.arns import name_from_arn
from job_events.vocabulary import ABSENT, DIGEST_EVENT_TYPE, OUTCOME, SCHEMA_VERSION, EventType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def utc(value: datetime) -> datetime:
    # botocore returns timestamps in the machine's local zone; naive ones are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def compact_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def span_text(start: datetime | None, end: datetime | None) -> str | None:
    """'1h 02m 03s' or '4m 05s' from start to end; None if either is unknown or reversed."""
    if start is None or end is None:
        return None
    seconds = int((utc(end) - utc(start)).total_seconds())
    if seconds < 0:
        return None
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def truncate(text: str, limit: int | None) -> str:
    """Cut text to at most about `limit` characters, saying so at the end."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... truncated: first {limit} of {len(text)} characters shown]"


# Field names of the event JSON, in the documented order, by attribute.
_KEYS = {
    "schema_version": "schemaVersion",
    "event_type": "eventType",
    "batch_segment_job_arn": "batchSegmentJobArn",
    "job_name": "jobName",
    "solution_version_arn": "solutionVersionArn",
    "previous_status": "previousStatus",
    "status": "status",
    "failure_reason": "failureReason",
    "creation_date_time": "creationDateTime",
    "last_updated_date_time": "lastUpdatedDateTime",
    "region": "region",
    "account_id": "accountId",
    "console_url": "consoleUrl",
    "detected_at": "detectedAt",
    "job_input": "jobInput",
    "job_output": "jobOutput",
    "filter_arn": "filterArn",
    "num_results": "numResults",
    "role_arn": "roleArn",
}
_TIMES = frozenset({"creation_date_time", "last_updated_date_time", "detected_at"})


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One announcement of one job: what every channel renders in its own format."""

    schema_version: str
    event_type: EventType
    batch_segment_job_arn: str | None
    job_name: str | None
    solution_version_arn: str | None
    previous_status: str | None
    status: str | None
    failure_reason: str | None
    creation_date_time: datetime | None
    last_updated_date_time: datetime | None
    region: str
    account_id: str | None
    console_url: str
    detected_at: datetime
    job_input: str | None = None
    job_output: str | None = None
    filter_arn: str | None = None
    num_results: int | None = None
    role_arn: str | None = None

    def to_document(self) -> dict[str, Any]:
        """The event JSON as docs/events.md defines it, keys in the documented order."""
        return {
            key: _iso(getattr(self, name)) if name in _TIMES else getattr(self, name)
            for name, key in _KEYS.items()
        }

    def to_json(self) -> str:
        return compact_json(self.to_document())

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> JobEvent:
        """Parse the event JSON; ValueError if it is not one (e.g. a digest)."""
        values: dict[str, Any] = {name: document.get(key) for name, key in _KEYS.items()}
        for name in _TIMES:
            values[name] = _time(values[name])
        values["event_type"] = EventType(str(document.get("eventType")))
        if values["detected_at"] is None or not isinstance(values["region"], str):
            raise ValueError("an event needs its region and detectedAt")
        values["schema_version"] = values["schema_version"] or SCHEMA_VERSION
        return cls(**values)

    @property
    def name(self) -> str:
        """What people call the job: its name, else the last part of its ARN."""
        return self.job_name or name_from_arn(self.batch_segment_job_arn) or "unnamed job"

    @property
    def outcome(self) -> str | None:
        return OUTCOME.get(self.event_type)

    @property
    def finished(self) -> bool:
        return self.event_type in (EventType.JOB_SUCCEEDED, EventType.JOB_FAILED)

    @property
    def ran_for(self) -> str | None:
        """How long a job ran: creation to its last update."""
        return span_text(self.creation_date_time, self.last_updated_date_time)

    @property
    def waited_for(self) -> str | None:
        """How long a job has waited in its status, up to when it was detected."""
        return span_text(self.last_updated_date_time or self.creation_date_time, self.detected_at)

    @property
    def timing(self) -> str | None:
        """'waiting …' for a stuck job, 'ran …' for a finished one."""
        if self.event_type is EventType.JOB_STUCK:
            return f"waiting {self.waited_for}" if self.waited_for else None
        if self.finished:
            return f"ran {self.ran_for}" if self.ran_for else None
        return None

    def with_reason_limit(self, limit: int | None) -> JobEvent:
        if self.failure_reason is None:
            return self
        return replace(self, failure_reason=truncate(self.failure_reason, limit))


@dataclass(frozen=True, slots=True)
class DigestedJob:
    """A job as a digest lists it."""

    event_type: str
    batch_segment_job_arn: str | None
    job_name: str | None
    previous_status: str | None
    status: str | None

    @property
    def name(self) -> str:
        return self.job_name or self.batch_segment_job_arn or "unnamed job"


_JOB_KEYS = {
    "event_type": "eventType",
    "batch_segment_job_arn": "batchSegmentJobArn",
    "job_name": "jobName",
    "previous_status": "previousStatus",
    "status": "status",
}


@dataclass(frozen=True, slots=True)
class JobDigest:
    """Many announcements of one poll in one message for people (a storm), all of one
    scope: the poller digests each account and region apart."""

    count: int
    counts: dict[str, int]
    region: str  # the jobs' region; ABSENT should they span several
    detected_at: datetime
    jobs: tuple[DigestedJob, ...]  # the first `len(jobs)` of `count`
    schema_version: str = SCHEMA_VERSION
    account_id: str | None = None  # the jobs' account; None if unknown or several

    @classmethod
    def of(cls, events: Sequence[JobEvent], listed: int) -> JobDigest:
        counts: dict[str, int] = {}
        for event in events:
            counts[event.event_type.value] = counts.get(event.event_type.value, 0) + 1
        accounts = {event.account_id for event in events}
        regions = {event.region for event in events}
        return cls(
            count=len(events),
            counts=counts,
            region=regions.pop() if len(regions) == 1 else ABSENT,
            detected_at=events[0].detected_at,
            jobs=tuple(
                DigestedJob(
                    e.event_type.value,
                    e.batch_segment_job_arn,
                    e.job_name,
                    e.previous_status,
                    e.status,
                )
                for e in events[:listed]
            ),
            account_id=accounts.pop() if len(accounts) == 1 else None,
        )

    @property
    def truncated(self) -> int:
        return self.count - len(self.jobs)

    @property
    def tally(self) -> str:
        """'480 FAILED, 20 SUCCEEDED': the count of each event type."""
        return ", ".join(f"{n} {t.removeprefix('JOB_')}" for t, n in sorted(self.counts.items()))

    @property
    def event_types(self) -> list[str]:
        """The event types of its jobs (listed or not), sorted."""
        return sorted(self.counts)

    @property
    def scope(self) -> str | None:
        """'111122223333/us-east-1': what its jobs share of account and region, for people;
        None if they share neither."""
        region = self.region if self.region != ABSENT else None
        return "/".join(part for part in (self.account_id, region) if part) or None

    def to_document(self) -> dict[str, Any]:
        return {
            "schemaVersion": self.schema_version,
            "eventType": DIGEST_EVENT_TYPE,
            "count": self.count,
            "counts": self.counts,
            "region": self.region,
            "accountId": self.account_id,
            "detectedAt": _iso(self.detected_at),
            "jobs": [
                {key: getattr(job, name) for name, key in _JOB_KEYS.items()} for job in self.jobs
            ],
            "truncated": self.truncated,
        }

    def to_json(self) -> str:
        return compact_json(self.to_document())

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> JobDigest:
        if document.get("eventType") != DIGEST_EVENT_TYPE:
            raise ValueError("not a digest")
        detected_at = _time(document.get("detectedAt"))
        if detected_at is None:
            raise ValueError("a digest needs its detectedAt")
        account_id = document.get("accountId")  # absent before digests named their scope
        return cls(
            count=int(document["count"]),
            counts={str(k): int(v) for k, v in dict(document.get("counts", {})).items()},
            region=str(document.get("region", "")),
            detected_at=detected_at,
            jobs=tuple(
                DigestedJob(**{name: job.get(key) for name, key in _JOB_KEYS.items()})
                for job in document.get("jobs", [])
            ),
            schema_version=str(document.get("schemaVersion", SCHEMA_VERSION)),
            account_id=str(account_id) if account_id is not None else None,
        )


def parse(document: Mapping[str, Any]) -> JobEvent | JobDigest:
    """An event or a digest, by its eventType."""
    if document.get("eventType") == DIGEST_EVENT_TYPE:
        return JobDigest.from_document(document)
    return JobEvent.from_document(document)
