"""One poll: list jobs, diff against the snapshot, then per transition claim, publish, record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools import Logger

from poller.core import diff, latest_per_job, latest_update, needs_check
from poller.errors import SnapshotError
from poller.models import EventType
from poller.rendering import EventContext, digest_entry, publish_entry
from poller.snapshot_store import ClaimLostError
from poller.sns_publisher import BATCH_MAX_ENTRIES

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from poller.models import SnapshotItem, Transition
    from poller.personalize_source import JobSource
    from poller.rendering import PublishEntry
    from poller.snapshot_store import SnapshotStore


class Publisher(Protocol):
    def publish(self, entries: Sequence[PublishEntry]) -> dict[int, str]: ...


@dataclass(frozen=True, slots=True)
class Channel:
    """Where announcements go: the events topic, the event bus, the people topic."""

    name: str
    publisher: Publisher
    event_types: frozenset[EventType] | None = None  # None: every event
    digest_in_storm: bool = False  # people read one digest instead of a storm of messages

    def wants(self, transition: Transition) -> bool:
        return self.event_types is None or transition.event_type in self.event_types


class DigestPublisher:
    """Publishes one digest of all the entries it is given; they succeed or fail together."""

    def __init__(self, inner: Publisher, context: EventContext) -> None:
        self._inner = inner
        self._context = context

    def publish(self, entries: Sequence[PublishEntry]) -> dict[int, str]:
        if not entries:
            return {}
        failed = self._inner.publish([digest_entry(entries, self._context)])
        return dict.fromkeys(range(len(entries)), failed[0]) if failed else {}


Channels = Sequence[Channel]

logger = Logger(child=True)
FINISHED = (EventType.JOB_SUCCEEDED, EventType.JOB_FAILED)
CLAIM_MARGIN_SECONDS = 60.0
WATERMARK_MARGIN = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PollRun:
    """What one run is given rather than decides: where, when, who, and how long it has."""

    region: str
    now: datetime
    run_id: str
    stuck_after: timedelta
    time_left: Callable[[], float]  # seconds before the run must have stopped
    full_reconcile: bool = True  # read every record, not only jobs updated near the watermark
    storm_threshold: int = 20  # more people-facing transitions than this: one digest
    safety_margin: float = 10.0

    def out_of_time(self) -> bool:
        return self.time_left() < self.safety_margin


@dataclass(slots=True)
class PollResult:
    first_run: bool = False
    jobs_seen: int = 0
    jobs_without_arn: int = 0
    pages: int = 0
    listing_complete: bool = True
    transitions: list[Transition] = field(default_factory=list)
    published: int = 0
    publish_failures: int = 0
    record_failures: int = 0
    claims_lost: int = 0
    deferred: int = 0
    storm: bool = False
    jobs_checked: int = 0  # jobs compared with their record (all of them on a full read)

    @property
    def clean(self) -> bool:
        """Everything seen was announced and recorded: the watermark may move past it."""
        return self.listing_complete and not (
            self.publish_failures or self.record_failures or self.claims_lost or self.deferred
        )

    @property
    def stuck(self) -> int:
        return sum(1 for t in self.transitions if t.event_type is EventType.JOB_STUCK)


def poll(source: JobSource, store: SnapshotStore, channels: Channels, run: PollRun) -> PollResult:
    """Run one poll and report what happened; the caller fails the run on failures.

    Publishing comes before recording, so a failed publish leaves the job as it was and
    the next poll sends it again: nothing is lost, and a duplicate is only possible after
    a failure. Claiming first means an overlapping poll cannot send the same transition.
    """
    listing = source.list_jobs(should_stop=run.out_of_time)
    latest = latest_per_job(listing.jobs)
    result = PollResult(
        jobs_seen=len(latest),
        jobs_without_arn=sum(1 for job in listing.jobs if job.arn is None),
        pages=listing.pages,
        listing_complete=listing.complete,
    )
    if result.jobs_without_arn:
        logger.warning(
            "job summaries without an ARN cannot be tracked",
            extra={"count": result.jobs_without_arn},
        )
    if not listing.complete:
        logger.warning("listing stopped early for the deadline", extra={"pages": listing.pages})

    marker = store.load_marker()
    if marker is None:
        store.record_baseline(
            latest.values(),
            run.now,
            complete=listing.complete,
            watermark=latest_update(latest.values()),
        )
        result.first_run = True
        logger.info(
            "first run: recorded existing jobs without notifying", extra={"jobs": len(latest)}
        )
        return result

    if run.full_reconcile or marker.watermark is None:
        checked = latest
        snapshot = store.load()
    else:
        checked = {
            arn: job
            for arn, job in latest.items()
            if needs_check(job, marker.watermark, WATERMARK_MARGIN)
        }
        snapshot = store.load(checked.keys()) if checked else {}
    result.jobs_checked = len(checked)
    result.transitions = [
        # Details only for jobs that finished, so Describe calls grow with changes, not jobs.
        replace(t, job=source.describe(t.job)) if t.event_type in FINISHED else t
        for t in diff(snapshot, checked.values(), run.now, run.stuck_after)
    ]
    context = EventContext(region=run.region, detected_at=run.now)
    # A claim outlives this run by a margin, then lapses so a later run can take over.
    lease_seconds = run.time_left() + CLAIM_MARGIN_SECONDS
    chunk = BATCH_MAX_ENTRIES
    digesting = [c for c in channels if c.digest_in_storm]
    for channel in digesting:
        if sum(1 for t in result.transitions if channel.wants(t)) > run.storm_threshold:
            # A storm: one digest for people, so everything is announced in one round.
            result.storm = True
            chunk = max(len(result.transitions), 1)
            channels = [
                replace(c, publisher=DigestPublisher(c.publisher, context)) if c is channel else c
                for c in channels
            ]
            logger.warning(
                "storm: people get one digest", extra={"transitions": len(result.transitions)}
            )
    for start in range(0, len(result.transitions), chunk):
        if run.out_of_time():
            result.deferred = len(result.transitions) - start
            logger.warning(
                "deadline near: leaving transitions for the next run",
                extra={"deferred": result.deferred},
            )
            break
        _announce(
            result.transitions[start : start + chunk],
            store=store,
            channels=channels,
            snapshot=snapshot,
            run=run,
            lease_seconds=lease_seconds,
            context=context,
            result=result,
        )
    watermark = latest_update(latest.values())
    if result.clean and watermark and (marker.watermark is None or watermark > marker.watermark):
        store.advance_watermark(watermark)
    return result


def _announce(
    transitions: list[Transition],
    *,
    store: SnapshotStore,
    channels: Channels,
    snapshot: Mapping[str, SnapshotItem],
    run: PollRun,
    lease_seconds: float,
    context: EventContext,
    result: PollResult,
) -> None:
    claimed: list[Transition] = []
    for transition in transitions:
        try:
            store.claim(transition, run.run_id, run.now.timestamp(), lease_seconds)
            claimed.append(transition)
        except ClaimLostError:
            result.claims_lost += 1
            logger.warning(
                "another poll is announcing this job; skipped", extra=_job_log(transition)
            )

    entries = [publish_entry(t, context) for t in claimed]
    already = [_delivered(snapshot, t) for t in claimed]
    errors: dict[int, dict[str, str]] = {}
    for channel in channels:
        # A channel that got this announcement on an earlier, partly failed poll is skipped.
        todo = [
            i
            for i, transition in enumerate(claimed)
            if channel.wants(transition) and channel.name not in already[i]
        ]
        for position, error in channel.publisher.publish([entries[i] for i in todo]).items():
            errors.setdefault(todo[position], {})[channel.name] = error

    for index, transition in enumerate(claimed):
        if index in errors:
            result.publish_failures += 1
            logger.error(
                "delivery failed; the next poll sends it again where it is missing",
                extra={**_job_log(transition), "errors": errors[index]},
            )
            delivered = already[index] | {
                c.name for c in channels if c.wants(transition) and c.name not in errors[index]
            }
            _release(store, transition, run.run_id, frozenset(delivered))
            continue
        result.published += 1
        logger.info("published", extra=_job_log(transition))
        try:
            store.record(transition, run.run_id, run.now)
        except ClaimLostError:
            result.claims_lost += 1
            logger.warning(
                "claim lapsed before recording; another poll took over", extra=_job_log(transition)
            )
        except SnapshotError:
            result.record_failures += 1
            logger.exception(
                "published but not recorded; sent again once the claim lapses",
                extra=_job_log(transition),
            )


def _delivered(snapshot: Mapping[str, SnapshotItem], transition: Transition) -> frozenset[str]:
    recorded = snapshot.get(transition.job.arn or "")
    return recorded.delivered_to(transition) if recorded else frozenset()


def _release(
    store: SnapshotStore, transition: Transition, run_id: str, delivered: frozenset[str]
) -> None:
    try:
        store.release(transition, run_id, delivered)
    except SnapshotError:
        # The claim lapses on its own; the job is only delayed by the lease.
        logger.exception("could not release claim", extra=_job_log(transition))


def _job_log(transition: Transition) -> dict[str, str | None]:
    return {
        "batch_segment_job_arn": transition.job.arn,
        "event_type": transition.event_type.value,
        "previous_status": transition.previous_status,
        "status": transition.job.status,
    }
