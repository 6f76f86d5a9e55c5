"""The pure heart of the poller: (snapshot, jobs) -> transitions. No I/O here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from poller.models import EventType, JobSummary, SnapshotItem, Transition

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_EPOCH = datetime.min.replace(tzinfo=UTC)
_WAITING = frozenset({"PENDING", "IN PROGRESS"})


def normalise_status(status: str | None) -> str:
    """Fold the spellings Personalize uses across resources into one form for classifying.

    "CREATE IN_PROGRESS", "in progress" and "IN PROGRESS" all become "IN PROGRESS".
    Only classification uses this; change detection compares the raw value.
    """
    if status is None:
        return ""
    folded = " ".join(status.upper().replace("_", " ").split())
    return folded.removeprefix("CREATE ")


def classify(status: str | None) -> EventType:
    normalised = normalise_status(status)
    if normalised == "ACTIVE":
        return EventType.JOB_SUCCEEDED
    if normalised.endswith("FAILED"):
        return EventType.JOB_FAILED
    return EventType.JOB_STATUS_CHANGED


def latest_per_job(jobs: Iterable[JobSummary]) -> dict[str, JobSummary]:
    """Index jobs by ARN, keeping the most recently updated one.

    A listing that shifts while it is paged can return a job twice. Jobs without an ARN
    cannot be tracked across polls and are left out; the caller reports them.
    """
    latest: dict[str, JobSummary] = {}
    for job in jobs:
        if job.arn is None:
            continue
        seen = latest.get(job.arn)
        if seen is None or (job.last_updated_time or _EPOCH) >= (seen.last_updated_time or _EPOCH):
            latest[job.arn] = job
    return latest


def diff(
    snapshot: Mapping[str, SnapshotItem],
    jobs: Iterable[JobSummary],
    now: datetime,
    stuck_after: timedelta,
) -> list[Transition]:
    """Transitions between the recorded snapshot and the jobs listed now.

    A job missing from the snapshot is new (previous status None); a job whose status
    differs, compared exactly as the API returned it, has moved. A job still PENDING or
    IN PROGRESS for longer than `stuck_after` since its last update is stuck, reported
    once per status. Jobs missing from the listing are not treated as gone.
    """
    transitions: list[Transition] = []
    for arn, job in latest_per_job(jobs).items():
        recorded = snapshot.get(arn)
        if recorded is None or recorded.status != job.status:
            previous = recorded.status if recorded is not None else None
            transitions.append(Transition(classify(job.status), job, previous))
        elif is_stuck(job, now, stuck_after) and recorded.stuck_status != job.status:
            transitions.append(Transition(EventType.JOB_STUCK, job, job.status))
    return transitions


def is_stuck(job: JobSummary, now: datetime, stuck_after: timedelta) -> bool:
    since = job.last_updated_time or job.creation_time
    if since is None or normalise_status(job.status) not in _WAITING:
        return False
    return now - since > stuck_after


def needs_check(job: JobSummary, watermark: datetime | None, margin: timedelta) -> bool:
    """Whether a poll between full reconciliations must compare this job with its record.

    A job last updated before the watermark (less a safety margin for clock skew and
    listing lag) was already seen in its current state by a poll that recorded everything.
    Jobs without a timestamp, and jobs still waiting (which may become stuck), always are.
    """
    if watermark is None or job.last_updated_time is None:
        return True
    if normalise_status(job.status) in _WAITING:
        return True
    return job.last_updated_time >= watermark - margin


def latest_update(jobs: Iterable[JobSummary]) -> datetime | None:
    times = [job.last_updated_time for job in jobs if job.last_updated_time is not None]
    return max(times, default=None)


def reconcile_due(now: datetime, period: timedelta, every: timedelta) -> bool:
    """True for the first poll of each `every` interval: that poll reads the whole snapshot.

    Stateless, so deciding it costs no write; a missed poll only delays it one interval.
    """
    step = every.total_seconds()
    return int(now.timestamp() // step) != int((now - period).timestamp() // step)
