"""In-memory adapters for the poll's ports, with scripted time and faults.

They keep the contracts the AWS adapters keep (tests/integration/test_store_contract.py
runs the same scenario against both stores), so every rule of a poll can be tested in
milliseconds. Each call advances a scripted clock by its cost, so deadlines are tested
without waiting.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from job_events.arns import arn_part
from job_events.vocabulary import EventType
from poller.channels.sns import sns_message
from poller.errors import ClaimLostError, JobListingError, SnapshotError
from poller.models import Record, ScopeMarkers, ScopeState
from poller.personalize_source import to_job_summary, with_details
from poller.ports import Listing
from poller.rules import recorded_time
from poller.settings import Settings
from poller.wiring import channel_set

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from job_events.event import JobEvent
    from poller.delivery import Channel
    from poller.models import JobSummary, Scope, Transition

ACCOUNT = "123456789012"
REGION = "us-east-1"
TABLE = "snapshot"
EVENTS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:events"
PEOPLE_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:people"
BUS = "notifier-bus"


def job_arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:personalize:{region}:{account}:batch-segment-job/{name}"


def solution_version_arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:personalize:{region}:{account}:solution/{name}/1"


START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # when a scripted world's first poll runs


class ScriptedClock:
    """Wall time that moves only when told: by a call's cost, or by the test."""

    def __init__(self, start: datetime = START) -> None:
        self.seconds = start.timestamp()

    def time(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@dataclass
class SourceFaults:
    fail_at_page: int | None = None  # this page (1-based) raises, as after botocore's retries
    unreachable: set[str] = field(default_factory=set)  # scopes ('account/region') denied
    describe_fails: bool = False
    describe_cost: float = 0.05
    page_cost: float = 0.2
    # Rewrites the raw summaries before paging: odd listings (lag, missing fields, ...).
    odd: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    # Scopes ('account/region') whose endpoint never answers. A hung listing first lets
    # `hang_after` other listings end, then takes `hang_seconds` of the scripted clock and
    # blocks until release(): the run must stop waiting for it.
    hung: set[str] = field(default_factory=set)
    hang_after: int = 0
    hang_seconds: float = 3600.0
    # Checkpoints older than this many seconds are rejected, as an expired nextToken.
    token_lifetime: float | None = None


class MemorySource:
    """Jobs as ListBatchSegmentJobs returns them (raw summaries, newest first, paged by an
    offset token), converted by the real adapter's parser."""

    def __init__(self, clock: ScriptedClock, page_size: int = 100) -> None:
        self.clock = clock
        self.page_size = page_size
        self.summaries: dict[str, dict[str, Any]] = {}
        self.details: dict[str, dict[str, Any]] = {}
        self.faults = SourceFaults()
        self.calls: Counter[str] = Counter()
        self.listings_done = 0
        self._listed = threading.Condition()
        self._released = threading.Event()
        self._tokens: dict[str, float] = {}  # token -> when it was handed out

    def release(self) -> None:
        """Hung scopes answer again."""
        self.faults.hung.clear()
        self._released.set()

    def _hang(self) -> None:
        with self._listed:
            self._listed.wait_for(lambda: self.listings_done >= self.faults.hang_after)
        time.sleep(0.2)  # real time: the others hand their listings to the run meanwhile
        self.clock.advance(self.faults.hang_seconds)
        self._released.wait()
        raise JobListingError("the connection was reset after the endpoint hung")

    def put(
        self,
        name: str,
        status: str,
        *,
        solution_version: str | None = None,
        account: str = ACCOUNT,
        region: str = REGION,
        **fields: Any,
    ) -> str:
        arn = job_arn(name, account, region)
        now = self.clock.now()
        self.summaries[arn] = {
            "batchSegmentJobArn": arn,
            "jobName": name,
            "status": status,
            "creationDateTime": now,
            "lastUpdatedDateTime": now,
            "solutionVersionArn": solution_version
            or solution_version_arn("segments", account, region),
            **fields,
        }
        return arn

    def move(self, arn: str, status: str, **fields: Any) -> None:
        self.summaries[arn] = {
            **self.summaries[arn],
            "status": status,
            "lastUpdatedDateTime": self.clock.now(),
            **fields,
        }

    def list_jobs(
        self, scope: Scope, resume_from: str | None, should_stop: Callable[[], bool]
    ) -> Listing:
        if scope.place in self.faults.unreachable:
            raise JobListingError(f"{scope.place}: AccessDenied when assuming the member role")
        if scope.place in self.faults.hung:
            self._hang()
        try:
            return self._list(scope, resume_from, should_stop)
        finally:
            with self._listed:
                self.listings_done += 1
                self._listed.notify_all()

    def _list(
        self, scope: Scope, resume_from: str | None, should_stop: Callable[[], bool]
    ) -> Listing:
        lifetime = self.faults.token_lifetime
        if resume_from and lifetime is not None:
            issued = self._tokens.get(resume_from, self.clock.time())
            if self.clock.time() - issued > lifetime:
                self.calls["ListBatchSegmentJobs"] += 1
                # InvalidNextTokenException: the source restarts at the first page, once.
                return replace(self._list(scope, None, should_stop), restarted=True)
        raw = [s for s in self.summaries.values() if _in_scope(s, scope)]
        raw.sort(key=lambda s: (-s["creationDateTime"].timestamp(), s["batchSegmentJobArn"]))
        if self.faults.odd is not None:
            raw = self.faults.odd(raw)
        offset = int(resume_from) if resume_from and int(resume_from) < len(raw) else 0
        jobs: list[JobSummary] = []
        pages = 0
        while True:
            pages += 1
            self.calls["ListBatchSegmentJobs"] += 1
            self.clock.advance(self.faults.page_cost)
            if pages == self.faults.fail_at_page:
                raise JobListingError("ListBatchSegmentJobs failed: ThrottlingException")
            jobs += [to_job_summary(s) for s in raw[offset : offset + self.page_size]]
            offset += self.page_size
            if offset >= len(raw):
                return Listing(jobs, pages, resumed=resume_from is not None)
            if should_stop():
                token = f"{offset}"
                self._tokens[token] = self.clock.time()
                return Listing(jobs, pages, next_token=token, resumed=resume_from is not None)

    def describe(self, job: JobSummary) -> JobSummary:
        self.calls["DescribeBatchSegmentJob"] += 1
        self.clock.advance(self.faults.describe_cost)
        if self.faults.describe_fails or job.arn is None:
            return job
        return with_details(job, self.details.get(job.arn, {}))


def _in_scope(summary: dict[str, Any], scope: Scope) -> bool:
    arn = summary.get("batchSegmentJobArn", "")
    return (
        scope.solution_version_arn in (None, summary.get("solutionVersionArn"))
        and scope.account_id in (None, arn_part(arn, 4))
        and scope.region in (None, arn_part(arn, 3))
    )


@dataclass
class _Item:
    status: Any = None  # anything a hand-edited item may hold; only text is a status
    job_name: str | None = None
    stuck_status: str | None = None
    last_updated: datetime | None = None
    recorded_at: datetime | None = None
    claimed_by: str | None = None
    claim_expires_at: float | None = None
    delivered: dict[str, str] = field(default_factory=dict)

    def snapshot(self, arn: str) -> Record:
        return Record(
            arn,
            self.status if isinstance(self.status, str) else None,
            self.job_name,
            self.stuck_status,
            dict(self.delivered),
            last_updated=self.last_updated,
            recorded_at=self.recorded_at,
        )


@dataclass
class StoreFaults:
    # Writes (claim, record, release, baseline batch) that raise SnapshotError, by number.
    failing_writes: set[int] = field(default_factory=set)
    write_cost: float = 0.01


class MemoryStore:
    """The snapshot table in memory, with the DynamoDB store's conditions."""

    def __init__(self, clock: ScriptedClock) -> None:
        self.clock = clock
        self.items: dict[str, _Item] = {}
        self.scopes: dict[Scope, ScopeState] = {}
        self.watched: frozenset[str] | None = None
        self.faults = StoreFaults()
        self.writes = 0  # claims, records, releases and baseline batches: faults count these
        self.table_writes = 0  # every write of any kind, as a quiet poll must make none
        self.failed_writes: list[tuple[str, str]] = []  # (operation, ARN)

    def _write(self, operation: str, arn: str) -> None:
        self.writes += 1
        self.table_writes += 1
        self.clock.advance(self.faults.write_cost)
        if self.writes in self.faults.failing_writes:
            self.failed_writes.append((operation, arn))
            raise SnapshotError(f"{operation} {arn}: ProvisionedThroughputExceededException")

    def load_scopes(self, scopes: Sequence[Scope]) -> ScopeMarkers:
        # As the table reads it: a hand-edited watermark that is not a time is none.
        states = {
            scope: replace(state, watermark=_time_or_none(state.watermark))
            for scope, state in self.scopes.items()
            if scope in scopes
        }
        return ScopeMarkers(states, self.watched)

    def reset_scope(self, scope: Scope, fresh: ScopeState) -> None:
        self.table_writes += 1
        self.scopes[scope] = fresh

    def save_watched(self, keys: frozenset[str]) -> None:
        if not keys:  # as DynamoDB: a string set is never empty
            raise ValueError("a run watching no scope has no watched set to store")
        self.table_writes += 1
        self.watched = keys

    def save_scope(self, scope: Scope, state: ScopeState, now: datetime) -> None:
        self.table_writes += 1
        stored = self.scopes.get(scope)
        if stored is None:
            self.scopes[scope] = state
            return
        watermark = _time_or_none(stored.watermark)
        replaceable = watermark is None or watermark < (state.watermark or now) or watermark > now
        if state.watermark is not None and replaceable:
            watermark = state.watermark
        self.scopes[scope] = replace(
            state,
            baseline_started_at=stored.baseline_started_at,
            baseline_complete=stored.baseline_complete or state.baseline_complete,
            watermark=watermark,
        )

    def load(self, arns: Collection[str]) -> dict[str, Record]:
        return {arn: self.items[arn].snapshot(arn) for arn in arns if arn in self.items}

    def load_all(self) -> dict[str, Record]:
        return {arn: item.snapshot(arn) for arn, item in self.items.items()}

    def write_baseline(self, items: Sequence[Record], recorded_at: datetime) -> None:
        self._write("baseline", items[0].arn if items else "")
        for item in items:
            self.items[item.arn] = _Item(
                item.status, item.job_name, item.stuck_status, item.last_updated, recorded_at
            )

    def claim(self, transition: Transition, run_id: str, now: float, expires_at: float) -> None:
        arn = _arn(transition)
        self._write("claim", arn)
        item = self.items.get(arn)
        status = item.status if item and isinstance(item.status, str) else None
        previous = transition.previous_status
        if transition.event_type is EventType.JOB_STUCK:
            holds = status == previous and item is not None and item.stuck_status != previous
        else:
            holds = status == previous
        free = item is None or item.claimed_by is None or (item.claim_expires_at or 0) < now
        # (A claim without an expiry counts as lapsed, as in the table.)
        if not (holds and free):
            raise ClaimLostError(f"claiming {arn}: held or recorded by another poll")
        item = self.items.setdefault(arn, _Item())
        item.claimed_by, item.claim_expires_at = run_id, expires_at

    def record(self, transition: Transition, run_id: str, recorded_at: datetime) -> None:
        arn = _arn(transition)
        self._write("record", arn)
        item = self._held(arn, run_id)
        job = transition.job
        item.status, item.job_name = job.status, job.name
        item.last_updated = recorded_time(job.last_updated_time, recorded_at)
        item.stuck_status = job.status if transition.event_type is EventType.JOB_STUCK else None
        item.recorded_at = recorded_at
        item.claimed_by = item.claim_expires_at = None
        item.delivered = {}

    def release(self, transition: Transition, run_id: str, delivered: Mapping[str, str]) -> None:
        arn = _arn(transition)
        self._write("release", arn)
        item = self._held(arn, run_id)
        item.claimed_by = item.claim_expires_at = None
        item.delivered = dict(delivered)

    def _held(self, arn: str, run_id: str) -> _Item:
        item = self.items.get(arn)
        if item is None or item.claimed_by != run_id:
            raise ClaimLostError(f"{arn}: the claim of {run_id} lapsed")
        return item


def _time_or_none(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _arn(transition: Transition) -> str:
    assert transition.job.arn is not None
    return transition.job.arn


@dataclass(frozen=True)
class Heard:
    """One announcement as a channel received it (a digest counts for each job it lists)."""

    arn: str
    event_type: str
    previous_status: str | None
    status: str | None
    digest: bool = False


@dataclass(frozen=True)
class Recorded:
    """What a RecordingPublisher renders: the events of one message."""

    events: tuple[JobEvent, ...]
    digest: bool = False


class RecordingPublisher:
    """A channel that keeps what it received; `fails` picks events to reject. It renders
    each event as the SNS topics do, so an event that cannot be rendered fails as in AWS."""

    def __init__(self, clock: ScriptedClock, cost: float = 0.05) -> None:
        self.clock = clock
        self.cost = cost
        self.heard: list[Heard] = []
        self.calls = 0
        self.fails: Callable[[JobEvent], bool] = lambda _event: False
        self.on_publish: Callable[[], None] | None = None

    def render(self, event: JobEvent) -> Recorded:
        sns_message(event)
        return Recorded((event,))

    def render_digest(self, events: Sequence[JobEvent]) -> Recorded:
        return Recorded(tuple(events), digest=True)

    def send(self, messages: Sequence[Recorded]) -> dict[int, str]:
        self.calls += 1
        self.clock.advance(self.cost)
        if self.on_publish is not None:
            hook, self.on_publish = self.on_publish, None
            hook()
        failed: dict[int, str] = {}
        for index, message in enumerate(messages):
            if any(self.fails(event) for event in message.events):
                failed[index] = "InternalError: injected"
                continue
            self.heard += [
                Heard(
                    e.batch_segment_job_arn or "",
                    e.event_type.value,
                    e.previous_status,
                    e.status,
                    message.digest,
                )
                for e in message.events
            ]
        return failed


def recording_channels(
    clock: ScriptedClock,
) -> tuple[dict[str, RecordingPublisher], list[Channel]]:
    """The deployed channels, built by the poller's own wiring (so a new channel reaches
    these tests by itself), each on a RecordingPublisher."""
    names = {EVENTS_TOPIC: "sns", BUS: "events", PEOPLE_TOPIC: "people"}
    publishers = {name: RecordingPublisher(clock) for name in names.values()}
    settings = Settings(
        TABLE, EVENTS_TOPIC, REGION, event_bus_name=BUS, people_topic_arn=PEOPLE_TOPIC
    )
    channels = channel_set(
        settings,
        topic=lambda arn: publishers[names[arn]],
        bus=lambda name: publishers[names[name]],
    )
    assert {channel.name for channel in channels} == set(publishers), "a channel is new"
    return publishers, channels
