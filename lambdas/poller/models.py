"""The shapes the poller works with: a job as listed, its record, a scope, and the event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from job_events.vocabulary import EventType

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime


@dataclass(frozen=True, slots=True)
class JobSummary:
    """A BatchSegmentJobSummary. Every field is optional in the API, so here too.

    The last five come only from DescribeBatchSegmentJob, which a poll calls for jobs that
    reached a terminal status.
    """

    arn: str | None = None
    name: str | None = None
    status: str | None = None
    creation_time: datetime | None = None
    last_updated_time: datetime | None = None
    failure_reason: str | None = None
    solution_version_arn: str | None = None
    input_path: str | None = None
    output_path: str | None = None
    filter_arn: str | None = None
    num_results: int | None = None
    role_arn: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """What the snapshot table remembers of a job: the status last published to every
    channel (or baselined), when the job was last updated as of that status (never later
    than the poll that saw it), when it was recorded, and the status it was last reported
    stuck in."""

    arn: str
    status: str | None
    job_name: str | None = None
    stuck_status: str | None = None
    # Channels that are ahead of `status` after a partly failed delivery, with the
    # announcement (Transition.key) each last received: a retry sends only what is
    # missing, and each channel's next event follows on from what that channel heard.
    delivered: Mapping[str, str] = field(default_factory=dict)
    last_updated: datetime | None = None
    recorded_at: datetime | None = None

    def has(self, channel: str, transition: Transition) -> bool:
        return self.delivered.get(channel) == transition.key

    def heard_statuses(self) -> set[str]:
        """The statuses channels ahead of the record have heard."""
        heard = [Announced.parse(key) for key in self.delivered.values()]
        return {announced.status for announced in heard if not announced.stuck}

    def previous_for(self, channel: str) -> str | None:
        """The status `channel` last heard of this job."""
        key = self.delivered.get(channel)
        announced = None if key is None else Announced.parse(key)
        return self.status if announced is None or announced.stuck else announced.status


@dataclass(frozen=True, slots=True)
class Announced:
    """One announcement of a job, as a record's `delivered` map keeps what each channel
    last heard: its event type and the status it announced ('TYPE:STATUS')."""

    event_type: str
    status: str

    @classmethod
    def parse(cls, key: str) -> Announced:
        event_type, _, status = key.partition(":")
        return cls(event_type, status)

    @property
    def key(self) -> str:
        return f"{self.event_type}:{self.status}"

    @property
    def stuck(self) -> bool:
        """A JOB_STUCK announcement says the job waits, not where it moved."""
        return self.event_type == EventType.JOB_STUCK.value


@dataclass(frozen=True, slots=True)
class Transition:
    """One event: a job seen for the first time, seen in a new status, or stuck in one.

    For JOB_STUCK the previous status is the (unchanged) current one.
    """

    event_type: EventType
    job: JobSummary
    previous_status: str | None

    @property
    def key(self) -> str:
        """Identifies this announcement of this job: its type and the status it announces."""
        return Announced(self.event_type.value, f"{self.job.status}").key


@dataclass(frozen=True, slots=True)
class Scope:
    """What one listing covers: the jobs of one account and region, or of one solution
    version there.

    Each scope has its own baseline, so widening the watch list (a solution version, an
    account, a region) announces nothing old. Without an account or region, the scope is
    the poller's own.
    """

    solution_version_arn: str | None = None
    account_id: str | None = None
    region: str | None = None

    @property
    def key(self) -> str:
        place = f"{self.account_id}/{self.region}/" if self.account_id and self.region else ""
        return place + (self.solution_version_arn or "*")

    @property
    def place(self) -> str:
        """'account/region', as the ScopeErrors metric and alarm name it."""
        return f"{self.account_id or 'own'}/{self.region or 'own'}"


@dataclass(frozen=True, slots=True)
class ScopeState:
    """Where a scope's polling stands, kept in its marker item."""

    baseline_started_at: datetime  # jobs created before this existed when watching began
    baseline_complete: bool = False
    baseline_polls: int = 0  # runs the unfinished baseline has taken so far
    checkpoint: str | None = None  # ListBatchSegmentJobs nextToken where a listing stopped
    watermark: datetime | None = None  # latest update a clean full pass saw, never past its poll
    last_full_read_at: datetime | None = None
    # A fresh baseline of a scope removed and added back: records older than it are stale.
    rewatched: bool = False
    # A catch-up run lists this scope until then: scheduled runs leave it alone meanwhile.
    catch_up_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScopeMarkers:
    """What the table says of the watched scopes, read together in one request."""

    states: dict[Scope, ScopeState]
    watched: frozenset[str] | None  # the scope keys the last run watched; None: not known
