"""Slack Block Kit for an event or a digest. Pure: no I/O."""

from __future__ import annotations

from typing import Any

from job_events.event import JobDigest, JobEvent
from job_events.slack_text import clip, code_block, escape
from job_events.vocabulary import DIGEST_EVENT_TYPE, EMOJI

MAX_HEADER = 150  # a header block's plain text
MAX_SECTION = 3000  # a section block's text
MAX_FIELD = 2000  # one field of a section
MAX_REASON = 2500

DIGEST_LINES = 40


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


def message(announcement: JobEvent | JobDigest) -> dict[str, Any]:
    """The webhook payload: blocks, and plain text for notifications and old clients."""
    if isinstance(announcement, JobDigest):
        return _digest(announcement)
    event = announcement
    status = event.status or "unknown"
    outcome = event.outcome or status
    title = f"{EMOJI[event.event_type]} {outcome}: {event.name}"
    fields = [
        _field("Status", f"{event.previous_status or 'new'} → {status}"),
        _field("Event", event.event_type.value),
    ]
    fields += [
        _field(label, value)
        for label, value in (
            ("Solution version", event.solution_version_arn),
            ("Input", event.job_input),
            ("Output", event.job_output),
            ("Region", event.region),
        )
        if value
    ]
    blocks: list[dict[str, Any]] = [
        _header(title),
        {"type": "section", "fields": fields[:10]},  # Slack allows 10 fields
    ]
    if event.failure_reason:
        blocks.append(_section(f"*Failure reason*\n{code_block(event.failure_reason, MAX_REASON)}"))
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open the console"},
                    "url": event.console_url,
                }
            ],
        }
    )
    fallback = escape(f"{outcome}: {event.name} ({status})")
    return {"text": clip(fallback, MAX_SECTION), "blocks": blocks}


def _digest(digest: JobDigest) -> dict[str, Any]:
    title = f"{EMOJI[DIGEST_EVENT_TYPE]} {digest.count} batch segment job changes"
    lines = [
        f"• {escape(job.name)}: "
        f"{escape(job.previous_status or 'new')} → {escape(job.status or 'unknown')}"
        for job in digest.jobs[:DIGEST_LINES]
    ]
    more = digest.count - min(len(digest.jobs), DIGEST_LINES)
    if more:
        lines.append(f"… and {more} more")
    return {
        "text": f"{digest.count} batch segment job changes: {digest.tally}",
        "blocks": [
            _header(title),
            _section(f"*{escape(digest.tally)}*"),
            _section("\n".join(lines)),
        ],
    }
