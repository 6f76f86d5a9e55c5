from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from job_events.arns import console_url
from job_events.event import JobDigest, JobEvent, parse, truncate
from job_events.vocabulary import EventType
from poller.announcement import event_of
from poller.channels.sns import (
    MAX_PUBLISH_BYTES,
    MAX_SUBJECT_CHARS,
    SnsMessage,
    digest_message,
    digest_subject,
    message_attributes,
)
from poller.channels.sns import sns_message as sns_message_of
from poller.channels.sns import subject as subject_of
from poller.models import JobSummary, Transition

ARN = "arn:aws:personalize:eu-west-1:111122223333:batch-segment-job/segment-job-42"
SV = "arn:aws:personalize:eu-west-1:111122223333:solution/segments/abc"
REGION = "eu-west-1"
DETECTED = datetime(2026, 11, 1, 10, 5, tzinfo=UTC)
CREATED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
UPDATED = datetime(2026, 11, 1, 10, 2, 3, tzinfo=UTC)
EVENT_KEYS = [
    "schemaVersion",
    "eventType",
    "batchSegmentJobArn",
    "jobName",
    "solutionVersionArn",
    "previousStatus",
    "status",
    "failureReason",
    "creationDateTime",
    "lastUpdatedDateTime",
    "region",
    "accountId",
    "consoleUrl",
    "detectedAt",
    "jobInput",
    "jobOutput",
    "filterArn",
    "numResults",
    "roleArn",
]
ATTRIBUTE_NAMES = {
    "eventType",
    "status",
    "previousStatus",
    "jobName",
    "solutionVersionArn",
    "accountId",
    "region",
}


def failed(
    reason: str | None = "Input is not valid JSON", name: str | None = "segment-job-42"
) -> Transition:
    return Transition(
        EventType.JOB_FAILED,
        JobSummary(
            arn=ARN,
            name=name,
            status="CREATE FAILED",
            creation_time=CREATED,
            last_updated_time=UPDATED,
            failure_reason=reason,
            solution_version_arn=SV,
        ),
        previous_status="IN PROGRESS",
    )


def event(transition: Transition) -> JobEvent:
    return event_of(transition, REGION, DETECTED)


def event_document(transition: Transition) -> dict[str, object]:
    return event(transition).to_document()


def subject(transition: Transition) -> str:
    return subject_of(event(transition))


def envelope(transition: Transition) -> dict[str, str]:
    parsed: dict[str, str] = json.loads(sns_message_of(event(transition)).message)
    return parsed


def test_event_document_is_the_documented_contract() -> None:
    document = event_document(failed())
    assert list(document) == EVENT_KEYS
    assert document == {
        "schemaVersion": "1",
        "eventType": "JOB_FAILED",
        "batchSegmentJobArn": ARN,
        "jobName": "segment-job-42",
        "solutionVersionArn": SV,
        "previousStatus": "IN PROGRESS",
        "status": "CREATE FAILED",
        "failureReason": "Input is not valid JSON",
        "creationDateTime": "2026-11-01T09:00:00+00:00",
        "lastUpdatedDateTime": "2026-11-01T10:02:03+00:00",
        "region": "eu-west-1",
        "accountId": "111122223333",
        "consoleUrl": "https://eu-west-1.console.aws.amazon.com/personalize/home?region=eu-west-1",
        "detectedAt": "2026-11-01T10:05:00+00:00",
        "jobInput": None,
        "jobOutput": None,
        "filterArn": None,
        "numResults": None,
        "roleArn": None,
    }


def test_message_keys_for_each_protocol() -> None:
    message = envelope(failed())
    assert set(message) == {"default", "sqs", "lambda", "email", "https"}
    assert message["default"] == message["sqs"] == message["lambda"]
    assert json.loads(message["sqs"]) == event_document(failed())


def test_email_is_for_people() -> None:
    email = envelope(failed("Line one\nLine two: café"))["email"]
    assert email.startswith("Batch segment job segment-job-42 FAILED (CREATE FAILED).")
    assert "IN PROGRESS -> CREATE FAILED" in email
    assert "  Line one\n  Line two: café" in email
    assert "1h 02m 03s" in email
    assert "Created:          2026-11-01 09:00:00 UTC" in email
    assert "Detected at:      2026-11-01 10:05:00 UTC" in email
    assert SV in email
    assert "eu-west-1" in email
    assert "111122223333" in email
    assert "https://eu-west-1.console.aws.amazon.com/personalize/home" in email


def test_email_for_missing_fields_says_not_reported() -> None:
    transition = Transition(EventType.JOB_STATUS_CHANGED, JobSummary(arn=ARN), None)
    email = envelope(transition)["email"]
    assert "New batch segment job segment-job-42 is an unknown status." in email
    assert "(not reported)" in email
    assert "(first seen) -> (unknown)" in email


def test_times_are_utc_whatever_zone_botocore_gives() -> None:
    local = CREATED.astimezone(timezone(timedelta(hours=-7)))
    transition = Transition(
        EventType.JOB_STATUS_CHANGED, JobSummary(arn=ARN, creation_time=local), None
    )
    assert event_document(transition)["creationDateTime"] == "2026-11-01T09:00:00+00:00"


def test_duration_only_when_finished() -> None:
    running = Transition(
        EventType.JOB_STATUS_CHANGED,
        JobSummary(arn=ARN, status="IN PROGRESS", creation_time=CREATED, last_updated_time=UPDATED),
        "PENDING",
    )
    assert "Duration" not in envelope(running)["email"]
    assert "Duration:         1h 02m 03s" in envelope(failed())["email"]


def test_subject_outcome_first() -> None:
    assert subject(failed()) == "FAILED: segment-job-42 (CREATE FAILED)"
    ok = Transition(EventType.JOB_SUCCEEDED, JobSummary(arn=ARN, name="j", status="ACTIVE"), "X")
    assert subject(ok) == "SUCCEEDED: j (ACTIVE)"
    moving = Transition(
        EventType.JOB_STATUS_CHANGED, JobSummary(arn=ARN, name="j", status="IN PROGRESS"), None
    )
    assert subject(moving) == "IN PROGRESS: j"


@pytest.mark.parametrize(
    "transition",
    [
        Transition(EventType.JOB_STATUS_CHANGED, JobSummary(), None),
        Transition(EventType.JOB_STATUS_CHANGED, JobSummary(status="Ünïcode\nstatus\t!"), None),
        Transition(EventType.JOB_FAILED, JobSummary(name="n" * 63, status="S" * 256), "PENDING"),
        Transition(EventType.JOB_SUCCEEDED, JobSummary(arn=ARN, status="ACTIVE"), None),
    ],
)
def test_subject_is_printable_ascii_within_limits(transition: Transition) -> None:
    text = subject(transition)
    assert 1 <= len(text) < 100
    assert all(" " <= c <= "~" for c in text)
    assert not text.startswith(" ")


def test_subject_falls_back_to_the_arn_name() -> None:
    transition = Transition(EventType.JOB_SUCCEEDED, JobSummary(arn=ARN, status="ACTIVE"), None)
    assert subject(transition) == "SUCCEEDED: segment-job-42 (ACTIVE)"


def test_attributes_are_never_empty() -> None:
    attributes = message_attributes(
        event(Transition(EventType.JOB_STATUS_CHANGED, JobSummary(), None))
    )
    assert set(attributes) == ATTRIBUTE_NAMES
    assert attributes == {
        "eventType": "JOB_STATUS_CHANGED",
        "status": "NONE",
        "previousStatus": "NONE",
        "jobName": "NONE",
        "solutionVersionArn": "NONE",
        "accountId": "NONE",
        "region": REGION,
    }
    assert message_attributes(event(failed())) == {
        "eventType": "JOB_FAILED",
        "status": "CREATE FAILED",
        "previousStatus": "IN PROGRESS",
        "jobName": "segment-job-42",
        "solutionVersionArn": SV,
        "accountId": "111122223333",
        "region": "eu-west-1",
    }


def test_huge_failure_reason_is_truncated_visibly_under_the_limit() -> None:
    reason = ('Ωμέγα "quoted" \\ line\n' * 15_000)[:300_000]
    entry = sns_message_of(event(failed(reason)))
    assert entry.size <= MAX_PUBLISH_BYTES
    assert len(entry.message.encode()) < 256 * 1024
    message = json.loads(entry.message)
    sent = json.loads(message["sqs"])
    assert sent["failureReason"].startswith(reason[:1000])
    assert sent["failureReason"].endswith(f"of {len(reason)} characters shown]")
    assert "truncated" in message["email"]


def test_short_failure_reason_is_untouched() -> None:
    assert json.loads(envelope(failed("x" * 10_000))["sqs"])["failureReason"] == "x" * 10_000


def test_truncate() -> None:
    assert truncate("abc", None) == "abc"
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 2) == "ab\n[... truncated: first 2 of 6 characters shown]"


def test_duration() -> None:
    assert event(failed()).ran_for == "1h 02m 03s"
    assert event(Transition(EventType.JOB_FAILED, JobSummary(), None)).ran_for is None


def test_console_url_follows_the_partition() -> None:
    assert console_url("cn-north-1", "aws-cn").startswith(
        "https://cn-north-1.console.amazonaws.cn/"
    )
    assert console_url("us-east-1", None).startswith("https://us-east-1.console.aws.amazon.com/")


def stuck() -> Transition:
    return Transition(
        EventType.JOB_STUCK,
        JobSummary(
            arn=ARN,
            name="segment-job-42",
            status="IN PROGRESS",
            creation_time=CREATED,
            last_updated_time=CREATED,
            solution_version_arn=SV,
        ),
        previous_status="IN PROGRESS",
    )


def test_stuck_subject_and_email() -> None:
    assert subject(stuck()) == "STUCK: segment-job-42 (IN PROGRESS)"
    email = envelope(stuck())["email"]
    assert email.startswith(
        "Batch segment job segment-job-42 may be STUCK: IN PROGRESS for 1h 05m 00s"
        " without a change."
    )
    assert "Status:           IN PROGRESS (unchanged)" in email
    assert "Waiting for:      1h 05m 00s" in email
    assert message_attributes(event(stuck()))["eventType"] == "JOB_STUCK"


def test_digest_of_many_huge_events_fits_and_says_what_it_left_out() -> None:
    events = [
        event(
            Transition(
                EventType.JOB_FAILED,
                JobSummary(
                    arn=f"{ARN}-{i}",
                    name=f"job-{i}",
                    status="CREATE FAILED",
                    failure_reason="x" * 50_000,
                ),
                "IN PROGRESS",
            )
        )
        for i in range(500)
    ]
    digest = digest_message(events)
    assert digest.size <= MAX_PUBLISH_BYTES
    assert digest.subject == "500 batch segment job changes in 111122223333/eu-west-1: 500 FAILED"
    body = json.loads(json.loads(digest.message)["sqs"])
    assert body["eventType"] == "JOB_DIGEST"
    assert body["count"] == 500
    assert body["jobs"]
    assert len(body["jobs"]) + body["truncated"] == 500
    email = json.loads(digest.message)["email"]
    assert email.startswith(
        "500 batch segment jobs in 111122223333/eu-west-1 changed in one poll (500 FAILED)."
    )
    assert all(v for v in digest.attributes.values())


def test_the_event_json_parses_back_into_the_same_event() -> None:
    sent = event(failed())
    assert JobEvent.from_document(json.loads(sent.to_json())) == sent


def test_a_digest_links_the_console_of_its_partition() -> None:
    # Regression: the digest's console link was built without the partition.
    china = "arn:aws-cn:personalize:cn-north-1:111122223333:batch-segment-job/j"
    events = [
        event_of(
            Transition(EventType.JOB_FAILED, JobSummary(arn=f"{china}{i}", status="FAILED"), None),
            "cn-north-1",
            DETECTED,
        )
        for i in range(3)
    ]
    message = json.loads(digest_message(events).message)
    assert "https://cn-north-1.console.amazonaws.cn/personalize" in message["email"]
    assert "https://cn-north-1.console.amazonaws.cn/personalize" in message["https"]


def test_an_event_carries_its_jobs_own_account_and_region() -> None:
    elsewhere = "arn:aws:personalize:ap-south-1:444455556666:batch-segment-job/far"
    sent = event_of(
        Transition(EventType.JOB_SUCCEEDED, JobSummary(arn=elsewhere, status="ACTIVE"), None),
        "us-east-1",  # where the poller runs
        DETECTED,
    )
    assert (sent.region, sent.account_id) == ("ap-south-1", "444455556666")
    assert sent.console_url.startswith("https://ap-south-1.console.aws.amazon.com/")
    attributes = message_attributes(sent)
    assert (attributes["accountId"], attributes["region"]) == ("444455556666", "ap-south-1")


# --- a digest per scope ------------------------------------------------------------------

PROD, DEV = "111122223333", "444455556666"


def scoped(
    event_type: EventType,
    i: int,
    account: str = PROD,
    region: str = REGION,
    *,
    name: str | None = None,
    reason: str | None = None,
) -> JobEvent:
    """An event of a job in `account` and `region`, seen by a poller elsewhere."""
    arn = f"arn:aws:personalize:{region}:{account}:batch-segment-job/job-{i}"
    status = {EventType.JOB_FAILED: "CREATE FAILED", EventType.JOB_SUCCEEDED: "ACTIVE"}
    summary = JobSummary(
        arn=arn,
        name=name or f"job-{i}",
        status=status.get(event_type, "PENDING"),
        failure_reason=reason,
    )
    return event_of(Transition(event_type, summary, "IN PROGRESS"), "us-east-1", DETECTED)


def storm(*types: EventType, account: str = PROD, region: str = REGION) -> list[JobEvent]:
    return [scoped(t, i, account, region) for i, t in enumerate(types)]


def test_a_digests_event_type_is_a_string_array_of_digest_and_each_type_it_holds() -> None:
    digest = digest_message(
        storm(EventType.JOB_SUCCEEDED, EventType.JOB_FAILED, EventType.JOB_SUCCEEDED)
    )
    assert digest.data_type("eventType") == "String.Array"
    assert json.loads(digest.attributes["eventType"]) == [
        "JOB_DIGEST",
        "JOB_FAILED",
        "JOB_SUCCEEDED",
    ]
    # Every other attribute stays a String.
    assert {digest.data_type(name) for name in digest.attributes if name != "eventType"} == {
        "String"
    }


def test_an_events_attributes_stay_strings() -> None:
    message = sns_message_of(event(failed()))
    assert message.data_types == {}
    assert {message.data_type(name) for name in message.attributes} == {"String"}
    assert message.attributes["eventType"] == "JOB_FAILED"


def test_a_digest_names_its_scope_everywhere() -> None:
    events = storm(EventType.JOB_FAILED, EventType.JOB_SUCCEEDED, account=DEV, region="ap-south-1")
    digest = digest_message(events)
    assert (digest.attributes["accountId"], digest.attributes["region"]) == (DEV, "ap-south-1")
    keys = json.loads(digest.message)
    body = json.loads(keys["sqs"])
    assert (body["accountId"], body["region"]) == (DEV, "ap-south-1")
    assert digest.subject == (
        f"2 batch segment job changes in {DEV}/ap-south-1: 1 FAILED, 1 SUCCEEDED"
    )
    assert keys["email"].startswith(f"2 batch segment jobs in {DEV}/ap-south-1 changed")
    assert f"Account: {DEV}. Region: ap-south-1." in keys["email"]
    chatbot = json.loads(keys["https"])
    assert f"in {DEV}/ap-south-1" in chatbot["content"]["title"]
    assert chatbot["content"]["description"].startswith(
        f"*Account:* `{DEV}` · *Region:* `ap-south-1`"
    )


def test_a_digest_spanning_scopes_says_none_for_what_its_jobs_do_not_share() -> None:
    events = [scoped(EventType.JOB_FAILED, 0, PROD), scoped(EventType.JOB_FAILED, 1, DEV)]
    digest = digest_message(events)
    assert (digest.attributes["accountId"], digest.attributes["region"]) == ("NONE", REGION)
    body = json.loads(json.loads(digest.message)["sqs"])
    assert (body["accountId"], body["region"]) == (None, REGION)
    assert digest.subject == f"2 batch segment job changes in {REGION}: 2 FAILED"

    events.append(scoped(EventType.JOB_FAILED, 2, PROD, "us-west-2"))
    digest = digest_message(events)
    assert (digest.attributes["accountId"], digest.attributes["region"]) == ("NONE", "NONE")
    body = json.loads(json.loads(digest.message)["sqs"])
    assert (body["accountId"], body["region"]) == (None, "NONE")
    assert digest.subject == "3 batch segment job changes: 3 FAILED"


def test_the_size_counts_each_attributes_name_type_and_value() -> None:
    message = SnsMessage(
        "s",
        "mé",
        {"eventType": '["JOB_DIGEST"]', "region": "r"},
        {"eventType": "String.Array"},
    )
    body = len("s") + len("mé".encode())
    assert message.size == body + len("eventType" + "String.Array" + '["JOB_DIGEST"]') + len(
        "region" + "String" + "r"
    )


def test_a_huge_digest_of_one_scope_fits_with_its_array_attribute() -> None:
    types = list(EventType)
    events = [
        scoped(types[i % len(types)], i, name="n" * 63, reason="ω" * 20_000) for i in range(2_000)
    ]
    digest = digest_message(events)
    assert digest.size <= MAX_PUBLISH_BYTES
    attributes = sum(
        len(name) + len(digest.data_type(name)) + len(value.encode())
        for name, value in digest.attributes.items()
    )
    assert len(digest.message.encode()) + len(digest.subject) + attributes == digest.size
    assert json.loads(digest.attributes["eventType"]) == ["JOB_DIGEST", *sorted(types)]
    body = json.loads(json.loads(digest.message)["sqs"])
    assert 0 < len(body["jobs"]) < 2_000
    assert body["truncated"] == 2_000 - len(body["jobs"])
    assert body["counts"] == {t.value: 500 for t in types}
    assert len(digest.subject) <= MAX_SUBJECT_CHARS


def test_a_long_digest_subject_is_cut_after_a_whole_count() -> None:
    title = (
        "5000 batch segment job changes in 111122223333/ap-southeast-2: "
        "4800 FAILED, 100 STATUS_CHANGED, 50 STUCK, 50 SUCCEEDED"
    )
    subject = digest_subject(title)
    assert subject == (
        "5000 batch segment job changes in 111122223333/ap-southeast-2: "
        "4800 FAILED, 100 STATUS_CHANGED, ..."
    )
    assert len(subject) <= MAX_SUBJECT_CHARS
    assert digest_subject("short") == "short"


def test_a_digest_parses_back_with_its_scope_and_without_one() -> None:
    sent = JobDigest.of(storm(EventType.JOB_FAILED, account=DEV), listed=1)
    parsed = parse(json.loads(sent.to_json()))
    assert parsed == sent
    assert isinstance(parsed, JobDigest)
    assert (parsed.account_id, parsed.region, parsed.scope) == (DEV, REGION, f"{DEV}/{REGION}")
    older = {k: v for k, v in sent.to_document().items() if k != "accountId"}
    parsed_older = JobDigest.from_document(older)
    assert (parsed_older.account_id, parsed_older.scope) == (None, REGION)
