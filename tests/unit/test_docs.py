"""docs/events.md is the contract users read: its example must match what is sent."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from job_events.vocabulary import EventType
from poller.announcement import event_of
from poller.channels.email import email_text
from poller.channels.sns import message_attributes
from poller.models import JobSummary, Transition

if TYPE_CHECKING:
    from job_events.event import JobEvent

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()


def example_event() -> dict[str, str]:
    block = re.search(r"Example:\n\n```json\n(.*?)\n```", DOC, re.DOTALL)
    assert block, "docs/events.md lost its event example"
    parsed: dict[str, str] = json.loads(block.group(1))
    return parsed


def rebuilt_from(example: dict[str, str]) -> JobEvent:
    job = JobSummary(
        arn=example["batchSegmentJobArn"],
        name=example["jobName"],
        status=example["status"],
        creation_time=datetime.fromisoformat(example["creationDateTime"]),
        last_updated_time=datetime.fromisoformat(example["lastUpdatedDateTime"]),
        failure_reason=example["failureReason"],
        solution_version_arn=example["solutionVersionArn"],
        input_path=example["jobInput"],
        output_path=example["jobOutput"],
        filter_arn=example["filterArn"],
        num_results=example["numResults"],  # type: ignore[arg-type]
        role_arn=example["roleArn"],
    )
    transition = Transition(EventType(example["eventType"]), job, example["previousStatus"])
    return event_of(transition, example["region"], datetime.fromisoformat(example["detectedAt"]))


def test_documented_example_is_exactly_what_is_rendered() -> None:
    example = example_event()
    document = rebuilt_from(example).to_document()
    assert document == example
    assert list(document) == list(example)


def test_documented_email_is_exactly_what_is_rendered() -> None:
    block = re.search(r"## Email body\n\n```text\n(.*?)```", DOC, re.DOTALL)
    assert block
    assert email_text(rebuilt_from(example_event())) == block.group(1)


def test_every_attribute_is_documented() -> None:
    for name in message_attributes(rebuilt_from(example_event())):
        assert f"| `{name}` |" in DOC
