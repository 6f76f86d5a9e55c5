"""The poller's handler against local AWS (moto's server and the Personalize emulator), with
resources from the synthesized template: one test per piece of wiring. The rules of a
poll are tested in milliseconds in tests/unit (test_poll.py, test_poll_scenarios.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from poller.aws import LISTING_LIMITS
from tests.integration.conftest import events, observer_session, route_bus_to_queue

if TYPE_CHECKING:
    from tests.integration.conftest import Stack

# Per-job fields only DescribeBatchSegmentJob returns: the poll adds them to finished jobs.
DETAILS: dict[str, Any] = {
    "jobInput": {"s3DataSource": {"path": "s3://segments-in/users.json"}},
    "jobOutput": {"s3DataDestination": {"path": "s3://segments-out/run-7/"}},
    "filterArn": "arn:aws:personalize:us-east-1:123456789012:filter/adults",
    "numResults": 25,
    "roleArn": "arn:aws:iam::123456789012:role/PersonalizeBatch",
}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_first_run_reads_then_records_every_page_silently_and_later_changes_on_any_page_are_heard(
    stack: Stack,
) -> None:
    arns = stack.add_jobs("old", 259, "IN PROGRESS")
    stack.personalize.add_job("old-failed", "CREATE FAILED", failure_reason="bad input", at=0)

    summary = stack.invoke()

    assert summary["firstRun"] is True
    assert summary["jobsSeen"] == 260
    assert stack.notifications() == []
    assert stack.bus_events() == []
    snapshot = stack.snapshot()
    assert len(snapshot) == 260
    assert {item["status"] for arn, item in snapshot.items() if arn in arns} == {"IN PROGRESS"}
    assert snapshot[stack.personalize.job_arn("old-failed")]["status"] == "CREATE FAILED"
    # The scope's marker and the watched scopes, which are then written; every record (a
    # Query) before the baseline is written in batches of 25, then the marker: never one
    # request per job.
    table = [call.split(":")[1] for call in stack.sent if call.startswith("dynamodb:")]
    assert table == ["BatchGetItem", "UpdateItem", "Query", *["BatchWriteItem"] * 11, "UpdateItem"]
    assert stack.calls == {
        "personalize:ListBatchSegmentJobs": 3,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:Query": 1,
        "dynamodb:BatchWriteItem": 11,
        "dynamodb:UpdateItem": 2,
    }
    (key,) = stack.markers()
    assert key.endswith("*"), "one marker, for every job of the account and region"
    marker = stack.marker()
    assert marker["baselineComplete"] is True
    assert "checkpoint" not in marker
    newest = stack.personalize.jobs()[258]["lastUpdatedDateTime"]
    assert float(marker["watermark"]) == pytest.approx(newest, abs=1e-3)

    changed = [arns[0], arns[150], arns[258]]  # on the third, second and first page
    for arn in changed:
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="boom")
    stack.clear_calls()

    summary = stack.invoke()

    assert summary["firstRun"] is False
    assert stack.calls["personalize:ListBatchSegmentJobs"] == 3
    assert sorted(stack.heard()) == [
        (f"old-{i:04d}", "IN PROGRESS", "CREATE FAILED") for i in (0, 150, 258)
    ]


def test_a_job_from_pending_through_in_progress_to_active(stack: Stack) -> None:
    stack.start_watching()
    created = float(int(time.time()) - 300)
    arn = stack.personalize.add_job("segments-1", "PENDING", at=created)
    stack.invoke()
    stack.personalize.set_status(arn, "IN PROGRESS", at=created + 60)
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE", at=created + 240)
    stack.invoke()

    received = stack.notifications()
    assert [(e["eventType"], e["previousStatus"], e["status"]) for e in events(received)] == [
        ("JOB_STATUS_CHANGED", None, "PENDING"),
        ("JOB_STATUS_CHANGED", "PENDING", "IN PROGRESS"),
        ("JOB_SUCCEEDED", "IN PROGRESS", "ACTIVE"),
    ]
    last = received[-1]
    assert last["Subject"] == "SUCCEEDED: segments-1 (ACTIVE)"
    assert last["MessageAttributes"]["eventType"] == {"Type": "String", "Value": "JOB_SUCCEEDED"}
    assert last["MessageAttributes"]["previousStatus"]["Value"] == "IN PROGRESS"
    assert received[0]["MessageAttributes"]["previousStatus"]["Value"] == "NONE"
    event = events(received)[-1]
    assert event["creationDateTime"] == iso(created)
    assert event["lastUpdatedDateTime"] == iso(created + 240)
    assert event["batchSegmentJobArn"] == arn
    assert event["accountId"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert stack.snapshot()[arn]["status"] == "ACTIVE"


def test_throttling_and_server_errors_are_retried(stack: Stack) -> None:
    stack.start_watching()
    stack.personalize.add_job("busy", "PENDING")
    # One of each kind standard mode retries, within the listing's attempts.
    stack.personalize.inject_fault("ListBatchSegmentJobs", "ThrottlingException")
    stack.personalize.inject_fault("ListBatchSegmentJobs", "InternalServerError", 500)
    assert LISTING_LIMITS.attempts == 2 + 1

    stack.invoke()

    assert stack.calls["personalize:ListBatchSegmentJobs"] == 2 + 1
    assert stack.heard() == [("busy", None, "PENDING")]


@pytest.mark.parametrize("jobs", [250, 1000])
def test_steady_reads_do_not_grow_with_jobs_and_the_hourly_read_is_one_query(
    stack: Stack, jobs: int
) -> None:
    stack.add_jobs("job", jobs, every=timedelta(hours=1))
    stack.invoke()
    stack.personalize.add_job("latest", "ACTIVE")
    stack.invoke()
    assert stack.heard() == [("latest", None, "ACTIVE")]
    stack.clear_calls()

    steady = stack.invoke()

    # The marker, and one batch for the records updated within the watermark's margin
    # ("latest" only): the same for any number of older jobs. Nothing written or sent.
    assert steady["transitions"] == 0
    assert steady["jobsChecked"] == 1
    listing = {"personalize:ListBatchSegmentJobs": -(-(jobs + 1) // 100)}
    assert stack.calls == {**listing, "dynamodb:BatchGetItem": 2}
    assert stack.heard() == []

    stack.full_read_due()
    stack.clear_calls()

    hourly = stack.invoke()

    # Every record in a Query paged by DynamoDB (1 MB a page), then the marker's new time.
    assert hourly["fullReconcile"] is True
    assert hourly["jobsChecked"] == jobs + 1
    assert stack.calls == {
        **listing,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:Query": 1,
        "dynamodb:UpdateItem": 1,
    }
    assert stack.heard() == []


def test_changes_cost_writes_and_publishes_in_proportion_to_changes(stack: Stack) -> None:
    arns = stack.add_jobs("job", 100, "PENDING")
    stack.invoke()
    for arn in arns[:15]:
        stack.personalize.set_status(arn, "ACTIVE")
    for arn in arns[15:25]:
        stack.personalize.set_status(arn, "IN PROGRESS")
    stack.clear_calls()

    summary = stack.invoke()

    assert summary["published"] == 25
    assert summary["storm"] is False
    # Oldest change first, 10 to a batch: the events topic gets all 25 in 3 batches, the
    # people topic the 15 successes (10, then 5) in 2, the bus all 25 in 3.
    assert stack.calls["sns:PublishBatch"] == 3 + 2
    assert stack.calls["eventbridge:PutEvents"] == 3
    assert stack.calls["sns:Publish"] == 0
    # A claim and a record per transition, and the marker's new watermark once.
    assert stack.calls["dynamodb:UpdateItem"] == 2 * 25 + 1
    assert stack.calls["dynamodb:PutItem"] == 0
    assert stack.calls["personalize:DescribeBatchSegmentJob"] == 15


def test_finished_jobs_are_described_running_ones_are_not_and_a_failed_describe_still_sends(
    stack: Stack,
) -> None:
    stack.start_watching()
    broken, done, running = (
        stack.personalize.add_job(name, "PENDING", **DETAILS)
        for name in ("broken", "done", "running")
    )
    stack.invoke()
    assert stack.calls["personalize:DescribeBatchSegmentJob"] == 0  # announced new, not done
    stack.personalize.set_status(broken, "CREATE FAILED", failure_reason="bad input")
    stack.personalize.set_status(done, "ACTIVE")
    stack.personalize.set_status(running, "IN PROGRESS")
    # Oldest change first: the first Describe (of "broken") is refused.
    stack.personalize.inject_fault("DescribeBatchSegmentJob", "AccessDeniedException")
    stack.notifications()
    stack.clear_calls()

    stack.invoke()

    assert stack.calls["personalize:DescribeBatchSegmentJob"] == 2
    envelopes = {events([n])[0]["jobName"]: n for n in stack.notifications()}
    assert envelopes["broken"]["Subject"] == "FAILED: broken (CREATE FAILED)"
    assert envelopes["broken"]["MessageAttributes"]["status"]["Value"] == "CREATE FAILED"
    received = {name: events([n])[0] for name, n in envelopes.items()}
    assert received["done"]["jobInput"] == "s3://segments-in/users.json"
    assert received["done"]["jobOutput"] == "s3://segments-out/run-7/"
    assert received["done"]["numResults"] == 25
    assert received["done"]["filterArn"] == DETAILS["filterArn"]
    assert received["done"]["roleArn"] == DETAILS["roleArn"]
    assert received["broken"]["eventType"] == "JOB_FAILED"
    assert received["broken"]["failureReason"] == "bad input"
    assert received["broken"]["jobInput"] is None
    assert received["running"]["jobInput"] is None


def test_each_subscriber_gets_what_it_asked_for(stack: Stack) -> None:
    """Every event is on the events topic and the bus; the rule docs/events.md gives for
    "start a pipeline when a job is ACTIVE" gets successes only, and a subscriber with a
    filter policy like the stack's email one gets failures only."""
    pattern = {
        "source": ["custom.personalize.batch-segment-jobs"],
        "detail-type": ["Batch Segment Job Status Change"],
        "detail": {"eventType": ["JOB_SUCCEEDED"]},
    }
    ready = route_bus_to_queue(observer_session(), "segments-ready", pattern)
    failures = stack.people_queue({"eventType": ["JOB_FAILED", "JOB_DIGEST"]})
    stack.start_watching()
    ok = stack.personalize.add_job("ok", "PENDING")
    bad = stack.personalize.add_job("bad", "PENDING")
    stack.invoke()
    stack.personalize.set_status(ok, "ACTIVE")
    stack.personalize.set_status(bad, "CREATE FAILED", failure_reason="x")

    stack.invoke()

    told = events(stack.notifications())
    assert len(told) == 4
    bus = stack.bus_events()
    assert [e["detail-type"] for e in bus] == ["Batch Segment Job Status Change"] * 4
    assert {e["source"] for e in bus} == {"custom.personalize.batch-segment-jobs"}
    assert sorted((e["detail"]["jobName"], e["detail"]["status"]) for e in bus) == [
        ("bad", "CREATE FAILED"),
        ("bad", "PENDING"),
        ("ok", "ACTIVE"),
        ("ok", "PENDING"),
    ]
    assert sorted(e["detail"]["batchSegmentJobArn"] for e in bus) == sorted(
        e["batchSegmentJobArn"] for e in told
    )
    started = stack.drain(ready)
    assert [(e["detail"]["jobName"], e["detail"]["status"]) for e in started] == [("ok", "ACTIVE")]
    failed = events(stack.drain(failures))
    assert [(e["jobName"], e["eventType"]) for e in failed] == [("bad", "JOB_FAILED")]


def test_any_payload_does_a_normal_poll(stack: Stack) -> None:
    stack.start_watching()
    payloads: list[Any] = [{}, "hello", {"anything": [1, 2]}, [], None]
    for i, event in enumerate(payloads):
        stack.personalize.add_job(f"manual-{i}", "PENDING")

        result = stack.invoke(event)

        assert result["transitions"] == 1
        assert stack.heard() == [(f"manual-{i}", None, "PENDING")]
