"""The listing phase: every scope's listing at once, each in a thread of its own that only
reads (its pages and the records it needs), waited for only until the phase ends.

A scope whose endpoint hangs is left behind and named; the run goes on with the others.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from poller.aws import MAX_SCOPE_THREADS
from poller.errors import JobListingError
from poller.plan import ScopePlan
from poller.rules import full_read_due, latest_per_job, needs_check

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from poller.models import JobSummary, Record, Scope, ScopeState
    from poller.ports import JobSource, Listing, SnapshotStore

logger = Logger(child=True)

WATERMARK_MARGIN = timedelta(minutes=15)
FULL_READ_EVERY = timedelta(hours=1)
LOAD_ALL_ABOVE = 500  # more records to read than this: one paged Query beats BatchGetItem
# How often the run looks up from waiting for its scopes' listings: the listing phase ends
# on time even when the clock is not the wall's (a scripted one in tests).
WAIT_SLICE_SECONDS = 0.05
# A listing stops by itself just before the listing phase ends, and may still be handing
# over its last page then: it gets this much longer before its scope is named unfinished.
LATE_LISTING_GRACE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ScopeListing:
    """What one scope's thread found: its listing and the records it needs. Reads only, so
    a thread the run stopped waiting for can finish later without touching anything."""

    listing: Listing
    records: dict[str, Record]
    latest: dict[str, JobSummary]
    checked: dict[str, JobSummary]  # the jobs to compare with their record
    full_read: bool
    seconds: float  # time spent, for the run's budget (noted in the run's thread)


@dataclass(slots=True)
class ScopeScan:
    """One scope's part of a run: listed in a thread of its own, planned in the run's."""

    scope: Scope
    state: ScopeState
    found: ScopeListing | None = None  # None: unlisted (no time left, or unreachable)
    unreachable: str | None = None  # why the scope could not be listed
    plan: ScopePlan = field(default_factory=ScopePlan)
    baseline_written: bool = True
    baseline_failed: bool = False
    held: bool = False  # a catch-up run is listing it: this run leaves it alone


@dataclass(frozen=True, slots=True)
class ListingPhase:
    """What the listing threads are given: when the run is, and when listing must stop."""

    now: datetime
    time_left: Callable[[], float]  # seconds before the run must have stopped
    stop_at: float  # time_left at which a listing takes no further page
    over: Callable[[], bool]  # whether the run has stopped waiting for listings
    seconds: float  # how long the phase is, for the reason a scope is named


class RecordReader:
    """Reads records for a run: the whole table at most once, else only what is asked."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self._all: dict[str, Record] | None = None
        self._lock = threading.Lock()  # scopes read from their own threads

    def read(self, arns: Sequence[str], everything: bool) -> dict[str, Record]:
        with self._lock:
            if self._all is None and (everything or len(arns) > LOAD_ALL_ABOVE):
                self._all = self._store.load_all()
            every = self._all
        if every is not None:
            return {arn: every[arn] for arn in arns if arn in every}
        return self._store.load(arns) if arns else {}


class PageTimer:
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


class ParallelListings:
    """Work on every scope at once, in daemon threads, waited for only until a deadline."""

    def __init__(self, count: int, work: Callable[[int], ScopeListing | str]) -> None:
        self._work = work
        self._todo = list(range(count))
        self._done: dict[int, ScopeListing | str] = {}
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
        while (index := self._next()) is not None:
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

    def _next(self) -> int | None:
        with self._lock:
            if not self._todo:
                return None
            index = self._todo.pop(0)
            self.started.add(index)
            return index

    def wait(self, over: Callable[[], bool]) -> dict[int, ScopeListing | str]:
        """What finished by the time every scope is done or `over()` says to stop; each
        outcome is a listing, or why the scope could not be listed."""
        while not self._all_done.wait(WAIT_SLICE_SECONDS) and not over():
            pass
        self._all_done.wait(LATE_LISTING_GRACE_SECONDS)
        with self._lock:
            self._todo.clear()  # scopes not started yet are left for the next run
            return dict(self._done)


def list_scopes(
    scans: Sequence[ScopeScan], source: JobSource, records: RecordReader, phase: ListingPhase
) -> None:
    """List every scope at once: a run takes about as long as its slowest scope, and no
    longer than the listing phase. A scope still listing when it ends is named, and kept
    where it stood for the next run."""
    listings = ParallelListings(
        len(scans), lambda index: read_scope(scans[index], source, records, phase)
    )
    found = listings.wait(phase.over)
    for index, scan in enumerate(scans):
        outcome = found.get(index)
        if isinstance(outcome, str):
            scan.unreachable = outcome
        elif outcome is not None:
            scan.found = outcome
        else:
            scan.unreachable = _unfinished(index in listings.started, phase.seconds)
            logger.error(
                "scope listing unfinished",
                extra={"scope": scan.scope.key, "error": scan.unreachable},
            )


def _unfinished(started: bool, seconds: float) -> str:
    if not started:
        return "the listing did not start: other scopes' listings held every thread"
    return (
        f"the listing did not finish in the {seconds:.0f} s the run gives listing "
        "(the endpoint is slow or not answering)"
    )


def read_scope(
    scan: ScopeScan, source: JobSource, records: RecordReader, phase: ListingPhase
) -> ScopeListing | str:
    """One scope's reads, in its own thread: its listing and the records it needs.

    Returns why, if the scope cannot be listed.
    """
    state = scan.state
    timer = PageTimer(phase.time_left, phase.stop_at)
    try:
        listing = source.list_jobs(scan.scope, state.checkpoint, timer)
    except JobListingError as err:
        logger.error("scope unreachable", extra={"scope": scan.scope.key, "error": str(err)})
        return str(err)
    latest = latest_per_job(listing.jobs)
    # Between full reads, a poll compares only jobs updated near the watermark. A scope
    # still taking its baseline, or continuing a listing, compares everything it lists.
    steady = state.baseline_complete and not listing.resumed and state.watermark is not None
    full_read = full_read_due(state, phase.now, FULL_READ_EVERY)
    checked = latest
    if steady and not full_read:
        checked = {
            arn: job
            for arn, job in latest.items()
            if needs_check(job, state.watermark, WATERMARK_MARGIN)
        }
    found = records.read(list(checked), everything=full_read)
    return ScopeListing(listing, found, latest, checked, full_read, timer.spent())
