"""SnapshotStore: the last status seen of each job, in DynamoDB.

Layout: partition "pk" = JOB_PARTITION, sort key "sk" = job ARN, plus a marker item
(sk = MARKER_KEY) written once the first run has recorded its baseline. One Query
reads the whole snapshot (paged by DynamoDB's 1 MB limit, not one request per job).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG
from poller.errors import SnapshotError
from poller.models import JobSummary, SnapshotItem

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutItemInputTypeDef,
        WriteRequestTypeDef,
    )

PARTITION_KEY = "pk"
SORT_KEY = "sk"
JOB_PARTITION = "batch-segment-job"
MARKER_KEY = "#initialized"
BATCH_WRITE_LIMIT = 25
UNPROCESSED_ATTEMPTS = 6


class RecordConflictError(SnapshotError):
    """The job's snapshot no longer holds the status this run diffed against."""


def _item(job: JobSummary, recorded_at: datetime) -> dict[str, AttributeValueTypeDef]:
    assert job.arn is not None
    item: dict[str, AttributeValueTypeDef] = {
        PARTITION_KEY: {"S": JOB_PARTITION},
        SORT_KEY: {"S": job.arn},
        "recordedAt": {"S": recorded_at.isoformat()},
    }
    optional = {
        "status": job.status,
        "jobName": job.name,
        "lastUpdatedDateTime": job.last_updated_time.isoformat() if job.last_updated_time else None,
    }
    item.update({name: {"S": value} for name, value in optional.items() if value is not None})
    return item


def _string(item: dict[str, AttributeValueTypeDef], name: str) -> str | None:
    value = item.get(name, {})
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


class SnapshotStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client or boto3.client("dynamodb", config=RETRY_CONFIG)

    def load(self) -> dict[str, SnapshotItem] | None:
        """The recorded snapshot by job ARN, or None before the first run's baseline."""
        snapshot: dict[str, SnapshotItem] = {}
        initialized = False
        paginator = self._client.get_paginator("query")
        try:
            pages = paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": PARTITION_KEY},
                ExpressionAttributeValues={":pk": {"S": JOB_PARTITION}},
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    key = _string(item, SORT_KEY)
                    if key == MARKER_KEY:
                        initialized = True
                    elif key:
                        snapshot[key] = SnapshotItem(
                            key, _string(item, "status"), _string(item, "jobName")
                        )
        except (ClientError, BotoCoreError) as err:
            raise SnapshotError(f"reading snapshot table {self._table} failed: {err}") from err
        return snapshot if initialized else None

    def record_baseline(self, jobs: Iterable[JobSummary], recorded_at: datetime) -> None:
        """First run: record every job silently, then the marker that ends the first run."""
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": _item(job, recorded_at)}} for job in jobs if job.arn
        ]
        marker: WriteRequestTypeDef = {
            "PutRequest": {
                "Item": {
                    PARTITION_KEY: {"S": JOB_PARTITION},
                    SORT_KEY: {"S": MARKER_KEY},
                    "recordedAt": {"S": recorded_at.isoformat()},
                }
            }
        }
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            self._batch_write(requests[start : start + BATCH_WRITE_LIMIT])
        # Written last: a first run that dies midway is simply redone, still silently.
        self._batch_write([marker])

    def _batch_write(self, requests: Sequence[WriteRequestTypeDef]) -> None:
        pending: Sequence[WriteRequestTypeDef] = requests
        try:
            # botocore retries a throttled call; UnprocessedItems is partial success, retried here.
            for attempt in range(UNPROCESSED_ATTEMPTS):
                if attempt:
                    time.sleep(min(0.05 * 2**attempt, 2.0))
                response = self._client.batch_write_item(RequestItems={self._table: pending})
                pending = cast(
                    "list[WriteRequestTypeDef]",
                    response.get("UnprocessedItems", {}).get(self._table, []),
                )
                if not pending:
                    return
        except (ClientError, BotoCoreError) as err:
            raise SnapshotError(f"writing snapshot table {self._table} failed: {err}") from err
        raise SnapshotError(f"{len(pending)} snapshot items stayed unprocessed in {self._table}")

    def record(self, job: JobSummary, previous_status: str | None, recorded_at: datetime) -> None:
        """Record a published transition, only if the snapshot still holds `previous_status`."""
        request: PutItemInputTypeDef = {"TableName": self._table, "Item": _item(job, recorded_at)}
        if previous_status is None:
            request["ConditionExpression"] = "attribute_not_exists(#sk) OR attribute_not_exists(#s)"
            request["ExpressionAttributeNames"] = {"#sk": SORT_KEY, "#s": "status"}
        else:
            request["ConditionExpression"] = "#s = :previous"
            request["ExpressionAttributeNames"] = {"#s": "status"}
            request["ExpressionAttributeValues"] = {":previous": {"S": previous_status}}
        try:
            self._client.put_item(**request)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise RecordConflictError(f"{job.arn} was recorded by another poll") from err
            raise SnapshotError(f"recording {job.arn} failed: {err}") from err
        except BotoCoreError as err:
            raise SnapshotError(f"recording {job.arn} failed: {err}") from err
