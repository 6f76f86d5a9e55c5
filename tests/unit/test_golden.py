"""Golden files of each rendering, for the cases people see.

A change in rendering shows up as a diff of tests/golden/. After checking it reads right,
regenerate with: UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden.py
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from job_events.event import JobEvent
from job_events.slack_text import clip, escape
from job_events.vocabulary import EventType
from poller.announcement import event_of
from poller.channels.chatbot import MAX_DESCRIPTION, MAX_TITLE
from poller.channels.eventbridge import EventBridgePublisher
from poller.channels.sns import SnsMessage, SnsPublisher, digest_message, sns_message
from poller.models import JobSummary, Transition
from slack_forwarder.blocks import message as slack_message

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
ARN = "arn:aws:personalize:us-east-1:111122223333:batch-segment-job/"
SV = "arn:aws:personalize:us-east-1:111122223333:solution/segments/6f1c2a9e"
START = datetime(2026, 11, 28, 21, 0, 4, tzinfo=UTC)
DETECTED = START + timedelta(hours=7)
HOSTILE = "<!channel> & <https://evil.example|click> ``` *bold* _it_ Ünïcødé 入力 \u202e\n" * 400


def job(name: str, status: str, **extra: object) -> JobSummary:
    return JobSummary(
        arn=ARN + name,
        name=name,
        status=status,
        creation_time=START,
        last_updated_time=START + timedelta(minutes=47, seconds=27),
        solution_version_arn=SV,
        **extra,  # type: ignore[arg-type]
    )


CASES = {
    "succeeded": Transition(
        EventType.JOB_SUCCEEDED,
        job(
            "segment-job-41",
            "ACTIVE",
            input_path="s3://segments-in/users.json",
            output_path="s3://segments-out/41/",
            num_results=25,
        ),
        "IN PROGRESS",
    ),
    "failed": Transition(
        EventType.JOB_FAILED,
        job(
            "segment-job-42",
            "CREATE FAILED",
            failure_reason="Failed to read input data from s3://segments-in/users.json: "
            "Access Denied.",
            input_path="s3://segments-in/users.json",
        ),
        "IN PROGRESS",
    ),
    "stuck": Transition(EventType.JOB_STUCK, job("segment-job-43", "IN PROGRESS"), "IN PROGRESS"),
    "new": Transition(EventType.JOB_STATUS_CHANGED, job("segment-job-44", "PENDING"), None),
    "missing-fields": Transition(
        EventType.JOB_STATUS_CHANGED, JobSummary(arn=ARN + "bare", status="CREATE PENDING"), None
    ),
    "hostile": Transition(
        EventType.JOB_FAILED,
        job("n" * 63, "CREATE FAILED", failure_reason=HOSTILE),
        "PENDING",
    ),
}


def event(case: str) -> JobEvent:
    return event_of(CASES[case], "us-east-1", DETECTED)


def sns(case: str) -> SnsMessage:
    return sns_message(event(case))


def digest() -> SnsMessage:
    """A storm in one scope: every case above, as the people topic gets it."""
    return digest_message([event(case) for case in sorted(CASES)])


def check(path: Path, text: str) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path.name} missing: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{path.name} changed: review, then UPDATE_GOLDEN=1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_email(case: str) -> None:
    entry = sns(case)
    email = json.loads(entry.message)["email"]
    check(GOLDEN / f"{case}.email.txt", f"Subject: {entry.subject}\n\n{email}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_chatbot(case: str) -> None:
    notification = json.loads(json.loads(sns(case).message)["https"])
    assert notification["version"] == "1.0"
    assert notification["source"] == "custom"
    assert len(notification["content"]["title"]) <= MAX_TITLE
    assert len(notification["content"]["description"]) <= MAX_DESCRIPTION
    check(
        GOLDEN / f"{case}.chatbot.json",
        json.dumps(notification, indent=2, ensure_ascii=False) + "\n",
    )


def test_hostile_text_cannot_ping_or_link_in_slack() -> None:
    notification = json.loads(json.loads(sns("hostile").message)["https"])
    description = notification["content"]["description"]
    assert "<!channel>" not in description
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in description
    # The only link is the console's.
    assert description.count("<https://") == 1


def test_a_huge_reason_keeps_the_block_closed_and_the_console_link() -> None:
    notification = json.loads(json.loads(sns("hostile").message)["https"])
    description = notification["content"]["description"]
    assert description.count("```") == 2
    assert description.endswith("|Open the Personalize console>")
    assert "more characters]```" in description


def test_clip_never_leaves_half_an_escape() -> None:
    clipped = clip(escape("<" * 5000), 100)
    assert len(clipped) <= 100
    assert clipped.split(" … ")[0].endswith("&lt;")


@pytest.mark.parametrize("case", sorted(CASES))
def test_slack_blocks(case: str) -> None:
    # As the forwarder gets it: the event JSON from the SNS message, parsed.
    document = json.loads(json.loads(sns(case).message)["lambda"])
    payload = slack_message(JobEvent.from_document(document))
    assert len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= (150 if block["type"] == "header" else 3000)
        assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    assert "<!channel>" not in json.dumps(payload)
    check(GOLDEN / f"{case}.slack.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("case", sorted(CASES))
def test_eventbridge_entry(case: str) -> None:
    entry = EventBridgePublisher("default", client=object()).render(event(case))  # type: ignore[arg-type]
    assert entry["Source"] == "custom.personalize.batch-segment-jobs"
    assert entry["DetailType"] == "Batch Segment Job Status Change"
    shown = {**entry, "Detail": json.loads(entry["Detail"])}
    check(
        GOLDEN / f"{case}.eventbridge.json", json.dumps(shown, indent=2, ensure_ascii=False) + "\n"
    )


# --- the digest: one message for people in a storm, of one scope --------------------------


def test_digest_email() -> None:
    entry = digest()
    email = json.loads(entry.message)["email"]
    check(GOLDEN / "digest.email.txt", f"Subject: {entry.subject}\n\n{email}")


def test_digest_chatbot() -> None:
    notification = json.loads(json.loads(digest().message)["https"])
    assert len(notification["content"]["title"]) <= MAX_TITLE
    assert len(notification["content"]["description"]) <= MAX_DESCRIPTION
    assert "<!channel>" not in notification["content"]["description"]
    check(
        GOLDEN / "digest.chatbot.json",
        json.dumps(notification, indent=2, ensure_ascii=False) + "\n",
    )


class CapturingSns:
    """An SNS client that keeps each PublishBatch request and accepts every entry."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def publish_batch(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"Successful": [], "Failed": []}


def test_digest_as_published() -> None:
    """The PublishBatch entry of a digest, as SnsPublisher sends it: subject, attributes
    with their data types, and the machines' JSON (the `default`, `sqs` and `lambda` key)."""
    client = CapturingSns()
    publisher = SnsPublisher("arn:aws:sns:us-east-1:111122223333:people", client)  # type: ignore[arg-type]
    assert publisher.send([publisher.render_digest([event(c) for c in sorted(CASES)])]) == {}
    ((entry,),) = [request["PublishBatchRequestEntries"] for request in client.requests]
    keys = json.loads(entry["Message"])
    assert keys["default"] == keys["sqs"] == keys["lambda"]
    shown = {
        "Subject": entry["Subject"],
        "MessageStructure": entry["MessageStructure"],
        "MessageAttributes": entry["MessageAttributes"],
        "Message.default": json.loads(keys["default"]),
    }
    check(GOLDEN / "digest.sns.json", json.dumps(shown, indent=2, ensure_ascii=False) + "\n")


def test_an_event_is_published_with_string_attributes_only() -> None:
    """Per-event messages keep their contract: every attribute a String."""
    client = CapturingSns()
    publisher = SnsPublisher("arn:aws:sns:us-east-1:111122223333:events", client)  # type: ignore[arg-type]
    publisher.send([publisher.render(event(case)) for case in sorted(CASES)])
    entries = [e for request in client.requests for e in request["PublishBatchRequestEntries"]]
    assert len(entries) == len(CASES)
    for entry in entries:
        types = {a["DataType"] for a in entry["MessageAttributes"].values()}
        assert types == {"String"}
