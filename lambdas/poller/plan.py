"""Pure planning of one poll: what each scope records silently, what it announces, in what
order, and whether people get a digest. No I/O, no clock."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from poller.models import Record, ScopeState
from poller.rules import Outcome, decide, is_stuck, latest_update, recorded_time

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from poller.models import JobSummary, Transition
    from poller.ports import Listing

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class ScopePlan:
    baseline: list[Record] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    skipped: Counter[Outcome] = field(default_factory=Counter)  # odd summaries, by kind
    # The watermark may not pass a job whose real state this listing did not show: the
    # earliest time known of a skipped summary or its record (the epoch if none is known).
    watermark_cap: datetime | None = None


def plan_scope(
    jobs: Iterable[JobSummary],
    snapshot: Mapping[str, Record],
    state: ScopeState,
    now: datetime,
    stuck_after: timedelta,
) -> ScopePlan:
    """Decide every listed job (one summary per ARN) against its record."""
    plan = ScopePlan()
    for job in jobs:
        assert job.arn is not None, "jobs without an ARN are never planned"
        record = snapshot.get(job.arn)
        decision = decide(job, record, state, now, stuck_after)
        if decision.outcome is Outcome.ANNOUNCE and decision.transition is not None:
            plan.transitions.append(decision.transition)
        elif decision.outcome is Outcome.BASELINE:
            plan.baseline.append(_baseline_record(job, now, stuck_after))
        elif decision.outcome is not Outcome.UNCHANGED:
            _skip(plan, decision.outcome, job, record)
    return plan


def _baseline_record(job: JobSummary, now: datetime, stuck_after: timedelta) -> Record:
    """A job recorded silently. Already stuck when watching began: recorded as reported, so
    the jobs that were waiting before the notifier existed never arrive as a storm of
    JOB_STUCK. (A record being corrected is overwritten the same way.)"""
    assert job.arn is not None
    stuck = job.status if is_stuck(job, now, stuck_after) else None
    return Record(
        job.arn,
        job.status,
        job.name,
        stuck_status=stuck,
        last_updated=recorded_time(job.last_updated_time, now),
    )


def _skip(plan: ScopePlan, outcome: Outcome, job: JobSummary, record: Record | None) -> None:
    """A summary that changes nothing: counted, and the watermark may not pass it."""
    plan.skipped[outcome] += 1
    known = [t for t in (job.last_updated_time, record and record.last_updated) if t]
    cap = min(known, default=_EPOCH)
    plan.watermark_cap = cap if plan.watermark_cap is None else min(plan.watermark_cap, cap)


def delivery_order(transitions: Iterable[Transition]) -> list[Transition]:
    """Oldest update first, so a backlog drains in the order jobs changed."""
    return sorted(transitions, key=lambda t: (t.job.last_updated_time or _EPOCH, t.job.arn or ""))


def storming_places(
    transitions: Iterable[Transition],
    place_of: Callable[[Transition], str],
    channels: Sequence[tuple[str, Callable[[Transition], bool]]],
    threshold: int,
) -> frozenset[tuple[str, str]]:
    """(channel, place) pairs where one people channel has more of one scope's
    ('account/region') transitions than the threshold: there it gets one digest instead.
    Counted per scope, so a storm in one account changes nothing for another's people."""
    counts = Counter(
        (name, place_of(t)) for t in transitions for name, wants in channels if wants(t)
    )
    return frozenset(pair for pair, count in counts.items() if count > threshold)


def chunks(transitions: Sequence[Transition], size: int) -> list[Sequence[Transition]]:
    return [transitions[start : start + size] for start in range(0, len(transitions), size)]


@dataclass(frozen=True, slots=True)
class ScopeRun:
    """What one run did in one listed scope, as its next state needs it."""

    listing: Listing
    watermark: datetime | None  # the latest believable update it saw, capped by the plan
    full_read: bool
    baseline_written: bool


def watermark_of(jobs: Iterable[JobSummary], plan: ScopePlan, now: datetime) -> datetime | None:
    """The latest update a listing saw, never past a job whose real state it did not show."""
    watermark = latest_update(jobs, now)
    if watermark is not None and plan.watermark_cap is not None:
        return min(watermark, plan.watermark_cap)
    return watermark


def next_state(
    state: ScopeState,
    scope_run: ScopeRun | None,
    now: datetime,
    *,
    delivered_all: bool,
    clean: bool,
) -> ScopeState:
    """Where a scope stands after this run (`scope_run` None: it was not listed).

    A run that left something unrecorded or unannounced keeps the scope where it began, so
    the next run lists it again from there and nothing is passed over. The watermark and
    the last full read move only after a clean pass over every page.
    """
    polls = state.baseline_polls + (not state.baseline_complete)
    if scope_run is None or not (scope_run.baseline_written and delivered_all):
        return replace(state, baseline_polls=polls)
    listing = scope_run.listing
    moved = replace(
        state,
        baseline_polls=polls,
        checkpoint=listing.next_token,
        baseline_complete=state.baseline_complete or listing.complete,
    )
    if listing.complete and not listing.resumed and clean:
        return _after_a_full_pass(moved, scope_run, now)
    return moved


def _after_a_full_pass(state: ScopeState, scope_run: ScopeRun, now: datetime) -> ScopeState:
    watermark = scope_run.watermark
    if watermark is not None and (state.watermark is None or watermark > state.watermark):
        state = replace(state, watermark=watermark)
    if scope_run.full_read:
        state = replace(state, last_full_read_at=now)
    return state


def needs_catch_up(listing: Listing) -> bool:
    """A listing that restarted (its checkpoint had expired) and stopped short again could
    never reach its last page across scheduled runs."""
    return listing.restarted and not listing.complete


def believable(state: ScopeState | None, now: datetime) -> ScopeState:
    """A scope's state as a poll can trust it: a new one if there is none, and no
    watermark if the stored one is later than the poll's clock (it is then rewritten)."""
    if state is None:
        return ScopeState(baseline_started_at=now)
    if state.watermark is not None and state.watermark > now:
        return replace(state, watermark=None)
    return state
