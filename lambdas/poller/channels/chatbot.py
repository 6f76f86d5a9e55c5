"""AWS Chatbot's custom notification (Slack via Amazon Q Developer in chat applications),
carried as the SNS message's `https` key. Pure."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from job_events.slack_text import clip, code_block, escape
from job_events.vocabulary import DIGEST_EVENT_TYPE, EMOJI, EventType

if TYPE_CHECKING:
    from collections.abc import Sequence

    from job_events.event import JobDigest, JobEvent

MAX_TITLE = 250
MAX_DESCRIPTION = 3000  # one Slack section block's text
MAX_REASON = 1500
DIGEST_LINES = 20
NEXT_STEPS = {
    EventType.JOB_FAILED: ["Read the failure reason, fix the input or role, and rerun the job"],
    EventType.JOB_STUCK: ["Check the job in the console; Personalize may be short of capacity"],
    EventType.JOB_SUCCEEDED: ["The segments are in the output location"],
}


def _description(event: JobEvent) -> str:
    previous, status = event.previous_status or "new", event.status or "unknown"
    lines = [
        f"*{escape(status)}*, unchanged"
        if event.event_type is EventType.JOB_STUCK
        else f"*{escape(previous)} → {escape(status)}*",
    ]
    if event.timing:
        lines[0] += f" · {event.timing}"
    if event.failure_reason:
        lines += ["*Failure reason*", code_block(event.failure_reason, MAX_REASON)]
    for label, value in (
        ("Solution version", event.solution_version_arn),
        ("Input", event.job_input),
        ("Output", event.job_output),
    ):
        if value:
            lines.append(f"*{label}:* `{escape(value)}`")
    lines.append(f"<{event.console_url}|Open the Personalize console>")
    return clip("\n".join(lines), MAX_DESCRIPTION)


def chatbot_notification(event: JobEvent, subject: str) -> str:
    status = event.status or "unknown"
    arn = event.batch_segment_job_arn
    notification = {
        "version": "1.0",
        "source": "custom",
        "id": f"{arn}#{status}",
        "content": {
            "textType": "client-markdown",
            "title": clip(f"{EMOJI[event.event_type]} {escape(subject)}", MAX_TITLE),
            "description": _description(event),
            "nextSteps": NEXT_STEPS.get(event.event_type, []),
            "keywords": [k for k in (event.event_type.value, status, event.job_name) if k],
        },
        "metadata": {
            "threadId": arn,
            "summary": subject,
            "eventType": event.event_type.value,
            "relatedResources": [r for r in (arn, event.solution_version_arn) if r],
        },
    }
    return json.dumps(notification, ensure_ascii=False)


def _digest_line(event: JobEvent) -> str:
    job = event.job_name or event.batch_segment_job_arn
    return f"{job}: {event.previous_status or 'new'} -> {event.status or 'unknown'}"


def _digest_scope(digest: JobDigest) -> str:
    account = digest.account_id or "not reported"
    return f"*Account:* `{escape(account)}` · *Region:* `{escape(digest.region)}`"


def chatbot_digest(title: str, digest: JobDigest, events: Sequence[JobEvent]) -> str:
    """One custom notification for a storm of changes in one scope: the scope, the first
    jobs and a console link."""
    lines = [_digest_scope(digest)]
    lines += [f"• {escape(_digest_line(event))}" for event in events[:DIGEST_LINES]]
    if digest.count > DIGEST_LINES:
        lines.append(f"… and {digest.count - DIGEST_LINES} more")
    lines.append(f"<{events[0].console_url}|Open the Personalize console>")
    notification = {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": clip(f"{EMOJI[DIGEST_EVENT_TYPE]} {escape(title)}", MAX_TITLE),
            "description": clip("\n".join(lines), MAX_DESCRIPTION),
            "nextSteps": [
                "Many jobs changed at once: look for a shared cause (role, input, quota)"
            ],
            "keywords": [DIGEST_EVENT_TYPE, *(k for k in (digest.account_id, digest.region) if k)],
        },
        "metadata": {"summary": title, "eventType": DIGEST_EVENT_TYPE},
    }
    return json.dumps(notification, ensure_ascii=False)
