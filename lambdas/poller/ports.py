"""What a poll needs from the outside world, as Protocols: the adapters implement them for
AWS, and tests implement them in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence
    from datetime import datetime

    from job_events.event import JobEvent
    from poller.models import (
        JobSummary,
        Record,
        Scope,
        ScopeMarkers,
        ScopeState,
        Transition,
    )


Message = TypeVar("Message")  # a channel's own wire format


@dataclass(frozen=True, slots=True)
class Listing:
    jobs: list[JobSummary]
    pages: int
    next_token: str | None = None  # where the next run continues; None: the listing ended
    resumed: bool = False  # it began at a checkpoint rather than the first page
    # The checkpoint had expired, so it began again at the first page: a listing that then
    # stops short again cannot finish across scheduled runs, and needs a catch-up run.
    restarted: bool = False

    @property
    def complete(self) -> bool:
        return self.next_token is None


class JobSource(Protocol):
    def list_jobs(
        self, scope: Scope, resume_from: str | None, should_stop: Callable[[], bool]
    ) -> Listing:
        """The scope's jobs from `resume_from` (or the first page), page by page.

        `should_stop` is asked before each further page. A token that has expired restarts
        the listing from the first page. Failures raise JobListingError.
        """
        ...

    def describe(self, job: JobSummary) -> JobSummary:
        """The job with what only DescribeBatchSegmentJob tells; as given if that fails."""
        ...


class SnapshotStore(Protocol):
    def load_scopes(self, scopes: Sequence[Scope]) -> ScopeMarkers:
        """Each scope's state, and which scopes the last run watched."""
        ...

    def save_scope(self, scope: Scope, state: ScopeState, now: datetime) -> None:
        """Store where the scope stands. Its watermark never moves back, unless the stored
        one is malformed or later than `now` (the poll's clock)."""
        ...

    def reset_scope(self, scope: Scope, fresh: ScopeState) -> None:
        """Replace the scope's marker with `fresh`, in one write, whatever it held."""
        ...

    def save_watched(self, keys: frozenset[str]) -> None:
        """Store which scopes this run watches."""
        ...

    def load(self, arns: Collection[str]) -> dict[str, Record]: ...

    def load_all(self) -> dict[str, Record]: ...

    def write_baseline(self, items: Sequence[Record], recorded_at: datetime) -> None: ...

    def claim(self, transition: Transition, run_id: str, now: float, expires_at: float) -> None:
        """Take the right to announce; ClaimLostError if another poll holds or recorded it."""
        ...

    def record(self, transition: Transition, run_id: str, recorded_at: datetime) -> None:
        """After delivery: keep what was announced and drop the claim."""
        ...

    def release(self, transition: Transition, run_id: str, delivered: Mapping[str, str]) -> None:
        """After a failed delivery: drop the claim, noting what each channel last got."""
        ...


class Publisher(Protocol[Message]):
    """A channel's sender: it renders each event in its own wire format, within its own
    limits, and sends what was rendered. Rendering comes before a transition is claimed,
    so one that cannot be rendered blocks no other."""

    def render(self, event: JobEvent) -> Message:
        """The channel's message for one event; ValueError if it cannot be made."""
        ...

    def send(self, messages: Sequence[Message]) -> dict[int, str]:
        """Send every message; return the index and error of each one that failed."""
        ...


class Topic(Publisher[Message], Protocol):
    """A topic's publisher: one message per event, or one digest of many for people."""

    def render_digest(self, events: Sequence[JobEvent]) -> Message:
        """One message summarising many events, within the channel's limits."""
        ...
