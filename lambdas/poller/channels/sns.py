"""The SNS topics' wire format: one message per event (or one digest of one scope), with a
key per protocol, a subject and filterable attributes, within SNS's limits; and the
publisher.

The message keys, subject and attributes are a public contract (docs/events.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from job_events.event import JobDigest
from job_events.vocabulary import ABSENT, DIGEST_EVENT_TYPE
from poller.aws import RETRY_CONFIG
from poller.channels.batching import batches
from poller.channels.chatbot import chatbot_digest, chatbot_notification
from poller.channels.email import digest_email_text, email_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef

    from job_events.event import JobEvent

# SNS rejects a publish whose message plus attributes exceed 256 KiB; keep headroom for
# the request's own framing.
MAX_PUBLISH_BYTES = 256 * 1024 - 2 * 1024
MAX_SUBJECT_CHARS = 99  # SNS: "less than 100 characters"
BATCH_MAX_ENTRIES = 10
BATCH_MAX_BYTES = 256 * 1024  # aggregate of all entries in one PublishBatch
STRING = "String"
STRING_ARRAY = "String.Array"  # its value a JSON array; a filter policy matches any element


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """One SNS message, ready for PublishBatch."""

    subject: str
    message: str
    attributes: dict[str, str]  # each attribute's StringValue
    # The DataType of each attribute that is not a String (a digest's eventType).
    data_types: dict[str, str] = field(default_factory=dict)

    def data_type(self, name: str) -> str:
        return self.data_types.get(name, STRING)

    @property
    def size(self) -> int:
        """What SNS counts against its limit: the body, and each attribute's name, type and
        value."""
        attributes = sum(
            len(name.encode()) + len(self.data_type(name)) + len(value.encode())
            for name, value in self.attributes.items()
        )
        return len(self.message.encode()) + len(self.subject) + attributes


def _printable_ascii(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _one_line(text: str) -> str:
    return " ".join(_printable_ascii(text).split())


def subject(event: JobEvent) -> str:
    """Outcome first, then the job: 'FAILED: segment-job-42 (CREATE FAILED)'."""
    status = event.status or "UNKNOWN STATUS"
    line = (
        f"{event.outcome}: {event.name} ({status})" if event.outcome else f"{status}: {event.name}"
    )
    return _one_line(line)[:MAX_SUBJECT_CHARS]


def message_attributes(event: JobEvent) -> dict[str, str]:
    return {
        "eventType": event.event_type.value,
        "status": event.status or ABSENT,
        "previousStatus": event.previous_status or ABSENT,
        "jobName": event.job_name or ABSENT,
        "solutionVersionArn": event.solution_version_arn or ABSENT,
        "accountId": event.account_id or ABSENT,
        "region": event.region,
    }


def _envelope(document_json: str, email: str, https: str) -> str:
    """A key per protocol (MessageStructure json): machines get the event JSON, people
    text, and HTTPS subscribers (AWS Chatbot) its custom notification."""
    keys = {
        "default": document_json,
        "sqs": document_json,
        "lambda": document_json,
        "email": email,
        "https": https,
    }
    return json.dumps(keys, ensure_ascii=False)


def _render(event: JobEvent) -> SnsMessage:
    title = subject(event)
    return SnsMessage(
        subject=title,
        message=_envelope(event.to_json(), email_text(event), chatbot_notification(event, title)),
        attributes=message_attributes(event),
    )


def sns_message(event: JobEvent, max_bytes: int = MAX_PUBLISH_BYTES) -> SnsMessage:
    """The event's message, its failure reason truncated (visibly) until the whole fits."""
    message = _render(event)
    limit = len(event.failure_reason or "")
    while message.size > max_bytes and limit > 0:
        # Escaping and the several copies make size non-linear in the reason: shrink and
        # measure again.
        limit = min(limit // 2, int(limit * max_bytes / message.size))
        message = _render(event.with_reason_limit(limit))
    if message.size > max_bytes:
        raise ValueError(f"message for {event.batch_segment_job_arn} exceeds {max_bytes} bytes")
    return message


def digest_title(digest: JobDigest) -> str:
    """'500 batch segment job changes in 111122223333/us-east-1: 480 FAILED, 20 SUCCEEDED'."""
    scope = f" in {digest.scope}" if digest.scope else ""
    return _one_line(f"{digest.count} batch segment job changes{scope}: {digest.tally}")


def digest_subject(title: str) -> str:
    """The title within SNS's subject limit, cut after a whole count: '..., 1 STUCK, ...'."""
    if len(title) <= MAX_SUBJECT_CHARS:
        return title
    separator, more = ", ", ", ..."
    cut = title.rfind(separator, 0, MAX_SUBJECT_CHARS - len(more) + len(separator))
    return title[:cut] + more if cut != -1 else title[:MAX_SUBJECT_CHARS]


def digest_attributes(digest: JobDigest) -> dict[str, str]:
    """The attributes of a digest: its scope's account and region (NONE should its jobs
    span several), and as eventType (a String.Array) JOB_DIGEST and each type it holds, so a
    policy on JOB_DIGEST or on any of those types matches it."""
    return {
        "eventType": json.dumps([DIGEST_EVENT_TYPE, *digest.event_types], separators=(",", ":")),
        "status": ABSENT,
        "previousStatus": ABSENT,
        "jobName": ABSENT,
        "solutionVersionArn": ABSENT,
        "accountId": digest.account_id or ABSENT,
        "region": digest.region,
    }


def _render_digest(events: Sequence[JobEvent], listed: int) -> SnsMessage:
    digest = JobDigest.of(events, listed)
    title = digest_title(digest)
    return SnsMessage(
        subject=digest_subject(title),
        message=_envelope(
            digest.to_json(),
            digest_email_text(digest, events),
            chatbot_digest(title, digest, events),
        ),
        attributes=digest_attributes(digest),
        data_types={"eventType": STRING_ARRAY},
    )


def digest_message(events: Sequence[JobEvent], max_bytes: int = MAX_PUBLISH_BYTES) -> SnsMessage:
    """One message for people summarising many events of one scope, listing as many as
    fit."""
    listed = len(events)
    digest = _render_digest(events, listed)
    while digest.size > max_bytes and listed > 0:
        listed = int(listed * max_bytes / digest.size * 0.9)
        digest = _render_digest(events, listed)
    return digest


def _request_entry(index: int, message: SnsMessage) -> PublishBatchRequestEntryTypeDef:
    return {
        "Id": str(index),
        "Subject": message.subject,
        "Message": message.message,
        "MessageStructure": "json",
        "MessageAttributes": {
            name: {"DataType": message.data_type(name), "StringValue": value}
            for name, value in message.attributes.items()
        },
    }


class SnsPublisher:
    """A topic: one message per event, or one digest of many."""

    def __init__(self, topic_arn: str, client: SNSClient | None = None) -> None:
        self._topic_arn = topic_arn
        self._client = client or boto3.client("sns", config=RETRY_CONFIG)

    def render(self, event: JobEvent) -> SnsMessage:
        return sns_message(event)

    def render_digest(self, events: Sequence[JobEvent]) -> SnsMessage:
        return digest_message(events)

    def send(self, messages: Sequence[SnsMessage]) -> dict[int, str]:
        """PublishBatch all messages; return the index and error of each one that failed."""
        failed: dict[int, str] = {}
        sizes = [message.size for message in messages]
        for group in batches(sizes, BATCH_MAX_ENTRIES, BATCH_MAX_BYTES):
            try:
                response = self._client.publish_batch(
                    TopicArn=self._topic_arn,
                    PublishBatchRequestEntries=[_request_entry(i, messages[i]) for i in group],
                )
            except (ClientError, BotoCoreError) as err:
                failed.update(dict.fromkeys(group, str(err)))
                continue
            for failure in response.get("Failed", []):
                failed[int(failure["Id"])] = f"{failure['Code']}: {failure.get('Message', '')}"
        return failed
