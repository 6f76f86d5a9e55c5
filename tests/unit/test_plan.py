"""Where a scope stands after a run (plan.next_state), in tables like the rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from poller.models import ScopeState
from poller.plan import ScopeRun, needs_catch_up, next_state
from poller.ports import Listing

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
SEEN = T0 + timedelta(hours=1)  # the latest update a listing saw
WATCHED = ScopeState(T0, baseline_complete=True, watermark=T0)
TAKING = ScopeState(T0, baseline_polls=1)

WHOLE = Listing([], pages=3)
CUT = Listing([], pages=2, next_token="page-3")
RESUMED = Listing([], pages=1, resumed=True)


def ran(listing: Listing, *, written: bool = True, full_read: bool = False) -> ScopeRun:
    return ScopeRun(listing, SEEN, full_read, written)


@pytest.mark.parametrize(
    ("state", "scope_run", "delivered_all", "clean", "expected"),
    [
        # A clean pass over every page: the watermark moves on.
        (WATCHED, ran(WHOLE), True, True, replace(WATCHED, watermark=SEEN)),
        # ... and after a full read, its time is kept.
        (
            WATCHED,
            ran(WHOLE, full_read=True),
            True,
            True,
            replace(WATCHED, watermark=SEEN, last_full_read_at=NOW),
        ),
        # Some other scope fell short: nothing passed over, but no new watermark.
        (WATCHED, ran(WHOLE), True, False, WATCHED),
        # Something was left unannounced: the scope stays where it began.
        (WATCHED, ran(CUT), False, False, WATCHED),
        # Cut short for time: the checkpoint is where the next run continues.
        (WATCHED, ran(CUT), True, False, replace(WATCHED, checkpoint="page-3")),
        # A resumed listing is no full pass: no watermark from it.
        (replace(WATCHED, checkpoint="page-3"), ran(RESUMED), True, True, WATCHED),
        # Not listed this run (unreachable, or no time): a baseline counts the run.
        (TAKING, None, True, True, replace(TAKING, baseline_polls=2)),
        (WATCHED, None, True, True, WATCHED),
        # A baseline write failed: counted, kept where it began.
        (TAKING, ran(WHOLE, written=False), True, True, replace(TAKING, baseline_polls=2)),
        # A baseline that reached its last page is complete.
        (
            TAKING,
            ran(WHOLE),
            True,
            True,
            replace(TAKING, baseline_polls=2, baseline_complete=True, watermark=SEEN),
        ),
    ],
)
def test_next_state(
    state: ScopeState,
    scope_run: ScopeRun | None,
    delivered_all: bool,
    clean: bool,
    expected: ScopeState,
) -> None:
    assert next_state(state, scope_run, NOW, delivered_all=delivered_all, clean=clean) == expected


def test_a_watermark_never_moves_back() -> None:
    later = replace(WATCHED, watermark=NOW)
    assert next_state(later, ran(WHOLE), NOW, delivered_all=True, clean=True) == later


@pytest.mark.parametrize(
    ("listing", "needed"),
    [
        (replace(CUT, restarted=True), True),  # its checkpoint expired, and it fell short again
        (replace(WHOLE, restarted=True), False),
        (CUT, False),  # a checkpoint that still works: the next run continues it
    ],
)
def test_a_catch_up_run_is_needed_only_when_scheduled_runs_cannot_finish(
    listing: Listing, needed: bool
) -> None:
    assert needs_catch_up(listing) is needed
