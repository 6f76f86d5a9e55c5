"""EventBridgePublisher: each event on an event bus, for rules that start pipelines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG
from poller.sns_publisher import batches

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from poller.rendering import PublishEntry

SOURCE = "custom.personalize.batch-segment-jobs"
DETAIL_TYPE = "Batch Segment Job Status Change"


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: EventBridgeClient | None = None) -> None:
        self._bus = bus_name
        self._client = client or boto3.client("events", config=RETRY_CONFIG)

    def entry(self, entry: PublishEntry) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": entry.event_json,
            "EventBusName": self._bus,
        }

    def publish(self, entries: Sequence[PublishEntry]) -> dict[int, str]:
        """Put one event per entry; return the index and error of each one that failed."""
        failed: dict[int, str] = {}
        # PutEvents has SNS's limits too: 10 entries and 256 KiB per call.
        for group in batches(entries):
            try:
                response = self._client.put_events(Entries=[self.entry(entries[i]) for i in group])
            except (ClientError, BotoCoreError) as err:
                failed.update(dict.fromkeys(group, str(err)))
                continue
            for index, result in zip(group, response.get("Entries", []), strict=False):
                if "ErrorCode" in result:
                    failed[index] = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
        return failed
