"""The event bus's wire format: each event's JSON as the detail of a PutEvents entry, for
rules that start pipelines; and the publisher. Source and detail-type are a public
contract (docs/events.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG
from poller.channels.batching import batches

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from job_events.event import JobEvent

SOURCE = "custom.personalize.batch-segment-jobs"
DETAIL_TYPE = "Batch Segment Job Status Change"
BATCH_MAX_ENTRIES = 10  # PutEvents: 10 entries and 256 KiB per call
BATCH_MAX_BYTES = 256 * 1024


def entry_size(entry: PutEventsRequestEntryTypeDef) -> int:
    """PutEvents' own measure of an entry: its source, detail-type and detail in UTF-8."""
    parts = (entry.get("Source", ""), entry.get("DetailType", ""), entry.get("Detail", ""))
    return sum(len(part.encode()) for part in parts)


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: EventBridgeClient | None = None) -> None:
        self._bus = bus_name
        self._client = client or boto3.client("events", config=RETRY_CONFIG)

    def render(self, event: JobEvent) -> PutEventsRequestEntryTypeDef:
        """The entry, its failure reason truncated (visibly) until it fits one call."""
        entry = self._entry(event)
        limit = len(event.failure_reason or "")
        while entry_size(entry) > BATCH_MAX_BYTES and limit > 0:
            limit //= 2
            entry = self._entry(event.with_reason_limit(limit))
        if entry_size(entry) > BATCH_MAX_BYTES:
            raise ValueError(f"event for {event.batch_segment_job_arn} exceeds PutEvents' limit")
        return entry

    def _entry(self, event: JobEvent) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": event.to_json(),
            "EventBusName": self._bus,
        }

    def send(self, entries: Sequence[PutEventsRequestEntryTypeDef]) -> dict[int, str]:
        """Put every entry; return the index and error of each one that failed."""
        failed: dict[int, str] = {}
        sizes = [entry_size(entry) for entry in entries]
        for group in batches(sizes, BATCH_MAX_ENTRIES, BATCH_MAX_BYTES):
            try:
                response = self._client.put_events(Entries=[entries[i] for i in group])
            except (ClientError, BotoCoreError) as err:
                failed.update(dict.fromkeys(group, str(err)))
                continue
            for index, result in zip(group, response.get("Entries", []), strict=False):
                if "ErrorCode" in result:
                    failed[index] = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
        return failed
