"""Faults and odd input through the real handler and local AWS: each handled with nothing
lost and nothing doubled. One test per way AWS can fail or surprise the poller; the rules
for odd listings (no status, lagging, future times, jobs already stuck) are unit tests in
tests/unit/test_poll.py."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from moto.sns.exceptions import InvalidParameterValue
from moto.sns.models import SNSBackend

from local.lambda_context import LocalLambdaContext
from poller.aws import DELIVERY_LIMITS, LISTING_LIMITS
from poller.errors import PublishFailedError, ScopesUnreachableError
from poller.poll import SAFETY_MARGIN_SECONDS
from tests.integration.conftest import events, poller_handler

if TYPE_CHECKING:
    from local.personalize_emulator import PersonalizeEmulator
    from tests.integration.conftest import Stack


class DeadlineAfter(LocalLambdaContext):
    """A Lambda context with plenty of time until the emulator has answered `calls` calls
    of an operation, and only `then` seconds from there on: a deadline that arrives at a
    chosen point of the run, whatever the machine's speed."""

    def __init__(self, emulator: PersonalizeEmulator, operation: str, calls: int, then: float):
        super().__init__(timeout_seconds=300.0)
        self._emulator, self._operation, self._calls, self._then = emulator, operation, calls, then

    def get_remaining_time_in_millis(self) -> int:
        if self._emulator.calls[self._operation] >= self._calls:
            return int(self._then * 1000)
        return super().get_remaining_time_in_millis()


# --- Personalize -----------------------------------------------------------------------


def test_an_expired_next_token_restarts_the_listing_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = stack.add_jobs("j", 250, "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(arns[0], "CREATE FAILED")  # the oldest: on the last page
    stack.clear_calls()
    original = stack.personalize.handle
    expired: list[str] = []

    def expire_the_first_token(operation: str, body: dict[str, Any], *caller: Any) -> Any:
        if body.get("nextToken") and not expired:
            expired.append(body["nextToken"])
            stack.personalize.inject_fault("ListBatchSegmentJobs", "InvalidNextTokenException")
        return original(operation, body, *caller)

    monkeypatch.setattr(stack.personalize, "handle", expire_the_first_token)
    stack.invoke()

    # page 1, page 2 rejected, then pages 1-3 again
    assert stack.calls["personalize:ListBatchSegmentJobs"] == 5
    assert stack.heard() == [("j-0000", "IN PROGRESS", "CREATE FAILED")]


def test_a_page_failing_after_its_retries_sends_nothing_and_writes_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = stack.add_jobs("j", 250, "PENDING")
    stack.invoke()
    for arn in arns:
        stack.personalize.set_status(arn, "ACTIVE")
    before = stack.snapshot()
    markers = stack.markers()
    stack.clear_calls()
    original = stack.personalize.handle

    def fail_later_pages(operation: str, body: dict[str, Any], *caller: Any) -> Any:
        if body.get("nextToken"):
            stack.personalize.inject_fault("ListBatchSegmentJobs", "InternalServerError", 500)
        return original(operation, body, *caller)

    monkeypatch.setattr(stack.personalize, "handle", fail_later_pages)
    with pytest.raises(ScopesUnreachableError):
        stack.invoke()

    # page 1, then page 2 as often as the listing's limits allow
    assert stack.calls["personalize:ListBatchSegmentJobs"] == 1 + LISTING_LIMITS.attempts
    assert stack.notifications() == []
    assert stack.writes() == 0
    assert stack.snapshot() == before
    assert stack.markers() == markers


def test_a_listing_that_cannot_finish_across_runs_is_handed_to_a_catch_up_run(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = stack.add_jobs("j", 250, "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(arns[0], "CREATE FAILED")  # the oldest: on the last page
    short = SAFETY_MARGIN_SECONDS + 2  # room for no further page
    stack.clear_calls()
    cut = stack.invoke(context=DeadlineAfter(stack.personalize, "ListBatchSegmentJobs", 2, short))
    assert (cut["pages"], cut["catchUp"]) == (2, []), "a checkpoint, for the next run"
    stack.personalize.inject_fault("ListBatchSegmentJobs", "InvalidNextTokenException")
    stack.clear_calls()

    # The checkpoint has expired; listing from the first page stops short again.
    restarted = stack.invoke(
        context=DeadlineAfter(stack.personalize, "ListBatchSegmentJobs", 3, short)
    )
    assert restarted["pages"] == 2

    (key,) = restarted["catchUp"]
    ((function, payload),) = stack.aws.moto.invocations
    assert function == LocalLambdaContext().invoked_function_arn
    assert payload == {"catchUp": [key]}
    assert stack.invoke()["scopesHeld"] == [key], "scheduled runs leave it alone meanwhile"
    assert stack.heard() == []

    caught_up = stack.invoke(event=payload, context=LocalLambdaContext(timeout_seconds=900))

    assert caught_up["listingComplete"] is True
    assert stack.heard() == [("j-0000", "IN PROGRESS", "CREATE FAILED")]
    assert "catchUpUntil" not in stack.marker()
    assert stack.invoke()["scopesHeld"] == []


# --- SNS -------------------------------------------------------------------------------


def test_one_failed_publish_among_several(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.start_watching()
    arns = {name: stack.personalize.add_job(name, "IN PROGRESS") for name in ("a", "poison", "c")}
    stack.invoke()
    stack.heard()
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

    assert sorted(stack.heard()) == [("a", "IN PROGRESS", "ACTIVE"), ("c", "IN PROGRESS", "ACTIVE")]
    snapshot = stack.snapshot()
    assert snapshot[arns["poison"]]["status"] == "IN PROGRESS"
    assert "claimedBy" not in snapshot[arns["poison"]]
    assert snapshot[arns["a"]]["status"] == "ACTIVE"

    monkeypatch.setattr(SNSBackend, "publish", original)
    stack.invoke()

    assert stack.heard() == [("poison", "IN PROGRESS", "ACTIVE")]
    stack.invoke()
    assert stack.heard() == []


def test_kms_denied_keeps_the_transition_for_the_next_run(stack: Stack) -> None:
    stack.start_watching()
    arn = stack.personalize.add_job("secret", "PENDING")
    stack.invoke()
    stack.heard()
    stack.personalize.set_status(arn, "ACTIVE")
    stack.aws.inject_fault("sns:PublishBatch", "KMSAccessDenied", message="denied by key policy")

    with pytest.raises(PublishFailedError):
        stack.invoke()

    assert stack.heard() == []
    assert stack.snapshot()[arn]["status"] == "PENDING"
    assert "claimedBy" not in stack.snapshot()[arn]
    stack.invoke()
    assert stack.heard() == [("secret", "PENDING", "ACTIVE")]


def test_a_failed_channel_is_retried_alone(stack: Stack) -> None:
    stack.start_watching()
    arn = stack.personalize.add_job("half", "IN PROGRESS")
    stack.invoke()
    stack.heard()
    stack.bus_events()
    stack.personalize.set_status(arn, "ACTIVE")
    stack.aws.inject_fault(
        "events:PutEvents", "InternalException", 500, times=DELIVERY_LIMITS.attempts
    )

    with pytest.raises(PublishFailedError):
        stack.invoke()

    assert stack.heard() == [("half", "IN PROGRESS", "ACTIVE")]  # the topic got it
    assert stack.bus_events() == []
    record = stack.snapshot()[arn]
    assert record["status"] == "IN PROGRESS"
    # What each channel got is kept, so the next run sends only what is missing.
    assert record["delivered"] == {"sns": "JOB_SUCCEEDED:ACTIVE", "people": "JOB_SUCCEEDED:ACTIVE"}

    stack.invoke()

    assert stack.heard() == []  # not sent twice
    (event,) = stack.bus_events()
    assert (event["detail"]["previousStatus"], event["detail"]["status"]) == (
        "IN PROGRESS",
        "ACTIVE",
    )
    assert stack.snapshot()[arn]["status"] == "ACTIVE"
    assert "delivered" not in stack.snapshot()[arn]


def test_a_storm_is_one_digest_for_people_and_every_event_for_machines(stack: Stack) -> None:
    stack.configure(STORM_THRESHOLD="2")
    people = stack.people_queue()
    stack.start_watching()
    arns = [stack.personalize.add_job(f"storm-{i}", "IN PROGRESS") for i in range(4)]
    stack.invoke()
    assert stack.drain(people) == [], "status changes are for machines only: no storm"
    stack.heard()
    stack.bus_events()
    for arn in arns:
        stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="role lost s3 access")
    stack.clear_calls()

    summary = stack.invoke()

    assert summary["storm"] is True
    assert summary["published"] == 4
    assert len(stack.heard()) == 4  # the events topic: every event
    assert len(stack.bus_events()) == 4
    (digest,) = stack.drain(people)
    assert digest["Subject"] == "4 batch segment job changes in 123456789012/us-east-1: 4 FAILED"
    # The types it holds, so a filter on JOB_FAILED (or on JOB_DIGEST, as before) gets it.
    assert digest["MessageAttributes"]["eventType"] == {
        "Type": "String.Array",
        "Value": '["JOB_DIGEST","JOB_FAILED"]',
    }
    (body,) = events([digest])
    assert body["count"] == 4
    assert body["counts"] == {"JOB_FAILED": 4}
    assert sorted(j["jobName"] for j in body["jobs"]) == [f"storm-{i}" for i in range(4)]
    assert stack.calls["sns:PublishBatch"] == 1 + 1  # the events topic's batch, the digest


# --- DynamoDB --------------------------------------------------------------------------


def test_throttled_writes_are_retried(stack: Stack) -> None:
    arns = stack.add_jobs("j", 30, "PENDING")
    stack.aws.inject_fault(
        "dynamodb:BatchWriteItem", "ProvisionedThroughputExceededException", times=2
    )

    assert stack.invoke()["firstRun"] is True

    assert len(stack.snapshot()) == 30
    assert stack.calls["dynamodb:BatchWriteItem"] == 2 + 2  # 30 records in 2 batches
    stack.personalize.set_status(arns[0], "ACTIVE")
    throttled = DELIVERY_LIMITS.attempts - 1  # the last attempt succeeds
    stack.aws.inject_fault(
        "dynamodb:UpdateItem", "ProvisionedThroughputExceededException", times=throttled
    )
    stack.clear_calls()

    stack.invoke()

    # the claim, the record and the marker's new watermark, after the throttled attempts
    assert stack.calls["dynamodb:UpdateItem"] == throttled + 3
    assert stack.heard() == [("j-0000", "PENDING", "ACTIVE")]
    assert stack.snapshot()[arns[0]]["status"] == "ACTIVE"


def test_overlapping_polls_send_each_transition_once(stack: Stack) -> None:
    stack.start_watching()
    arns = [stack.personalize.add_job(f"job-{i}", "PENDING") for i in range(3)]
    stack.invoke()
    stack.heard()
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
    assert sorted(stack.heard()) == [(f"job-{i}", "PENDING", "ACTIVE") for i in range(3)]
    assert all(item["status"] == "ACTIVE" for item in stack.snapshot().values())


# --- Stuck jobs ------------------------------------------------------------------------


def test_a_job_stuck_past_the_limit_gives_one_job_stuck_event(stack: Stack) -> None:
    stack.start_watching(ago=timedelta(hours=8))
    arn = stack.personalize.add_job("slowpoke", "IN PROGRESS", at=time.time() - 7 * 3600)
    stack.personalize.add_job("recent", "IN PROGRESS")
    stack.invoke()
    assert sorted(stack.heard()) == [
        ("recent", None, "IN PROGRESS"),
        ("slowpoke", None, "IN PROGRESS"),
    ]

    stack.invoke()

    (notification,) = stack.notifications()
    (event,) = events([notification])
    assert event["eventType"] == "JOB_STUCK"
    assert (event["previousStatus"], event["status"]) == ("IN PROGRESS", "IN PROGRESS")
    assert notification["Subject"] == "STUCK: slowpoke (IN PROGRESS)"
    assert notification["MessageAttributes"]["eventType"]["Value"] == "JOB_STUCK"
    assert stack.snapshot()[arn]["stuckStatus"] == "IN PROGRESS"
    stack.invoke()
    assert stack.heard() == []
    stack.personalize.set_status(arn, "ACTIVE")
    stack.invoke()
    assert stack.heard() == [("slowpoke", "IN PROGRESS", "ACTIVE")]
    assert "stuckStatus" not in stack.snapshot()[arn]


# --- Input -----------------------------------------------------------------------------


def test_hostile_input_and_missing_fields(stack: Stack) -> None:
    stack.start_watching()
    long_name = "n" * 63
    reason = ("Fehler: ungültige Eingabe — 入力が無効です\n\t<script>&</script>\n" * 6000)[:300_000]
    stack.personalize.add_job(long_name, "CREATE FAILED", failure_reason=reason)
    bare = stack.personalize.job_arn("bare")
    stack.personalize.put_raw_job({"batchSegmentJobArn": bare, "status": "CREATE IN_PROGRESS"})
    odd = stack.personalize.job_arn("odd")
    stack.personalize.put_raw_job({"batchSegmentJobArn": odd, "status": "REBALANCING"})
    stack.personalize.put_raw_job({"jobName": "no-arn", "status": "PENDING"})
    stack.personalize.put_raw_job({})

    summary = stack.invoke()

    assert summary["jobsSeen"] == 3  # the summaries without an ARN cannot be tracked
    assert summary["transitions"] == 3
    received = {events([n])[0]["batchSegmentJobArn"]: n for n in stack.notifications()}
    assert set(received) == {stack.personalize.job_arn(long_name), bare, odd}
    (failed,) = events([received[stack.personalize.job_arn(long_name)]])
    assert failed["failureReason"].startswith(reason[:5000])
    assert "truncated" in failed["failureReason"]
    (nameless,) = events([received[bare]])
    assert nameless["jobName"] is None
    assert nameless["creationDateTime"] is None
    assert (nameless["eventType"], nameless["status"]) == (
        "JOB_STATUS_CHANGED",
        "CREATE IN_PROGRESS",
    )
    assert received[bare]["Subject"] == "CREATE IN_PROGRESS: bare"
    assert received[bare]["MessageAttributes"]["jobName"]["Value"] == "NONE"
    assert received[bare]["MessageAttributes"]["solutionVersionArn"]["Value"] == "NONE"
    assert events([received[odd]])[0]["status"] == "REBALANCING"


# --- Deadline --------------------------------------------------------------------------


def test_a_listing_cut_short_keeps_its_checkpoint_and_the_next_run_resumes_from_it(
    stack: Stack,
) -> None:
    stack.add_jobs("j", 250)
    # Plenty of time for page 1; after page 2, only 2 s beyond the safety margin.
    cut_short = DeadlineAfter(
        stack.personalize, "ListBatchSegmentJobs", calls=2, then=SAFETY_MARGIN_SECONDS + 2
    )

    first = stack.invoke(context=cut_short)

    assert first["listingComplete"] is False
    assert first["pages"] == 2
    assert len(stack.snapshot()) == 200
    marker = stack.marker()
    assert marker["checkpoint"], "where the listing stopped: the service's nextToken"
    assert marker["baselineComplete"] is False
    stack.clear_calls()

    resumed = stack.invoke()

    assert resumed["firstRun"] is True, "still a first run: the rest is recorded silently"
    assert resumed["pages"] == 1, "only the page after the checkpoint"
    assert len(stack.snapshot()) == 250
    assert stack.marker()["baselineComplete"] is True
    assert "checkpoint" not in stack.marker()
    assert stack.invoke()["firstRun"] is False
    assert stack.heard() == []


# --- Odd text ------------------------------------------------------------------------


def test_a_lone_surrogate_is_replaced_and_the_rest_of_the_poll_is_announced(
    stack: Stack,
) -> None:
    stack.start_watching()
    names = ("first", "hostile", "last")
    arns = {name: stack.personalize.add_job(name, "IN PROGRESS") for name in names}
    stack.invoke()
    stack.heard()
    stack.personalize.set_status(arns["first"], "ACTIVE")
    # The emulator sends JSON "\ud800": a lone UTF-16 surrogate, which no UTF-8 can carry.
    stack.personalize.set_status(arns["hostile"], "CREATE FAILED", failure_reason="bad \ud800 in")
    stack.personalize.set_status(arns["last"], "ACTIVE")

    result = stack.invoke()

    assert result["published"] == 3
    received = {e["jobName"]: e for e in events(stack.notifications())}
    assert set(received) == set(names)
    assert received["hostile"]["failureReason"] == "bad \ufffd in", "one U+FFFD where it stood"


# --- Scopes ----------------------------------------------------------------------------


def test_a_newly_watched_solution_version_gets_a_silent_baseline(stack: Stack) -> None:
    mine = stack.personalize.solution_version_arn("segments", "1")
    added = stack.personalize.solution_version_arn("segments", "2")
    stack.configure(SOLUTION_VERSION_ARNS=mine)
    hour_ago = time.time() - 3600
    moving = stack.personalize.add_job(
        "moving", "IN PROGRESS", solution_version_arn=mine, at=hour_ago
    )
    stack.personalize.add_job("old-done", "ACTIVE", solution_version_arn=added, at=hour_ago)
    stack.personalize.add_job(
        "old-failed", "CREATE FAILED", solution_version_arn=added, at=hour_ago
    )
    stack.start_watching()
    stack.personalize.add_job("unwatched", "PENDING", solution_version_arn=added)
    stack.personalize.add_job("fresh", "PENDING", solution_version_arn=mine)
    stack.invoke()
    assert stack.heard() == [("fresh", None, "PENDING")], "only the watched version is listed"

    stack.configure(SOLUTION_VERSION_ARNS=f"{mine},{added}")
    stack.personalize.set_status(moving, "ACTIVE")
    widened = stack.invoke()

    assert stack.heard() == [("moving", "IN PROGRESS", "ACTIVE")]
    assert widened["firstRun"] is True
    assert len(stack.markers()) == 2
    assert len(stack.snapshot()) == 5, "the added version's jobs are recorded silently"
    stack.personalize.add_job("new", "PENDING", solution_version_arn=added)
    stack.invoke()
    assert stack.heard() == [("new", None, "PENDING")]
