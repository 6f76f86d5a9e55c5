"""One scripted world for the unit tests: a notifier's adapters in memory (tests/fakes.py)
on one scripted clock, polled by the real poll(). Each test runs in milliseconds."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from poller.models import Scope
from poller.poll import PollRun, poll
from tests.fakes import START, MemorySource, MemoryStore, ScriptedClock, recording_channels

if TYPE_CHECKING:
    from collections.abc import Callable

    from poller.poll import PollResult
    from tests.fakes import Heard, RecordingPublisher

STUCK_AFTER = timedelta(hours=6)
SAFETY = 10.0
Told = tuple[str, str | None, str | None]  # job name, previous status, status


class World:
    """A notifier's adapters in memory, on one scripted clock. Each run comes `tick`
    seconds after the last and must end by its deadline."""

    def __init__(
        self,
        page_size: int = 100,
        storm_threshold: int = 20,
        scopes: tuple[Scope, ...] = (),
        *,
        tick: float = 1.0,
        start: datetime = START,
        clock: ScriptedClock | None = None,
        source: Callable[[ScriptedClock], MemorySource] | None = None,
        stuck_after: timedelta = STUCK_AFTER,
        safety: float = SAFETY,
    ) -> None:
        self.clock = clock or ScriptedClock(start)
        self.source = (source or MemorySource)(self.clock)
        self.source.page_size = page_size
        self.store = MemoryStore(self.clock)
        self.stuck_after, self.safety = stuck_after, safety
        self.publishers, self.channels = recording_channels(self.clock)
        self.storm_threshold = storm_threshold
        self.scopes = scopes or (Scope(),)
        self.tick = tick
        self.runs = 0
        self.catch_up_seconds: float | None = None  # as deployed: a catch-up run's time

    @property
    def topic(self) -> RecordingPublisher:
        """The events topic: every event."""
        return self.publishers["sns"]

    @property
    def bus(self) -> RecordingPublisher:
        """The event bus: every event."""
        return self.publishers["events"]

    @property
    def people(self) -> RecordingPublisher:
        """The people topic: what people want, or one digest."""
        return self.publishers["people"]

    def run(
        self, seconds: float = 60.0, run_id: str | None = None, *, catch_up: bool = False
    ) -> PollResult:
        self.clock.advance(self.tick)
        self.runs += 1
        deadline = self.clock.time() + seconds
        spec = replace(
            self.spec(deadline, run_id), catch_up_seconds=self.catch_up_seconds, catch_up=catch_up
        )
        result = poll(self.source, self.store, self.channels, spec)
        assert self.clock.time() <= deadline, f"{spec.run_id} went past its deadline"
        return result

    def spec(self, deadline: float, run_id: str | None = None) -> PollRun:
        return PollRun(
            region="us-east-1",
            now=self.clock.now(),
            run_id=run_id or f"run-{self.runs}",
            stuck_after=self.stuck_after,
            time_left=lambda: deadline - self.clock.time(),
            clock=self.clock.time,
            scopes=self.scopes,
            storm_threshold=self.storm_threshold,
            safety_margin=self.safety,
        )

    def heard(self, channel: str = "sns") -> list[Told]:
        """(job, previous, status) per announcement, oldest first; the list is then cleared."""
        return told(self.publishers[channel])

    def events(self, channel: str = "sns") -> list[Heard]:
        return list(self.publishers[channel].heard)

    def later(self, minutes: float) -> None:
        self.clock.advance(minutes * 60)

    def jobs(self, stem: str, count: int, status: str) -> list[str]:
        """Jobs created now, `stem-0` ...; their ARNs."""
        return [self.source.put(f"{stem}-{i}", status) for i in range(count)]

    def status(self, arn: str) -> object:
        return self.store.items[arn].status


def told(channel: RecordingPublisher) -> list[Told]:
    """What a channel heard since the last call, in order; digests count per job."""
    heard = [(h.arn.rsplit("/", 1)[-1], h.previous_status, h.status) for h in channel.heard]
    channel.heard.clear()
    return heard


def watching(world: World, *jobs: tuple[str, str]) -> list[str]:
    """Jobs that exist before the first poll, which then records them silently."""
    arns = [world.source.put(name, status) for name, status in jobs]
    world.later(1)
    assert world.run().first_run
    assert world.heard() == []
    return arns


def all_moved(world: World, count: int, before: str, after: str, **fields: Any) -> list[str]:
    """`count` jobs recorded at `before` by a first poll, each since moved to `after`."""
    arns = watching(world, *[(f"job-{i}", before) for i in range(count)])
    for arn in arns:
        world.source.move(arn, after, **fields)
    return arns
