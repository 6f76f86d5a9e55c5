"""Rules of a poll that the integration suite used to play through local AWS, now played
through the real poll() with the in-memory adapters of tests/fakes.py on a scripted clock:
storms, failed digests and channels, deferral in chunks, the watermark's margin, leases.
Each runs in milliseconds and fails if its rule breaks; tests/integration keeps one test
per piece of wiring (real calls, conditions, pagination, the template)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from job_events.vocabulary import EventType
from poller.models import Scope
from tests.world import World, told


def minutely(storm_threshold: int = 20) -> World:
    """A deployed notifier polled every minute."""
    return World(storm_threshold=storm_threshold, tick=60, start=datetime(2026, 11, 2, tzinfo=UTC))


def baseline_taken(notifier: World) -> None:
    """The first poll: it records the jobs that exist and announces nothing."""
    result = notifier.run()
    assert result.first_run
    assert result.clean
    assert told(notifier.topic) == []


# --- what a poll announces ----------------------------------------------------------------


def test_a_first_run_with_no_jobs_completes_its_baseline() -> None:
    notifier = minutely()
    baseline_taken(notifier)
    assert notifier.store.scopes[Scope()].baseline_complete
    notifier.source.put("undated", "PENDING")
    # A job without a creation time counts as new only once the baseline is complete.
    notifier.source.faults.odd = lambda summaries: [
        {k: v for k, v in s.items() if k != "creationDateTime"} for s in summaries
    ]

    second = notifier.run()

    assert not second.first_run
    assert told(notifier.topic) == [("undated", None, "PENDING")]


def test_between_two_polls_a_skipped_state_and_a_job_created_and_failed_are_one_event_each() -> (
    None
):
    notifier = minutely()
    (quick,) = notifier.jobs("quick", 1, "PENDING")
    baseline_taken(notifier)
    notifier.source.move(quick, "ACTIVE")  # never seen IN PROGRESS
    flash = notifier.source.put("flash", "CREATE FAILED", failureReason="role cannot read")

    notifier.run()

    assert sorted(told(notifier.topic)) == [
        ("flash", None, "CREATE FAILED"),
        ("quick-0", "PENDING", "ACTIVE"),
    ]
    assert {notifier.status(quick), notifier.status(flash)} == {"ACTIVE", "CREATE FAILED"}


# --- storms -------------------------------------------------------------------------------


def test_more_people_facing_changes_than_the_threshold_are_one_digest_for_people() -> None:
    notifier = minutely(storm_threshold=3)
    arns = notifier.jobs("job", 7, "IN PROGRESS")
    baseline_taken(notifier)
    for arn in arns[:4]:
        notifier.source.move(arn, "CREATE FAILED", failureReason="role lost s3 access")
    people_calls = notifier.people.calls

    storm = notifier.run()

    assert storm.storm
    assert storm.published == 4
    assert notifier.people.calls == people_calls + 1, "one digest"
    assert all(h.digest for h in notifier.people.heard)
    assert sorted(told(notifier.people)) == [
        (f"job-{i}", "IN PROGRESS", "CREATE FAILED") for i in range(4)
    ]
    assert not any(h.digest for h in notifier.topic.heard + notifier.bus.heard)
    assert len(told(notifier.topic)) == len(told(notifier.bus)) == 4, "machines get every event"

    for arn in arns[4:]:  # exactly the threshold: a message each
        notifier.source.move(arn, "ACTIVE")
    calm = notifier.run()

    assert not calm.storm
    assert not any(h.digest for h in notifier.people.heard)
    assert len(told(notifier.people)) == 3


def test_a_failed_digest_is_sent_again_without_resending_the_events() -> None:
    notifier = minutely(storm_threshold=3)
    arns = notifier.jobs("job", 5, "IN PROGRESS")
    baseline_taken(notifier)
    for arn in arns:
        notifier.source.move(arn, "ACTIVE")
    notifier.people.fails = lambda _event: True

    failed = notifier.run()

    assert failed.storm
    assert failed.publish_failures == 5
    assert len(told(notifier.topic)) == len(told(notifier.bus)) == 5
    assert told(notifier.people) == []
    assert {notifier.status(arn) for arn in arns} == {"IN PROGRESS"}
    notifier.people.fails = lambda _event: False
    sent = notifier.topic.calls, notifier.bus.calls

    retried = notifier.run()

    assert retried.published == 5
    assert (notifier.topic.calls, notifier.bus.calls) == sent, "machines are not sent it again"
    assert all(h.digest for h in notifier.people.heard)
    assert len(told(notifier.people)) == 5
    assert {notifier.status(arn) for arn in arns} == {"ACTIVE"}


# --- partial delivery and deadlines -------------------------------------------------------


def test_a_channel_that_failed_is_sent_the_announcement_alone_next_poll() -> None:
    notifier = minutely()
    (arn,) = notifier.jobs("half", 1, "IN PROGRESS")
    baseline_taken(notifier)
    notifier.source.move(arn, "ACTIVE")
    notifier.bus.fails = lambda _event: True

    failed = notifier.run()

    assert failed.publish_failures == 1
    assert not failed.clean
    assert told(notifier.topic) == told(notifier.people) == [("half-0", "IN PROGRESS", "ACTIVE")]
    assert told(notifier.bus) == []
    assert notifier.status(arn) == "IN PROGRESS", "recorded only once every channel has it"
    notifier.bus.fails = lambda _event: False
    sent = notifier.topic.calls, notifier.people.calls

    retried = notifier.run()

    assert retried.clean
    assert told(notifier.bus) == [("half-0", "IN PROGRESS", "ACTIVE")]
    assert (notifier.topic.calls, notifier.people.calls) == sent, "the others are not called"
    assert notifier.status(arn) == "ACTIVE"
    assert notifier.store.items[arn].delivered == {}


def test_near_the_deadline_whole_chunks_go_and_the_rest_waits_for_the_next_poll() -> None:
    notifier = minutely()
    arns = notifier.jobs("job", 25, "PENDING")
    baseline_taken(notifier)
    for arn in arns:
        notifier.source.move(arn, "IN PROGRESS")  # for machines only: no storm, no digest
    notifier.topic.cost = notifier.bus.cost = 2.0  # slow publishing, learnt from chunk 1

    # 10 s of safety margin, and about 5 s of work: room for one chunk of 10.
    short = notifier.run(seconds=15.5)

    assert short.published == 10
    assert short.deferred == 15
    assert not short.clean
    first = told(notifier.topic)
    notifier.topic.cost = notifier.bus.cost = 0.05

    rest = notifier.run()

    assert rest.published == 15
    assert rest.clean
    everything = first + told(notifier.topic)
    assert sorted(everything) == sorted((f"job-{i}", "PENDING", "IN PROGRESS") for i in range(25))


# --- the watermark ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behind", "found_between_full_reads"),
    [(timedelta(minutes=10), True), (timedelta(minutes=20), False)],
)
def test_a_change_listed_late_is_found_within_the_watermarks_margin(
    behind: timedelta, found_between_full_reads: bool
) -> None:
    notifier = minutely()
    late, other = notifier.jobs("job", 2, "IN PROGRESS")
    baseline_taken(notifier)
    notifier.source.move(late, "ACTIVE")
    before = {**notifier.source.summaries[late], "status": "IN PROGRESS"}
    notifier.clock.advance(behind.total_seconds())
    notifier.source.move(other, "ACTIVE")
    # A lagging listing still shows "late" as it was; "other" moves the watermark on.
    notifier.source.faults.odd = lambda summaries: [
        before if s["batchSegmentJobArn"] == late else s for s in summaries
    ]
    assert notifier.run().clean
    assert told(notifier.topic) == [("job-1", "IN PROGRESS", "ACTIVE")]
    notifier.source.faults.odd = None

    between = notifier.run()

    assert not between.full_read
    heard = [("job-0", "IN PROGRESS", "ACTIVE")]
    assert told(notifier.topic) == (heard if found_between_full_reads else [])
    notifier.clock.advance(3600)  # the hourly full read finds it in any case
    assert notifier.run().full_read
    assert told(notifier.topic) == ([] if found_between_full_reads else heard)


def test_the_watermark_does_not_pass_a_change_that_was_not_delivered() -> None:
    notifier = minutely()
    stuck_in_delivery, other = notifier.jobs("job", 2, "PENDING")
    baseline_taken(notifier)
    watermark = notifier.store.scopes[Scope()].watermark
    notifier.source.move(stuck_in_delivery, "ACTIVE")
    notifier.topic.fails = lambda event: event.batch_segment_job_arn == stuck_in_delivery
    assert notifier.run().publish_failures == 1
    notifier.clock.advance(20 * 60)
    notifier.source.move(other, "ACTIVE")
    assert notifier.run().publish_failures == 1
    assert told(notifier.topic) == [("job-1", "PENDING", "ACTIVE")]
    assert notifier.store.scopes[Scope()].watermark == watermark
    notifier.topic.fails = lambda _event: False

    delivered = notifier.run()

    assert not delivered.full_read
    assert told(notifier.topic) == [("job-0", "PENDING", "ACTIVE")]
    assert (
        notifier.store.scopes[Scope()].watermark
        == notifier.source.summaries[other]["lastUpdatedDateTime"]
    )


# --- leases -------------------------------------------------------------------------------


def test_a_claim_left_by_a_dead_poll_is_taken_over_once_its_lease_lapses() -> None:
    notifier = minutely()
    (arn,) = notifier.jobs("orphan", 1, "PENDING")
    baseline_taken(notifier)
    notifier.source.move(arn, "ACTIVE")
    item = notifier.store.items[arn]
    item.claimed_by, item.claim_expires_at = "dead-poll", notifier.clock.time() + 150

    blocked = notifier.run()

    assert blocked.claims_lost == 1
    assert told(notifier.topic) == []
    notifier.clock.advance(120)  # past the lease

    taken_over = notifier.run()

    assert taken_over.published == 1
    assert told(notifier.topic) == [("orphan-0", "PENDING", "ACTIVE")]
    notifier.run()
    assert told(notifier.topic) == [], "announced once"
    assert EventType.JOB_SUCCEEDED.value in {h.event_type for h in notifier.bus.heard}
