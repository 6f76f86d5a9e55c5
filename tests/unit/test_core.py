from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from poller.core import classify, diff, latest_per_job, normalise_status
from poller.models import EventType, JobSummary, SnapshotItem

ARN = "arn:aws:personalize:us-east-1:123456789012:batch-segment-job/"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def job(name: str, status: str | None, minutes: int = 0) -> JobSummary:
    return JobSummary(
        arn=ARN + name, name=name, status=status, last_updated_time=T0 + timedelta(minutes=minutes)
    )


def snap(name: str, status: str | None) -> SnapshotItem:
    return SnapshotItem(ARN + name, status, name)


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
    (transition,) = diff({}, [job("a", "PENDING")])
    assert transition.previous_status is None
    assert transition.job.status == "PENDING"
    assert transition.event_type is EventType.JOB_STATUS_CHANGED


def test_changed_status_gives_one_transition_unchanged_gives_none() -> None:
    snapshot = {ARN + "a": snap("a", "PENDING"), ARN + "b": snap("b", "ACTIVE")}
    transitions = diff(snapshot, [job("a", "ACTIVE"), job("b", "ACTIVE")])
    assert [(t.job.name, t.previous_status, t.event_type) for t in transitions] == [
        ("a", "PENDING", EventType.JOB_SUCCEEDED)
    ]


def test_statuses_are_compared_exactly() -> None:
    # Same meaning, different spelling: still a change worth reporting, as the API says so.
    (transition,) = diff({ARN + "a": snap("a", "IN PROGRESS")}, [job("a", "CREATE IN_PROGRESS")])
    assert transition.previous_status == "IN PROGRESS"


def test_jobs_missing_from_the_listing_are_not_reported_gone() -> None:
    assert diff({ARN + "gone": snap("gone", "ACTIVE")}, []) == []


def test_jobs_without_arn_are_skipped() -> None:
    assert diff({}, [JobSummary(name="anonymous", status="PENDING")]) == []


def test_missing_status_is_a_status_too() -> None:
    (transition,) = diff({ARN + "a": snap("a", "PENDING")}, [job("a", None)])
    assert transition.job.status is None
    assert diff({ARN + "a": snap("a", None)}, [job("a", None)]) == []


def test_duplicate_listing_keeps_the_latest_update() -> None:
    latest = latest_per_job([job("a", "ACTIVE", 5), job("a", "PENDING", 1)])
    assert latest[ARN + "a"].status == "ACTIVE"
    (transition,) = diff({}, [job("a", "PENDING", 1), job("a", "ACTIVE", 5)])
    assert transition.job.status == "ACTIVE"
