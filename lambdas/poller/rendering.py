"""Turns a transition into what people and machines receive. Pure: no I/O, no clock.

The event JSON, the message attribute names and the SNS message keys are a public
contract (docs/events.md): subscribers' filter policies and pipelines depend on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from poller.chat import chatbot_digest, chatbot_notification
from poller.models import EventType, Transition

if TYPE_CHECKING:
    from collections.abc import Sequence

SCHEMA_VERSION = "1"
# SNS rejects a publish whose message plus attributes exceed 256 KiB; keep headroom for
# the request's own framing.
MAX_PUBLISH_BYTES = 256 * 1024 - 2 * 1024
MAX_SUBJECT_CHARS = 99  # SNS: "less than 100 characters"
ABSENT = "NONE"  # attribute value for a field the job summary lacks; SNS rejects empty values

_OUTCOME = {
    EventType.JOB_SUCCEEDED: "SUCCEEDED",
    EventType.JOB_FAILED: "FAILED",
    EventType.JOB_STUCK: "STUCK",
}
_FINISHED = (EventType.JOB_SUCCEEDED, EventType.JOB_FAILED)
_CONSOLE_DOMAIN = {
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


@dataclass(frozen=True, slots=True)
class EventContext:
    """Facts about the poll rather than the job."""

    region: str
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class PublishEntry:
    """One SNS message, ready for Publish or PublishBatch."""

    subject: str
    message: str
    attributes: dict[str, str]
    event_json: str  # the event document alone, for channels that take only that

    @property
    def size(self) -> int:
        attributes = sum(
            len(k) + len(v.encode()) + len("String") for k, v in self.attributes.items()
        )
        return len(self.message.encode()) + len(self.subject) + attributes


def _utc(value: datetime) -> datetime:
    # botocore returns timestamps in the machine's local zone; naive ones are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None


def _readable(value: datetime | None) -> str | None:
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else None


def _arn_part(arn: str | None, index: int) -> str | None:
    parts = (arn or "").split(":", 5)
    return parts[index] or None if len(parts) == 6 else None


def console_url(region: str, partition: str | None) -> str:
    domain = _CONSOLE_DOMAIN.get(partition or "aws", "console.aws.amazon.com")
    return f"https://{region}.{domain}/personalize/home?region={region}"


def truncate(text: str, limit: int | None) -> str:
    """Cut text to at most about `limit` characters, saying so at the end."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... truncated: first {limit} of {len(text)} characters shown]"


def event_document(
    transition: Transition, context: EventContext, reason_limit: int | None = None
) -> dict[str, Any]:
    job = transition.job
    reason = truncate(job.failure_reason, reason_limit) if job.failure_reason else None
    return {
        "schemaVersion": SCHEMA_VERSION,
        "eventType": transition.event_type.value,
        "batchSegmentJobArn": job.arn,
        "jobName": job.name,
        "solutionVersionArn": job.solution_version_arn,
        "previousStatus": transition.previous_status,
        "status": job.status,
        "failureReason": reason,
        "creationDateTime": _iso(job.creation_time),
        "lastUpdatedDateTime": _iso(job.last_updated_time),
        "region": context.region,
        "accountId": _arn_part(job.arn, 4),
        "consoleUrl": console_url(context.region, _arn_part(job.arn, 1)),
        "detectedAt": _iso(context.detected_at),
        "jobInput": job.input_path,
        "jobOutput": job.output_path,
        "filterArn": job.filter_arn,
        "numResults": job.num_results,
        "roleArn": job.role_arn,
    }


def display_name(transition: Transition) -> str:
    job = transition.job
    if job.name:
        return job.name
    resource = _arn_part(job.arn, 5)
    return resource.rsplit("/", 1)[-1] if resource else "unnamed job"


def _printable_ascii(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def subject(transition: Transition) -> str:
    """Outcome first, then the job: 'FAILED: segment-job-42 (CREATE FAILED)'."""
    status = transition.job.status or "UNKNOWN STATUS"
    outcome = _OUTCOME.get(transition.event_type)
    line = (
        f"{outcome}: {display_name(transition)} ({status})"
        if outcome
        else (f"{status}: {display_name(transition)}")
    )
    line = " ".join(_printable_ascii(line).split())
    return line[:MAX_SUBJECT_CHARS]


def message_attributes(transition: Transition) -> dict[str, str]:
    job = transition.job
    return {
        "eventType": transition.event_type.value,
        "status": job.status or ABSENT,
        "previousStatus": transition.previous_status or ABSENT,
        "jobName": job.name or ABSENT,
        "solutionVersionArn": job.solution_version_arn or ABSENT,
    }


def span_text(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    seconds = int((_utc(end) - _utc(start)).total_seconds())
    if seconds < 0:
        return None
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def duration_text(transition: Transition) -> str | None:
    """How long a finished job ran: creation to its last update."""
    return span_text(transition.job.creation_time, transition.job.last_updated_time)


def _waiting_text(transition: Transition, context: EventContext) -> str | None:
    job = transition.job
    return span_text(job.last_updated_time or job.creation_time, context.detected_at)


def _timing(transition: Transition, context: EventContext) -> str | None:
    if transition.event_type is EventType.JOB_STUCK:
        waited = _waiting_text(transition, context)
        return f"waiting {waited}" if waited else None
    if transition.event_type in _FINISHED:
        ran = duration_text(transition)
        return f"ran {ran}" if ran else None
    return None


def _headline(transition: Transition, context: EventContext) -> str:
    name = display_name(transition)
    status = transition.job.status or "an unknown status"
    if transition.event_type is EventType.JOB_STUCK:
        waited = _waiting_text(transition, context)
        return f"Batch segment job {name} may be STUCK: {status} for {waited} without a change."
    if transition.event_type is EventType.JOB_SUCCEEDED:
        return f"Batch segment job {name} finished successfully ({status})."
    if transition.event_type is EventType.JOB_FAILED:
        return f"Batch segment job {name} FAILED ({status})."
    if transition.previous_status is None:
        return f"New batch segment job {name} is {status}."
    return f"Batch segment job {name} is now {status}."


def email_text(document: dict[str, Any], transition: Transition, context: EventContext) -> str:
    """Plain text for a person scanning an inbox; survives every mail client."""
    job = transition.job
    previous = document["previousStatus"] or "(first seen)"
    status = document["status"] or "(unknown)"
    finished = transition.event_type in _FINISHED
    if transition.event_type is EventType.JOB_STUCK:
        status_row = ("Status", f"{status} (unchanged)")
        timing = [("Waiting for", _waiting_text(transition, context))]
    else:
        status_row = ("Status", f"{previous} -> {status}")
        timing = [("Duration", duration_text(transition))] if finished else []
    rows = [
        ("Job", display_name(transition)),
        status_row,
        ("Created", _readable(job.creation_time)),
        ("Last updated", _readable(job.last_updated_time)),
        *timing,
        ("Solution version", document["solutionVersionArn"]),
        *([("Input", job.input_path), ("Output", job.output_path)] if finished else []),
        ("Job ARN", document["batchSegmentJobArn"]),
        ("Region", document["region"]),
        ("Account", document["accountId"]),
        ("Detected at", _readable(context.detected_at)),
        ("Console", document["consoleUrl"]),
    ]
    lines = [_headline(transition, context), ""]
    lines += [f"{label + ':':<18}{value if value else '(not reported)'}" for label, value in rows]
    if document["failureReason"]:
        lines += ["", "Failure reason:"]
        lines += [f"  {line}" for line in document["failureReason"].splitlines()]
    lines += [
        "",
        f"Event type: {document['eventType']}. Sent by the Personalize batch segment job notifier.",
    ]
    return "\n".join(lines) + "\n"


def _render(
    transition: Transition, context: EventContext, reason_limit: int | None
) -> PublishEntry:
    document = event_document(transition, context, reason_limit)
    event_json = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    title = subject(transition)
    envelope = {
        "default": event_json,
        "sqs": event_json,
        "lambda": event_json,
        "email": email_text(document, transition, context),
        # HTTPS subscribers are AWS Chatbot (Amazon Q Developer in chat applications).
        "https": chatbot_notification(document, title, _timing(transition, context)),
    }
    return PublishEntry(
        subject=title,
        message=json.dumps(envelope, ensure_ascii=False),
        attributes=message_attributes(transition),
        event_json=event_json,
    )


def publish_entry(
    transition: Transition, context: EventContext, max_bytes: int = MAX_PUBLISH_BYTES
) -> PublishEntry:
    """Render a transition for SNS, truncating the failure reason until the whole fits."""
    entry = _render(transition, context, None)
    limit = len(transition.job.failure_reason or "")
    while entry.size > max_bytes and limit > 0:
        # Escaping and the four copies make size non-linear in the reason; shrink and re-measure.
        limit = min(limit // 2, int(limit * max_bytes / entry.size))
        entry = _render(transition, context, limit)
    if entry.size > max_bytes:
        raise ValueError(f"message for {transition.job.arn} exceeds {max_bytes} bytes")
    return entry


DIGEST_EVENT_TYPE = "JOB_DIGEST"
_DIGEST_LINE_REASON = 160


def _digest_line(document: dict[str, Any]) -> str:
    name = document["jobName"] or (document["batchSegmentJobArn"] or "").rsplit("/", 1)[-1]
    line = (
        f"{document['eventType'].removeprefix('JOB_'):<14} {name:<63}  "
        f"{document['previousStatus'] or 'new'} -> {document['status'] or 'unknown'}"
    )
    if document["failureReason"]:
        first = " ".join(document["failureReason"].split())[:_DIGEST_LINE_REASON]
        line += f"\n{'':<15}{first}"
    return line


def _render_digest(
    documents: list[dict[str, Any]], listed: int, context: EventContext
) -> PublishEntry:
    counts: dict[str, int] = {}
    for document in documents:
        counts[document["eventType"]] = counts.get(document["eventType"], 0) + 1
    tally = ", ".join(f"{n} {t.removeprefix('JOB_')}" for t, n in sorted(counts.items()))
    title = " ".join(
        _printable_ascii(f"{len(documents)} batch segment job changes: {tally}").split()
    )
    shown = documents[:listed]
    more = len(documents) - len(shown)
    email = "\n".join(
        [
            f"{len(documents)} batch segment jobs changed in one poll ({tally}).",
            "One message instead of one each; pipelines still receive every event.",
            "",
            *(_digest_line(d) for d in shown),
            *([f"... and {more} more: see the events topic or EventBridge."] if more else []),
            "",
            f"Region: {context.region}. Detected at: {_readable(context.detected_at)}.",
            f"Console: {console_url(context.region, None)}",
        ]
    )
    digest = {
        "schemaVersion": SCHEMA_VERSION,
        "eventType": DIGEST_EVENT_TYPE,
        "count": len(documents),
        "counts": counts,
        "region": context.region,
        "detectedAt": _iso(context.detected_at),
        "jobs": [
            {
                k: d[k]
                for k in ("eventType", "batchSegmentJobArn", "jobName", "previousStatus", "status")
            }
            for d in shown
        ],
        "truncated": more,
    }
    digest_json = json.dumps(digest, ensure_ascii=False, separators=(",", ":"))
    envelope = {
        "default": digest_json,
        "sqs": digest_json,
        "lambda": digest_json,
        "email": email + "\n",
        "https": chatbot_digest(
            title,
            [
                f"{d['jobName'] or d['batchSegmentJobArn']}: "
                f"{d['previousStatus'] or 'new'} -> {d['status'] or 'unknown'}"
                for d in documents
            ],
            console_url(context.region, None),
        ),
    }
    return PublishEntry(
        subject=title[:MAX_SUBJECT_CHARS],
        message=json.dumps(envelope, ensure_ascii=False),
        attributes={
            "eventType": DIGEST_EVENT_TYPE,
            "status": ABSENT,
            "previousStatus": ABSENT,
            "jobName": ABSENT,
            "solutionVersionArn": ABSENT,
        },
        event_json=digest_json,
    )


def digest_entry(
    entries: Sequence[PublishEntry], context: EventContext, max_bytes: int = MAX_PUBLISH_BYTES
) -> PublishEntry:
    """One message for people summarising many events, listing as many as fit."""
    documents = [json.loads(entry.event_json) for entry in entries]
    listed = len(documents)
    digest = _render_digest(documents, listed, context)
    while digest.size > max_bytes and listed > 0:
        listed = int(listed * max_bytes / digest.size * 0.9)
        digest = _render_digest(documents, listed, context)
    return digest
