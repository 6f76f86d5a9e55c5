"""Slack Block Kit for an event or a digest, from its JSON. Pure: no I/O."""

from __future__ import annotations

from typing import Any

from poller.chat import clip, escape

MAX_HEADER = 150  # a header block's plain text
MAX_SECTION = 3000  # a section block's text
MAX_FIELD = 2000  # one field of a section
MAX_REASON = 2500

EMOJI = {
    "JOB_SUCCEEDED": ":white_check_mark:",
    "JOB_FAILED": ":x:",
    "JOB_STUCK": ":hourglass_flowing_sand:",
    "JOB_STATUS_CHANGED": ":arrows_counterclockwise:",
    "JOB_DIGEST": ":rotating_light:",
}
OUTCOME = {
    "JOB_SUCCEEDED": "SUCCEEDED",
    "JOB_FAILED": "FAILED",
    "JOB_STUCK": "STUCK",
}


def _header(title: str) -> dict[str, Any]:
    # plain_text: Slack shows it as given (no links, no mentions); emoji renders :x: and co.
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": clip(title, MAX_HEADER), "emoji": True},
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(f"*{label}*\n{escape(value)}", MAX_FIELD)}


def message(document: dict[str, Any]) -> dict[str, Any]:
    """The webhook payload: blocks, and plain text for notifications and old clients."""
    if document.get("eventType") == "JOB_DIGEST":
        return _digest(document)
    event_type = document.get("eventType", "JOB_STATUS_CHANGED")
    name = document.get("jobName") or str(document.get("batchSegmentJobArn", "")).rsplit("/", 1)[-1]
    status = document.get("status") or "unknown"
    outcome = OUTCOME.get(event_type, status)
    title = f"{EMOJI.get(event_type, '')} {outcome}: {name}".strip()
    fields = [
        _field("Status", f"{document.get('previousStatus') or 'new'} → {status}"),
        _field("Event", event_type),
    ]
    fields += [
        _field(label, str(document[key]))
        for label, key in (
            ("Solution version", "solutionVersionArn"),
            ("Input", "jobInput"),
            ("Output", "jobOutput"),
            ("Region", "region"),
        )
        if document.get(key)
    ]
    blocks: list[dict[str, Any]] = [
        _header(title),
        {"type": "section", "fields": fields[:10]},  # Slack allows 10 fields
    ]
    if document.get("failureReason"):
        fence = "`" * 3
        reason = clip(escape(document["failureReason"]).replace(fence, "'" * 3), MAX_REASON)
        blocks.append(_section(f"*Failure reason*\n{fence}{reason}{fence}"))
    if document.get("consoleUrl"):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the console"},
                        "url": document["consoleUrl"],
                    }
                ],
            }
        )
    fallback = escape(f"{outcome}: {name} ({status})")
    return {"text": clip(fallback, MAX_SECTION), "blocks": blocks}


def _digest(document: dict[str, Any]) -> dict[str, Any]:
    counts = ", ".join(
        f"{n} {t.removeprefix('JOB_')}" for t, n in sorted(document["counts"].items())
    )
    title = f"{EMOJI['JOB_DIGEST']} {document['count']} batch segment job changes"
    lines = [
        f"• {escape(job.get('jobName') or job['batchSegmentJobArn'])}: "
        f"{escape(job.get('previousStatus') or 'new')} → {escape(job.get('status') or 'unknown')}"
        for job in document["jobs"][:40]
    ]
    more = document["count"] - min(len(document["jobs"]), 40)
    if more:
        lines.append(f"… and {more} more")
    return {
        "text": f"{document['count']} batch segment job changes: {counts}",
        "blocks": [
            _header(title),
            _section(f"*{escape(counts)}*"),
            _section("\n".join(lines)),
        ],
    }
