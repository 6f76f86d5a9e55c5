"""The poller's handler against local AWS: moto's server and the Personalize emulator."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local.local_aws import drain_queue
from local.provision import subscribe_queue
from poller.errors import PublishFailedError
from tests.integration.conftest import (
    observer_client,
    reset_handler_caches,
    route_bus_to_queue,
    ts,
)

if TYPE_CHECKING:
    from tests.integration.conftest import Stack


def events(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(n["Message"]) for n in notifications]


def transitions(notifications: list[dict[str, Any]]) -> list[tuple[str | None, str | None, str]]:
    return [(e["jobName"], e["previousStatus"], e["status"]) for e in events(notifications)]


def writes(stack: Stack) -> int:
    return sum(
        count
        for call, count in stack.calls.items()
        if call.startswith("dynamodb:")
        and call.split(":")[1] in {"PutItem", "BatchWriteItem", "UpdateItem"}
    )


def test_first_run_records_existing_jobs_and_sends_nothing(stack: Stack) -> None:
    for i in range(3):
        stack.personalize.add_job(f"old-{i}", "ACTIVE", at=ts(i))
    stack.personalize.add_job("old-failed", "CREATE FAILED", failure_reason="bad input", at=ts(5))

    summary = stack.invoke()

    assert summary["firstRun"] is True
    assert summary["jobsSeen"] == 4
    assert stack.notifications() == []
    snapshot = stack.snapshot()
    assert {item["jobName"]: item["status"] for item in snapshot.values()} == {
        "old-0": "ACTIVE",
        "old-1": "ACTIVE",
        "old-2": "ACTIVE",
        "old-failed": "CREATE FAILED",
    }


def test_first_run_with_no_jobs_still_ends_the_first_run(stack: Stack) -> None:
    assert stack.invoke()["firstRun"] is True
    stack.personalize.add_job("brand-new", "PENDING")

    summary = stack.invoke()

    assert summary["firstRun"] is False
    assert transitions(stack.notifications()) == [("brand-new", None, "PENDING")]


def test_lifecycle_pending_in_progress_active(stack: Stack) -> None:
    stack.invoke()
    arn = stack.personalize.add_job("segments-1", "PENDING", at=ts(0))
    stack.invoke()
    stack.personalize.set_status(arn, "IN PROGRESS", at=ts(3))
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE", at=ts(40))
    stack.invoke()

    received = stack.notifications()
    assert transitions(received) == [
        ("segments-1", None, "PENDING"),
        ("segments-1", "PENDING", "IN PROGRESS"),
        ("segments-1", "IN PROGRESS", "ACTIVE"),
    ]
    assert [e["eventType"] for e in events(received)] == [
        "JOB_STATUS_CHANGED",
        "JOB_STATUS_CHANGED",
        "JOB_SUCCEEDED",
    ]
    last = received[-1]
    assert last["Subject"] == "SUCCEEDED: segments-1 (ACTIVE)"
    assert last["MessageAttributes"]["eventType"] == {"Type": "String", "Value": "JOB_SUCCEEDED"}
    assert last["MessageAttributes"]["previousStatus"]["Value"] == "IN PROGRESS"
    assert received[0]["MessageAttributes"]["previousStatus"]["Value"] == "NONE"
    event = events(received)[-1]
    assert event["creationDateTime"] == "2026-11-01T09:00:00+00:00"
    assert event["lastUpdatedDateTime"] == "2026-11-01T09:40:00+00:00"
    assert event["batchSegmentJobArn"] == arn
    assert event["accountId"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert stack.snapshot()[arn]["status"] == "ACTIVE"


def test_a_skipped_state_gives_one_event_from_the_recorded_status(stack: Stack) -> None:
    arn = stack.personalize.add_job("quick", "PENDING")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")

    stack.invoke()

    assert transitions(stack.notifications()) == [("quick", "PENDING", "ACTIVE")]


def test_failure_carries_the_reason(stack: Stack) -> None:
    arn = stack.personalize.add_job("doomed", "IN PROGRESS")
    stack.invoke()
    reason = "Input data in s3://bucket/in.json is not valid JSON lines:\nline 7: unexpected ']'"
    stack.personalize.set_status(arn, "CREATE FAILED", failure_reason=reason)

    stack.invoke()

    (notification,) = stack.notifications()
    (event,) = events([notification])
    assert event["eventType"] == "JOB_FAILED"
    assert event["failureReason"] == reason
    assert notification["Subject"] == "FAILED: doomed (CREATE FAILED)"
    assert notification["MessageAttributes"]["status"]["Value"] == "CREATE FAILED"


def test_job_created_and_failed_between_polls(stack: Stack) -> None:
    stack.invoke()
    stack.personalize.add_job("flash", "CREATE FAILED", failure_reason="role cannot read bucket")

    stack.invoke()

    (event,) = events(stack.notifications())
    assert (event["eventType"], event["previousStatus"], event["status"]) == (
        "JOB_FAILED",
        None,
        "CREATE FAILED",
    )
    assert event["failureReason"] == "role cannot read bucket"


def test_many_pages_are_all_read(stack: Stack) -> None:
    for i in range(260):
        stack.personalize.add_job(f"job-{i:03d}", "ACTIVE", at=ts(i))
    stack.invoke()
    assert stack.calls["personalize:ListBatchSegmentJobs"] == 3
    changed = [stack.personalize.job_arn(f"job-{i:03d}") for i in (0, 150, 259)]
    for arn in changed:
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="boom")
    stack.calls.clear()

    summary = stack.invoke()

    assert summary["jobsSeen"] == 260
    assert summary["pages"] == 3
    assert stack.calls["personalize:ListBatchSegmentJobs"] == 3
    received = events(stack.notifications())
    assert sorted(e["batchSegmentJobArn"] for e in received) == sorted(changed)
    assert len(stack.snapshot()) == 260


def test_throttled_listing_is_retried(stack: Stack) -> None:
    stack.invoke()
    stack.personalize.add_job("busy", "PENDING")
    stack.personalize.inject_fault("ListBatchSegmentJobs", "ThrottlingException", times=2)
    stack.personalize.inject_fault("ListBatchSegmentJobs", "LimitExceededException", times=1)
    stack.calls.clear()

    stack.invoke()

    assert stack.calls["personalize:ListBatchSegmentJobs"] == 4
    assert transitions(stack.notifications()) == [("busy", None, "PENDING")]


def test_server_errors_are_retried(stack: Stack) -> None:
    stack.invoke()
    stack.personalize.add_job("flaky", "PENDING")
    stack.personalize.inject_fault("ListBatchSegmentJobs", "InternalServerError", 500)
    stack.calls.clear()

    stack.invoke()

    assert stack.calls["personalize:ListBatchSegmentJobs"] == 2
    assert transitions(stack.notifications()) == [("flaky", None, "PENDING")]


def test_failed_publish_is_delivered_on_the_next_run(stack: Stack) -> None:
    arn = stack.personalize.add_job("retry-me", "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")
    sns = observer_client("sns")
    sns.delete_topic(TopicArn=stack.topic_arn)
    topic_name = stack.topic_arn.rsplit(":", 1)[1]

    with pytest.raises(PublishFailedError):
        stack.invoke()

    assert stack.snapshot()[arn]["status"] == "IN PROGRESS"
    topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
    queue_arn = observer_client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    stack.invoke()

    assert transitions(stack.notifications()) == [("retry-me", "IN PROGRESS", "ACTIVE")]
    assert stack.snapshot()[arn]["status"] == "ACTIVE"


def test_rerun_without_change_sends_and_writes_nothing(stack: Stack) -> None:
    for i in range(30):
        stack.personalize.add_job(f"steady-{i}", "ACTIVE", at=ts(i))
    stack.invoke()
    stack.personalize.add_job("new", "ACTIVE", at=ts(120))
    stack.invoke()
    stack.notifications()
    stack.calls.clear()

    summary = stack.invoke()

    assert summary["transitions"] == 0
    assert stack.notifications() == []
    assert writes(stack) == 0
    assert stack.calls["sns:PublishBatch"] == 0
    # The marker, and the one record updated within the watermark's margin ("new").
    assert summary["jobsChecked"] == 1
    assert stack.calls["dynamodb:GetItem"] == 1
    assert stack.calls["dynamodb:BatchGetItem"] == 1
    assert stack.calls["dynamodb:Query"] == 0


@pytest.mark.parametrize("jobs", [250, 1000])
def test_steady_state_reads_do_not_grow_with_jobs(stack: Stack, jobs: int) -> None:
    for i in range(jobs):
        stack.personalize.add_job(f"job-{i:04d}", "ACTIVE", at=ts(i))
    stack.invoke()
    stack.personalize.add_job("latest", "ACTIVE", at=ts(jobs + 60))
    stack.invoke()
    stack.calls.clear()

    summary = stack.invoke()

    # The marker, and one batch for the records updated within the watermark's margin
    # ("latest" only): the same for any number of older jobs.
    assert summary["jobsChecked"] == 1
    dynamodb = {call: n for call, n in stack.calls.items() if call.startswith("dynamodb:")}
    assert dynamodb == {"dynamodb:GetItem": 1, "dynamodb:BatchGetItem": 1}
    assert stack.calls["personalize:ListBatchSegmentJobs"] == -(-(jobs + 1) // 100)


def test_full_reconcile_reads_every_record_in_pages_not_per_job(stack: Stack) -> None:
    for i in range(300):
        stack.personalize.add_job(f"job-{i:03d}", "ACTIVE", at=ts(i))
    stack.invoke()
    stack.full_reconcile = True
    stack.calls.clear()

    summary = stack.invoke()

    assert summary["fullReconcile"] is True
    assert summary["jobsChecked"] == 300
    assert stack.calls["dynamodb:Query"] == 1
    assert stack.calls["dynamodb:GetItem"] == 1  # the marker
    assert stack.calls["dynamodb:BatchGetItem"] == 0


def test_unknown_status_and_missing_fields_are_handled(stack: Stack) -> None:
    stack.invoke()
    arn = stack.personalize.job_arn("bare")
    stack.personalize.put_raw_job({"batchSegmentJobArn": arn, "status": "CREATE IN_PROGRESS"})
    stack.personalize.put_raw_job({"jobName": "no-arn", "status": "PENDING"})

    summary = stack.invoke()

    assert summary["jobsSeen"] == 1
    (notification,) = stack.notifications()
    (event,) = events([notification])
    assert event["jobName"] is None
    assert event["status"] == "CREATE IN_PROGRESS"
    assert event["eventType"] == "JOB_STATUS_CHANGED"
    assert event["creationDateTime"] is None
    assert notification["MessageAttributes"]["jobName"]["Value"] == "NONE"
    assert notification["MessageAttributes"]["solutionVersionArn"]["Value"] == "NONE"
    assert notification["Subject"] == "CREATE IN_PROGRESS: bare"


def test_solution_version_filter_lists_only_those_versions(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = stack.personalize.solution_version_arn("segments", "2")
    monkeypatch.setenv("SOLUTION_VERSION_ARNS", wanted)
    reset_handler_caches(stack.spec)
    stack.invoke()
    stack.personalize.add_job("other", "PENDING")
    stack.personalize.add_job("mine", "PENDING", solution_version_arn=wanted)

    stack.invoke()

    assert transitions(stack.notifications()) == [("mine", None, "PENDING")]


def test_first_run_writes_in_batches(stack: Stack) -> None:
    for i in range(260):
        stack.personalize.add_job(f"job-{i:03d}", "ACTIVE", at=ts(i))

    stack.invoke()

    # 260 records, 25 per BatchWriteItem, then the marker: never one write per job.
    assert stack.calls["dynamodb:BatchWriteItem"] == 11 + 1
    assert stack.calls["dynamodb:PutItem"] == 0
    assert stack.calls["dynamodb:UpdateItem"] == 0


def test_changes_cost_writes_and_publishes_in_proportion_to_changes(stack: Stack) -> None:
    for i in range(500):
        stack.personalize.add_job(f"job-{i:03d}", "IN PROGRESS")  # started just now
    stack.invoke()
    for i in range(15):
        stack.personalize.set_status(stack.personalize.job_arn(f"job-{i * 20:03d}"), "ACTIVE")
    for i in range(15, 25):
        stack.personalize.set_status(stack.personalize.job_arn(f"job-{i * 20:03d}"), "PENDING")
    stack.calls.clear()

    summary = stack.invoke()

    assert summary["published"] == 25
    assert summary["storm"] is False
    # 10 per batch: all 25 in chunks of 10 to the events topic, the 15 that people want
    # to the people topic, in the same chunks.
    assert stack.calls["sns:PublishBatch"] == 3 + 2
    assert stack.calls["eventbridge:PutEvents"] == 3
    assert stack.calls["sns:Publish"] == 0
    # A claim and a record per transition, and the watermark once.
    assert stack.calls["dynamodb:UpdateItem"] == 2 * 25 + 1
    assert stack.calls["personalize:DescribeBatchSegmentJob"] == 15
    assert stack.calls["dynamodb:PutItem"] == 0


DETAILS: dict[str, Any] = {
    "jobInput": {"s3DataSource": {"path": "s3://segments-in/users.json"}},
    "jobOutput": {"s3DataDestination": {"path": "s3://segments-out/run-7/"}},
    "filterArn": "arn:aws:personalize:us-east-1:123456789012:filter/adults",
    "numResults": 25,
    "roleArn": "arn:aws:iam::123456789012:role/PersonalizeBatch",
}


def test_finished_jobs_are_described_and_running_ones_are_not(stack: Stack) -> None:
    stack.invoke()
    done = stack.personalize.add_job("done", "PENDING", **DETAILS)
    stack.personalize.add_job("running", "PENDING", **DETAILS)
    stack.invoke()
    stack.personalize.set_status(done, "ACTIVE")
    stack.calls.clear()

    stack.invoke()

    assert stack.calls["personalize:DescribeBatchSegmentJob"] == 1
    received = {e["jobName"]: e for e in events(stack.notifications())}
    assert received["done"]["jobInput"] == "s3://segments-in/users.json"
    assert received["done"]["jobOutput"] == "s3://segments-out/run-7/"
    assert received["done"]["numResults"] == 25
    assert received["done"]["filterArn"] == DETAILS["filterArn"]
    assert received["done"]["roleArn"] == DETAILS["roleArn"]
    assert received["running"]["jobInput"] is None  # announced when new, not described


def test_a_failed_describe_still_sends_the_event(stack: Stack) -> None:
    arn = stack.personalize.add_job("job", "IN PROGRESS", **DETAILS)
    stack.invoke()
    stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="bad input")
    stack.personalize.inject_fault("DescribeBatchSegmentJob", "AccessDeniedException")

    stack.invoke()

    (event,) = events(stack.notifications())
    assert event["eventType"] == "JOB_FAILED"
    assert event["failureReason"] == "bad input"
    assert event["jobInput"] is None


def test_every_event_is_also_put_on_the_event_bus(stack: Stack) -> None:
    stack.invoke()
    arn = stack.personalize.add_job("pipeline-input", "PENDING")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")
    stack.invoke()

    bus = stack.bus_events()
    assert [e["detail-type"] for e in bus] == ["Batch Segment Job Status Change"] * 2
    assert {e["source"] for e in bus} == {"custom.personalize.batch-segment-jobs"}
    assert [(e["detail"]["previousStatus"], e["detail"]["status"]) for e in bus] == [
        (None, "PENDING"),
        ("PENDING", "ACTIVE"),
    ]
    assert bus[1]["detail"] == events(stack.notifications())[1]


def test_the_documented_rule_starts_on_success_only(stack: Stack) -> None:
    # The event pattern docs/events.md gives for "start a pipeline when a job is ACTIVE".
    pattern = {
        "source": ["custom.personalize.batch-segment-jobs"],
        "detail-type": ["Batch Segment Job Status Change"],
        "detail": {"eventType": ["JOB_SUCCEEDED"]},
    }
    queue_url = route_bus_to_queue(boto3.session.Session(), "segments-ready", pattern)
    stack.invoke()
    ok = stack.personalize.add_job("ok", "IN PROGRESS")
    bad = stack.personalize.add_job("bad", "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(ok, "ACTIVE")
    stack.personalize.set_status(bad, "CREATE FAILED", failure_reason="x")

    stack.invoke()

    started: list[dict[str, Any]] = [
        dict(e) for e in drain_queue(observer_client("sqs"), queue_url)
    ]
    assert [(e["detail"]["jobName"], e["detail"]["status"]) for e in started] == [("ok", "ACTIVE")]


def test_a_filtered_subscriber_receives_only_what_it_asked_for(stack: Stack) -> None:
    # An SQS stand-in for an email subscriber, with the stack's default email filter policy.
    queue_url = subscribe_queue(
        boto3.session.Session(),
        os.environ["PEOPLE_TOPIC_ARN"],
        "failures-only",
        filter_policy={"eventType": ["JOB_FAILED", "JOB_DIGEST"]},
    )
    stack.invoke()
    ok = stack.personalize.add_job("ok", "PENDING")
    bad = stack.personalize.add_job("bad", "PENDING")
    stack.invoke()
    stack.personalize.set_status(ok, "ACTIVE")
    stack.personalize.set_status(bad, "CREATE FAILED", failure_reason="x")

    stack.invoke()

    got = [json.loads(str(n["Message"])) for n in drain_queue(observer_client("sqs"), queue_url)]
    assert [(e["jobName"], e["eventType"]) for e in got] == [("bad", "JOB_FAILED")]
    assert len(stack.notifications()) == 4  # the events topic: everything
