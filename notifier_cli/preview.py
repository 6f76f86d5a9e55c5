"""A dry run: the real poll against a store that writes nothing and channels that print.

Only the edges change, so what the dry run prints is what the deployed poll would send:
the same Describe calls, storm digests and per-channel delivery tracking.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from job_events.event import JobDigest
from job_events.vocabulary import DIGEST_EVENT_TYPE

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from datetime import datetime
    from typing import TextIO

    from job_events.event import DigestedJob, JobEvent
    from poller.delivery import Channel
    from poller.models import Record, Scope, ScopeMarkers, ScopeState, Transition
    from poller.ports import Publisher, SnapshotStore

    Announcement = JobEvent | JobDigest

CHANNEL_WIDTH = 8
EVENT_WIDTH = 20
DIGEST_INDENT = "  "


class ReadOnlyStore:
    """The snapshot table as a poll running alone sees it: reads go to the table, writes
    change nothing, and every claim succeeds."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store

    def load_scopes(self, scopes: Sequence[Scope]) -> ScopeMarkers:
        return self._store.load_scopes(scopes)

    def save_watched(self, keys: frozenset[str]) -> None:
        """Stores nothing."""

    def reset_scope(self, scope: Scope, fresh: ScopeState) -> None:
        """Stores nothing."""

    def load(self, arns: Collection[str]) -> dict[str, Record]:
        return self._store.load(arns)

    def load_all(self) -> dict[str, Record]:
        return self._store.load_all()

    def save_scope(self, scope: Scope, state: ScopeState, now: datetime) -> None:
        """Stores nothing."""

    def write_baseline(self, items: Sequence[Record], recorded_at: datetime) -> None:
        """Stores nothing."""

    def claim(self, transition: Transition, run_id: str, now: float, expires_at: float) -> None:
        """Always succeeds: a dry run shows what a poll would send, not who would send it."""

    def record(self, transition: Transition, run_id: str, recorded_at: datetime) -> None:
        """Stores nothing."""

    def release(self, transition: Transition, run_id: str, delivered: Mapping[str, str]) -> None:
        """Stores nothing."""


class PrintingPublisher:
    """A channel in a dry run: prints each announcement it would receive; none fails."""

    def __init__(self, channel: str, publisher: Publisher[Any], out: TextIO) -> None:
        self._channel = channel
        self._publisher = publisher
        self._out = out

    def render(self, event: JobEvent) -> Announcement:
        # The channel's own rendering still runs: an event the deployed poll cannot render
        # is left out of the dry run too.
        self._publisher.render(event)
        return event

    def digest(self, events: Sequence[JobEvent]) -> Announcement:
        return JobDigest.of(events, listed=len(events))

    def send(self, messages: Sequence[Announcement]) -> dict[int, str]:
        for announcement in messages:
            for line in announcement_lines(self._channel, announcement):
                print(line, file=self._out)
        return {}


def printing(channel: Channel, out: TextIO) -> Channel:
    """The channel as a dry run has it: it wants the same events, digests in a storm as it
    does, and prints instead of sending."""
    publisher = PrintingPublisher(channel.name, channel.publisher, out)
    return replace(
        channel,
        publisher=publisher,
        digest=publisher.digest if channel.digest is not None else None,
    )


def announcement_lines(channel: str, announcement: Announcement) -> list[str]:
    """What a channel receives, one line per job: a digest lists its jobs under it."""
    if not isinstance(announcement, JobDigest):
        return [_job_line(channel, announcement)]
    unlisted = f" ({announcement.truncated} not listed)" if announcement.truncated else ""
    return [
        f"{channel:<{CHANNEL_WIDTH}}{DIGEST_EVENT_TYPE:<{EVENT_WIDTH}}"
        f"{announcement.count} jobs in one message{unlisted}",
        *(_job_line(channel, job, indent=DIGEST_INDENT) for job in announcement.jobs),
    ]


def _job_line(channel: str, job: JobEvent | DigestedJob, indent: str = "") -> str:
    event_type = indent + str(job.event_type)
    change = f"{job.previous_status or '(new)'} -> {job.status or '-'}"
    return f"{channel:<{CHANNEL_WIDTH}}{event_type:<{EVENT_WIDTH}}{job.name}  {change}"
