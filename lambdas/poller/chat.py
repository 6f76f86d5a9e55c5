"""Chat renderings of an event: AWS Chatbot's custom notification (Slack via Amazon Q
Developer in chat applications). Pure: no I/O."""

from __future__ import annotations

import json
from typing import Any

from poller.models import EventType

MAX_TITLE = 250
MAX_DESCRIPTION = 3000  # one Slack section block's text
MAX_REASON = 1500
DIGEST_LINES = 20

EMOJI = {
    EventType.JOB_SUCCEEDED: ":white_check_mark:",
    EventType.JOB_FAILED: ":x:",
    EventType.JOB_STUCK: ":hourglass_flowing_sand:",
    EventType.JOB_STATUS_CHANGED: ":arrows_counterclockwise:",
}


def escape(text: str) -> str:
    """Slack's control characters, escaped as Slack asks; nothing else is touched."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, saying how many were cut; never half an escape."""
    if len(text) <= limit:
        return text
    marker = f" … [{len(text) - limit} more characters]"
    kept = text[: limit - len(marker)]
    entity = kept.rfind("&")
    if entity != -1 and ";" not in kept[entity:]:
        kept = kept[:entity]
    return kept + marker


def _code_block(text: str) -> str:
    # Clipped after escaping, so the block is closed and the rest of the message survives.
    fence = "`" * 3
    return fence + clip(escape(text).replace(fence, "'" * 3), MAX_REASON) + fence


def chatbot_notification(document: dict[str, Any], subject: str, timing: str | None) -> str:
    """The custom notification Chatbot renders natively, as the SNS `https` key.

    `timing` is how long the job ran or has waited, as the email says it.
    """
    event_type = EventType(document["eventType"])
    previous = document["previousStatus"] or "new"
    status = document["status"] or "unknown"
    lines = [
        f"*{escape(previous)} → {escape(status)}*"
        if event_type is not EventType.JOB_STUCK
        else f"*{escape(status)}*, unchanged",
    ]
    if timing:
        lines[0] += f" · {timing}"
    if document["failureReason"]:
        lines += ["*Failure reason*", _code_block(document["failureReason"])]
    for label, key in (
        ("Solution version", "solutionVersionArn"),
        ("Input", "jobInput"),
        ("Output", "jobOutput"),
    ):
        if document[key]:
            lines.append(f"*{label}:* `{escape(str(document[key]))}`")
    lines.append(f"<{document['consoleUrl']}|Open the Personalize console>")
    next_steps = {
        EventType.JOB_FAILED: ["Read the failure reason, fix the input or role, and rerun the job"],
        EventType.JOB_STUCK: ["Check the job in the console; Personalize may be short of capacity"],
        EventType.JOB_SUCCEEDED: ["The segments are in the output location"],
    }.get(event_type, [])
    notification = {
        "version": "1.0",
        "source": "custom",
        "id": f"{document['batchSegmentJobArn']}#{status}",
        "content": {
            "textType": "client-markdown",
            "title": clip(f"{EMOJI[event_type]} {escape(subject)}", MAX_TITLE),
            "description": clip("\n".join(lines), MAX_DESCRIPTION),
            "nextSteps": next_steps,
            "keywords": [k for k in (event_type.value, status, document["jobName"]) if k],
        },
        "metadata": {
            "threadId": document["batchSegmentJobArn"],
            "summary": subject,
            "eventType": event_type.value,
            "relatedResources": [
                r for r in (document["batchSegmentJobArn"], document["solutionVersionArn"]) if r
            ],
        },
    }
    return json.dumps(notification, ensure_ascii=False)


def chatbot_digest(title: str, lines: list[str], console_url: str) -> str:
    """One custom notification for a storm of changes: counts and the first jobs."""
    shown = [f"• {escape(line)}" for line in lines[:DIGEST_LINES]]
    if len(lines) > DIGEST_LINES:
        shown.append(f"… and {len(lines) - DIGEST_LINES} more")
    description = "\n".join([*shown, f"<{console_url}|Open the Personalize console>"])
    notification = {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": clip(f":rotating_light: {escape(title)}", MAX_TITLE),
            "description": clip(description, MAX_DESCRIPTION),
            "nextSteps": [
                "Many jobs changed at once: look for a shared cause (role, input, quota)"
            ],
            "keywords": ["JOB_DIGEST"],
        },
        "metadata": {"summary": title, "eventType": "JOB_DIGEST"},
    }
    return json.dumps(notification, ensure_ascii=False)
