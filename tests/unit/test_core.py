from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from poller.core import (
    classify,
    diff,
    is_stuck,
    latest_per_job,
    latest_update,
    needs_check,
    normalise_status,
    reconcile_due,
)
from poller.models import EventType, JobSummary, SnapshotItem, Transition

ARN = "arn:aws:personalize:us-east-1:123456789012:batch-segment-job/"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30)
LIMIT = timedelta(hours=6)


def job(name: str, status: str | None, minutes: int = 0) -> JobSummary:
    return JobSummary(
        arn=ARN + name, name=name, status=status, last_updated_time=T0 + timedelta(minutes=minutes)
    )


def snap(name: str, status: str | None, stuck_status: str | None = None) -> SnapshotItem:
    return SnapshotItem(ARN + name, status, name, stuck_status)


def changes(snapshot: dict[str, SnapshotItem], jobs: list[JobSummary]) -> list[Transition]:
    return diff(snapshot, jobs, NOW, LIMIT)


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


def test_missing_status_is_a_status_too() -> None:
    (transition,) = changes({ARN + "a": snap("a", "PENDING")}, [job("a", None)])
    assert transition.job.status is None
    assert changes({ARN + "a": snap("a", None)}, [job("a", None)]) == []


def test_duplicate_listing_keeps_the_latest_update() -> None:
    latest = latest_per_job([job("a", "ACTIVE", 5), job("a", "PENDING", 1)])
    assert latest[ARN + "a"].status == "ACTIVE"
    (transition,) = changes({}, [job("a", "PENDING", 1), job("a", "ACTIVE", 5)])
    assert transition.job.status == "ACTIVE"


def test_a_job_waiting_past_the_limit_is_stuck_once_per_status() -> None:
    late = NOW + LIMIT + timedelta(minutes=1)
    waiting = job("slow", "IN PROGRESS")
    (transition,) = diff({ARN + "slow": snap("slow", "IN PROGRESS")}, [waiting], late, LIMIT)
    assert transition.event_type is EventType.JOB_STUCK
    assert transition.previous_status == "IN PROGRESS"
    reported = {ARN + "slow": snap("slow", "IN PROGRESS", stuck_status="IN PROGRESS")}
    assert diff(reported, [waiting], late, LIMIT) == []


def test_stuck_again_in_a_later_status() -> None:
    late = NOW + LIMIT + timedelta(minutes=1)
    reported_pending = {ARN + "slow": snap("slow", "IN PROGRESS", stuck_status="PENDING")}
    (transition,) = diff(reported_pending, [job("slow", "IN PROGRESS")], late, LIMIT)
    assert transition.event_type is EventType.JOB_STUCK


def test_a_change_wins_over_stuck() -> None:
    late = NOW + LIMIT + timedelta(minutes=1)
    (transition,) = diff(
        {ARN + "slow": snap("slow", "PENDING")}, [job("slow", "IN PROGRESS")], late, LIMIT
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
    assert latest_update([job("a", "ACTIVE", 5), JobSummary(arn="x"), job("b", "ACTIVE", 9)]) == (
        T0 + timedelta(minutes=9)
    )
    assert latest_update([JobSummary(arn="x")]) is None


def test_reconcile_is_due_once_per_interval() -> None:
    period, hour = timedelta(minutes=5), timedelta(hours=1)
    polls = [T0 + timedelta(minutes=m) for m in range(0, 180, 5)]
    due = [p for p in polls if reconcile_due(p, period, hour)]
    assert due == [T0, T0 + hour, T0 + 2 * hour]
    # Off the grid, still once an hour.
    shifted = [p + timedelta(minutes=2, seconds=7) for p in polls]
    assert len([p for p in shifted if reconcile_due(p, period, hour)]) == 3
