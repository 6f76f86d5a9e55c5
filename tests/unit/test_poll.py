"""One poll's rules, end to end through the real poll() with in-memory adapters and a
scripted clock: deadlines, progress, odd listings, scopes and partial deliveries.

Each test runs in milliseconds; the moto-based tests in tests/integration cover the wiring.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from job_events.vocabulary import EventType
from poller.delivery import CLAIM_MARGIN_SECONDS
from poller.models import Scope
from poller.poll import PollResult, poll
from poller.report import summary
from tests.fakes import (
    START,
    job_arn,
    solution_version_arn,
)
from tests.world import SAFETY, World, all_moved, watching

# --- bounded work: every run ends before its deadline and makes progress -------------------


def test_slow_describe_calls_are_dropped_before_delivery_is() -> None:
    world = World()
    all_moved(world, 30, "IN PROGRESS", "ACTIVE")
    world.source.faults.describe_cost = 5.0

    result = world.run(seconds=40)

    assert result.published == 30
    assert result.deferred == 0
    assert result.enrichment_dropped > 0
    described = world.source.calls["DescribeBatchSegmentJob"]
    assert described + result.enrichment_dropped == 30
    assert summary(result)["enrichmentDropped"] == 30 - described  # as the handler reports it
    assert len(world.heard()) == 30


def test_a_storm_that_cannot_finish_stops_before_the_deadline_and_sends_nothing_twice() -> None:
    world = World(storm_threshold=5)
    arns = all_moved(world, 200, "IN PROGRESS", "CREATE FAILED", failureReason="bad role")
    world.source.faults.describe_cost = 0.0
    world.store.faults.write_cost = 0.2  # slow claims and records

    first = world.run(seconds=30)

    assert first.storm
    assert 0 < first.published < 200
    assert first.deferred == 200 - first.published
    first_people = world.events("people")
    assert len(first_people) == first.published
    assert all(h.digest for h in first_people)
    world.later(5)
    while (result := world.run(seconds=30)).deferred:
        world.later(5)
    assert result.clean
    told = [h.arn for h in world.events("sns")]
    assert sorted(told) == sorted(arns), "every failure announced once on the events topic"
    people = [h.arn for h in world.events("people")]
    assert sorted(people) == sorted(arns), "and once in people's digests"


def test_a_long_first_listing_resumes_where_it_stopped_and_stays_silent() -> None:
    world = World(page_size=10)
    arns = [world.source.put(f"old-{i:03}", "ACTIVE") for i in range(100)]
    world.later(1)
    world.source.faults.page_cost = 3.0  # about three pages fit in a 30 s run

    runs = [world.run(seconds=30)]
    while runs[-1].baseline_polls:  # runs the unfinished baseline has taken so far
        runs.append(world.run(seconds=30))
        assert len(runs) < 20, "the baseline must finish"

    assert len(runs) >= 3, "the listing did not fit in one run"
    assert all(not r.listing_complete for r in runs[:-1])
    assert runs[-1].listing_complete
    assert [r.baseline_polls for r in runs[:-1]] == list(range(1, len(runs)))
    assert world.heard() == []
    assert set(world.store.items) == set(arns)


def test_a_resumed_baseline_announces_real_changes_of_jobs_it_already_recorded() -> None:
    world = World(page_size=10)
    arns = [world.source.put(f"old-{i:03}", "IN PROGRESS") for i in range(40)]
    world.later(1)
    world.source.faults.page_cost = 6.0
    first = world.run(seconds=30)
    assert first.first_run
    assert not first.listing_complete
    recorded = sorted(world.store.items)
    world.source.move(recorded[0], "ACTIVE")

    while world.run(seconds=30).first_run:
        pass
    world.source.faults.page_cost = 0.2
    world.run()

    assert world.heard() == [(recorded[0].rsplit("/", 1)[-1], "IN PROGRESS", "ACTIVE")]
    assert len(arns) == len(world.store.items)


def test_a_claims_lease_is_the_deadline_of_the_run_at_the_time_it_claims() -> None:
    world = World()
    (arn,) = watching(world, ("job", "PENDING"))
    world.source.move(arn, "ACTIVE")
    world.source.faults.page_cost = 20.0  # the claim comes late in the run
    leases: list[float] = []
    claim = world.store.claim

    def noting_lease(transition: Any, run_id: str, now: float, expires_at: float) -> None:
        leases.append(expires_at - now)
        claim(transition, run_id, now, expires_at)

    world.store.claim = noting_lease  # type: ignore[method-assign]
    world.run(seconds=60)

    # 60 s run, 20 s spent listing: 40 s left (less what the claim's own write took).
    (lease,) = leases
    assert lease == pytest.approx(40 + CLAIM_MARGIN_SECONDS, abs=0.5)


def test_a_full_read_is_due_by_state_not_by_the_clock() -> None:
    world = World()
    watching(world, ("job", "ACTIVE"))
    loads: list[str] = []
    load_all = world.store.load_all

    def counting() -> Any:
        loads.append("all")
        return load_all()

    world.store.load_all = counting  # type: ignore[method-assign]
    world.later(30)
    assert not world.run().full_read
    world.later(31)  # a late tick: 61 minutes since the baseline's full read
    assert world.run().full_read
    world.later(5)
    assert not world.run().full_read
    assert loads == ["all"]


def test_deferred_transitions_count_and_the_heartbeat_waits() -> None:
    world = World()
    all_moved(world, 50, "PENDING", "IN PROGRESS")
    world.store.faults.write_cost = 0.5

    result = world.run(seconds=30)

    assert result.deferred > 0
    assert not result.clean
    world.store.faults.write_cost = 0.01
    world.later(5)
    assert world.run().clean
    assert len(world.heard()) == 50


def test_a_checkpoint_never_passes_deferred_work() -> None:
    # Regression (property test): a short run listed the first page, deferred its changes
    # and saved the checkpoint after it; the next run resumed past them and called itself
    # clean while the change was never announced.
    world = World(page_size=3)
    arns = watching(world, *[(f"job-{i}", "PENDING") for i in range(6)])
    world.source.move(arns[0], "IN PROGRESS")
    world.channels[:] = world.channels[:2]
    short = world.run(seconds=SAFETY + 1)
    assert short.deferred or not short.listing_complete

    world.later(1)
    world.run()
    world.later(1)
    world.run()

    assert world.heard() == [("job-0", "PENDING", "IN PROGRESS")]


# --- odd listings change nothing --------------------------------------------------------


def test_a_summary_without_status_is_no_transition_and_the_record_is_kept() -> None:
    world = World()
    (arn,) = watching(world, ("job", "IN PROGRESS"))
    world.source.summaries[arn].pop("status")

    result = world.run()

    assert world.heard() == []
    assert summary(result)["skipped"] == {"no-status": 1}  # as the handler reports it
    assert world.store.items[arn].status == "IN PROGRESS"
    world.source.move(arn, "ACTIVE")
    world.run()
    world.run()
    assert world.heard() == [("job", "IN PROGRESS", "ACTIVE")]


def test_a_skipped_summary_holds_the_watermark_back() -> None:
    # Regression (property test): a summary without status let the watermark pass the job,
    # so its real change waited for the hourly full read.
    world = World()
    quiet, other = watching(world, ("quiet", "IN PROGRESS"), ("other", "IN PROGRESS"))
    world.source.move(quiet, "ACTIVE")
    without_status = world.source.summaries[quiet].pop("status")
    world.later(20)
    world.source.move(other, "ACTIVE")
    world.run()
    assert world.heard() == [("other", "IN PROGRESS", "ACTIVE")]

    world.source.summaries[quiet]["status"] = without_status
    world.run()

    assert world.heard() == [("quiet", "IN PROGRESS", "ACTIVE")]


def test_a_lagging_summary_announces_no_backward_move_and_no_second_success() -> None:
    world = World()
    (arn,) = watching(world, ("job", "IN PROGRESS"))
    world.source.move(arn, "ACTIVE")
    world.run()
    assert world.heard() == [("job", "IN PROGRESS", "ACTIVE")]
    listed = world.source.summaries[arn]
    world.source.summaries[arn] = {**listed, "status": "IN PROGRESS"}

    lagging = world.run()
    world.source.summaries[arn] = listed
    world.run()

    assert summary(lagging)["skipped"] == {"backwards": 1}  # as the handler reports it
    assert world.heard() == []


def test_a_future_timestamp_does_not_pin_the_watermark() -> None:
    world = World()
    odd, other = watching(world, ("odd", "PENDING"), ("other", "PENDING"))
    world.source.move(odd, "ACTIVE")
    world.source.summaries[odd]["lastUpdatedDateTime"] = START + timedelta(days=365)
    world.run()
    assert world.heard() == [("odd", "PENDING", "ACTIVE")]

    world.later(20)
    world.source.move(other, "ACTIVE")
    result = world.run()

    assert not result.full_read, "found between full reads"
    assert world.heard() == [("other", "PENDING", "ACTIVE")]
    watermark = world.store.scopes[Scope()].watermark
    assert watermark is not None
    assert watermark <= world.clock.now()


def test_invalid_unicode_is_replaced_and_a_job_that_cannot_be_rendered_blocks_no_other() -> None:
    world = World()
    hostile, huge, healthy = watching(
        world, ("hostile", "IN PROGRESS"), ("huge", "IN PROGRESS"), ("healthy", "IN PROGRESS")
    )
    world.source.move(hostile, "CREATE FAILED", failureReason="bad \ud800 input")
    world.source.move(huge, "ACTIVE", jobName="x" * 300_000)  # cannot fit in any message
    world.source.move(healthy, "ACTIVE")

    result = world.run()

    assert result.publish_failures == 1
    assert result.published == 2
    told = {h.arn: h for h in world.events("events")}
    assert set(told) == {hostile, healthy}
    assert world.store.items[huge].status == "IN PROGRESS", "left for the next poll"
    assert world.store.items[huge].claimed_by is None, "never claimed"


def test_a_job_listed_twice_is_announced_once() -> None:
    world = World()
    (arn,) = watching(world, ("job", "PENDING"))
    world.source.move(arn, "ACTIVE")
    world.source.faults.odd = lambda summaries: summaries + summaries

    world.run()

    assert world.heard() == [("job", "PENDING", "ACTIVE")]


# --- scopes: widening the watch list, and what existed before ----------------------------


def test_a_newly_watched_version_gets_a_silent_baseline_of_its_own() -> None:
    first, second = solution_version_arn("first"), solution_version_arn("second")
    world = World(scopes=(Scope(first),))
    world.source.put("mine", "PENDING", solution_version=first)
    old = world.source.put("theirs", "ACTIVE", solution_version=second)
    world.later(1)
    world.run()
    world.later(1)

    world.scopes = (Scope(first), Scope(second))
    widened = world.run()
    world.source.put("fresh", "ACTIVE", solution_version=second)
    world.later(1)
    world.run()

    assert widened.first_run
    assert world.heard() == [("fresh", None, "ACTIVE")]
    assert world.store.items[old].status == "ACTIVE"


def test_jobs_already_stuck_when_watching_begins_are_not_announced() -> None:
    world = World()
    world.source.put("stuck", "IN PROGRESS")
    world.later(60 * 24)  # a day in IN PROGRESS before the notifier was deployed
    world.source.put("fine", "PENDING")
    world.later(1)
    world.run()

    world.later(60 * 7)  # "fine" is now stuck too, after watching began
    world.run()

    assert [(h.arn.rsplit("/", 1)[-1], h.event_type) for h in world.events()] == [
        ("fine", EventType.JOB_STUCK)
    ]


# --- delivery ------------------------------------------------------------------------------


def test_after_a_partial_delivery_each_channel_hears_on_from_what_it_heard() -> None:
    # Regression (property test): the events topic got PENDING -> IN PROGRESS but the bus
    # did not; when the job then finished, both were told PENDING -> ACTIVE, so the topic's
    # subscribers saw a previousStatus that was not the last one they heard.
    world = World()
    (arn,) = watching(world, ("job", "PENDING"))
    world.source.move(arn, "IN PROGRESS")
    world.publishers["events"].fails = lambda _event: True
    assert world.run().publish_failures == 1
    world.publishers["events"].fails = lambda _event: False
    world.source.move(arn, "ACTIVE")

    world.run()

    assert world.heard("sns") == [
        ("job", "PENDING", "IN PROGRESS"),
        ("job", "IN PROGRESS", "ACTIVE"),
    ]
    assert world.heard("events") == [("job", "PENDING", "ACTIVE")]
    assert world.heard("people") == [("job", "PENDING", "ACTIVE")]


def test_a_failed_baseline_write_fails_nothing_else_and_is_retried() -> None:
    # Regression (property test): a throttled baseline write escaped the poll, so the
    # other scope's announcements of that run were lost with it.
    world = World()
    world.source.put("old", "ACTIVE")
    world.later(1)
    world.store.faults.failing_writes = {1}

    result = world.run()

    assert result.record_failures == 1
    assert result.first_run
    world.run()
    assert set(world.store.items) == {job_arn("old")}
    assert world.heard() == []


def test_two_polls_at_once_announce_each_transition_exactly_once() -> None:
    world = World()
    all_moved(world, 5, "PENDING", "ACTIVE")
    second: list[PollResult] = []

    def overlapping() -> None:
        deadline = world.clock.time() + 60
        second.append(
            poll(world.source, world.store, world.channels, world.spec(deadline, "other"))
        )

    world.publishers["sns"].on_publish = overlapping
    first = world.run()

    assert first.published + second[0].published == 5
    assert first.claims_lost + second[0].claims_lost >= 1
    for channel in ("sns", "events", "people"):
        assert sorted(world.heard(channel)) == [(f"job-{i}", "PENDING", "ACTIVE") for i in range(5)]


# --- every account and region ----------------------------------------------------------

PROD, DEV = "111111111111", "222222222222"
EAST, WEST = "us-east-1", "eu-west-1"
FOUR_SCOPES = tuple(Scope(None, a, r) for a in (PROD, DEV) for r in (EAST, WEST))


def test_an_unreachable_scope_blocks_no_other_and_is_named() -> None:
    world = World(scopes=FOUR_SCOPES)
    arns = {
        (a, r): world.source.put(f"job-{a}-{r}", "PENDING", account=a, region=r)
        for a in (PROD, DEV)
        for r in (EAST, WEST)
    }
    world.later(1)
    world.run()
    for arn in arns.values():
        world.source.move(arn, "CREATE FAILED", failureReason="bad input")
    world.source.faults.unreachable = {f"{DEV}/{WEST}"}

    result = world.run()

    assert result.unreachable.keys() == {f"{DEV}/{WEST}"}
    assert result.clean, "the other scopes finished their work: the heartbeat counts them"
    told = {(h.arn, h.event_type) for h in world.events("people")}
    assert told == {(arns[s], "JOB_FAILED") for s in arns if s != (DEV, WEST)}
    world.source.faults.unreachable = set()
    world.run()
    assert world.events("people")[-1].arn == arns[(DEV, WEST)], "announced once reachable"


def test_a_newly_watched_account_gets_a_silent_baseline_of_its_own() -> None:
    world = World(scopes=(Scope(None, PROD, EAST),))
    world.source.put("prod-job", "PENDING", account=PROD, region=EAST)
    old = world.source.put("dev-done", "ACTIVE", account=DEV, region=EAST)
    world.later(1)
    world.run()

    world.scopes = (Scope(None, PROD, EAST), Scope(None, DEV, EAST))
    assert world.run().first_run
    world.source.put("dev-new", "ACTIVE", account=DEV, region=EAST)
    world.later(1)
    world.run()

    assert world.heard() == [("dev-new", None, "ACTIVE")]
    assert world.store.items[old].status == "ACTIVE"


def test_scopes_are_listed_at_once() -> None:
    world = World(scopes=FOUR_SCOPES)
    together = threading.Barrier(len(FOUR_SCOPES), timeout=5)
    list_jobs = world.source.list_jobs

    def waiting_for_the_others(*args: Any) -> Any:
        together.wait()  # breaks (and the poll fails) unless all four list at once
        return list_jobs(*args)

    world.source.list_jobs = waiting_for_the_others  # type: ignore[method-assign,assignment]
    result = world.run()

    assert not result.unreachable
    assert result.listing_complete


def test_a_watermark_from_the_future_is_rewritten() -> None:
    world = World()
    (arn,) = watching(world, ("job", "PENDING"))
    scope = Scope()
    world.store.scopes[scope] = replace(
        world.store.scopes[scope], watermark=START + timedelta(days=365)
    )
    world.later(5)
    world.source.move(arn, "ACTIVE")

    world.run()

    assert world.heard() == [("job", "PENDING", "ACTIVE")]
    watermark = world.store.scopes[scope].watermark
    assert watermark is not None
    assert watermark <= world.clock.now()


def test_a_lagging_listing_after_a_partial_delivery_sends_no_channel_backwards() -> None:
    # Regression (adversarial review): the bus heard PENDING -> ACTIVE while the topic
    # failed; a lagging IN PROGRESS then went to the bus as ACTIVE -> IN PROGRESS, and
    # ACTIVE was announced a second time everywhere.
    world = World()
    (arn,) = watching(world, ("x", "PENDING"))
    world.source.move(arn, "IN PROGRESS")
    lagging = dict(world.source.summaries[arn])
    world.later(1)
    world.source.move(arn, "ACTIVE")
    world.publishers["sns"].fails = lambda _event: True
    world.run()
    world.publishers["sns"].fails = lambda _event: False
    current = world.source.summaries[arn]
    world.source.summaries[arn] = lagging

    world.run()
    world.source.summaries[arn] = current
    world.run()

    assert world.heard("events") == [("x", "PENDING", "ACTIVE")]
    assert world.heard("sns") == [("x", "PENDING", "ACTIVE")]
    assert world.heard("people") == [("x", "PENDING", "ACTIVE")]


def test_a_job_that_moves_while_the_first_poll_lists_is_not_taken_for_stuck() -> None:
    # Regression (adversarial review): its update time, a moment after the poll began,
    # was not believed, so the creation seven hours earlier made it "already stuck" and
    # its real stuck, hours later, was never announced.
    world = World()
    arn = world.source.put("x", "PENDING")
    world.later(7 * 60)

    def moves_while_listed(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        world.clock.advance(0.5)
        world.source.move(arn, "IN PROGRESS")
        world.source.faults.odd = None
        return [dict(world.source.summaries[arn])]

    world.source.faults.odd = moves_while_listed
    world.run()
    assert world.store.items[arn].stuck_status is None
    for _ in range(8):
        world.later(60)
        world.run()

    # It moved after watching began, so its move is news; then, hours later, its stuck.
    assert [(h.event_type, h.status) for h in world.events()] == [
        ("JOB_STATUS_CHANGED", "IN PROGRESS"),
        ("JOB_STUCK", "IN PROGRESS"),
    ]
