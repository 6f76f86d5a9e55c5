"""Plain text for a person scanning an inbox: survives every mail client. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from job_events.event import utc
from job_events.vocabulary import EventType

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from job_events.event import JobDigest, JobEvent

_DIGEST_LINE_REASON = 160


def readable(value: datetime | None) -> str | None:
    return utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else None


def headline(event: JobEvent) -> str:
    name, status = event.name, event.status or "an unknown status"
    if event.event_type is EventType.JOB_STUCK:
        return (
            f"Batch segment job {name} may be STUCK: {status} for {event.waited_for} "
            "without a change."
        )
    if event.event_type is EventType.JOB_SUCCEEDED:
        return f"Batch segment job {name} finished successfully ({status})."
    if event.event_type is EventType.JOB_FAILED:
        return f"Batch segment job {name} FAILED ({status})."
    if event.previous_status is None:
        return f"New batch segment job {name} is {status}."
    return f"Batch segment job {name} is now {status}."


def _rows(event: JobEvent) -> list[tuple[str, str | None]]:
    status = event.status or "(unknown)"
    if event.event_type is EventType.JOB_STUCK:
        status_row = ("Status", f"{status} (unchanged)")
        timing = [("Waiting for", event.waited_for)]
    else:
        status_row = ("Status", f"{event.previous_status or '(first seen)'} -> {status}")
        timing = [("Duration", event.ran_for)] if event.finished else []
    return [
        ("Job", event.name),
        status_row,
        ("Created", readable(event.creation_date_time)),
        ("Last updated", readable(event.last_updated_date_time)),
        *timing,
        ("Solution version", event.solution_version_arn),
        *([("Input", event.job_input), ("Output", event.job_output)] if event.finished else []),
        ("Job ARN", event.batch_segment_job_arn),
        ("Region", event.region),
        ("Account", event.account_id),
        ("Detected at", readable(event.detected_at)),
        ("Console", event.console_url),
    ]


def email_text(event: JobEvent) -> str:
    lines = [headline(event), ""]
    lines += [f"{label + ':':<18}{value or '(not reported)'}" for label, value in _rows(event)]
    if event.failure_reason:
        lines += ["", "Failure reason:"]
        lines += [f"  {line}" for line in event.failure_reason.splitlines()]
    lines += [
        "",
        f"Event type: {event.event_type.value}. Sent by the Personalize batch segment job "
        "notifier.",
    ]
    return "\n".join(lines) + "\n"


def _digest_line(event: JobEvent) -> str:
    line = (
        f"{event.event_type.value.removeprefix('JOB_'):<14} {event.name:<63}  "
        f"{event.previous_status or 'new'} -> {event.status or 'unknown'}"
    )
    if event.failure_reason:
        first = " ".join(event.failure_reason.split())[:_DIGEST_LINE_REASON]
        line += f"\n{'':<15}{first}"
    return line


def digest_email_text(digest: JobDigest, events: Sequence[JobEvent]) -> str:
    """The digest for an inbox: its scope, then one line per listed job, with the start of
    its reason."""
    listed = events[: len(digest.jobs)]
    jobs = f"batch segment jobs in {digest.scope}" if digest.scope else "batch segment jobs"
    lines = [
        f"{digest.count} {jobs} changed in one poll ({digest.tally}).",
        "One message instead of one each, for this account and region only; pipelines "
        "still receive every event.",
        "",
        *(_digest_line(event) for event in listed),
        *(
            [f"... and {digest.truncated} more: see the events topic or EventBridge."]
            if digest.truncated
            else []
        ),
        "",
        f"Account: {digest.account_id or '(not reported)'}. Region: {digest.region}. "
        f"Detected at: {readable(digest.detected_at)}.",
        f"Console: {events[0].console_url}",
    ]
    return "\n".join(lines) + "\n"
