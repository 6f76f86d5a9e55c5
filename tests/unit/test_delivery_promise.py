"""The delivery promise, as a stateful property test.

Hypothesis plays long random histories: jobs are created (in any status) and move
forward, time passes, solution versions are added to the watch list, and polls run, each
with at most one fault: a failed listing, a failed publish, a slow or failing Describe, a
throttled table write, a claim held by another poll, a short deadline, an overlapping
poll, or an odd listing. After every step the invariants below must hold for what each
channel has received. They are the product's promise (README, "How it behaves").

`make test` runs a bounded number of histories; `make soak` runs many more.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

import pytest
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
from poller.poll import PollResult, PollRun, poll
from poller.rules import LISTING_LAG, classify, is_stuck

if TYPE_CHECKING:
    from collections.abc import Iterator

    from job_events.event import JobEvent

from tests.fakes import (
    START,
    Heard,
    MemorySource,
    MemoryStore,
    ScriptedClock,
    recording_channels,
    solution_version_arn,
)

STUCK_AFTER = timedelta(hours=1)
STORM_THRESHOLD = 3
RUN_SECONDS = 60.0
SHORT_RUN_SECONDS = 11.0  # one second beyond the safety margin
VERSIONS = (solution_version_arn("first"), solution_version_arn("second"))
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


@dataclass
class Life:
    """What a job really did: its statuses, with the time of each."""

    arn: str
    version: str
    history: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.history[-1][0]

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


class DeliveryPromise(RuleBasedStateMachine):
    polls_run = 0  # across every history of the session

    def __init__(self) -> None:
        super().__init__()
        self.clock = ScriptedClock(START)
        self.source = MemorySource(self.clock, page_size=3)
        self.store = MemoryStore(self.clock)
        self.publishers, self.channels = recording_channels(self.clock)
        self.watched = [VERSIONS[0]]
        self.lives: dict[str, Life] = {}
        self.story: list[str] = []
        self.polls = 0
        self.may_repeat: set[str] = set()  # jobs a failed write after a publish may repeat
        self.heard_before: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.last_result: PollResult | None = None

    # --- the world ---------------------------------------------------------------------
    @initialize()
    def start(self) -> None:
        self.story.append(f"watching {self.watched}")

    @rule(
        status=st.sampled_from(["PENDING", "IN PROGRESS", "ACTIVE", "CREATE FAILED"]),
        version=st.sampled_from(VERSIONS),
    )
    def create_job(self, status: str, version: str) -> None:
        name = f"job-{len(self.lives)}"
        arn = self.source.put(
            name,
            status,
            solution_version=version,
            failureReason="bad input" if "FAILED" in status else None,
        )
        self.source.details[arn] = {
            "jobOutput": {"s3DataDestination": {"path": f"s3://out/{name}/"}}
        }
        self.lives[arn] = Life(arn, version, [(status, self.clock.now())])
        self.story.append(f"{name} created {status} in {version.split('/')[-2]}")

    @precondition(lambda self: any(life.status in NEXT for life in self.lives.values()))
    @rule(data=st.data())
    def move_job(self, data: st.DataObject) -> None:
        moving = [life for life in self.lives.values() if life.status in NEXT]
        life = data.draw(st.sampled_from(moving))
        status = data.draw(st.sampled_from(NEXT[life.status]))
        self.source.move(
            life.arn, status, **({"failureReason": "out of capacity"} if "FAILED" in status else {})
        )
        life.history.append((status, self.clock.now()))
        self.story.append(f"{_name(life.arn)} moved to {status}")

    @rule(minutes=st.integers(min_value=1, max_value=90))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes * 60)
        self.story.append(f"{minutes} min pass")

    @precondition(lambda self: len(self.watched) < len(VERSIONS))
    @rule()
    def watch_another_version(self) -> None:
        self.watched.append(VERSIONS[len(self.watched)])
        self.story.append(f"now watching {[v.split('/')[-2] for v in self.watched]}")

    # --- polls ---------------------------------------------------------------------------
    @rule(fault=st.sampled_from(Fault), pick=st.integers(min_value=0, max_value=50))
    def poll_runs(self, fault: Fault, pick: int) -> None:
        self.clock.advance(1)  # each poll sees a moment of its own
        self._poll(fault, pick)

    @rule()
    def quiet_polls_settle(self) -> None:
        """Fault-free polls, until one lists everything from the first page and finishes its
        work: then every channel is current."""
        for _ in range(8):
            self.clock.advance(65)  # past the lease of a claim a failed write left behind
            result = self._poll(Fault.NONE, 0)
            if result and result.clean and not (result.first_run or result.listing_resumed):
                break
        else:
            raise AssertionError(self._told("fault-free polls never finished their work"))
        self._assert_current()

    def _poll(self, fault: Fault, pick: int) -> PollResult | None:
        self.polls += 1
        DeliveryPromise.polls_run += 1
        run_id = f"poll-{self.polls}"
        seconds = SHORT_RUN_SECONDS if fault is Fault.SHORT_DEADLINE else RUN_SECONDS
        deadline = self.clock.time() + seconds
        target = self._pick(pick)
        self._inject(fault, target)
        self.story.append(f"{run_id} ({fault.value}{f', {_name(target)}' if target else ''})")
        before = self.store.failed_writes[:]
        try:
            result: PollResult | None = poll(
                self.source, self.store, self.channels, self._run(run_id, deadline)
            )
        except JobListingError:
            result = None
        finally:
            self._clear_faults()
        assert self.clock.time() <= deadline, self._told(f"{run_id} ran past its deadline")
        for operation, arn in self.store.failed_writes[len(before) :]:
            if operation in {"record", "release"}:
                self.may_repeat.add(arn)
        self._log_heard()
        self.last_result = result
        return result

    def _run(self, run_id: str, deadline: float) -> PollRun:
        return PollRun(
            region="us-east-1",
            now=self.clock.now(),
            run_id=run_id,
            stuck_after=STUCK_AFTER,
            time_left=lambda: deadline - self.clock.time(),
            clock=self.clock.time,
            scopes=tuple(Scope(v) for v in self.watched),
            storm_threshold=STORM_THRESHOLD,
        )

    def _pick(self, pick: int) -> str | None:
        arns = sorted(self.lives)
        return arns[pick % len(arns)] if arns else None

    def _inject(self, fault: Fault, target: str | None) -> None:
        faults = self.source.faults
        if fault is Fault.LISTING_THROTTLED:
            faults.fail_at_page = 1
        elif fault is Fault.PAGE_FAILS:
            faults.fail_at_page = 2
        elif fault is Fault.PUBLISH_ONE_CHANNEL:
            self.publishers[CHANNELS[len(self.story) % 3]].fails = lambda e: _about(e, target)
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

    def _overlapping_poll(self) -> None:
        self.polls += 1
        run_id = f"poll-{self.polls}"
        self.story.append(f"  {run_id} starts while the first publishes")
        poll(
            self.source,
            self.store,
            self.channels,
            self._run(run_id, self.clock.time() + RUN_SECONDS),
        )

    def _clear_faults(self) -> None:
        self.source.faults = type(self.source.faults)()
        self.store.faults = type(self.store.faults)()
        for publisher in self.publishers.values():
            publisher.fails = lambda _e: False
            publisher.on_publish = None

    def _log_heard(self) -> None:
        for name, publisher in self.publishers.items():
            for heard in publisher.heard[self.heard_before[name] :]:
                self.story.append(f"  {name} heard {_told(heard)}")
                if heard.event_type == EventType.JOB_STUCK:
                    # 4. Only for a status the job really waited in past the limit.
                    waited = self.lives[heard.arn].waited(heard.status, self.clock.now())
                    assert waited > STUCK_AFTER, self._told(f"{_told(heard)}: waited {waited}")
            self.heard_before[name] = len(publisher.heard)

    # --- the promise ---------------------------------------------------------------------
    @invariant()
    def announcements_keep_the_promise(self) -> None:
        for name, publisher in self.publishers.items():
            by_job: dict[str, list[Heard]] = {}
            for heard in publisher.heard:
                by_job.setdefault(heard.arn, []).append(heard)
            for arn, told in by_job.items():
                self._check_job(name, self.lives[arn], told)

    def _check_job(self, channel: str, life: Life, heard: list[Heard]) -> None:
        baseline_at = self._baseline_start(life)
        at_baseline = life.status_at(baseline_at) if baseline_at else None
        last: str | None = None  # the status this channel last heard of the job
        stuck_for: set[str | None] = set()
        for event in heard:
            where = f"{channel}: {_told(event)}"
            assert event.status in life.statuses(), self._told(f"{where}: a status it never had")
            if event.event_type == EventType.JOB_STUCK:
                # 4. At most once per status; 5. never for a wait that began before watching.
                assert event.status not in stuck_for or life.arn in self.may_repeat, self._told(
                    f"{where}: stuck announced twice"
                )
                stuck_for.add(event.status)
                assert not (
                    baseline_at
                    and event.status == at_baseline
                    and _stuck_at(life, at_baseline, baseline_at)
                ), self._told(f"{where}: was already stuck when watching began")
                continue
            if last is not None and event.status == last:
                # 3. Twice only after a table write failed once the channel had it.
                assert life.arn in self.may_repeat, self._told(f"{where}: announced twice")
                continue
            # 1. In the order it happened: nothing moves backwards.
            assert life.index(event.status) >= life.index(last), self._told(f"{where}: backwards")
            if channel in EVERY_EVENT:
                self._check_previous(life, event, last, existed=at_baseline is not None)
            # 5. Jobs that existed when watching began are announced only once they change.
            assert life.index(event.status) > life.index(at_baseline), self._told(
                f"{where}: announced before it changed since watching began"
            )
            last = event.status

    def _check_previous(self, life: Life, event: Heard, last: str | None, existed: bool) -> None:
        """2. previousStatus is what the channel last heard, or null for a job first seen
        after the baseline. A table write that failed after a publish may make the next
        event start from the last status recorded, earlier than the last one sent."""
        where = f"{_told(event)}: previousStatus"
        earlier = event.previous_status is None or life.index(event.previous_status) < life.index(
            event.status
        )
        if last is not None and life.arn not in self.may_repeat:
            assert event.previous_status == last, self._told(f"{where} should be {last}")
        elif existed:
            assert event.previous_status is not None, self._told(f"{where} of an existing job")
            assert earlier, self._told(f"{where} should be a status it had before")
        elif last is not None:
            assert earlier, self._told(f"{where} should be a status it had before")
        else:
            assert event.previous_status is None, self._told(f"{where} of a new job")

    def _baseline_start(self, life: Life) -> datetime | None:
        """When the job's scope began to be watched, if the job existed then."""
        state = self.store.scopes.get(Scope(life.version))
        if state is None or life.history[0][1] >= state.baseline_started_at:
            return None
        return state.baseline_started_at

    def _assert_current(self) -> None:
        """6. After fault-free polls, every channel's last word on each job is its status."""
        result = self.last_result
        assert result is not None
        assert result.clean, self._told(f"an alarm metric has not stopped: {result}")
        assert not result.baseline_polls, self._told("the baseline is still unfinished")
        for life in self.lives.values():
            if life.version not in self.watched:
                continue
            for channel in self.channels:
                moves = [
                    h.status
                    for h in self.publishers[channel.name].heard
                    if h.arn == life.arn and h.event_type != EventType.JOB_STUCK
                ]
                wanted = channel.event_types is None or classify(life.status) in (
                    channel.event_types
                )
                assert not (moves and wanted) or moves[-1] == life.status, self._told(
                    f"{channel.name} last heard {_name(life.arn)} {moves[-1]}, not {life.status}"
                )

    def _told(self, problem: str) -> str:
        return problem + "\n\nThe story so far:\n" + "\n".join(self.story[-80:])


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
                odd["lastUpdatedDateTime"] = odd["lastUpdatedDateTime"] + timedelta(days=365)
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
