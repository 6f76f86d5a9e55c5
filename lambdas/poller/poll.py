"""One poll: list each scope, plan, then deliver each transition (claim, publish, record)
within the run's time, and note where each scope stands."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from job_events.vocabulary import DEFAULT_STORM_THRESHOLD, FINISHED, EventType
from poller.aws import DELIVERY_LIMITS
from poller.budget import Budget
from poller.core import full_read_due, latest_per_job, latest_update, needs_check
from poller.errors import ClaimLostError, JobListingError, SnapshotError
from poller.events import job_event
from poller.models import Scope, ScopeState, SnapshotItem
from poller.plan import ScopePlan, chunks, delivery_order, plan_scope, storming_places

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
# Scopes listed at once; each waits on the network, not the CPU. As many as infra allows
# account-region pairs, so no scope waits behind hung ones for a thread.
MAX_SCOPE_THREADS = 100
# How often the run looks up from waiting for its scopes' listings: the listing phase ends
# on time even when the clock is not the wall's (a scripted one in tests).
WAIT_SLICE_SECONDS = 0.05
# A listing stops by itself just before the listing phase ends, and may still be handing
# over its last page then: it gets this much longer before its scope is named unfinished.
LATE_LISTING_GRACE_SECONDS = 1.0
# Kept in hand at every step: the worst case of one delivery call, so a call that the
# budget allowed ends before the deadline however slowly AWS answers.
SAFETY_MARGIN_SECONDS = DELIVERY_LIMITS.worst_case_seconds + 2
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
    safety_margin: float = SAFETY_MARGIN_SECONDS
    # How long a catch-up run may take (the function's whole timeout); None: this caller
    # cannot start one (the command-line tool).
    catch_up_seconds: float | None = None
    catch_up: bool = False  # this run is a catch-up of its scopes


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
    storm_places: list[str] = field(default_factory=list)  # 'account/region' given a digest
    scopes_rewatched: list[str] = field(default_factory=list)  # re-added: a fresh baseline
    # Scopes whose listing cannot finish across scheduled runs (its checkpoint expired, and
    # it stopped short again): a catch-up run must list them. Held for it from now.
    catch_up: list[Scope] = field(default_factory=list)
    scopes_held: list[str] = field(default_factory=list)  # left to a catch-up run going on
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


@dataclass(frozen=True, slots=True)
class _ScopeListing:
    """What one scope's thread found: its listing and the records it needs. Reads only, so
    a thread the run stopped waiting for can finish later without touching anything."""

    listing: Listing
    records: dict[str, SnapshotItem]
    latest: dict[str, JobSummary]
    checked: dict[str, JobSummary]  # the jobs to compare with their record
    full_read: bool
    seconds: float  # time spent, for the run's budget (noted in the run's thread)


@dataclass(slots=True)
class _ScopeScan:
    """One scope's part of a run: listed in a thread of its own, planned in the run's."""

    scope: Scope
    state: ScopeState
    found: _ScopeListing | None = None  # None: unlisted (no time left, or unreachable)
    unreachable: str | None = None  # why the scope could not be listed
    plan: ScopePlan = field(default_factory=ScopePlan)
    baseline_written: bool = True
    baseline_failed: bool = False
    held: bool = False  # a catch-up run is listing it: this run leaves it alone


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

    def read(self, arns: Sequence[str], everything: bool) -> dict[str, SnapshotItem]:
        with self._lock:
            if self._all is None and (everything or len(arns) > LOAD_ALL_ABOVE):
                self._all = self._store.load_all()
            every = self._all
        if every is not None:
            return {arn: every[arn] for arn in arns if arn in every}
        return self._store.load(arns) if arns else {}


class _PageTimer:
    """A listing's stop check: it stops before a further page would run into the time kept
    for the rest of the run. Each scope has its own, so threads share no state."""

    def __init__(self, time_left: Callable[[], float], stop_at: float) -> None:
        self._time_left = time_left
        self._stop_at = stop_at
        self._started = time_left()
        self._pages = 0

    def __call__(self) -> bool:
        left = self._time_left()
        self._pages += 1
        per_page = (self._started - left) / self._pages
        return left - per_page <= self._stop_at

    def spent(self) -> float:
        return self._started - self._time_left()


class _Listings:
    """Every scope's listing at once, in daemon threads, waited for only until the listing
    phase ends: a scope whose endpoint hangs is left behind, and the run goes on."""

    def __init__(self, count: int, work: Callable[[int], _ScopeListing | str]) -> None:
        self._work = work
        self._todo = list(range(count))
        self._done: dict[int, _ScopeListing | str] = {}
        self.started: set[int] = set()  # scopes whose listing began
        self._left = count
        self._lock = threading.Lock()
        self._all_done = threading.Event()
        if not count:
            self._all_done.set()
        for _ in range(min(MAX_SCOPE_THREADS, count)):
            # Daemon threads: one stuck on a hung endpoint never holds up the process's exit.
            threading.Thread(target=self._worker, name="scope-listing", daemon=True).start()

    def _worker(self) -> None:
        while True:
            with self._lock:
                if not self._todo:
                    return
                index = self._todo.pop(0)
                self.started.add(index)
            try:
                outcome = self._work(index)
            except Exception as err:
                # Any failure (the table's reads too) names its scope: never a dead thread
                # that the run would wait out and blame on Personalize.
                logger.exception("scope listing failed")
                outcome = f"{type(err).__name__}: {err}"
            with self._lock:
                self._done[index] = outcome
                self._left -= 1
                if not self._left:
                    self._all_done.set()

    def wait(self, listing_over: Callable[[], bool]) -> dict[int, _ScopeListing | str]:
        """What finished by the time every scope is done or the listing phase is over;
        each outcome is a listing, or why the scope could not be listed."""
        while not self._all_done.wait(WAIT_SLICE_SECONDS) and not listing_over():
            pass
        self._all_done.wait(LATE_LISTING_GRACE_SECONDS)
        with self._lock:
            self._todo.clear()  # scopes not started yet are left for the next run
            return dict(self._done)


@dataclass(slots=True)
class _Claimed:
    """A transition this poll holds, with what each channel that still needs it gets."""

    transition: Transition
    record: SnapshotItem  # as read: what each channel last heard of the job
    events: dict[str, JobEvent]  # by channel: as that channel must hear it
    messages: dict[str, Any] = field(default_factory=dict)  # by channel: rendered
    place: str = ""  # its scope's 'account/region', for a digest
    expires_at: float = 0.0  # when the claim lapses (epoch seconds, the run's clock)
    errors: dict[str, str] = field(default_factory=dict)  # by channel: why sending failed
    sent: set[str] = field(default_factory=set)  # channels that accepted it
    lapsed: bool = False  # the lease ran out before a send: another poll may hold it now

    def delivered(self) -> dict[str, str]:
        """What each channel has now: this announcement where it went, else what it had."""
        return {**self.record.delivered, **dict.fromkeys(self.sent, self.transition.key)}


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
        self.loaded: dict[str, SnapshotItem] = {}  # records read for the scopes listed
        self.place_of: dict[str, str] = {}  # job ARN -> its scope's 'account/region'
        self.listing_reserve = 0.0

    def execute(self) -> PollResult:
        run, result = self.run, self.result
        states = self.starting_states()
        # Listing leaves the rest of the run for baseline writes and deliveries.
        self.listing_reserve = self.budget.remaining() * (1 - LISTING_SHARE)
        scans = [_ScopeScan(scope, states[scope]) for scope in run.scopes]
        self.list_scopes(scans)
        for scan in scans:
            self.plan(scan)
            self.merge(scan)
        if not result.listing_complete:
            logger.warning("listing stopped early for the deadline", extra={"pages": result.pages})
        self.deliver(delivery_order(result.transitions))
        for scan in scans:
            if scan.held:
                continue
            if scan.unreachable is not None:
                if scan.scope not in self.stored:
                    # Watching began now, reached or not: jobs created from here on are
                    # new, however late the scope can first be listed.
                    self.store.save_scope(scan.scope, scan.state, run.now)
                continue
            state = replace(_next_state(scan, run, result), catch_up_until=self.catch_up_hold(scan))
            if not state.baseline_complete:
                result.baseline_polls = max(result.baseline_polls, state.baseline_polls)
            if state != scan.state:
                self.store.save_scope(scan.scope, state, run.now)
        return result

    def starting_states(self) -> dict[Scope, ScopeState]:
        """Where each scope stands. A scope the previous run did not watch starts a fresh,
        silent baseline, whatever its old marker says: what it did while unwatched is not
        news. (A scope watched but unreachable keeps its marker: what it did is.)"""
        run = self.run
        markers = self.store.load_scopes(run.scopes)
        self.stored = markers.states
        if run.catch_up:
            return self.catching_up()
        for scope in self.rewatched(markers.watched):
            logger.warning("scope watched again: a fresh baseline", extra={"scope": scope.key})
            # One write: a run that dies after it still finds the fresh baseline.
            self.stored[scope] = ScopeState(baseline_started_at=run.now, rewatched=True)
            self.store.reset_scope(scope, self.stored[scope])
            self.result.scopes_rewatched.append(scope.key)
        keys = frozenset(scope.key for scope in run.scopes)
        if keys and markers.watched != keys:
            # After the resets, before listing: a run that dies later still knows these
            # scopes are watched. (A run watching nothing leaves the set as it was.)
            self.store.save_watched(keys)
        return {scope: _believable(self.stored.get(scope), run.now) for scope in run.scopes}

    def rewatched(self, watched_before: frozenset[str] | None) -> list[Scope]:
        """Scopes with a marker that the last scheduled run did not watch. Without a record
        of what it watched (a first run of this version), every marker is trusted."""
        if watched_before is None:
            return []
        return [scope for scope in self.stored if scope.key not in watched_before]

    def catching_up(self) -> dict[Scope, ScopeState]:
        """A catch-up run's scopes, each held until this run's end: only scheduled runs
        decide what is watched, and none of them lists these scopes meanwhile."""
        run = self.run
        until = run.now + timedelta(seconds=run.time_left())
        states = {}
        for scope in run.scopes:
            state = replace(_believable(self.stored.get(scope), run.now), catch_up_until=until)
            self.store.save_scope(scope, state, run.now)
            self.stored[scope] = states[scope] = state
        return states

    def catch_up_hold(self, scan: _ScopeScan) -> datetime | None:
        """Until when a catch-up run lists this scope: one is asked for when its listing
        restarted (the checkpoint expired between runs) and stopped short again. A
        catch-up run ends its own hold."""
        run, listing = self.run, scan.found.listing if scan.found else None
        if run.catch_up:
            return None
        if listing is None or listing.complete or not listing.restarted:
            return scan.state.catch_up_until
        if run.catch_up_seconds is None:
            return None
        logger.warning(
            "the listing cannot finish across scheduled runs: a catch-up run lists it",
            extra={"scope": scan.scope.key},
        )
        self.result.catch_up.append(scan.scope)
        return run.now + timedelta(seconds=run.catch_up_seconds)

    def out_of_listing_time(self) -> bool:
        return not self.budget.allows(self.listing_reserve)

    # --- listing and planning ------------------------------------------------------------
    def list_scopes(self, scans: Sequence[_ScopeScan]) -> None:
        """Every scope at once: a run takes about as long as its slowest scope, and no
        longer than the listing phase. A scope still listing when it ends is named, and
        kept where it stood for the next run."""
        run = self.run
        for scan in scans:
            held_until = scan.state.catch_up_until
            scan.held = not run.catch_up and held_until is not None and held_until > run.now
        scans = [scan for scan in scans if not scan.held]
        if self.out_of_listing_time():
            return
        stop_at = self.listing_reserve + self.run.safety_margin
        seconds = self.budget.remaining() - self.listing_reserve
        listings = _Listings(len(scans), lambda i: self.list_scope(scans[i], stop_at))
        found = listings.wait(self.out_of_listing_time)
        for index, scan in enumerate(scans):
            outcome = found.get(index)
            if isinstance(outcome, str):
                scan.unreachable = outcome
            elif outcome is not None:
                scan.found = outcome
                self.budget.note("list", outcome.seconds, outcome.listing.pages)
            else:
                scan.unreachable = (
                    f"the listing did not finish in the {seconds:.0f} s the run gives "
                    "listing (the endpoint is slow or not answering)"
                    if index in listings.started
                    else "the listing did not start: other scopes' listings held every thread"
                )
                logger.error(
                    "scope listing unfinished",
                    extra={"scope": scan.scope.key, "error": scan.unreachable},
                )

    def list_scope(self, scan: _ScopeScan, stop_at: float) -> _ScopeListing | str:
        """One scope's reads, in its own thread: its listing and the records it needs.

        Returns why, if the scope cannot be listed.
        """
        run, state = self.run, scan.state
        timer = _PageTimer(run.time_left, stop_at)
        try:
            listing = self.source.list_jobs(scan.scope, state.checkpoint, timer)
        except JobListingError as err:
            logger.error("scope unreachable", extra={"scope": scan.scope.key, "error": str(err)})
            return str(err)
        latest = latest_per_job(listing.jobs)
        # Between full reads, a poll compares only jobs updated near the watermark. A scope
        # still taking its baseline, or continuing a listing, compares everything it lists.
        steady = state.baseline_complete and not listing.resumed and state.watermark is not None
        full_read = full_read_due(state, run.now, FULL_READ_EVERY)
        checked = latest
        if steady and not full_read:
            checked = {
                arn: job
                for arn, job in latest.items()
                if needs_check(job, state.watermark, WATERMARK_MARGIN)
            }
        records = self.records.read(list(checked), everything=full_read)
        return _ScopeListing(listing, records, latest, checked, full_read, timer.spent())

    def plan(self, scan: _ScopeScan) -> None:
        """Decide a listed scope's jobs and write its silent baseline (in the run's thread)."""
        if scan.found is None:
            return
        found, run = scan.found, self.run
        scan.plan = plan_scope(
            found.checked.values(), found.records, scan.state, run.now, run.stuck_after
        )
        scan.baseline_written, scan.baseline_failed = self.write_baseline(scan.plan.baseline)

    def merge(self, scan: _ScopeScan) -> None:
        """Add one scope's part to the run's result (in the run's own thread)."""
        result, found = self.result, scan.found
        if scan.held:
            result.scopes_held.append(scan.scope.key)
            return
        result.first_run |= not scan.state.baseline_complete
        result.record_failures += scan.baseline_failed
        if scan.unreachable is not None:
            result.unreachable[scan.scope.place] = scan.unreachable
            return
        if found is None:
            result.listing_complete = False
            return
        listing = found.listing
        result.pages += listing.pages
        result.listing_complete &= listing.complete
        result.listing_resumed |= listing.resumed
        without_arn = sum(1 for job in listing.jobs if job.arn is None)
        if without_arn:
            logger.warning(
                "job summaries without an ARN cannot be tracked", extra={"count": without_arn}
            )
        result.jobs_without_arn += without_arn
        result.jobs_seen += len(found.latest)
        result.jobs_checked += len(found.checked)
        result.full_read |= found.full_read
        for outcome, count in scan.plan.skipped.items():
            logger.warning(
                "listed summaries that change nothing",
                extra={"kind": outcome.value, "count": count, "scope": scan.scope.key},
            )
        result.skipped.update(scan.plan.skipped)
        result.transitions += scan.plan.transitions
        self.loaded.update(found.records)
        for transition in scan.plan.transitions:
            self.place_of[transition.job.arn or ""] = scan.scope.place

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

        A storm is counted per scope ('account/region'): in a storming scope, people's
        channel gets one digest of that scope at the end, so that scope's claims are held
        until then, and each chunk leaves time for recording all of them. Other scopes'
        people hear each of their events as usual.
        """
        budget, result = self.budget, self.result
        digesting = storming_places(
            transitions,
            lambda t: self.place_of.get(t.job.arn or "", ""),
            [(c.name, c.wants) for c in self.channels if c.digest is not None],
            self.run.storm_threshold,
        )
        if digesting:
            result.storm = True
            result.storm_places = sorted({place for _, place in digesting})
            logger.warning(
                "storm: people get one digest per storming scope",
                extra={"transitions": len(transitions), "scopes": result.storm_places},
            )
        held: list[_Claimed] = []
        batches = chunks(transitions, CHUNK)
        for index, chunk in enumerate(batches):
            cost = budget.cost("write", 2 * len(chunk)) + budget.cost("publish", len(self.channels))
            # Held claims still need their digests and a record each before the deadline.
            digests = budget.cost("publish", len(digesting)) if held else 0
            finish = budget.cost("write", len(held)) + digests
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
            self.send(claimed)
            storming = {place for _, place in digesting}
            held += [item for item in claimed if item.place in storming]
            self.settle([item for item in claimed if item.place not in storming])
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
        self, chunk: Sequence[Transition], digesting: frozenset[tuple[str, str]]
    ) -> list[_Claimed]:
        """Render before claiming, for each channel that still needs it: a job that cannot
        be rendered is left unclaimed, alone. A channel digesting the job's scope gets it
        in the digest instead."""
        rendered = []
        for transition in chunk:
            arn = transition.job.arn or ""
            record = self.loaded.get(arn) or SnapshotItem(arn, None)
            place = self.place_of.get(arn, "")
            events = {
                c.name: self.event(transition, record.previous_for(c.name))
                for c in self.channels
                if c.wants(transition) and not record.has(c.name, transition)
            }
            try:
                messages = {
                    c.name: c.publisher.render(events[c.name])
                    for c in self.channels
                    if c.name in events and (c.name, place) not in digesting
                }
            except (ValueError, TypeError):
                self.result.publish_failures += 1
                logger.exception(
                    "could not render; left for the next poll", extra=_job_log(transition)
                )
                continue
            rendered.append(_Claimed(transition, record, events, messages, place))
        return rendered

    def event(self, transition: Transition, previous: str | None) -> JobEvent:
        """The event as a channel that last heard `previous` must hear it."""
        return job_event(
            replace(transition, previous_status=previous), self.run.region, self.run.now
        )

    def claim(self, rendered: Sequence[_Claimed]) -> list[_Claimed]:
        run, result = self.run, self.result
        claimed = []
        for item in rendered:
            transition = item.transition
            now = run.clock()
            # The lease is this run's deadline as it stands now, plus a margin.
            item.expires_at = now + run.time_left() + CLAIM_MARGIN_SECONDS
            try:
                with self.budget.measure("write"):
                    self.store.claim(transition, run.run_id, now, item.expires_at)
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
            claimed.append(item)
        return claimed

    def still_held(self, items: Sequence[_Claimed]) -> list[_Claimed]:
        """The items whose lease outlasts one more send, however slow; the others have
        lapsed (a run that overran, a laptop that slept) and are never sent again."""
        latest_end = self.run.clock() + self.run.safety_margin
        for item in items:
            if not item.lapsed and item.expires_at <= latest_end:
                item.lapsed = True
                logger.warning(
                    "claim lapsing before the send; left to the poll that takes it over",
                    extra=_job_log(item.transition),
                )
        return [item for item in items if not item.lapsed]

    def send(self, claimed: Sequence[_Claimed]) -> None:
        for channel in self.channels:
            todo = self.still_held([item for item in claimed if channel.name in item.messages])
            if not todo:
                continue
            with self.budget.measure("publish"):
                failed = channel.publisher.send([item.messages[channel.name] for item in todo])
            for position, item in enumerate(todo):
                if position in failed:
                    item.errors[channel.name] = failed[position]
                else:
                    item.sent.add(channel.name)

    def send_digests(self, held: Sequence[_Claimed], digesting: frozenset[tuple[str, str]]) -> None:
        """One digest per people channel and storming scope, of everything it needs there;
        it goes or fails whole."""
        for channel in self.channels:
            assert channel.digest is not None or not any(n == channel.name for n, _ in digesting)
            for name, place in sorted(digesting):
                if name != channel.name or channel.digest is None:
                    continue
                todo = self.still_held(
                    [i for i in held if i.place == place and channel.name in i.events]
                )
                if not todo:
                    continue
                digest = channel.digest([item.events[channel.name] for item in todo])
                with self.budget.measure("publish"):
                    failed = channel.publisher.send([digest])
                for item in todo:
                    if failed:
                        item.errors[channel.name] = failed[0]
                    else:
                        item.sent.add(channel.name)

    def settle(self, claimed: Sequence[_Claimed]) -> None:
        """Record what every channel got; release what some channel did not, for the next
        poll."""
        for item in claimed:
            if item.lapsed:
                self.result.claims_lost += 1
                self.release(item)  # only if no other poll has taken it over since
            elif item.errors:
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
                self.store.release(transition, self.run.run_id, item.delivered())
        except ClaimLostError:
            logger.warning("claim already taken over by another poll", extra=_job_log(transition))
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
    listing = scan.found.listing if scan.found is not None else None
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
        assert scan.found is not None
        watermark = latest_update(scan.found.latest.values(), run.now)
        if watermark is not None and scan.plan.watermark_cap is not None:
            watermark = min(watermark, scan.plan.watermark_cap)
        if watermark is not None and (state.watermark is None or watermark > state.watermark):
            next_state = replace(next_state, watermark=watermark)
        if scan.found.full_read:
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
