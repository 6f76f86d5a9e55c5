"""One poll: list each scope, plan, then deliver each transition (claim, publish, record)
within the run's time, and note where each scope stands."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from job_events.vocabulary import DEFAULT_STORM_THRESHOLD, FINISHED, EventType
from poller.budget import Budget
from poller.core import full_read_due, latest_per_job, latest_update, needs_check
from poller.errors import ClaimLostError, JobListingError, SnapshotError
from poller.events import job_event
from poller.models import Scope, ScopeState, SnapshotItem
from poller.plan import ScopePlan, chunks, delivery_order, is_storm, plan_scope

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from job_events.event import JobEvent
    from poller.core import Outcome
    from poller.models import JobSummary, Transition
    from poller.ports import JobSource, Listing, Publisher, SnapshotStore

logger = Logger(child=True)

# A claim outlives the deadline of the run that took it by this much, then lapses so a
# later run can take over from a run that died.
CLAIM_MARGIN_SECONDS = 60.0
WATERMARK_MARGIN = timedelta(minutes=15)
FULL_READ_EVERY = timedelta(hours=1)
LISTING_SHARE = 0.6  # listing stops once it has used this share of the run's time
CHUNK = 10  # transitions delivered together: one PublishBatch per channel
BASELINE_CHUNK = 25  # one BatchWriteItem
MAX_SCOPE_THREADS = 16  # scopes listed at once; each waits on the network, not the CPU
LOAD_ALL_ABOVE = 500  # more records to read than this: one paged Query beats BatchGetItem


@dataclass(frozen=True, slots=True)
class Channel:
    """Where announcements go: the events topic, the event bus, the people topic."""

    name: str
    publisher: Publisher[Any]
    event_types: frozenset[EventType] | None = None  # None: every event
    # People's channel renders a storm as one digest instead of a message each.
    digest: Callable[[Sequence[JobEvent]], Any] | None = None

    def wants(self, transition: Transition) -> bool:
        return self.event_types is None or transition.event_type in self.event_types


Channels = Sequence[Channel]


@dataclass(frozen=True, slots=True)
class PollRun:
    """What one run is given rather than decides: where, when, who, and how long it has."""

    region: str
    now: datetime
    run_id: str
    stuck_after: timedelta
    time_left: Callable[[], float]  # seconds before the run must have stopped
    clock: Callable[[], float]  # epoch seconds now, for claims taken during the run
    scopes: tuple[Scope, ...] = (Scope(),)
    storm_threshold: int = DEFAULT_STORM_THRESHOLD
    safety_margin: float = 10.0


@dataclass(slots=True)
class PollResult:
    first_run: bool = False  # some scope was still taking its silent baseline
    baseline_polls: int = 0  # runs the longest unfinished baseline has taken, this one included
    jobs_seen: int = 0
    jobs_without_arn: int = 0
    pages: int = 0
    listing_complete: bool = True
    listing_resumed: bool = False  # some scope continued from an earlier run's checkpoint
    # Scopes that could not be listed ('account/region' -> why): each alarms on its own,
    # and does not keep the others, or the heartbeat, from their work.
    unreachable: dict[str, str] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    published: int = 0
    publish_failures: int = 0
    record_failures: int = 0
    claims_lost: int = 0
    deferred: int = 0
    enrichment_dropped: int = 0
    storm: bool = False
    jobs_checked: int = 0  # jobs compared with their record
    full_read: bool = False
    skipped: Counter[Outcome] = field(default_factory=Counter)

    @property
    def delivered_all(self) -> bool:
        """Every transition found was announced and recorded, by this poll or another."""
        return not (
            self.publish_failures or self.record_failures or self.claims_lost or self.deferred
        )

    @property
    def clean(self) -> bool:
        """Everything seen was announced and recorded: the poll finished its work."""
        return self.listing_complete and self.delivered_all

    @property
    def stuck(self) -> int:
        return sum(1 for t in self.transitions if t.event_type is EventType.JOB_STUCK)


@dataclass(slots=True)
class _ScopeScan:
    """One scope's part of a run: listed in a thread of its own, merged afterwards."""

    scope: Scope
    state: ScopeState
    listing: Listing | None = None  # None: unlisted (no time left, or unreachable)
    unreachable: str | None = None  # why the scope could not be listed
    latest: dict[str, JobSummary] = field(default_factory=dict)
    checked: int = 0
    full_read: bool = False
    plan: ScopePlan = field(default_factory=ScopePlan)
    baseline_written: bool = True
    baseline_failed: bool = False


def poll(source: JobSource, store: SnapshotStore, channels: Channels, run: PollRun) -> PollResult:
    """Run one poll and report what happened; the caller fails the run on failures.

    Publishing comes before recording, so a failed publish leaves the job as it was and
    the next poll sends it again: nothing is lost, and a duplicate is only possible when a
    record fails after a publish. Claiming first means an overlapping poll cannot send the
    same transition. Every phase asks the budget before it spends time.
    """
    return _Poll(source, store, channels, run).execute()


class _RecordReader:
    """Reads records for a run: the whole table at most once, else only what is asked."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self._all: dict[str, SnapshotItem] | None = None
        self._lock = threading.Lock()  # scopes read from their own threads
        self.loaded: dict[str, SnapshotItem] = {}

    def read(self, arns: Sequence[str], everything: bool) -> dict[str, SnapshotItem]:
        with self._lock:
            if self._all is None and (everything or len(arns) > LOAD_ALL_ABOVE):
                self._all = self._store.load_all()
            every = self._all
        if every is not None:
            found = {arn: every[arn] for arn in arns if arn in every}
        else:
            found = self._store.load(arns) if arns else {}
        with self._lock:
            self.loaded.update(found)
        return found


@dataclass(slots=True)
class _Claimed:
    """A transition this poll holds, with what each channel that still needs it gets."""

    transition: Transition
    record: SnapshotItem  # as read: what each channel last heard of the job
    events: dict[str, JobEvent]  # by channel: as that channel must hear it
    messages: dict[str, Any] = field(default_factory=dict)  # by channel: rendered
    errors: dict[str, str] = field(default_factory=dict)  # by channel: why sending failed

    def delivered(self, channels: Channels) -> dict[str, str]:
        """What each channel has now: this announcement where it went, else what it had."""
        now = {c.name: self.transition.key for c in channels if c.name in self.events}
        return {**self.record.delivered, **{n: k for n, k in now.items() if n not in self.errors}}


class _Poll:
    def __init__(
        self, source: JobSource, store: SnapshotStore, channels: Channels, run: PollRun
    ) -> None:
        self.source = source
        self.store = store
        self.channels = channels
        self.run = run
        self.budget = Budget(run.time_left, run.safety_margin)
        self.result = PollResult()
        self.records = _RecordReader(store)
        self.listing_reserve = 0.0

    def execute(self) -> PollResult:
        run, result = self.run, self.result
        states = self.store.load_scopes(run.scopes)
        # Listing leaves the rest of the run for baseline writes and deliveries.
        self.listing_reserve = self.budget.remaining() * (1 - LISTING_SHARE)
        scans = [_ScopeScan(scope, _believable(states.get(scope), run.now)) for scope in run.scopes]
        # Every scope at once: a run takes about as long as its slowest scope.
        with ThreadPoolExecutor(max_workers=min(MAX_SCOPE_THREADS, len(scans))) as pool:
            for _ in pool.map(self.scan, scans):
                pass
        for scan in scans:
            self.merge(scan)
        if not result.listing_complete:
            logger.warning("listing stopped early for the deadline", extra={"pages": result.pages})
        self.deliver(delivery_order(result.transitions))
        for scan in scans:
            if scan.unreachable is not None:
                if scan.scope not in states:
                    # Watching began now, reached or not: jobs created from here on are
                    # new, however late the scope can first be listed.
                    self.store.save_scope(scan.scope, scan.state, run.now)
                continue
            state = _next_state(scan, run, result)
            if not state.baseline_complete:
                result.baseline_polls = max(result.baseline_polls, state.baseline_polls)
            if state != scan.state:
                self.store.save_scope(scan.scope, state, run.now)
        return result

    def out_of_listing_time(self) -> bool:
        return not self.budget.allows(self.listing_reserve + self.budget.cost("list"))

    # --- listing and planning ------------------------------------------------------------
    def scan(self, scan: _ScopeScan) -> None:
        """List one scope, read the records it needs, plan it and write its silent baseline.

        A scope that cannot be listed is noted and left as it was; the others go on.
        """
        run, state = self.run, scan.state
        if self.out_of_listing_time():
            return
        started = self.budget.remaining()
        try:
            listing = self.source.list_jobs(scan.scope, state.checkpoint, self.out_of_listing_time)
        except JobListingError as err:
            scan.unreachable = str(err)
            logger.error("scope unreachable", extra={"scope": scan.scope.key, "error": str(err)})
            return
        self.budget.note("list", started - self.budget.remaining(), listing.pages)
        scan.listing = listing
        scan.latest = latest_per_job(listing.jobs)
        # Between full reads, a poll compares only jobs updated near the watermark. A scope
        # still taking its baseline, or continuing a listing, compares everything it lists.
        steady = state.baseline_complete and not listing.resumed and state.watermark is not None
        scan.full_read = full_read_due(state, run.now, FULL_READ_EVERY)
        checked = scan.latest
        if steady and not scan.full_read:
            checked = {
                arn: job
                for arn, job in scan.latest.items()
                if needs_check(job, state.watermark, WATERMARK_MARGIN)
            }
        scan.checked = len(checked)
        records = self.records.read(list(checked), everything=scan.full_read)
        scan.plan = plan_scope(checked.values(), records, state, run.now, run.stuck_after)
        scan.baseline_written, scan.baseline_failed = self.write_baseline(scan.plan.baseline)

    def merge(self, scan: _ScopeScan) -> None:
        """Add one scope's part to the run's result (in the run's own thread)."""
        result, listing = self.result, scan.listing
        result.first_run |= not scan.state.baseline_complete
        result.record_failures += scan.baseline_failed
        if scan.unreachable is not None:
            result.unreachable[scan.scope.place] = scan.unreachable
            return
        if listing is None:
            result.listing_complete = False
            return
        result.pages += listing.pages
        result.listing_complete &= listing.complete
        result.listing_resumed |= listing.resumed
        without_arn = sum(1 for job in listing.jobs if job.arn is None)
        if without_arn:
            logger.warning(
                "job summaries without an ARN cannot be tracked", extra={"count": without_arn}
            )
        result.jobs_without_arn += without_arn
        result.jobs_seen += len(scan.latest)
        result.jobs_checked += scan.checked
        result.full_read |= scan.full_read
        for outcome, count in scan.plan.skipped.items():
            logger.warning(
                "listed summaries that change nothing",
                extra={"kind": outcome.value, "count": count, "scope": scan.scope.key},
            )
        result.skipped.update(scan.plan.skipped)
        result.transitions += scan.plan.transitions

    def write_baseline(self, items: Sequence[SnapshotItem]) -> tuple[bool, bool]:
        """Record jobs that existed before watching began, silently.

        Returns whether all were written, and whether a write failed; time running out
        is not a failure.
        """
        budget = self.budget
        for start in range(0, len(items), BASELINE_CHUNK):
            if not budget.allows(budget.cost("write-batch")):
                logger.warning(
                    "deadline near: the baseline continues next run",
                    extra={"recorded": start, "left": len(items) - start},
                )
                return False, False
            try:
                with budget.measure("write-batch"):
                    self.store.write_baseline(items[start : start + BASELINE_CHUNK], self.run.now)
            except SnapshotError:
                logger.exception("could not record the baseline; it continues next run")
                return False, True
        if items:
            logger.info("recorded existing jobs without notifying", extra={"jobs": len(items)})
        return True, False

    # --- delivery ------------------------------------------------------------------------
    def deliver(self, transitions: list[Transition]) -> None:
        """Deliver in chunks, each only if its cost still fits before the deadline.

        In a storm, people's channel gets one digest at the end, so the storm's claims are
        held until then, and each chunk leaves time for recording all of them.
        """
        budget, result = self.budget, self.result
        digesting = [
            c
            for c in self.channels
            if c.digest is not None and is_storm(transitions, c.wants, self.run.storm_threshold)
        ]
        if digesting:
            result.storm = True
            logger.warning("storm: people get one digest", extra={"transitions": len(transitions)})
        per_event = [c for c in self.channels if c not in digesting]
        held: list[_Claimed] = []
        batches = chunks(transitions, CHUNK)
        for index, chunk in enumerate(batches):
            cost = budget.cost("write", 2 * len(chunk)) + budget.cost("publish", len(per_event))
            # Held claims still need a digest and a record each before the deadline.
            finish = budget.cost("write", len(held)) + (budget.cost("publish") if held else 0)
            if not budget.allows(cost + finish):
                result.deferred = sum(len(rest) for rest in batches[index:])
                logger.warning(
                    "deadline near: leaving transitions for the next run",
                    extra={"deferred": result.deferred},
                )
                break
            later = cost * (len(batches) - index - 1)
            enriched = self.enrich(chunk, reserve=cost + finish + later)
            claimed = self.claim(self.render(enriched, digesting))
            self.send(claimed, per_event)
            if digesting:
                held += claimed
            else:
                self.settle(claimed)
        if held:
            self.send_digests(held, digesting)
            self.settle(held)

    def enrich(self, chunk: Sequence[Transition], reserve: float) -> list[Transition]:
        """Details for jobs that finished, while they fit: enrichment is dropped, never
        delivery."""
        budget = self.budget
        enriched = []
        for transition in chunk:
            if transition.event_type not in FINISHED:
                enriched.append(transition)
            elif budget.allows(reserve + budget.cost("describe")):
                with budget.measure("describe"):
                    enriched.append(replace(transition, job=self.source.describe(transition.job)))
            else:
                self.result.enrichment_dropped += 1
                enriched.append(transition)
        return enriched

    def render(
        self, chunk: Sequence[Transition], digesting: Channels
    ) -> list[tuple[Transition, SnapshotItem, dict[str, JobEvent], dict[str, Any]]]:
        """Render before claiming, for each channel that still needs it: a job that cannot
        be rendered is left unclaimed, alone."""
        rendered = []
        for transition in chunk:
            arn = transition.job.arn or ""
            record = self.records.loaded.get(arn) or SnapshotItem(arn, None)
            events = {
                c.name: self.event(transition, record.previous_for(c.name))
                for c in self.channels
                if c.wants(transition) and not record.has(c.name, transition)
            }
            try:
                messages = {
                    c.name: c.publisher.render(events[c.name])
                    for c in self.channels
                    if c.name in events and c not in digesting
                }
            except (ValueError, TypeError):
                self.result.publish_failures += 1
                logger.exception(
                    "could not render; left for the next poll", extra=_job_log(transition)
                )
                continue
            rendered.append((transition, record, events, messages))
        return rendered

    def event(self, transition: Transition, previous: str | None) -> JobEvent:
        """The event as a channel that last heard `previous` must hear it."""
        return job_event(
            replace(transition, previous_status=previous), self.run.region, self.run.now
        )

    def claim(
        self,
        rendered: Sequence[tuple[Transition, SnapshotItem, dict[str, JobEvent], dict[str, Any]]],
    ) -> list[_Claimed]:
        run, result = self.run, self.result
        claimed = []
        for transition, record, events, messages in rendered:
            now = run.clock()
            # The lease is this run's deadline as it stands now, plus a margin.
            expires_at = now + run.time_left() + CLAIM_MARGIN_SECONDS
            try:
                with self.budget.measure("write"):
                    self.store.claim(transition, run.run_id, now, expires_at)
            except ClaimLostError:
                result.claims_lost += 1
                logger.warning(
                    "another poll is announcing this job; skipped", extra=_job_log(transition)
                )
                continue
            except SnapshotError:
                result.record_failures += 1
                logger.exception(
                    "could not claim; left for the next poll", extra=_job_log(transition)
                )
                continue
            claimed.append(_Claimed(transition, record, events, messages))
        return claimed

    def send(self, claimed: Sequence[_Claimed], channels: Channels) -> None:
        for channel in channels:
            todo = [item for item in claimed if channel.name in item.messages]
            if not todo:
                continue
            with self.budget.measure("publish"):
                failed = channel.publisher.send([item.messages[channel.name] for item in todo])
            for position, error in failed.items():
                todo[position].errors[channel.name] = error

    def send_digests(self, held: Sequence[_Claimed], channels: Channels) -> None:
        """One digest per people channel of everything it needs; it goes or fails whole."""
        for channel in channels:
            assert channel.digest is not None
            todo = [item for item in held if channel.name in item.events]
            if not todo:
                continue
            digest = channel.digest([item.events[channel.name] for item in todo])
            with self.budget.measure("publish"):
                failed = channel.publisher.send([digest])
            for item in todo if failed else ():
                item.errors[channel.name] = failed[0]

    def settle(self, claimed: Sequence[_Claimed]) -> None:
        """Record what every channel got; release what some channel did not, for the next
        poll."""
        for item in claimed:
            if item.errors:
                self.result.publish_failures += 1
                logger.error(
                    "delivery failed; the next poll sends it again where it is missing",
                    extra={**_job_log(item.transition), "errors": item.errors},
                )
                self.release(item)
            else:
                self.result.published += 1
                logger.info("published", extra=_job_log(item.transition))
                self.record(item.transition)

    def record(self, transition: Transition) -> None:
        try:
            with self.budget.measure("write"):
                self.store.record(transition, self.run.run_id, self.run.now)
        except ClaimLostError:
            self.result.claims_lost += 1
            logger.warning(
                "claim lapsed before recording; another poll took over", extra=_job_log(transition)
            )
        except SnapshotError:
            self.result.record_failures += 1
            logger.exception(
                "published but not recorded; sent again once the claim lapses",
                extra=_job_log(transition),
            )

    def release(self, item: _Claimed) -> None:
        transition = item.transition
        try:
            with self.budget.measure("write"):
                self.store.release(transition, self.run.run_id, item.delivered(self.channels))
        except SnapshotError:
            # The claim lapses on its own; the job is only delayed by the lease.
            logger.exception("could not release claim", extra=_job_log(transition))


def _believable(state: ScopeState | None, now: datetime) -> ScopeState:
    """A scope's state as this poll can trust it: a new one if there is none, and no
    watermark if the stored one is later than the poll's clock (it is then rewritten)."""
    if state is None:
        return ScopeState(baseline_started_at=now)
    if state.watermark is not None and state.watermark > now:
        logger.warning(
            "watermark in the future; it is rewritten", extra={"at": str(state.watermark)}
        )
        return replace(state, watermark=None)
    return state


def _next_state(scan: _ScopeScan, run: PollRun, result: PollResult) -> ScopeState:
    state = scan.state
    in_baseline = not state.baseline_complete
    polls = state.baseline_polls + 1 if in_baseline else state.baseline_polls
    listing = scan.listing
    if listing is None or not scan.baseline_written or not result.delivered_all:
        # Listed nothing, or left something unrecorded or unannounced: the next run lists
        # again from where this one began, so nothing is passed over.
        return replace(state, baseline_polls=polls)
    next_state = replace(
        state,
        baseline_polls=polls,
        checkpoint=listing.next_token,
        baseline_complete=state.baseline_complete or listing.complete,
    )
    if listing.complete and not listing.resumed and result.clean:
        watermark = latest_update(scan.latest.values(), run.now)
        if watermark is not None and scan.plan.watermark_cap is not None:
            watermark = min(watermark, scan.plan.watermark_cap)
        if watermark is not None and (state.watermark is None or watermark > state.watermark):
            next_state = replace(next_state, watermark=watermark)
        if scan.full_read:
            next_state = replace(next_state, last_full_read_at=run.now)
    if in_baseline and next_state.baseline_complete:
        logger.info("baseline complete", extra={"scope": scan.scope.key, "polls": polls})
    return next_state


def _job_log(transition: Transition) -> dict[str, str | None]:
    return {
        "batch_segment_job_arn": transition.job.arn,
        "event_type": transition.event_type.value,
        "previous_status": transition.previous_status,
        "status": transition.job.status,
    }
