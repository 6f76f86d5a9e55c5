"""One poll, in phases that pass each other plain data: every scope is listed at once
(scanning.ScopeScan), planned against its records (plan.ScopePlan), its transitions
delivered (delivery.Pending), and where each scope stands is stored (plan.next_state)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from job_events.vocabulary import DEFAULT_STORM_THRESHOLD, EventType
from poller.aws import DELIVERY_LIMITS
from poller.budget import Budget, Cost
from poller.delivery import Channel, Pipeline, deliver
from poller.errors import SnapshotError
from poller.models import Scope, ScopeState
from poller.plan import (
    ScopeRun,
    believable,
    delivery_order,
    needs_catch_up,
    next_state,
    plan_scope,
    watermark_of,
)
from poller.scanning import ListingPhase, RecordReader, ScopeScan, list_scopes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from poller.models import Record, Transition
    from poller.ports import JobSource, SnapshotStore
    from poller.rules import Outcome

logger = Logger(child=True)

LISTING_SHARE = 0.6  # listing stops once it has used this share of the run's time
BASELINE_CHUNK = 25  # one BatchWriteItem
# Kept in hand at every step: the worst case of one delivery call, so a call that the
# budget allowed ends before the deadline however slowly AWS answers.
SAFETY_MARGIN_SECONDS = DELIVERY_LIMITS.worst_case_seconds + 2


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
    # Scopes watched but known unusable before listing (scope key -> why): a member
    # account whose StackSet instance failed. Named, not listed; still watched.
    unusable: Mapping[str, str] = field(default_factory=dict)
    discovery_stale: str | None = None  # why the member accounts are an earlier answer


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
    scopes_dropped: list[str] = field(default_factory=list)  # watched last run, not now
    # Scopes whose listing cannot finish across scheduled runs (its checkpoint expired, and
    # it stopped short again): a catch-up run must list them. Held for it from now.
    catch_up: list[Scope] = field(default_factory=list)
    scopes_held: list[str] = field(default_factory=list)  # left to a catch-up run going on
    jobs_checked: int = 0  # jobs compared with their record
    full_read: bool = False
    skipped: Counter[Outcome] = field(default_factory=Counter)
    discovery_stale: str | None = None  # the member accounts are an earlier answer: why

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


def poll(
    source: JobSource, store: SnapshotStore, channels: Sequence[Channel], run: PollRun
) -> PollResult:
    """Run one poll and report what happened; the caller fails the run on failures.

    Every phase asks the budget before it spends time.
    """
    return _Poll(source, store, channels, run).execute()


class _Poll:
    def __init__(
        self, source: JobSource, store: SnapshotStore, channels: Sequence[Channel], run: PollRun
    ) -> None:
        self.source, self.store, self.channels, self.run = source, store, channels, run
        self.budget = Budget(run.time_left, run.safety_margin)
        self.result = PollResult(discovery_stale=run.discovery_stale)
        self.stored: dict[Scope, ScopeState] = {}
        self.records: dict[str, Record] = {}  # read for the scopes listed, by job ARN
        self.place_of: dict[str, str] = {}  # job ARN -> its scope's 'account/region'

    def execute(self) -> PollResult:
        run, result = self.run, self.result
        self.stored, states = starting_states(self.store, run, result)
        scans = [ScopeScan(scope, states[scope]) for scope in run.scopes]
        self.list_scopes(scans)
        for scan in scans:
            self.plan(scan)
            _count(result, scan)
            self.records.update(scan.found.records if scan.found else {})
            self.place_of.update(dict.fromkeys(_arns(scan.plan.transitions), scan.scope.place))
        if not result.listing_complete:
            logger.warning("listing stopped early for the deadline", extra={"pages": result.pages})
        pipeline = Pipeline(
            run,
            self.source,
            self.store,
            self.channels,
            self.budget,
            result,
            self.records,
            self.place_of,
        )
        deliver(pipeline, delivery_order(result.transitions))
        for scan in scans:
            self.save(scan)
        return result

    # --- where each scope stands -----------------------------------------------------------
    def save(self, scan: ScopeScan) -> None:
        """Store where a scope stands now, if that changed."""
        run, result = self.run, self.result
        if scan.held:
            return
        if scan.unreachable is not None:
            if scan.scope not in self.stored:
                # Watching began now, reached or not: jobs created from here on are new,
                # however late the scope can first be listed.
                self.store.save_scope(scan.scope, scan.state, run.now)
            return
        found = scan.found
        scope_run = (
            None
            if found is None
            else ScopeRun(
                found.listing,
                watermark_of(found.latest.values(), scan.plan, run.now),
                found.full_read,
                scan.baseline_written,
            )
        )
        state = next_state(
            scan.state, scope_run, run.now, delivered_all=result.delivered_all, clean=result.clean
        )
        state = replace(state, catch_up_until=self.hold(scan))
        if not state.baseline_complete:
            result.baseline_polls = max(result.baseline_polls, state.baseline_polls)
        elif not scan.state.baseline_complete:
            logger.info("baseline complete", extra={"scope": scan.scope.key})
        if state != scan.state:
            self.store.save_scope(scan.scope, state, run.now)

    def hold(self, scan: ScopeScan) -> datetime | None:
        """Until when a catch-up run lists this scope. One is asked for when its listing
        cannot finish across scheduled runs; a catch-up run ends its own hold."""
        run = self.run
        if run.catch_up:
            return None
        if scan.found is None or not needs_catch_up(scan.found.listing):
            return scan.state.catch_up_until
        if run.catch_up_seconds is None:
            return None
        logger.warning(
            "the listing cannot finish across scheduled runs: a catch-up run lists it",
            extra={"scope": scan.scope.key},
        )
        self.result.catch_up.append(scan.scope)
        return run.now + timedelta(seconds=run.catch_up_seconds)

    # --- listing and planning --------------------------------------------------------------
    def list_scopes(self, scans: Sequence[ScopeScan]) -> None:
        """Every scope not held by a catch-up run, at once, within the listing's share of
        the run; the rest of the run is for baseline writes and deliveries."""
        run, budget = self.run, self.budget
        for scan in scans:
            _set_aside(scan, run)
        reserve = budget.remaining() * (1 - LISTING_SHARE)
        if not budget.allows(reserve):
            return
        phase = ListingPhase(
            run.now,
            run.time_left,
            stop_at=reserve + run.safety_margin,
            over=lambda: not budget.allows(reserve),
            seconds=budget.remaining() - reserve,
        )
        listed = [scan for scan in scans if not scan.held and scan.unreachable is None]
        list_scopes(listed, self.source, RecordReader(self.store), phase)
        for scan in listed:
            if scan.found is not None:
                budget.note(Cost.LIST, scan.found.seconds, scan.found.listing.pages)

    def plan(self, scan: ScopeScan) -> None:
        """Decide a listed scope's jobs and write its silent baseline (in the run's thread)."""
        if scan.found is None:
            return
        found, run = scan.found, self.run
        scan.plan = plan_scope(
            found.checked.values(), found.records, scan.state, run.now, run.stuck_after
        )
        scan.baseline_written, scan.baseline_failed = write_baseline(
            self.store, self.budget, scan.plan.baseline, run.now
        )


def starting_states(
    store: SnapshotStore, run: PollRun, result: PollResult
) -> tuple[dict[Scope, ScopeState], dict[Scope, ScopeState]]:
    """Each scope's stored state, and where it stands for this run.

    A scope the previous run did not watch starts a fresh, silent baseline, whatever its
    old marker says: what it did while unwatched is not news. (A scope watched but
    unreachable keeps its marker: what it did is.)
    """
    markers = store.load_scopes(run.scopes)
    stored = markers.states
    if run.catch_up:
        return stored, _catching_up(store, run, stored)
    for scope in _rewatched(stored, markers.watched):
        logger.warning("scope watched again: a fresh baseline", extra={"scope": scope.key})
        # One write: a run that dies after it still finds the fresh baseline.
        stored[scope] = ScopeState(baseline_started_at=run.now, rewatched=True)
        store.reset_scope(scope, stored[scope])
        result.scopes_rewatched.append(scope.key)
    keys = frozenset(scope.key for scope in run.scopes)
    if keys and markers.watched != keys:
        # After the resets, before listing: a run that dies later still knows these scopes
        # are watched. (A run watching nothing leaves the set as it was.)
        store.save_watched(keys)
        # Named once, by the run that stops watching them (an account that left, say).
        result.scopes_dropped = sorted((markers.watched or keys) - keys)
        if result.scopes_dropped:
            logger.warning("scopes no longer watched", extra={"scopes": result.scopes_dropped})
    return stored, {scope: believable(stored.get(scope), run.now) for scope in run.scopes}


def _catching_up(
    store: SnapshotStore, run: PollRun, stored: dict[Scope, ScopeState]
) -> dict[Scope, ScopeState]:
    """A catch-up run's scopes, each held until this run's end: only scheduled runs decide
    what is watched, and none of them lists these scopes meanwhile."""
    until = run.now + timedelta(seconds=run.time_left())
    states = {}
    for scope in run.scopes:
        state = replace(believable(stored.get(scope), run.now), catch_up_until=until)
        store.save_scope(scope, state, run.now)
        stored[scope] = states[scope] = state
    return states


def _set_aside(scan: ScopeScan, run: PollRun) -> None:
    """Leave a scope unlisted if a catch-up run holds it, or name it if it is known to be
    unusable (its member account's StackSet instance failed)."""
    until = scan.state.catch_up_until
    scan.held = not run.catch_up and until is not None and until > run.now
    scan.unreachable = None if scan.held else run.unusable.get(scan.scope.key)


def _rewatched(stored: dict[Scope, ScopeState], watched: frozenset[str] | None) -> list[Scope]:
    """Scopes with a marker that the last scheduled run did not watch. Without a record of
    what it watched (a first run of this version), every marker is trusted."""
    return [] if watched is None else [scope for scope in stored if scope.key not in watched]


def _arns(transitions: Sequence[Transition]) -> list[str]:
    return [transition.job.arn or "" for transition in transitions]


def _count(result: PollResult, scan: ScopeScan) -> None:
    """Add one scope's part to the run's result."""
    if scan.held:
        result.scopes_held.append(scan.scope.key)
        return
    result.first_run |= not scan.state.baseline_complete
    result.record_failures += scan.baseline_failed
    if scan.unreachable is not None:
        result.unreachable[scan.scope.place] = scan.unreachable
        return
    if scan.found is None:
        result.listing_complete = False
        return
    _count_listed(result, scan)


def _count_listed(result: PollResult, scan: ScopeScan) -> None:
    assert scan.found is not None
    found, listing = scan.found, scan.found.listing
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


def write_baseline(
    store: SnapshotStore, budget: Budget, items: Sequence[Record], now: datetime
) -> tuple[bool, bool]:
    """Record jobs that existed before watching began, silently.

    Returns whether all were written, and whether a write failed; time running out is not
    a failure.
    """
    for start in range(0, len(items), BASELINE_CHUNK):
        if not budget.allows(budget.cost(Cost.WRITE_BATCH)):
            logger.warning(
                "deadline near: the baseline continues next run",
                extra={"recorded": start, "left": len(items) - start},
            )
            return False, False
        try:
            with budget.measure(Cost.WRITE_BATCH):
                store.write_baseline(items[start : start + BASELINE_CHUNK], now)
        except SnapshotError:
            logger.exception("could not record the baseline; it continues next run")
            return False, True
    if items:
        logger.info("recorded existing jobs without notifying", extra={"jobs": len(items)})
    return True, False
