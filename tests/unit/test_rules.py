"""The pure rules: how one listed job compares with its record. Milliseconds each."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from job_events.vocabulary import EventType
from poller.models import Announced, JobSummary, Record, ScopeState, Transition
from poller.personalize_source import clean_text
from poller.rules import (
    LISTING_LAG,
    Outcome,
    classify,
    decide,
    existed_before_watching,
    full_read_due,
    is_stuck,
    latest_per_job,
    latest_update,
    needs_check,
    normalise_status,
    rank,
)

ARN = "arn:aws:personalize:us-east-1:123456789012:batch-segment-job/"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30)
LIMIT = timedelta(hours=6)
WATCHED = ScopeState(baseline_started_at=T0 - timedelta(days=1), baseline_complete=True)


def job(name: str, status: str | None, minutes: int = 0, created: int | None = None) -> JobSummary:
    return JobSummary(
        arn=ARN + name,
        name=name,
        status=status,
        last_updated_time=T0 + timedelta(minutes=minutes),
        creation_time=T0 + timedelta(minutes=minutes if created is None else created),
    )


def snap(
    name: str, status: str | None, stuck_status: str | None = None, minutes: int | None = None
) -> Record:
    updated = T0 + timedelta(minutes=minutes) if minutes is not None else None
    return Record(ARN + name, status, name, stuck_status, last_updated=updated)


def changes(
    snapshot: dict[str, Record],
    jobs: list[JobSummary],
    now: datetime = NOW,
    scope: ScopeState = WATCHED,
) -> list[Transition]:
    found = []
    for listed in latest_per_job(jobs).values():
        decision = decide(listed, snapshot.get(listed.arn or ""), scope, now, LIMIT)
        if decision.transition is not None:
            found.append(decision.transition)
    return found


def outcome(record: Record | None, listed: JobSummary, scope: ScopeState = WATCHED) -> Outcome:
    return decide(listed, record, scope, NOW, LIMIT).outcome


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("ACTIVE", EventType.JOB_SUCCEEDED),
        ("CREATE FAILED", EventType.JOB_FAILED),
        ("CREATE_FAILED", EventType.JOB_FAILED),
        ("failed", EventType.JOB_FAILED),
        ("DELETE FAILED", EventType.JOB_FAILED),
        ("PENDING", EventType.JOB_STATUS_CHANGED),
        ("IN PROGRESS", EventType.JOB_STATUS_CHANGED),
        ("CREATE PENDING", EventType.JOB_STATUS_CHANGED),
        ("CREATE IN_PROGRESS", EventType.JOB_STATUS_CHANGED),
        ("create active", EventType.JOB_SUCCEEDED),
        ("SOMETHING NEW", EventType.JOB_STATUS_CHANGED),
        ("", EventType.JOB_STATUS_CHANGED),
        (None, EventType.JOB_STATUS_CHANGED),
    ],
)
def test_classify(status: str | None, expected: EventType) -> None:
    assert classify(status) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("PENDING", 0),
        ("CREATE PENDING", 0),
        ("CREATE IN_PROGRESS", 1),
        ("IN PROGRESS", 1),
        ("ACTIVE", 2),
        ("CREATE FAILED", 2),
        ("STOPPING", None),
        (None, None),
    ],
)
def test_rank_orders_a_jobs_life(status: str | None, expected: int | None) -> None:
    assert rank(status) == expected


def test_normalise_folds_spellings() -> None:
    assert normalise_status("CREATE IN_PROGRESS") == "IN PROGRESS"
    assert normalise_status(" in  progress ") == "IN PROGRESS"
    assert normalise_status("ACTIVE") == "ACTIVE"
    assert normalise_status(None) == ""


def test_new_job_has_no_previous_status() -> None:
    (transition,) = changes({}, [job("a", "PENDING")])
    assert transition.previous_status is None
    assert transition.job.status == "PENDING"
    assert transition.event_type is EventType.JOB_STATUS_CHANGED


def test_changed_status_gives_one_transition_unchanged_gives_none() -> None:
    snapshot = {ARN + "a": snap("a", "PENDING"), ARN + "b": snap("b", "ACTIVE")}
    transitions = changes(snapshot, [job("a", "ACTIVE"), job("b", "ACTIVE")])
    assert [(t.job.name, t.previous_status, t.event_type) for t in transitions] == [
        ("a", "PENDING", EventType.JOB_SUCCEEDED)
    ]


def test_statuses_are_compared_exactly() -> None:
    # Same meaning, different spelling: still a change worth reporting, as the API says so.
    (transition,) = changes({ARN + "a": snap("a", "IN PROGRESS")}, [job("a", "CREATE IN_PROGRESS")])
    assert transition.previous_status == "IN PROGRESS"


def test_jobs_missing_from_the_listing_are_not_reported_gone() -> None:
    assert changes({ARN + "gone": snap("gone", "ACTIVE")}, []) == []


def test_jobs_without_arn_are_skipped() -> None:
    assert changes({}, [JobSummary(name="anonymous", status="PENDING")]) == []


def test_a_summary_without_status_changes_nothing() -> None:
    # The API allows it; it is not a move to "None", and the record is kept.
    assert outcome(snap("a", "PENDING"), job("a", None)) is Outcome.NO_STATUS
    assert outcome(None, job("a", None)) is Outcome.NO_STATUS


def test_a_record_with_a_malformed_status_is_announced_afresh() -> None:
    (transition,) = changes({ARN + "a": snap("a", None)}, [job("a", "ACTIVE")])
    assert transition.previous_status is None


def test_a_lagging_summary_never_moves_a_job_backwards() -> None:
    assert outcome(snap("a", "IN PROGRESS", minutes=10), job("a", "PENDING", 1)) is (
        Outcome.BACKWARDS
    )
    # Even with a later (odd) timestamp, a final status never moves.
    assert outcome(snap("a", "ACTIVE", minutes=10), job("a", "IN PROGRESS", 20)) is (
        Outcome.BACKWARDS
    )
    assert outcome(snap("a", "CREATE FAILED"), job("a", "ACTIVE", 20)) is Outcome.BACKWARDS


def test_an_older_summary_of_an_unknown_status_is_stale() -> None:
    assert outcome(snap("a", "STOPPING", minutes=10), job("a", "SOMETHING NEW", 5)) is (
        Outcome.STALE
    )
    assert outcome(snap("a", "STOPPING", minutes=10), job("a", "SOMETHING NEW", 15)) is (
        Outcome.ANNOUNCE
    )


def test_forward_in_the_documented_order_is_news_whatever_the_times() -> None:
    # The record's time may have been clamped to a poll that saw a summary from the future.
    assert outcome(snap("a", "IN PROGRESS", minutes=60), job("a", "ACTIVE", 5)) is (
        Outcome.ANNOUNCE
    )


def test_a_new_job_is_announced_only_if_created_after_watching_began() -> None:
    started = ScopeState(baseline_started_at=T0, baseline_complete=True)
    assert outcome(None, job("old", "ACTIVE", -1, created=-2), started) is Outcome.BASELINE
    assert outcome(None, job("new", "ACTIVE", 5, created=1), started) is Outcome.ANNOUNCE


@pytest.mark.parametrize("complete", [False, True])
def test_an_old_job_that_moved_after_watching_began_is_news_before_its_baseline_reaches_it(
    complete: bool,
) -> None:
    # A baseline spread over several runs: the job existed at T0, failed at T0+60 min, and
    # the baseline had not recorded it yet. Announced as first seen (previousStatus null).
    taking = ScopeState(baseline_started_at=T0, baseline_complete=complete)
    failed = job("old", "CREATE FAILED", 60, created=-10)
    decision = decide(failed, None, taking, T0 + timedelta(minutes=61), LIMIT)
    assert decision.outcome is Outcome.ANNOUNCE
    assert decision.transition == Transition(EventType.JOB_FAILED, failed, None)


def test_an_update_time_far_in_the_future_is_not_a_move_since_watching_began() -> None:
    taking = ScopeState(baseline_started_at=T0)
    odd = job("old", "ACTIVE", 60 * 24 * 365, created=-10)
    assert outcome(None, odd, taking) is Outcome.BASELINE


@pytest.mark.parametrize("lagging", ["PENDING", "IN PROGRESS", "ACTIVE"])
def test_a_new_job_a_channel_heard_is_never_contradicted_by_a_lagging_listing(
    lagging: str,
) -> None:
    # First seen ACTIVE after watching began; one channel failed, so the record holds no
    # status, only what each channel heard. A listing lagging behind announces nothing.
    heard = Record(ARN + "a", None, delivered={"sns": "JOB_FAILED:CREATE FAILED"})
    assert outcome(heard, job("a", lagging, 5, created=1)) is Outcome.BACKWARDS
    heard_active = Record(ARN + "a", None, delivered={"sns": "JOB_SUCCEEDED:ACTIVE"})
    if lagging != "ACTIVE":
        assert outcome(heard_active, job("a", lagging, 5, created=1)) is Outcome.BACKWARDS


@pytest.mark.parametrize("complete", [False, True])
def test_a_record_from_before_a_scope_was_watched_again_is_corrected_silently(
    complete: bool,
) -> None:
    # Removed and added back: a fresh baseline began at T0. The job moved, or became stuck,
    # while nobody watched; its record is three days old.
    fresh = ScopeState(baseline_started_at=T0, baseline_complete=complete, rewatched=True)
    old_record = Record(ARN + "a", "PENDING", recorded_at=T0 - timedelta(days=3))
    assert outcome(old_record, job("a", "ACTIVE", -60, created=-4000), fresh) is Outcome.BASELINE
    assert outcome(old_record, job("a", "PENDING", -4000), fresh) is Outcome.BASELINE
    # What it does once watched again is news; so is all of it for a scope never unwatched.
    assert outcome(old_record, job("a", "ACTIVE", 5, created=-4000), fresh) is Outcome.ANNOUNCE
    watched = replace(fresh, rewatched=False)
    assert outcome(old_record, job("a", "ACTIVE", -60, created=-4000), watched) is Outcome.ANNOUNCE


def test_without_a_creation_time_a_job_is_new_only_once_the_baseline_is_complete() -> None:
    nameless = JobSummary(arn=ARN + "x", status="ACTIVE")
    taking = ScopeState(baseline_started_at=T0)
    assert existed_before_watching(nameless, taking)
    assert not existed_before_watching(nameless, WATCHED)


def test_a_move_before_watching_began_corrects_a_lagging_baseline_silently() -> None:
    started = ScopeState(baseline_started_at=T0, baseline_complete=True)
    baselined = Record(ARN + "a", "PENDING", recorded_at=T0 + timedelta(minutes=1))
    moved_before = job("a", "ACTIVE", -1, created=-10)
    assert outcome(baselined, moved_before, started) is Outcome.BASELINE
    # A record from before this scope was watched (another scope's): the move is news.
    older_record = Record(ARN + "a", "PENDING", recorded_at=T0 - timedelta(minutes=5))
    assert outcome(older_record, moved_before, started) is Outcome.ANNOUNCE


def test_duplicate_listing_keeps_the_latest_update() -> None:
    latest = latest_per_job([job("a", "ACTIVE", 5), job("a", "PENDING", 1)])
    assert latest[ARN + "a"].status == "ACTIVE"
    (transition,) = changes({}, [job("a", "PENDING", 1), job("a", "ACTIVE", 5)])
    assert transition.job.status == "ACTIVE"


def test_duplicate_listing_with_equal_times_keeps_the_later_status() -> None:
    same_time = [job("a", "IN PROGRESS", 5), job("a", "PENDING", 5)]
    assert latest_per_job(same_time)[ARN + "a"].status == "IN PROGRESS"


def test_a_job_waiting_past_the_limit_is_stuck_once_per_status() -> None:
    late = NOW + LIMIT + LISTING_LAG + timedelta(minutes=1)
    waiting = job("slow", "IN PROGRESS")
    (transition,) = changes({ARN + "slow": snap("slow", "IN PROGRESS")}, [waiting], late)
    assert transition.event_type is EventType.JOB_STUCK
    assert transition.previous_status == "IN PROGRESS"
    reported = {ARN + "slow": snap("slow", "IN PROGRESS", stuck_status="IN PROGRESS")}
    assert changes(reported, [waiting], late) == []


def test_stuck_again_in_a_later_status() -> None:
    late = NOW + LIMIT + LISTING_LAG + timedelta(minutes=1)
    reported_pending = {ARN + "slow": snap("slow", "IN PROGRESS", stuck_status="PENDING")}
    (transition,) = changes(reported_pending, [job("slow", "IN PROGRESS")], late)
    assert transition.event_type is EventType.JOB_STUCK


def test_a_change_wins_over_stuck() -> None:
    late = NOW + LIMIT + LISTING_LAG + timedelta(minutes=1)
    (transition,) = changes(
        {ARN + "slow": snap("slow", "PENDING")}, [job("slow", "IN PROGRESS")], late
    )
    assert transition.event_type is EventType.JOB_STATUS_CHANGED


@pytest.mark.parametrize(
    ("status", "age", "stuck"),
    [
        ("PENDING", timedelta(hours=7), True),
        ("CREATE IN_PROGRESS", timedelta(hours=7), True),
        ("IN PROGRESS", timedelta(hours=5), False),
        ("ACTIVE", timedelta(hours=70), False),
        ("CREATE FAILED", timedelta(hours=70), False),
        ("SOMETHING NEW", timedelta(hours=70), False),
    ],
)
def test_is_stuck(status: str, age: timedelta, stuck: bool) -> None:
    assert is_stuck(job("j", status), T0 + age, LIMIT) is stuck


def test_stuck_needs_a_time_to_measure_from() -> None:
    assert not is_stuck(JobSummary(arn=ARN + "x", status="PENDING"), NOW + LIMIT * 9, LIMIT)
    created_only = JobSummary(arn=ARN + "x", status="PENDING", creation_time=T0)
    assert is_stuck(created_only, T0 + LIMIT * 2, LIMIT)


def test_stuck_allows_for_a_lagging_listing() -> None:
    # A summary may show a status up to LISTING_LAG after the job left it.
    assert not is_stuck(job("j", "PENDING"), T0 + LIMIT + LISTING_LAG, LIMIT)
    assert is_stuck(job("j", "PENDING"), T0 + LIMIT + LISTING_LAG + timedelta(seconds=1), LIMIT)


def test_without_its_own_update_time_a_job_waits_since_its_record() -> None:
    # Regression (property test): a missing lastUpdatedDateTime fell back to the creation
    # time, and a job that had just moved to IN PROGRESS was called stuck.
    moved = JobSummary(arn=ARN + "j", status="IN PROGRESS", creation_time=T0)
    recorded = T0 + LIMIT
    assert not is_stuck(moved, T0 + LIMIT + timedelta(hours=1), LIMIT, recorded)
    assert outcome(snap("j", "IN PROGRESS", minutes=int(LIMIT.total_seconds() // 60)), moved) is (
        Outcome.UNCHANGED
    )


def test_an_update_time_in_the_future_is_not_believed_for_stuck() -> None:
    # Regression (property test): a summary dated a year ahead hid that a job was already
    # stuck at the baseline, and it was announced stuck on the next poll.
    future = JobSummary(
        arn=ARN + "j",
        status="PENDING",
        creation_time=T0,
        last_updated_time=T0 + timedelta(days=365),
    )
    assert is_stuck(future, T0 + LIMIT * 2, LIMIT)


MARGIN = timedelta(minutes=15)


@pytest.mark.parametrize(
    ("updated", "status", "checked"),
    [
        (T0 + timedelta(minutes=1), "ACTIVE", True),  # after the watermark
        (T0, "ACTIVE", True),  # at it
        (T0 - MARGIN, "ACTIVE", True),  # at the margin's edge
        (T0 - MARGIN - timedelta(seconds=1), "ACTIVE", False),  # just outside
        (T0 - timedelta(days=3), "CREATE FAILED", False),
        (T0 - timedelta(days=3), "IN PROGRESS", True),  # waiting jobs may become stuck
        (T0 - timedelta(days=3), "CREATE PENDING", True),
        (None, "ACTIVE", True),  # no timestamp: cannot be ruled out
    ],
)
def test_needs_check_around_the_margin(
    updated: datetime | None, status: str, checked: bool
) -> None:
    job = JobSummary(arn=ARN + "x", status=status, last_updated_time=updated)
    assert needs_check(job, T0, MARGIN) is checked


def test_without_a_watermark_every_job_is_checked() -> None:
    assert needs_check(job("a", "ACTIVE", -10_000), None, MARGIN)


def test_latest_update() -> None:
    jobs = [job("a", "ACTIVE", 5), JobSummary(arn="x"), job("b", "ACTIVE", 9)]
    assert latest_update(jobs, NOW) == T0 + timedelta(minutes=9)
    assert latest_update([JobSummary(arn="x")], NOW) is None


def test_the_watermark_never_passes_the_polls_clock() -> None:
    a_little_ahead = job("a", "ACTIVE", 40)  # NOW is T0+30 min: within the clock skew
    assert latest_update([a_little_ahead], NOW) == NOW


def test_an_update_time_far_in_the_future_never_moves_the_watermark() -> None:
    # Otherwise the watermark would become each poll's clock, a write on every quiet poll.
    years_ahead = job("a", "ACTIVE", 60 * 24 * 365)
    assert latest_update([years_ahead], NOW) is None
    assert latest_update([years_ahead, job("b", "ACTIVE", 9)], NOW) == T0 + timedelta(minutes=9)


HOUR = timedelta(hours=1)


def test_a_full_read_is_due_by_the_time_of_the_last_one() -> None:
    never = ScopeState(baseline_started_at=T0)
    assert full_read_due(never, NOW, HOUR)
    recent = ScopeState(baseline_started_at=T0, last_full_read_at=NOW - timedelta(minutes=59))
    assert not full_read_due(recent, NOW, HOUR)
    # A late tick (09:59:50, then 10:05:05) cannot skip an hour: the state says it is due.
    late = ScopeState(baseline_started_at=T0, last_full_read_at=NOW - HOUR - timedelta(minutes=5))
    assert full_read_due(late, NOW, HOUR)
    # A clock that went backwards does not postpone it.
    ahead = ScopeState(baseline_started_at=T0, last_full_read_at=NOW + timedelta(days=1))
    assert full_read_due(ahead, NOW, HOUR)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain ascii", "plain ascii"),
        ("Ünïcødé 入力 😀", "Ünïcødé 入力 😀"),
        ("bad \ud800 in", "bad \ufffd in"),
        ("\udfff\ud800", "\ufffd\ufffd"),
        (None, None),
        (42, None),
    ],
)
def test_invalid_unicode_is_replaced_once_per_lone_surrogate(
    raw: object, clean: str | None
) -> None:
    assert clean_text(raw) == clean


def test_an_announcement_key_reads_back_as_its_type_and_status() -> None:
    transition = Transition(EventType.JOB_FAILED, job("a", "CREATE FAILED"), "IN PROGRESS")
    announced = Announced.parse(transition.key)
    assert announced == Announced("JOB_FAILED", "CREATE FAILED")
    assert announced.key == transition.key == "JOB_FAILED:CREATE FAILED"
    assert Announced.parse("JOB_STUCK:PENDING").stuck
    assert not announced.stuck
