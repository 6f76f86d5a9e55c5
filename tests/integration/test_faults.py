"""Faults and bad input: each handled with nothing lost and nothing doubled."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.sns.exceptions import InvalidParameterValue
from moto.sns.models import SNSBackend

from local.lambda_context import LocalLambdaContext
from local.local_aws import drain_queue
from local.provision import subscribe_queue
from poller.errors import JobListingError, PublishFailedError
from poller.snapshot_store import JOB_PARTITION, PARTITION_KEY, SORT_KEY
from tests.integration.conftest import observer_client, poller_handler

if TYPE_CHECKING:
    from tests.integration.conftest import Stack


def events(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(n["Message"]) for n in notifications]


def heard(stack: Stack) -> list[tuple[str | None, str | None, str]]:
    return sorted(
        (e["jobName"], e["previousStatus"], e["status"]) for e in events(stack.notifications())
    )


def writes(stack: Stack) -> int:
    kinds = {"PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem"}
    return sum(n for call, n in stack.calls.items() if call.split(":")[1] in kinds)


class ScriptedContext(LocalLambdaContext):
    """A Lambda context whose remaining time follows a script, one value per question."""

    def __init__(self, remaining_seconds: list[float]) -> None:
        super().__init__()
        self._script = list(remaining_seconds)

    def get_remaining_time_in_millis(self) -> int:
        value = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        return int(value * 1000)


# --- Personalize -----------------------------------------------------------------------


def test_throttling_on_several_calls_in_a_row(stack: Stack) -> None:
    for i in range(150):
        stack.personalize.add_job(f"j{i:03d}", "ACTIVE", at=1_700_000_000 + i)
    stack.invoke()
    arn = stack.personalize.add_job("new", "PENDING")
    stack.personalize.inject_fault("ListBatchSegmentJobs", "ThrottlingException", times=4)
    stack.calls.clear()

    stack.invoke()

    assert stack.calls["personalize:ListBatchSegmentJobs"] == 2 + 4
    assert heard(stack) == [("new", None, "PENDING")]
    assert stack.snapshot()[arn]["status"] == "PENDING"


def test_expired_next_token_restarts_the_listing_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(250):
        stack.personalize.add_job(f"j{i:03d}", "ACTIVE", at=1_700_000_000 + i)
    stack.invoke()
    stack.personalize.set_status(stack.personalize.job_arn("j000"), "CREATE FAILED")
    stack.calls.clear()

    original = stack.personalize.handle

    def expire_second_call(operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("nextToken") and stack.calls["personalize:ListBatchSegmentJobs"] == 2:
            stack.personalize.inject_fault("ListBatchSegmentJobs", "InvalidNextTokenException")
        return original(operation, body)

    monkeypatch.setattr(stack.personalize, "handle", expire_second_call)
    stack.invoke()

    # page 1, page 2 rejected, then pages 1-3 again
    assert stack.calls["personalize:ListBatchSegmentJobs"] == 5
    assert heard(stack) == [("j000", "ACTIVE", "CREATE FAILED")]


def test_a_page_failing_after_others_sends_nothing_and_writes_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(250):
        stack.personalize.add_job(f"j{i:03d}", "PENDING", at=1_700_000_000 + i)
    stack.invoke()
    for i in range(250):
        stack.personalize.set_status(stack.personalize.job_arn(f"j{i:03d}"), "ACTIVE")
    before = stack.snapshot()
    stack.calls.clear()
    original = stack.personalize.handle

    def fail_later_pages(operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("nextToken"):
            stack.personalize.inject_fault("ListBatchSegmentJobs", "InternalServerError", 500)
        return original(operation, body)

    monkeypatch.setattr(stack.personalize, "handle", fail_later_pages)
    with pytest.raises(JobListingError):
        stack.invoke()

    assert stack.calls["personalize:ListBatchSegmentJobs"] == 1 + 8  # page 1, page 2 x 8 attempts
    assert stack.notifications() == []
    assert writes(stack) == 0
    assert stack.snapshot() == before


# --- SNS -------------------------------------------------------------------------------


def test_one_failed_publish_among_several(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    arns = {name: stack.personalize.add_job(name, "IN PROGRESS") for name in ("a", "poison", "c")}
    stack.invoke()
    for arn in arns.values():
        stack.personalize.set_status(arn, "ACTIVE")
    original = SNSBackend.publish

    def reject_poison(self: SNSBackend, message: str, *args: Any, **kwargs: Any) -> str:
        if "poison" in message:
            raise InvalidParameterValue("rejected for the test")
        return original(self, message, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", reject_poison)
    with pytest.raises(PublishFailedError, match="1 of 3"):
        stack.invoke()

    assert heard(stack) == [("a", "IN PROGRESS", "ACTIVE"), ("c", "IN PROGRESS", "ACTIVE")]
    snapshot = stack.snapshot()
    assert snapshot[arns["poison"]]["status"] == "IN PROGRESS"
    assert "claimedBy" not in snapshot[arns["poison"]]
    assert snapshot[arns["a"]]["status"] == "ACTIVE"

    monkeypatch.setattr(SNSBackend, "publish", original)
    stack.invoke()

    assert heard(stack) == [("poison", "IN PROGRESS", "ACTIVE")]
    stack.invoke()
    assert heard(stack) == []


def test_kms_denied_keeps_the_transition_for_the_next_run(stack: Stack) -> None:
    arn = stack.personalize.add_job("secret", "PENDING")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")
    stack.aws.inject_fault("sns:PublishBatch", "KMSAccessDenied", message="denied by key policy")

    with pytest.raises(PublishFailedError):
        stack.invoke()

    assert stack.snapshot()[arn]["status"] == "PENDING"
    stack.invoke()
    assert heard(stack) == [("secret", "PENDING", "ACTIVE")]


# --- DynamoDB --------------------------------------------------------------------------


def test_throttled_writes_are_retried(stack: Stack) -> None:
    arn = stack.personalize.add_job("busy-table", "PENDING")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")
    stack.aws.inject_fault("dynamodb:UpdateItem", "ProvisionedThroughputExceededException", times=3)
    stack.calls.clear()

    stack.invoke()

    # claim, record and the watermark's advance, plus the 3 throttled attempts
    assert stack.calls["dynamodb:UpdateItem"] == 3 + 3
    assert heard(stack) == [("busy-table", "PENDING", "ACTIVE")]
    assert stack.snapshot()[arn]["status"] == "ACTIVE"


def test_throttled_baseline_writes_are_retried(stack: Stack) -> None:
    for i in range(30):
        stack.personalize.add_job(f"j{i}", "ACTIVE")
    stack.aws.inject_fault(
        "dynamodb:BatchWriteItem", "ProvisionedThroughputExceededException", times=2
    )

    assert stack.invoke()["firstRun"] is True

    assert len(stack.snapshot()) == 30


def test_overlapping_polls_send_each_transition_once(stack: Stack) -> None:
    arns = [stack.personalize.add_job(f"job-{i}", "PENDING") for i in range(3)]
    stack.invoke()
    for arn in arns:
        stack.personalize.set_status(arn, "ACTIVE")
    handler = poller_handler(stack.spec)
    second_run: list[dict[str, Any]] = []
    original = SNSBackend.publish_batch

    def second_poll_while_first_publishes(self: SNSBackend, *args: Any, **kwargs: Any) -> Any:
        if not second_run:
            # The first poll has claimed its transitions and is publishing: start another.
            second_run.append(handler.handler({}, LocalLambdaContext()))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SNSBackend, "publish_batch", second_poll_while_first_publishes)
        first = stack.invoke()

    assert second_run[0]["claimsLost"] == 3
    assert second_run[0]["published"] == 0
    assert first["published"] == 3
    assert heard(stack) == [(f"job-{i}", "PENDING", "ACTIVE") for i in range(3)]
    assert all(item["status"] == "ACTIVE" for item in stack.snapshot().values())


def test_a_lapsed_claim_from_a_dead_poll_is_taken_over(stack: Stack) -> None:
    arn = stack.personalize.add_job("orphan", "PENDING")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")
    observer_client("dynamodb").update_item(
        TableName=stack.table_name,
        Key={PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": arn}},
        UpdateExpression="SET claimedBy = :r, claimExpiresAt = :t",
        ExpressionAttributeValues={":r": {"S": "dead-run"}, ":t": {"N": "1"}},
    )

    stack.invoke()

    assert heard(stack) == [("orphan", "PENDING", "ACTIVE")]


def test_malformed_snapshot_items_are_repaired(stack: Stack) -> None:
    arns = {n: stack.personalize.add_job(n, "ACTIVE") for n in ("numeric", "bare", "ok")}
    stack.invoke()
    dynamodb = observer_client("dynamodb")

    def key(arn: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": arn}}

    dynamodb.put_item(
        TableName=stack.table_name, Item={**key(arns["numeric"]), "status": {"N": "3"}}
    )
    dynamodb.put_item(TableName=stack.table_name, Item=key(arns["bare"]))
    dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            PARTITION_KEY: {"S": JOB_PARTITION},
            SORT_KEY: {"S": "not-an-arn"},
            "x": {"BOOL": True},
        },
    )

    stack.invoke()

    assert heard(stack) == [("bare", None, "ACTIVE"), ("numeric", None, "ACTIVE")]
    snapshot = stack.snapshot()
    assert snapshot[arns["numeric"]]["status"] == "ACTIVE"
    assert snapshot[arns["bare"]]["status"] == "ACTIVE"
    stack.invoke()
    assert heard(stack) == []


# --- Stuck jobs ------------------------------------------------------------------------


def test_a_job_stuck_past_the_limit_gives_one_job_stuck_event(stack: Stack) -> None:
    seven_hours_ago = (datetime.now(UTC) - timedelta(hours=7)).timestamp()
    arn = stack.personalize.add_job("slowpoke", "IN PROGRESS", at=seven_hours_ago)
    stack.personalize.add_job("recent", "IN PROGRESS")
    stack.invoke()

    stack.invoke()

    (notification,) = stack.notifications()
    (event,) = events([notification])
    assert event["eventType"] == "JOB_STUCK"
    assert (event["previousStatus"], event["status"]) == ("IN PROGRESS", "IN PROGRESS")
    assert notification["Subject"] == "STUCK: slowpoke (IN PROGRESS)"
    assert notification["MessageAttributes"]["eventType"]["Value"] == "JOB_STUCK"
    assert stack.snapshot()[arn]["stuckStatus"] == "IN PROGRESS"
    stack.invoke()
    assert stack.notifications() == []
    stack.personalize.set_status(arn, "ACTIVE")
    stack.invoke()
    assert heard(stack) == [("slowpoke", "IN PROGRESS", "ACTIVE")]
    assert "stuckStatus" not in stack.snapshot()[arn]


# --- Input -----------------------------------------------------------------------------


def test_hostile_input(stack: Stack) -> None:
    stack.invoke()
    long_name = "n" * 63
    reason = ("Fehler: ungültige Eingabe — 入力が無効です\n\t<script>&</script>\n" * 6000)[:300_000]
    stack.personalize.add_job(long_name, "CREATE FAILED", failure_reason=reason)
    stack.personalize.put_raw_job(
        {"batchSegmentJobArn": stack.personalize.job_arn("odd"), "status": "REBALANCING"}
    )
    stack.personalize.put_raw_job({})

    summary = stack.invoke()

    assert summary["transitions"] == 2
    received = {e["jobName"]: e for e in events(stack.notifications())}
    assert received[long_name]["failureReason"].startswith(reason[:5000])
    assert "truncated" in received[long_name]["failureReason"]
    assert received[None]["status"] == "REBALANCING"
    assert received[None]["eventType"] == "JOB_STATUS_CHANGED"


@pytest.mark.parametrize("event", [None, "hello", {"anything": [1, 2]}, []])
def test_any_payload_does_a_normal_poll(stack: Stack, event: Any) -> None:
    stack.invoke()
    stack.personalize.add_job("manual", "PENDING")

    result = poller_handler(stack.spec).handler(event, LocalLambdaContext())

    assert result["transitions"] == 1
    assert heard(stack) == [("manual", None, "PENDING")]


@pytest.mark.slow
def test_ten_thousand_jobs(stack: Stack) -> None:
    for i in range(10_000):
        stack.personalize.add_job(f"bulk-{i:05d}", "ACTIVE", at=1_700_000_000 + i * 60)
    assert stack.invoke()["jobsSeen"] == 10_000
    changed = [stack.personalize.job_arn(f"bulk-{i:05d}") for i in (0, 5000, 9999)]
    for arn in changed:
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="x")
    stack.calls.clear()

    summary = stack.invoke()

    assert summary["transitions"] == 3
    assert stack.calls["personalize:ListBatchSegmentJobs"] == 100
    assert stack.calls["dynamodb:UpdateItem"] == 2 * 3 + 1  # claim and record each, watermark
    assert stack.calls["dynamodb:GetItem"] == 1  # the marker, not one per job
    assert stack.calls["dynamodb:BatchGetItem"] == 1  # the 3 changed jobs' records
    assert len(events(stack.notifications())) == 3


# --- Deadline --------------------------------------------------------------------------


def test_listing_stops_before_the_deadline_and_the_first_run_stays_silent(stack: Stack) -> None:
    for i in range(250):
        stack.personalize.add_job(f"j{i:03d}", "ACTIVE", at=1_700_000_000 + i)
    handler = poller_handler(stack.spec).handler
    # Asked after each page that has a next one: plenty of time after page 1, not after 2.
    result = handler({}, ScriptedContext([300, 5]))

    assert result["listingComplete"] is False
    assert result["pages"] == 2
    assert len(stack.snapshot()) == 200
    # Still a first run: the jobs not yet recorded are not announced as new.
    assert stack.invoke()["firstRun"] is True
    assert stack.notifications() == []
    assert stack.invoke()["firstRun"] is False
    assert stack.notifications() == []


def test_publishing_stops_before_the_deadline_and_the_rest_goes_next_run(stack: Stack) -> None:
    arns = [stack.personalize.add_job(f"j{i:02d}", "PENDING") for i in range(25)]
    stack.invoke()
    for arn in arns:
        stack.personalize.set_status(arn, "IN PROGRESS")  # for machines only: no storm
    handler = poller_handler(stack.spec).handler
    # Asked for the claims' lease, then before each batch of 10: the second finds it near.
    result = handler({}, ScriptedContext([300, 300, 5]))

    assert result["published"] == 10
    assert result["deferred"] == 15
    assert len(stack.notifications()) == 10
    assert stack.invoke()["published"] == 15
    assert len(stack.notifications()) == 15
    assert len(stack.received) == 25
    assert len({json.loads(n["Message"])["batchSegmentJobArn"] for n in stack.received}) == 25


# --- Watermark -------------------------------------------------------------------------


def marker(stack: Stack) -> dict[str, Any]:
    item = observer_client("dynamodb").get_item(
        TableName=stack.table_name,
        Key={PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": "#initialized"}},
    )["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_a_late_job_inside_the_margin_is_found_between_reconciliations(stack: Stack) -> None:
    start = datetime(2026, 11, 1, 9, tzinfo=UTC).timestamp()
    stack.personalize.add_job("anchor", "ACTIVE", at=start)
    stack.invoke()
    assert marker(stack)["watermark"] == "2026-11-01T09:00:00.000000+00:00"
    # Listed only now, though last updated ten minutes before the watermark.
    stack.personalize.add_job("late", "ACTIVE", at=start - 600)

    stack.invoke()

    assert heard(stack) == [("late", None, "ACTIVE")]


def test_a_job_far_behind_the_watermark_waits_for_the_full_reconciliation(stack: Stack) -> None:
    start = datetime(2026, 11, 1, 9, tzinfo=UTC).timestamp()
    stack.personalize.add_job("anchor", "ACTIVE", at=start)
    stack.invoke()
    stack.personalize.add_job("ancient", "ACTIVE", at=start - 3 * 3600)

    stack.invoke()
    assert heard(stack) == []

    stack.full_reconcile = True
    stack.invoke()
    assert heard(stack) == [("ancient", None, "ACTIVE")]


def test_the_watermark_does_not_pass_a_failed_publish(stack: Stack) -> None:
    start = datetime(2026, 11, 1, 9, tzinfo=UTC).timestamp()
    arn = stack.personalize.add_job("job", "PENDING", at=start)
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE", at=start + 3600)
    stack.aws.inject_fault("sns:PublishBatch", "KMSAccessDenied")

    with pytest.raises(PublishFailedError):
        stack.invoke()

    assert marker(stack)["watermark"] == "2026-11-01T09:00:00.000000+00:00"
    stack.invoke()
    assert heard(stack) == [("job", "PENDING", "ACTIVE")]
    assert marker(stack)["watermark"] == "2026-11-01T10:00:00.000000+00:00"


def test_a_failed_channel_is_retried_alone(stack: Stack) -> None:
    arn = stack.personalize.add_job("half", "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")
    stack.aws.inject_fault("events:PutEvents", "InternalException", 500, times=8)

    with pytest.raises(PublishFailedError):
        stack.invoke()

    assert heard(stack) == [("half", "IN PROGRESS", "ACTIVE")]  # SNS got it
    assert stack.bus_events() == []
    assert stack.snapshot()[arn]["status"] == "IN PROGRESS"

    stack.invoke()

    assert heard(stack) == []  # not sent twice
    (event,) = stack.bus_events()
    assert (event["detail"]["previousStatus"], event["detail"]["status"]) == (
        "IN PROGRESS",
        "ACTIVE",
    )
    assert stack.snapshot()[arn]["status"] == "ACTIVE"
    assert "delivered" not in stack.snapshot()[arn]


# --- Storms ----------------------------------------------------------------------------


def people_queue(stack: Stack) -> str:
    people_topic = os.environ["PEOPLE_TOPIC_ARN"]
    return subscribe_queue(boto3.session.Session(), people_topic, "people")


@pytest.mark.slow
def test_a_storm_of_500_failures_is_one_digest_for_people_and_500_events_for_machines(
    stack: Stack,
) -> None:
    arns = [stack.personalize.add_job(f"storm-{i:03d}", "IN PROGRESS") for i in range(500)]
    stack.invoke()
    people = people_queue(stack)
    for arn in arns:
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="role lost s3 access")
    stack.calls.clear()

    summary = stack.invoke()

    assert summary["storm"] is True
    assert summary["published"] == 500
    assert len(stack.notifications()) == 500  # the events topic: every event
    assert len(stack.bus_events()) == 500
    (digest,) = list(drain_queue(observer_client("sqs"), people))
    assert digest["Subject"] == "500 batch segment job changes: 500 FAILED"
    assert digest["MessageAttributes"] == {
        **digest["MessageAttributes"],  # type: ignore[dict-item]
        "eventType": {"Type": "String", "Value": "JOB_DIGEST"},
    }
    body = json.loads(str(digest["Message"]))
    assert body["count"] == 500
    assert body["counts"] == {"JOB_FAILED": 500}
    assert len(body["jobs"]) + body["truncated"] == 500
    assert stack.calls["sns:PublishBatch"] == 50 + 1


def test_a_failed_digest_is_sent_again_without_resending_the_events(stack: Stack) -> None:
    arns = [stack.personalize.add_job(f"storm-{i:02d}", "IN PROGRESS") for i in range(25)]
    stack.invoke()
    people = people_queue(stack)
    for arn in arns:
        stack.personalize.set_status(arn, "ACTIVE")
    original = SNSBackend.publish_batch

    def reject_digest(self: SNSBackend, topic_arn: str, **kwargs: Any) -> Any:
        if topic_arn == os.environ["PEOPLE_TOPIC_ARN"]:
            raise InvalidParameterValue("people topic unavailable for the test")
        return original(self, topic_arn, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SNSBackend, "publish_batch", reject_digest)
        with pytest.raises(PublishFailedError, match="25 of 25"):
            stack.invoke()
    assert len(stack.notifications()) == 25
    assert len(stack.bus_events()) == 25

    stack.invoke()

    assert stack.notifications() == []  # the events topic is not sent them twice
    assert stack.bus_events() == []  # nor the bus
    (digest,) = list(drain_queue(observer_client("sqs"), people))
    assert json.loads(str(digest["Message"]))["count"] == 25
