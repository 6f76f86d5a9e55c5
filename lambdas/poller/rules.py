"""The pure rules of the poller: how a listed job compares with its record. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from job_events.vocabulary import EventType
from poller.models import JobSummary, Record, Transition

if TYPE_CHECKING:
    from collections.abc import Iterable

    from poller.models import ScopeState

_EPOCH = datetime.min.replace(tzinfo=UTC)
_WAITING = frozenset({"PENDING", "IN PROGRESS"})
# Where each documented status stands in a job's life. A job only moves forward, so a
# listing that shows a lower rank than the record is lagging, not news.
_RANK = {"PENDING": 0, "IN PROGRESS": 1, "ACTIVE": 2, "FAILED": 2}
TERMINAL_RANK = 2
# How far behind a listing may be. A summary shows a status that held at least until this
# long ago, so a job is called stuck only if it waited past the limit before then.
LISTING_LAG = timedelta(minutes=5)
# An update time this far past the poll's clock is believed (the job moved while the poll
# listed, or Personalize's clock runs a little ahead); further is an odd summary.
CLOCK_SKEW = timedelta(minutes=15)


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


def rank(status: str | None) -> int | None:
    """A status's place in a job's life; None for statuses Personalize may add later."""
    normalised = normalise_status(status)
    if normalised.endswith("FAILED"):
        return _RANK["FAILED"]
    return _RANK.get(normalised)


def latest_per_job(jobs: Iterable[JobSummary]) -> dict[str, JobSummary]:
    """Index jobs by ARN, keeping the most recent summary of each.

    A listing that shifts while it is paged can return a job twice; the later update wins,
    and between equal (or missing) times the later status in a job's life.
    Jobs without an ARN cannot be tracked across polls and are left out; the caller
    reports them.
    """
    latest: dict[str, JobSummary] = {}
    for job in jobs:
        if job.arn is None:
            continue
        seen = latest.get(job.arn)
        if seen is None or _recency(job) >= _recency(seen):
            latest[job.arn] = job
    return latest


def _recency(job: JobSummary) -> tuple[datetime, int]:
    position = rank(job.status)
    return job.last_updated_time or _EPOCH, -1 if position is None else position


class Outcome(StrEnum):
    """What a poll does with one listed job."""

    ANNOUNCE = "announce"
    BASELINE = "baseline"  # existed before its scope was watched: recorded silently
    UNCHANGED = "unchanged"
    NO_STATUS = "no-status"  # the summary has no status: nothing to compare
    STALE = "stale"  # older than what is recorded: a lagging listing
    BACKWARDS = "backwards"  # would move back in the job's life, or off a final status


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    transition: Transition | None = None


def decide(
    job: JobSummary,
    record: Record | None,
    scope: ScopeState,
    now: datetime,
    stuck_after: timedelta,
) -> Decision:
    """Compare one listed job (with an ARN) with its record.

    Nothing is announced that the job did not do: a summary without a status, a summary
    older than the record, a move backwards in the job's life and any move off a final
    status all change nothing and keep the record.
    """
    if job.status is None:
        return Decision(Outcome.NO_STATUS)
    # One rule for every record, with a status or only what channels heard: nothing any
    # channel heard is contradicted by a lagging listing.
    if record is not None and _behind_a_channel(job, record):
        return Decision(Outcome.BACKWARDS)
    if record is None or record.status is None:
        return _first_seen(job, record, scope, now)
    if _from_before_rewatching(record, scope) and not moved_since_watching(job, scope, now):
        return Decision(Outcome.BASELINE)
    if job.status != record.status:
        return _moved(job, record, scope)
    return _unmoved(job, record, now, stuck_after)


def _unmoved(job: JobSummary, record: Record, now: datetime, stuck_after: timedelta) -> Decision:
    """Still in its recorded status: news only once, when it has waited too long."""
    stuck = is_stuck(job, now, stuck_after, record.last_updated)
    if stuck and record.stuck_status != job.status:
        return Decision(Outcome.ANNOUNCE, Transition(EventType.JOB_STUCK, job, job.status))
    return Decision(Outcome.UNCHANGED)


def _first_seen(
    job: JobSummary, record: Record | None, scope: ScopeState, now: datetime
) -> Decision:
    """A job with no recorded status: part of the silent baseline if it existed, unmoved,
    when watching began; else news (previousStatus null). In a scope removed and added
    back, what channels heard before counts for nothing: that was while unwatched."""
    unrecorded = record is None or scope.rewatched
    if (
        unrecorded
        and existed_before_watching(job, scope)
        and not moved_since_watching(job, scope, now)
    ):
        return Decision(Outcome.BASELINE)
    return Decision(Outcome.ANNOUNCE, Transition(classify(job.status), job, None))


def _moved(job: JobSummary, record: Record, scope: ScopeState) -> Decision:
    old, new = rank(record.status), rank(job.status)
    if old == TERMINAL_RANK:
        return Decision(Outcome.BACKWARDS)
    if old is not None and new is not None and new < old:
        return Decision(Outcome.BACKWARDS)
    # Forward in the documented order is news whatever the timestamps say: a recorded time
    # may have been clamped to the poll that saw an odd listing.
    forward = old is not None and new is not None and new > old
    if not forward and _older(job.last_updated_time, record.last_updated):
        return Decision(Outcome.STALE)
    if _corrects_baseline(job, record, scope):
        return Decision(Outcome.BASELINE)
    return Decision(Outcome.ANNOUNCE, Transition(classify(job.status), job, record.status))


def _behind_a_channel(job: JobSummary, record: Record) -> bool:
    """Whether some channel already heard a later status than the listed one, after a
    partly failed delivery: a final one other than it, or one further in the job's life."""
    new = rank(job.status)
    for heard in record.heard_statuses():
        if heard == job.status:
            continue
        position = rank(heard)
        if position == TERMINAL_RANK or (
            position is not None and new is not None and new < position
        ):
            return True
    return False


def _corrects_baseline(job: JobSummary, record: Record, scope: ScopeState) -> bool:
    """A move made before the scope was watched, onto a record written since: the baseline
    caught a lagging summary, and the job's real state at the time is recorded silently."""
    moved_at, recorded_at = job.last_updated_time, record.recorded_at
    started = scope.baseline_started_at
    return moved_at is not None and recorded_at is not None and moved_at < started <= recorded_at


def _from_before_rewatching(record: Record, scope: ScopeState) -> bool:
    """A record kept from before its scope was removed and added back: what the job did
    while nobody watched is not news, so it is recorded again silently."""
    recorded_at = record.recorded_at
    return scope.rewatched and (recorded_at is None or recorded_at < scope.baseline_started_at)


def _older(listed: datetime | None, recorded: datetime | None) -> bool:
    return listed is not None and recorded is not None and listed < recorded


def existed_before_watching(job: JobSummary, scope: ScopeState) -> bool:
    """Whether a job without a record belongs to its scope's silent baseline.

    A job created before the scope's baseline began existed when watching began. Without a
    creation time it counts as existing only while the baseline is still being taken.
    """
    if job.creation_time is None:
        return not scope.baseline_complete
    return job.creation_time < scope.baseline_started_at


def moved_since_watching(job: JobSummary, scope: ScopeState, now: datetime) -> bool:
    """Whether a job that existed when watching began has moved since: news, even if a
    baseline spread over several runs had not reached it yet. An update time further in the
    future than CLOCK_SKEW is an odd summary, not a move."""
    moved_at = job.last_updated_time
    return moved_at is not None and scope.baseline_started_at < moved_at <= now + CLOCK_SKEW


def is_stuck(
    job: JobSummary, now: datetime, stuck_after: timedelta, recorded: datetime | None = None
) -> bool:
    """Waiting (PENDING or IN PROGRESS) for longer than `stuck_after`.

    Waiting since the job's last update; failing a believable one (missing, or further in
    the future than CLOCK_SKEW), since the time recorded with this status, else since the
    job's creation.
    """
    if normalise_status(job.status) not in _WAITING:
        return False
    updated = job.last_updated_time
    if updated is not None and now < updated <= now + CLOCK_SKEW:
        updated = now  # moved while this poll was listing, or a clock a little ahead
    times = (updated, recorded, job.creation_time)
    since = next((t for t in times if t is not None and t <= now), None)
    return since is not None and now - LISTING_LAG - since > stuck_after


def needs_check(job: JobSummary, watermark: datetime | None, margin: timedelta) -> bool:
    """Whether a poll between full reads must compare this job with its record.

    A job last updated before the watermark (less a safety margin for clock skew and
    listing lag) was already seen in its current state by a poll that recorded everything.
    Jobs without a timestamp, and jobs still waiting (which may become stuck), always are.
    """
    if watermark is None or job.last_updated_time is None:
        return True
    if normalise_status(job.status) in _WAITING:
        return True
    return job.last_updated_time >= watermark - margin


def recorded_time(value: datetime | None, now: datetime) -> datetime | None:
    """A time as it may be kept: never later than the poll's clock.

    A summary dated in the future would otherwise pin the watermark, and make every real
    later update look older than the record.
    """
    return None if value is None else min(value, now)


def latest_update(jobs: Iterable[JobSummary], now: datetime) -> datetime | None:
    """The latest believable update: one further in the future than CLOCK_SKEW is an odd
    summary and would move the watermark (a write) on every poll."""
    limit = now + CLOCK_SKEW
    times = [t for job in jobs if (t := job.last_updated_time) is not None and t <= limit]
    return recorded_time(max(times, default=None), now)


def full_read_due(state: ScopeState, now: datetime, every: timedelta) -> bool:
    """A scope reads every record when its last full read is `every` old (or never was).

    Kept as state in the scope's marker, so a late or missed tick cannot skip it.
    """
    last = state.last_full_read_at
    return last is None or now - last >= every or last > now
