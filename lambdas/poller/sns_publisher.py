"""SnsPublisher: PublishBatch of rendered entries, reporting which ones failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef

    from poller.rendering import PublishEntry

BATCH_MAX_ENTRIES = 10
BATCH_MAX_BYTES = 256 * 1024  # aggregate of all entries in one PublishBatch


def batches(entries: Sequence[PublishEntry]) -> Iterator[list[int]]:
    """Group entry indexes so each PublishBatch stays within SNS's count and size limits."""
    current: list[int] = []
    size = 0
    for index, entry in enumerate(entries):
        if current and (len(current) == BATCH_MAX_ENTRIES or size + entry.size > BATCH_MAX_BYTES):
            yield current
            current, size = [], 0
        current.append(index)
        size += entry.size
    if current:
        yield current


def _request_entry(index: int, entry: PublishEntry) -> PublishBatchRequestEntryTypeDef:
    return {
        "Id": str(index),
        "Subject": entry.subject,
        "Message": entry.message,
        "MessageStructure": "json",
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in entry.attributes.items()
        },
    }


class SnsPublisher:
    def __init__(self, topic_arn: str, client: SNSClient | None = None) -> None:
        self._topic_arn = topic_arn
        self._client = client or boto3.client("sns", config=RETRY_CONFIG)

    def publish(self, entries: Sequence[PublishEntry]) -> dict[int, str]:
        """Publish all entries; return the index and error of each one that failed."""
        failed: dict[int, str] = {}
        for group in batches(entries):
            try:
                response = self._client.publish_batch(
                    TopicArn=self._topic_arn,
                    PublishBatchRequestEntries=[_request_entry(i, entries[i]) for i in group],
                )
            except (ClientError, BotoCoreError) as err:
                failed.update(dict.fromkeys(group, str(err)))
                continue
            for failure in response.get("Failed", []):
                failed[int(failure["Id"])] = f"{failure['Code']}: {failure.get('Message', '')}"
        return failed
