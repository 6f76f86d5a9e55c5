"""The delivery promise, as a stateful property test.

Hypothesis plays long random histories over four scopes in three places (two accounts,
two regions; two of the scopes are solution versions in the same place): jobs are created
(in any status) and move forward, time passes, scopes are added to the watch list,
removed from it and added back, and polls run, each with at most one fault: a failed
listing, a failed publish, a slow or failing Describe, a throttled table write, a claim
held by another poll, a short deadline, an overlapping poll, an odd listing, one place
unreachable, or pages so slow that a listing spans runs. Some actions play a whole
episode: a storm in one place, a first delivery that partly fails before a lagging
listing, a baseline taken over several runs while jobs move, a summary dated far ahead, a
scope left unwatched for a while. After every step the invariants below must hold for
what each channel has received. They are the product's promise (README, "How it
behaves"), numbered as there, across every scope:

- what a poll could not list (an unwatched scope, an unreachable place) is never heard;
- watching begins again when a scope left out of a poll is added back, and only then:
  what a job did before its scope's watching (last) began is not news, what it did since
  is, with previousStatus null only for a job no poll had recorded a status of;
- a storm is counted per place (7.): people get one digest per storming place and hear
  every other place's events one by one;
- once fault-free polls settle, every reachable scope is current whichever place is
  unreachable, and one more poll with nothing to announce makes no table write.

Scopes are listed in threads at once; ParallelClock keeps the scripted time of each
listing apart, so a history always plays the same way.

`make test` runs a bounded number of histories; `make soak` runs many more.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import event as reached
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from job_events.vocabulary import EventType
from poller.errors import JobListingError
from poller.models import JobSummary, Scope
from poller.poll import SAFETY_MARGIN_SECONDS, PollResult, PollRun, poll
from poller.rules import LISTING_LAG, classify, is_stuck

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from job_events.event import JobEvent
    from poller.ports import Listing

from tests.fakes import (
    START,
    Heard,
    MemorySource,
    ScriptedClock,
    solution_version_arn,
)
from tests.world import World

STUCK_AFTER = timedelta(hours=1)
STORM_THRESHOLD = 3
RUN_SECONDS = 60.0
SHORT_RUN_SECONDS = SAFETY_MARGIN_SECONDS + 6  # a few seconds beyond the safety margin
PAGE_SIZE = 3
SLOW_PAGE_SIZE, SLOW_PAGE_SECONDS = 1, 8.0  # two pages per scope fit in a run's listing
FAR_AHEAD = timedelta(days=365)

PROD, DEV = "111111111111", "222222222222"
EAST, WEST = "us-east-1", "eu-west-1"
FIRST = solution_version_arn("first", DEV, EAST)
SECOND = solution_version_arn("second", DEV, EAST)
NAMED_SCOPES = {
    Scope(None, PROD, EAST): "prod/east",
    Scope(None, PROD, WEST): "prod/west",
    Scope(FIRST, DEV, EAST): "dev/east first",  # two solution versions in one place
    Scope(SECOND, DEV, EAST): "dev/east second",
}
SCOPES = tuple(NAMED_SCOPES)
PLACES = tuple(sorted({scope.place for scope in SCOPES}))
STATUSES = ("PENDING", "IN PROGRESS", "ACTIVE", "CREATE FAILED")
NEXT = {
    "PENDING": ("IN PROGRESS", "ACTIVE", "CREATE FAILED"),
    "IN PROGRESS": ("ACTIVE", "CREATE FAILED"),
}
CHANNELS = ("sns", "events", "people")
EVERY_EVENT = ("sns", "events")  # channels without a filter: previousStatus is exact there


class Fault(Enum):
    NONE = "none"
    LISTING_THROTTLED = "listing throttled past its retries"
    PAGE_FAILS = "the second page fails"
    PUBLISH_ONE_CHANNEL = "one job's publish fails on one channel"
    PUBLISH_ALL_CHANNELS = "one job's publish fails on every channel"
    DESCRIBE_FAILS = "Describe fails"
    DESCRIBE_SLOW = "Describe takes 20 s"
    WRITE_THROTTLED = "a table write is throttled past its retries"
    CLAIM_HELD = "another poll holds one job's claim"
    SHORT_DEADLINE = "the deadline is short"
    OVERLAP = "a second poll runs while the first publishes"
    NO_STATUS = "a summary without status"
    LAGGING = "a lagging (older) summary"
    FUTURE_TIME = "a summary dated a year ahead"
    NO_TIME = "a summary without lastUpdatedDateTime"
    BAD_UNICODE = "a lone surrogate in the name and reason"
    LISTED_TWICE = "a job listed twice"
    PLACE_UNREACHABLE = "one place's member role is denied"
    SLOW_LISTING = "pages take 8 s: listings span runs"


@dataclass
class Life:
    """What a job really did: its statuses, with the time of each."""

    arn: str
    scope: Scope
    history: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.history[-1][0]

    @property
    def created(self) -> datetime:
        return self.history[0][1]

    def status_at(self, when: datetime) -> str | None:
        at = [status for status, since in self.history if since <= when]
        return at[-1] if at else None

    def waited(self, status: str | None, now: datetime) -> timedelta:
        """How long the job stayed in `status` (until now, if it still is)."""
        ends = [since for _, since in self.history[1:]] + [now]
        spans = [
            end - since for (s, since), end in zip(self.history, ends, strict=True) if s == status
        ]
        return max(spans, default=timedelta(0))

    def statuses(self) -> list[str]:
        return [status for status, _ in self.history]

    def index(self, status: str | None) -> int:
        return [s for s, _ in self.history].index(status) if status is not None else -1


@dataclass(frozen=True)
class Epoch:
    """A span in which a scope was watched without a break, as the poller saw it: from the
    poll that began its baseline (numbered as the machine counts its polls)."""

    poll: int
    began: datetime  # the scope's baseline_started_at


class ParallelClock(ScriptedClock):
    """The scripted clock, for scopes listed at once in threads of their own.

    Each listing thread keeps its own time from where the run's listing phase began, and
    the shared clock moves on to the latest once every scope of the run has been listed:
    a run's listing takes as long as its slowest scope, as in AWS, and no thread's timing
    depends on how the threads happened to be scheduled, so a history always plays the same
    way (Hypothesis can replay and shrink it).
    """

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._own = threading.local()
        self._lock = threading.Lock()
        self._listings_left = 0
        self._ends: list[float] = []

    def time(self) -> float:
        own: float | None = getattr(self._own, "at", None)
        return self.seconds if own is None else own

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        if getattr(self._own, "at", None) is None:
            self.seconds += seconds
        else:
            self._own.at += seconds

    def expect_listings(self, count: int) -> None:
        """The next run lists this many scopes (if it has time to list at all)."""
        self._listings_left, self._ends = count, []

    def listings_left(self) -> int:
        return self._listings_left

    @contextmanager
    def listing(self) -> Iterator[None]:
        self._own.at = self.seconds
        try:
            yield
        finally:
            with self._lock:
                self._ends.append(self._own.at)
                self._listings_left -= 1
                if not self._listings_left:
                    self.seconds = max(self._ends)


class ParallelSource(MemorySource):
    """MemorySource whose listings each keep their own time (see ParallelClock)."""

    def __init__(self, clock: ParallelClock) -> None:
        super().__init__(clock, page_size=PAGE_SIZE)
        self.parallel = clock

    def list_jobs(
        self, scope: Scope, resume_from: str | None, should_stop: Callable[[], bool]
    ) -> Listing:
        with self.parallel.listing():
            return super().list_jobs(scope, resume_from, should_stop)


class DeliveryPromise(RuleBasedStateMachine):
    polls_run = 0  # across every history of the session

    def __init__(self) -> None:
        super().__init__()
        # The unit tests' one scripted world, on a clock that lets threads list in turn.
        self.clock = ParallelClock(START)
        self.source = ParallelSource(self.clock)
        self.world = World(
            PAGE_SIZE,
            STORM_THRESHOLD,
            clock=self.clock,
            source=lambda _clock: self.source,
            stuck_after=STUCK_AFTER,
            safety=SAFETY_MARGIN_SECONDS,
        )
        self.store = self.world.store
        self.publishers, self.channels = self.world.publishers, self.world.channels
        self.people = next(c for c in self.channels if c.name == "people")
        self.watched: list[Scope] = list(SCOPES[:3])
        self.epochs: dict[Scope, list[Epoch]] = {}  # per scope, since it was first polled
        self.absent: set[Scope] = set()  # watched once, then left out of a poll
        self.lives: dict[str, Life] = {}
        self.story: list[str] = []
        self.polls = 0
        self.may_repeat: set[str] = set()  # jobs a failed write after a publish may repeat
        # Jobs whose current status a poll may have listed without a believable update time
        # (none, or far ahead): whether they moved before or after watching began is hidden.
        self.hidden: set[str] = set()
        self.heard_in: dict[str, list[int]] = {name: [] for name in CHANNELS}  # poll per event
        self.last_result: PollResult | None = None
        self.results: list[PollResult] = []  # this poll's, and an overlapping poll's

    # --- the world ---------------------------------------------------------------------
    @initialize()
    def start(self) -> None:
        self.story.append(f"watching {self._labels(self.watched)}")

    @rule(status=st.sampled_from(STATUSES), scope=st.sampled_from(SCOPES))
    def create_job(self, status: str, scope: Scope) -> None:
        self._create(status, scope)

    @precondition(lambda self: any(life.status in NEXT for life in self.lives.values()))
    @rule(data=st.data())
    def move_job(self, data: st.DataObject) -> None:
        moving = [life for life in self.lives.values() if life.status in NEXT]
        self._move(data, data.draw(st.sampled_from(moving)))

    @rule(minutes=st.integers(min_value=1, max_value=90))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes * 60)
        self.story.append(f"{minutes} min pass")

    @precondition(lambda self: len(self.watched) < len(SCOPES))
    @rule(data=st.data())
    def watch_a_scope(self, data: st.DataObject) -> None:
        self._watch(data.draw(st.sampled_from([s for s in SCOPES if s not in self.watched])))

    @precondition(lambda self: len(self.watched) > 1)
    @rule(data=st.data())
    def unwatch_a_scope(self, data: st.DataObject) -> None:
        self._unwatch(data.draw(st.sampled_from(self.watched)))

    def _create(self, status: str, scope: Scope, **fields: Any) -> str:
        name = f"job-{len(self.lives)}"
        assert scope.account_id is not None
        assert scope.region is not None
        arn = self.source.put(
            name,
            status,
            solution_version=scope.solution_version_arn,
            account=scope.account_id,
            region=scope.region,
            failureReason="bad input" if "FAILED" in status else None,
            **fields,
        )
        self.source.details[arn] = {
            "jobOutput": {"s3DataDestination": {"path": f"s3://out/{name}/"}}
        }
        self.lives[arn] = Life(arn, scope, [(status, self.clock.now())])
        self.story.append(f"{name} created {status} in {NAMED_SCOPES[scope]}")
        return arn

    def _move(self, data: st.DataObject, life: Life) -> None:
        status = data.draw(st.sampled_from(NEXT[life.status]))
        self.source.move(
            life.arn, status, **({"failureReason": "out of capacity"} if "FAILED" in status else {})
        )
        life.history.append((status, self.clock.now()))
        self.hidden.discard(life.arn)
        self.story.append(f"{_name(life.arn)} moved to {status}")

    def _watch(self, scope: Scope) -> None:
        self.watched = [s for s in SCOPES if s in self.watched or s == scope]
        self.story.append(f"now watching {self._labels(self.watched)}")

    def _unwatch(self, scope: Scope) -> None:
        self.watched.remove(scope)
        self.story.append(f"now watching {self._labels(self.watched)}")

    # --- episodes ------------------------------------------------------------------------
    @precondition(lambda self: len({scope.place for scope in self.watched}) > 1)
    @rule(data=st.data())
    def storm_in_one_place(self, data: st.DataObject) -> None:
        """More finished jobs than the threshold in one place, a few in another: people get
        one digest of the first place, and hear each event of the other."""
        stormy = data.draw(st.sampled_from(self.watched))
        calm = data.draw(st.sampled_from([s for s in self.watched if s.place != stormy.place]))
        count = data.draw(st.integers(STORM_THRESHOLD + 1, STORM_THRESHOLD + 3))
        finished = st.sampled_from(("ACTIVE", "CREATE FAILED"))
        for _ in range(count):
            self._create(data.draw(finished), stormy)
        for _ in range(data.draw(st.integers(1, 2))):
            self._create(data.draw(finished), calm)
        marker = self.store.scopes.get(stormy)
        from_the_top = marker is not None and marker.checkpoint is None
        from_the_top &= stormy not in self.absent  # else a fresh baseline: silent
        self.clock.advance(60)
        result = self._poll(Fault.NONE)
        if from_the_top and result is not None:
            assert stormy.place in result.storm_places, self._told(
                f"{count} jobs finished in {stormy.place}: no storm"
            )

    @precondition(lambda self: bool(self.watched))
    @rule(data=st.data())
    def first_delivery_partly_fails_then_listing_lags(self, data: st.DataObject) -> None:
        """A job created after watching began moves; its first announcement reaches all but
        one channel, and the listings after it lag (they show the status before the move).
        No channel may hear it twice or backwards. Sometimes its scope is then left unwatched
        for a while, the retry still pending, and the job moves meanwhile: not news."""
        scope = data.draw(st.sampled_from(self.watched))
        arn = self._create(data.draw(st.sampled_from(tuple(NEXT))), scope)
        self.clock.advance(60)
        self._move(data, self.lives[arn])
        self.clock.advance(1)
        self._poll(Fault.PUBLISH_ONE_CHANNEL, arn, channel=data.draw(st.sampled_from(CHANNELS)))
        for _ in range(data.draw(st.integers(1, 2))):
            self.clock.advance(30)
            lagged = self._poll(Fault.LAGGING, arn)
            if lagged is not None and lagged.skipped:
                reached("a lagging listing after a partly failed first delivery: skipped")
        if len(self.watched) > 1 and data.draw(st.booleans()):
            self._unwatched_for_a_while(data, scope, mover=self.lives[arn])

    @rule(data=st.data())
    def baseline_over_several_runs(self, data: st.DataObject) -> None:
        """A scope begins (again) with jobs it never saw, and its baseline takes several
        slow runs while its jobs move: a move after the baseline began is news."""
        scope = data.draw(st.sampled_from(SCOPES))
        if scope in self.watched and len(self.watched) > 1:
            self._unwatch(scope)
            self.clock.advance(1)
            self._poll(Fault.NONE)
        for _ in range(data.draw(st.integers(3, 6))):
            self._create(data.draw(st.sampled_from(STATUSES)), scope)
        self.clock.advance(60 * data.draw(st.integers(1, 30)))
        if scope not in self.watched:
            self._watch(scope)
        for _ in range(data.draw(st.integers(2, 4))):
            self.clock.advance(1)
            self._poll(Fault.SLOW_LISTING)
            moving = [v for v in self.lives.values() if v.scope == scope and v.status in NEXT]
            if data.draw(st.booleans()) and moving:
                self._move(data, data.draw(st.sampled_from(moving)))
            self.clock.advance(60 * data.draw(st.integers(1, 10)))

    @precondition(lambda self: len(self.watched) > 1)
    @rule(data=st.data())
    def scope_unwatched_for_a_while(self, data: st.DataObject) -> None:
        """A scope is left out of the watch list while polls run and its jobs move, then
        added back: nothing it did meanwhile is news; what it does from then on is."""
        self._unwatched_for_a_while(data, data.draw(st.sampled_from(self.watched)))

    def _unwatched_for_a_while(
        self, data: st.DataObject, scope: Scope, mover: Life | None = None
    ) -> None:
        """`scope` is left out of the watch list while polls run and its jobs move (`mover`
        first, if it still can), then added back."""
        self._unwatch(scope)
        for _ in range(data.draw(st.integers(1, 3))):
            self.clock.advance(60 * data.draw(st.integers(1, 30)))
            self._poll(Fault.NONE)
            moving = [v for v in self.lives.values() if v.scope == scope and v.status in NEXT]
            if mover is not None and mover.status in NEXT:
                moving = [mover]
            what = data.draw(st.sampled_from(("create", "move", "nothing")))
            if what == "create":
                self._create(data.draw(st.sampled_from(STATUSES)), scope)
            elif what == "move" and moving:
                self._move(data, data.draw(st.sampled_from(moving)))
        self.clock.advance(60)
        self._watch(scope)

    @precondition(lambda self: bool(self.lives))
    @rule(data=st.data())
    def dated_far_ahead_then_settle(self, data: st.DataObject) -> None:
        """A job's summary says it was updated a year from now, until it next moves. It
        is no move, never passes the watermark, and a quiet poll still writes nothing."""
        life = data.draw(st.sampled_from(sorted(self.lives.values(), key=lambda v: v.arn)))
        summary = self.source.summaries[life.arn]
        summary["lastUpdatedDateTime"] = self.clock.now() + FAR_AHEAD
        self.hidden.add(life.arn)
        self.story.append(f"{_name(life.arn)} listed as updated a year ahead")
        self.quiet_polls_settle()

    # --- polls ---------------------------------------------------------------------------
    @rule(fault=st.sampled_from(Fault), pick=st.integers(min_value=0, max_value=50))
    def poll_runs(self, fault: Fault, pick: int) -> None:
        self.clock.advance(1)  # each poll sees a moment of its own
        arns = sorted(self.lives)
        target = arns[pick % len(arns)] if arns else None
        self._poll(fault, target, place=PLACES[pick % len(PLACES)])

    @rule()
    def quiet_polls_settle(self) -> None:
        """Fault-free polls, until one lists everything from the first page and finishes its
        work: then every channel is current, and one more poll with nothing to announce
        writes nothing."""
        self._settle(None)

    @rule(place=st.sampled_from(PLACES))
    def settle_with_a_place_unreachable(self, place: str) -> None:
        """As quiet_polls_settle, while one place cannot be listed: the other places catch
        up all the same, and nothing is heard of the unreachable one."""
        self._settle(place)

    def _settle(self, unreachable: str | None) -> None:
        fault = Fault.NONE if unreachable is None else Fault.PLACE_UNREACHABLE
        for _ in range(8):
            self.clock.advance(65)  # past the lease of a claim a failed write left behind
            ready = self._baselines_done(unreachable)
            result = self._poll(fault, place=unreachable)
            if result and result.clean and ready and not result.listing_resumed:
                break
        else:
            raise AssertionError(self._told("fault-free polls never finished their work"))
        self._assert_current(unreachable)
        writes = self.store.table_writes
        markers, items = dict(self.store.scopes), {a: repr(i) for a, i in self.store.items.items()}
        self.clock.advance(1)
        result = self._poll(fault, place=unreachable)
        # (A full read, due hourly, notes its time in the scope's marker.)
        if result is not None and not result.transitions and not result.full_read:
            reached(f"a quiet poll after settling{' (a place unreachable)' if unreachable else ''}")
            changed = [
                f"{NAMED_SCOPES[scope]}: {markers.get(scope)} -> {state}"
                for scope, state in self.store.scopes.items()
                if markers.get(scope) != state
            ] + [
                f"{_name(arn)}: {items.get(arn)} -> {item!r}"
                for arn, item in self.store.items.items()
                if items.get(arn) != repr(item)
            ]
            assert self.store.table_writes == writes, self._told(
                f"a poll with nothing to announce made {self.store.table_writes - writes} "
                f"table writes: {changed}"
            )

    def _baselines_done(self, unreachable: str | None) -> bool:
        """Whether every reachable scope's baseline was complete before the next poll."""
        for scope in self.watched:
            state = self.store.scopes.get(scope)
            if scope.place == unreachable:
                continue
            if state is None or not state.baseline_complete or scope in self.absent:
                return False
        return True

    def _poll(
        self,
        fault: Fault,
        target: str | None = None,
        *,
        channel: str | None = None,
        place: str | None = None,
    ) -> PollResult | None:
        self.polls += 1
        number = self.polls
        DeliveryPromise.polls_run += 1
        run_id = f"poll-{number}"
        seconds = SHORT_RUN_SECONDS if fault is Fault.SHORT_DEADLINE else RUN_SECONDS
        deadline = self.clock.time() + seconds
        unreachable = self._inject(fault, target, channel, place)
        about = ", ".join(x for x in (target and _name(target), channel, unreachable) if x)
        self.story.append(f"{run_id} ({fault.value}{f', {about}' if about else ''})")
        before = self.store.failed_writes[:]
        heard_before = {name: len(p.heard) for name, p in self.publishers.items()}
        statused = {a for a, item in self.store.items.items() if isinstance(item.status, str)}
        self.absent |= {scope for scope in self.epochs if scope not in self.watched}
        self.results = []
        try:
            result: PollResult | None = self._run_poll(run_id, deadline)
        except JobListingError:
            result = None
        finally:
            self._clear_faults()
        assert self.clock.time() <= deadline, self._told(f"{run_id} ran past its deadline")
        for operation, arn in self.store.failed_writes[len(before) :]:
            if operation in {"record", "release"}:
                self.may_repeat.add(arn)
        self._note_epochs(result, number)
        self._check_heard(heard_before, number, statused, unreachable)
        self._check_storms(heard_before["people"])
        if result is not None and result.unreachable and result.published:
            reached("one place unreachable while others delivered")
        if result is not None and result.listing_resumed and result.first_run:
            reached("a baseline continued from an earlier run's checkpoint")
        self.last_result = result
        return result

    def _run_poll(self, run_id: str, deadline: float) -> PollResult:
        self.clock.expect_listings(len(self.watched))
        result = poll(self.source, self.store, self.channels, self._run(run_id, deadline))
        # Every watched scope listed, or none (no time to list): else the clock never
        # moved on past the listing phase (ParallelClock), and this machine needs fixing.
        assert self.clock.listings_left() in {0, len(self.watched)}, "some scopes unlisted"
        self.results.append(result)
        return result

    def _run(self, run_id: str, deadline: float) -> PollRun:
        self.world.scopes = tuple(self.watched)
        return self.world.spec(deadline, run_id)

    def _inject(
        self, fault: Fault, target: str | None, channel: str | None, place: str | None
    ) -> str | None:
        """Set up the fault; returns the place made unreachable, if any."""
        faults = self.source.faults
        if fault is Fault.LISTING_THROTTLED:
            faults.fail_at_page = 1
        elif fault is Fault.PAGE_FAILS:
            faults.fail_at_page = 2
        elif fault is Fault.PLACE_UNREACHABLE and place is not None:
            faults.unreachable = {place}
            return place
        elif fault is Fault.SLOW_LISTING:
            self.source.page_size, faults.page_cost = SLOW_PAGE_SIZE, SLOW_PAGE_SECONDS
        elif fault is Fault.PUBLISH_ONE_CHANNEL:
            failing = channel or CHANNELS[len(self.story) % 3]
            self.publishers[failing].fails = lambda e: _about(e, target)
        elif fault is Fault.PUBLISH_ALL_CHANNELS:
            for publisher in self.publishers.values():
                publisher.fails = lambda e: _about(e, target)
        elif fault is Fault.DESCRIBE_FAILS:
            faults.describe_fails = True
        elif fault is Fault.DESCRIBE_SLOW:
            faults.describe_cost = 20.0
        elif fault is Fault.WRITE_THROTTLED:
            self.store.faults.failing_writes = {self.store.writes + 1 + len(self.story) % 4}
        elif fault is Fault.CLAIM_HELD and target is not None:
            item = self.store.items.get(target)
            if item is not None:
                item.claimed_by, item.claim_expires_at = "another-poll", self.clock.time() + 100
        elif fault is Fault.OVERLAP:
            self.publishers["sns"].on_publish = self._overlapping_poll
        elif target is not None:
            faults.odd = _odd_listing(fault, target, self.lives.get(target), self.clock.now())
            if fault in {Fault.FUTURE_TIME, Fault.NO_TIME}:
                self.hidden.add(target)
        return None

    def _overlapping_poll(self) -> None:
        self.polls += 1
        run_id = f"poll-{self.polls}"
        self.story.append(f"  {run_id} starts while the first publishes")
        self._run_poll(run_id, self.clock.time() + RUN_SECONDS)

    def _clear_faults(self) -> None:
        self.source.faults = type(self.source.faults)()
        self.source.page_size = PAGE_SIZE
        self.store.faults = type(self.store.faults)()
        for publisher in self.publishers.values():
            publisher.fails = lambda _e: False
            publisher.on_publish = None

    # --- after each poll -----------------------------------------------------------------
    def _note_epochs(self, result: PollResult | None, number: int) -> None:
        """Where each watched scope's watching began, from its marker; a scope left out of a
        poll and added back must begin again, and only such a scope."""
        rewatched = {scope.key for scope in self.watched if scope in self.absent}
        if rewatched:
            reached("a scope watched again after a poll without it")
        if result is not None:
            assert set(result.scopes_rewatched) == rewatched, self._told(
                f"scopes watched again: {result.scopes_rewatched}, expected {sorted(rewatched)}"
            )
        for scope in self.watched:
            state = self.store.scopes.get(scope)
            assert state is not None, self._told(f"{NAMED_SCOPES[scope]} has no marker")
            assert state.watermark is None or state.watermark <= self.clock.now(), self._told(
                f"{NAMED_SCOPES[scope]}'s watermark {state.watermark} is in the future"
            )
            epochs = self.epochs.setdefault(scope, [])
            if not epochs or epochs[-1].began != state.baseline_started_at:
                assert not epochs or scope.key in rewatched, self._told(
                    f"{NAMED_SCOPES[scope]}'s baseline began again, though always watched"
                )
                epochs.append(Epoch(number, state.baseline_started_at))
            self.absent.discard(scope)

    def _check_heard(
        self, before: dict[str, int], number: int, statused: set[str], unreachable: str | None
    ) -> None:
        for name, publisher in self.publishers.items():
            new = publisher.heard[before[name] :]
            self.heard_in[name] += [number] * len(new)
            for heard in new:
                self.story.append(f"  {name} heard {_told(heard)}")
                where = f"{name}: {_told(heard)}"
                life = self.lives[heard.arn]
                # Only what a poll could list: a watched scope, in a place it could reach.
                assert life.scope in self.watched, self._told(f"{where}: its scope is unwatched")
                assert life.scope.place != unreachable, self._told(f"{where}: place unreachable")
                if heard.event_type == EventType.JOB_STUCK:
                    # 4. Only for a status the job really waited in past the limit.
                    waited = life.waited(heard.status, self.clock.now())
                    assert waited > STUCK_AFTER, self._told(f"{where}: waited {waited}")
                elif (
                    name in EVERY_EVENT
                    and heard.previous_status is None
                    and heard.arn not in self.may_repeat
                ):
                    # 2. previousStatus null only for a job no poll had recorded a status of.
                    assert heard.arn not in statused, self._told(
                        f"{where}: previousStatus null, though its status was recorded"
                    )
                    if life.created < self.epochs[life.scope][-1].began:
                        reached("a job the baseline had not reached announced (previous null)")

    def _check_storms(self, people_before: int) -> None:
        """7. A storm is counted per place: people get one digest of each place where this
        poll found more of their events than the threshold, and hear every other place's
        events one by one."""
        storming: set[str] = set()
        calm: set[str] = set()
        for result in self.results:
            counts = Counter(
                self.lives[t.job.arn or ""].scope.place
                for t in result.transitions
                if self.people.wants(t)
            )
            over = {place for place, count in counts.items() if count > STORM_THRESHOLD}
            assert set(result.storm_places) == over, self._told(
                f"digests for {result.storm_places}, but over the threshold: {sorted(over)}"
            )
            storming |= over
            calm |= set(PLACES) - over
        for heard in self.publishers["people"].heard[people_before:]:
            place = self.lives[heard.arn].scope.place
            assert place in (storming if heard.digest else calm), self._told(
                f"people: {_told(heard)} in {place}, storming: {sorted(storming)}"
            )
            if storming and not heard.digest:
                reached("people heard one place's event alone while another place stormed")

    # --- the promise ---------------------------------------------------------------------
    @invariant()
    def announcements_keep_the_promise(self) -> None:
        told: dict[str, dict[str, list[tuple[Heard, int]]]] = {}
        for name, publisher in self.publishers.items():
            for heard, number in zip(publisher.heard, self.heard_in[name], strict=True):
                told.setdefault(heard.arn, {}).setdefault(name, []).append((heard, number))
        for arn, by_channel in told.items():
            life = self.lives[arn]
            epochs = self.epochs[life.scope]
            anywhere = [
                (heard.status, _epoch(epochs, number))
                for events in by_channel.values()
                for heard, number in events
                if heard.event_type != EventType.JOB_STUCK
            ]
            for name, events in by_channel.items():
                self._check_job(name, life, events, anywhere)

    def _check_job(
        self,
        channel: str,
        life: Life,
        heard: list[tuple[Heard, int]],
        anywhere: list[tuple[str | None, int]],
    ) -> None:
        epochs = self.epochs[life.scope]
        last: str | None = None  # the status this channel last heard of the job
        last_epoch = -1
        stuck_for: set[str | None] = set()
        for event, number in heard:
            where = f"{channel}: {_told(event)}"
            epoch = _epoch(epochs, number)
            began = epochs[epoch].began
            existed = life.created < began
            at_start = life.status_at(began) if existed else None
            assert event.status in life.statuses(), self._told(f"{where}: a status it never had")
            if event.event_type == EventType.JOB_STUCK:
                # 4. At most once per status; 5. never for a wait that began before watching.
                assert event.status not in stuck_for or life.arn in self.may_repeat, self._told(
                    f"{where}: stuck announced twice"
                )
                stuck_for.add(event.status)
                assert not (
                    existed and event.status == at_start and _stuck_at(life, at_start, began)
                ), self._told(f"{where}: was already stuck when watching began")
                continue
            if last is not None and event.status == last:
                # 3. Twice only after a table write failed once the channel had it.
                assert life.arn in self.may_repeat, self._told(f"{where}: announced twice")
                continue
            # 1. In the order it happened: nothing moves backwards.
            assert life.index(event.status) >= life.index(last), self._told(f"{where}: backwards")
            if channel in EVERY_EVENT:
                self._check_previous(life, event, last, last_epoch == epoch, existed)
            # 5. What a job did before watching began (or began again, after the scope was
            # left unwatched) is not news: only what it did since. A channel may still get
            # an announcement made to another before the break.
            retried = any(status == event.status and e < epoch for status, e in anywhere)
            assert life.index(event.status) > life.index(at_start) or retried, self._told(
                f"{where}: announced, though it had not changed since watching began "
                f"(again) at {began:%H:%M:%S}"
            )
            last, last_epoch = event.status, epoch

    def _check_previous(
        self, life: Life, event: Heard, last: str | None, same_epoch: bool, existed: bool
    ) -> None:
        """2. previousStatus is what the channel last heard, or null for a job first seen
        after watching began. A table write that failed after a publish may make the next
        event start from the last status recorded, earlier than the last one sent. After a
        scope was watched again, it is what the fresh baseline recorded, if that is later."""
        where = f"{_told(event)}: previousStatus"
        previous, repeat = event.previous_status, life.arn in self.may_repeat
        if last is not None and not repeat and same_epoch:
            assert previous == last, self._told(f"{where} should be {last}")
            return
        earlier = previous is None or life.index(previous) < life.index(event.status)
        assert earlier, self._told(f"{where} should be a status it had before")
        if last is not None and not repeat:
            assert previous is not None, self._told(f"{where}: the channel heard {last}")
            assert life.index(previous) >= life.index(last), self._told(f"{where}: before {last}")
        elif last is None and not repeat and not existed:
            assert previous is None, self._told(f"{where} of a job new since watching began")

    def _assert_current(self, unreachable: str | None) -> None:
        """6. After fault-free polls, each change since watching (last) began is heard, and
        it is every channel's last word: the job's current status. Every reachable scope
        catches up, whichever place cannot be listed."""
        result = self.last_result
        assert result is not None
        assert result.clean, self._told(f"an alarm metric has not stopped: {result}")
        assert not result.baseline_polls, self._told("the baseline is still unfinished")
        for life in self.lives.values():
            if life.scope not in self.watched or life.scope.place == unreachable:
                continue
            began = self.epochs[life.scope][-1].began
            if life.history[-1][1] < began:
                continue  # its status when watching (last) began: not news
            if life.arn in self.hidden and life.created < began:
                continue  # it may have been listed with no sign of moving since then
            for channel in self.channels:
                types = channel.event_types
                if types is not None and classify(life.status) not in types:
                    continue
                moves = [
                    h.status
                    for h in self.publishers[channel.name].heard
                    if h.arn == life.arn and h.event_type != EventType.JOB_STUCK
                ]
                heard = f"{channel.name} heard {_name(life.arn)}"
                assert moves, self._told(f"{heard}: nothing, though it is now {life.status}")
                assert moves[-1] == life.status, self._told(
                    f"{heard} {moves[-1]} last, not {life.status}"
                )

    def _labels(self, scopes: list[Scope]) -> list[str]:
        return [NAMED_SCOPES[scope] for scope in scopes]

    def _told(self, problem: str) -> str:
        return problem + "\n\nThe story so far:\n" + "\n".join(self.story[-120:])


def _epoch(epochs: list[Epoch], number: int) -> int:
    """The epoch in which poll `number` ran."""
    return max(i for i, epoch in enumerate(epochs) if epoch.poll <= number)


def _name(arn: str | None) -> str:
    return (arn or "").rsplit("/", 1)[-1]


def _told(heard: Heard) -> str:
    digest = " (digest)" if heard.digest else ""
    return (
        f"{_name(heard.arn)} {heard.event_type} {heard.previous_status} -> {heard.status}{digest}"
    )


def _about(event: JobEvent, arn: str | None) -> bool:
    return event.batch_segment_job_arn == arn


def _stuck_at(life: Life, status: str | None, when: datetime) -> bool:
    since = next((t for s, t in reversed(life.history) if s == status and t <= when), None)
    job = JobSummary(arn=life.arn, status=status, last_updated_time=since)
    return is_stuck(job, when, STUCK_AFTER)


def _odd_listing(fault: Fault, arn: str, life: Life | None, now: datetime) -> Any:
    def rewrite(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for summary in summaries:
            if summary["batchSegmentJobArn"] != arn:
                out.append(summary)
                continue
            odd = dict(summary)
            if fault is Fault.NO_STATUS:
                odd.pop("status")
            elif fault is Fault.LAGGING and life is not None and len(life.history) > 1:
                # At most LISTING_LAG behind: the summary from before its latest move.
                if life.history[-1][1] > now - LISTING_LAG:
                    odd["status"], odd["lastUpdatedDateTime"] = life.history[-2]
            elif fault is Fault.FUTURE_TIME:
                odd["lastUpdatedDateTime"] = odd["lastUpdatedDateTime"] + FAR_AHEAD
            elif fault is Fault.NO_TIME:
                odd.pop("lastUpdatedDateTime")
            elif fault is Fault.BAD_UNICODE:
                odd["jobName"] = "job-\ud800-bad"
                odd["failureReason"] = "reason \udfff here"
            elif fault is Fault.LISTED_TWICE:
                out.append(dict(summary))
            out.append(odd)
        return out

    return rewrite


SOAK = os.environ.get("SOAK") == "1"
SOAK_POLLS = 10_000


@pytest.fixture(scope="module", autouse=True)
def polls_counted() -> Iterator[None]:
    """`make soak` must have run at least SOAK_POLLS polls in all. The poller's warnings
    about the injected faults are expected here, so they are not printed."""
    DeliveryPromise.polls_run = 0
    poller_logs = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined"))
    level = poller_logs.level
    poller_logs.setLevel(logging.CRITICAL)
    yield
    poller_logs.setLevel(level)
    print(f"\nthe delivery promise held over {DeliveryPromise.polls_run} polls")
    if SOAK:
        assert DeliveryPromise.polls_run >= SOAK_POLLS


DeliveryPromise.TestCase.settings = settings(
    max_examples=800 if SOAK else 120,
    stateful_step_count=60 if SOAK else 30,
    deadline=None,
    derandomize=not SOAK,
    print_blob=True,
)
test_delivery_promise = DeliveryPromise.TestCase
