"""docs/events.md is the contract users read: its example must match what is sent."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from poller.models import EventType, JobSummary, Transition
from poller.rendering import EventContext, email_text, event_document, message_attributes

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()


def example_event() -> dict[str, str]:
    block = re.search(r"Example:\n\n```json\n(.*?)\n```", DOC, re.DOTALL)
    assert block, "docs/events.md lost its event example"
    parsed: dict[str, str] = json.loads(block.group(1))
    return parsed


def rebuilt_from(example: dict[str, str]) -> tuple[Transition, EventContext]:
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
    return transition, EventContext(
        example["region"], datetime.fromisoformat(example["detectedAt"])
    )


def test_documented_example_is_exactly_what_is_rendered() -> None:
    example = example_event()
    transition, context = rebuilt_from(example)
    assert event_document(transition, context) == example
    assert list(event_document(transition, context)) == list(example)


def test_documented_email_is_exactly_what_is_rendered() -> None:
    transition, context = rebuilt_from(example_event())
    block = re.search(r"## Email body\n\n```text\n(.*?)```", DOC, re.DOTALL)
    assert block
    assert email_text(event_document(transition, context), transition, context) == block.group(1)


def test_every_attribute_is_documented() -> None:
    transition, _ = rebuilt_from(example_event())
    for name in message_attributes(transition):
        assert f"| `{name}` |" in DOC
