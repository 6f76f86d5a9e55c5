"""SnapshotStore: what has been announced of each job, in DynamoDB.

Layout: partition "pk" = JOB_PARTITION, sort key "sk" = job ARN, plus a marker item
(sk = MARKER_KEY) written once the first run has recorded its baseline. The marker holds
the watermark: the latest lastUpdatedDateTime of a poll that recorded everything it saw.
A full read is one Query (paged by DynamoDB's 1 MB limit); a partial read fetches only
the jobs the poll asks for, 100 keys per BatchGetItem. Never one request per job.

Each transition is claimed before it is published and recorded after: the claim is a
conditional write that only one poll can win while the job still holds the status that
poll diffed against, so two overlapping polls never both send the same transition. A
claim expires (its lease) so a poll that dies after claiming cannot block the job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG
from poller.errors import SnapshotError
from poller.models import EventType, JobSummary, SnapshotItem, Transition

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        UpdateItemInputTypeDef,
        WriteRequestTypeDef,
    )

logger = Logger(child=True)

PARTITION_KEY = "pk"
SORT_KEY = "sk"
JOB_PARTITION = "batch-segment-job"
MARKER_KEY = "#initialized"
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
UNPROCESSED_ATTEMPTS = 6
_CLAIM_FREE = "(attribute_not_exists(claimedBy) OR claimExpiresAt < :now)"


@dataclass(frozen=True, slots=True)
class Marker:
    watermark: datetime | None


def _utc_iso(value: datetime) -> str:
    # One fixed format, so stored watermarks compare correctly as strings.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


class ClaimLostError(SnapshotError):
    """Another poll holds or has recorded this job since this poll read the snapshot."""


def _key(arn: str) -> dict[str, AttributeValueTypeDef]:
    return {PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": arn}}


def _job_attributes(job: JobSummary) -> dict[str, AttributeValueTypeDef]:
    values = {
        "status": job.status,
        "jobName": job.name,
        "lastUpdatedDateTime": job.last_updated_time.isoformat() if job.last_updated_time else None,
    }
    return {name: {"S": value} for name, value in values.items() if value is not None}


def _string(item: dict[str, AttributeValueTypeDef], name: str) -> str | None:
    value = item.get(name)
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


def _snapshot_item(arn: str, item: dict[str, AttributeValueTypeDef]) -> SnapshotItem:
    if "status" in item and _string(item, "status") is None:
        # Hand-written or older items: treat as never announced; the next record repairs it.
        logger.warning(
            "snapshot item has a malformed status; it will be repaired",
            extra={"batch_segment_job_arn": arn, "status_attribute": str(item.get("status"))},
        )
    delivered = item.get("delivered")
    channels = delivered.get("SS", []) if isinstance(delivered, dict) else []
    return SnapshotItem(
        arn,
        _string(item, "status"),
        _string(item, "jobName"),
        _string(item, "stuckStatus"),
        _string(item, "deliveredFor"),
        frozenset(channel for channel in channels if isinstance(channel, str)),
    )


class SnapshotStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client or boto3.client("dynamodb", config=RETRY_CONFIG)

    def load_marker(self) -> Marker | None:
        """The marker of a finished first run, or None before it."""
        try:
            item = self._client.get_item(
                TableName=self._table, Key=_key(MARKER_KEY), ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as err:
            raise SnapshotError(f"reading snapshot table {self._table} failed: {err}") from err
        if item is None:
            return None
        watermark = _string(item, "watermark")
        try:
            return Marker(datetime.fromisoformat(watermark) if watermark else None)
        except ValueError:
            logger.warning(
                "malformed watermark; the next clean poll rewrites it",
                extra={"watermark": watermark},
            )
            return Marker(None)

    def load(self, arns: Collection[str] | None = None) -> dict[str, SnapshotItem]:
        """Recorded jobs by ARN: every job, or only `arns`."""
        try:
            items = self._query_all() if arns is None else self._get_many(list(arns))
            return {
                arn: _snapshot_item(arn, item)
                for item in items
                if (arn := _string(item, SORT_KEY)) and arn != MARKER_KEY
            }
        except (ClientError, BotoCoreError) as err:
            raise SnapshotError(f"reading snapshot table {self._table} failed: {err}") from err

    def _query_all(self) -> Iterator[dict[str, AttributeValueTypeDef]]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": JOB_PARTITION}},
            ConsistentRead=True,
        )
        for page in pages:
            yield from page.get("Items", [])

    def _get_many(self, arns: list[str]) -> Iterator[dict[str, AttributeValueTypeDef]]:
        for start in range(0, len(arns), BATCH_GET_LIMIT):
            keys = [_key(arn) for arn in arns[start : start + BATCH_GET_LIMIT]]
            for attempt in range(UNPROCESSED_ATTEMPTS):
                if attempt:
                    time.sleep(min(0.05 * 2**attempt, 2.0))
                response = self._client.batch_get_item(
                    RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
                )
                yield from response.get("Responses", {}).get(self._table, [])
                unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
                keys = list(unprocessed["Keys"]) if unprocessed else []
                if not keys:
                    break
            else:
                raise SnapshotError(
                    f"{len(keys)} snapshot reads stayed unprocessed in {self._table}"
                )

    def record_baseline(
        self,
        jobs: Iterable[JobSummary],
        recorded_at: datetime,
        *,
        complete: bool = True,
        watermark: datetime | None = None,
    ) -> None:
        """First run: record every job silently, then the marker that ends the first run.

        Without `complete` (the listing stopped early) the marker is not written, so the
        next run is a first run again and stays silent about the jobs not yet recorded.
        """
        stamp: dict[str, AttributeValueTypeDef] = {"recordedAt": {"S": recorded_at.isoformat()}}
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": {**_key(job.arn), **_job_attributes(job), **stamp}}}
            for job in jobs
            if job.arn
        ]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            self._batch_write(requests[start : start + BATCH_WRITE_LIMIT])
        if complete:
            marker = {**_key(MARKER_KEY), **stamp}
            if watermark is not None:
                marker["watermark"] = {"S": _utc_iso(watermark)}
            # Written last: a first run that dies midway is simply redone, still silently.
            self._batch_write([{"PutRequest": {"Item": marker}}])

    def advance_watermark(self, watermark: datetime) -> None:
        """Move the watermark forward (never back, whatever order polls finish in)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(MARKER_KEY),
                UpdateExpression="SET watermark = :w",
                ConditionExpression="attribute_exists(#sk) AND "
                "(attribute_not_exists(watermark) OR watermark < :w)",
                ExpressionAttributeNames={"#sk": SORT_KEY},
                ExpressionAttributeValues={":w": {"S": _utc_iso(watermark)}},
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise SnapshotError(f"advancing the watermark failed: {err}") from err
        except BotoCoreError as err:
            raise SnapshotError(f"advancing the watermark failed: {err}") from err

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

    def claim(self, transition: Transition, run_id: str, now: float, lease_seconds: float) -> None:
        """Take the right to publish `transition`; ClaimLostError if another poll has it."""
        previous = transition.previous_status
        values: dict[str, AttributeValueTypeDef] = {
            ":run": {"S": run_id},
            ":now": {"N": str(now)},
            ":expires": {"N": str(now + lease_seconds)},
        }
        if transition.event_type is EventType.JOB_STUCK:
            assert previous is not None
            state = (
                "#s = :previous AND (attribute_not_exists(stuckStatus) OR stuckStatus <> :previous)"
            )
            values[":previous"] = {"S": previous}
        elif previous is None:
            state = "(attribute_not_exists(#s) OR NOT attribute_type(#s, :string))"
            values[":string"] = {"S": "S"}
        else:
            state = "#s = :previous"
            values[":previous"] = {"S": previous}
        self._update(
            transition.job,
            {
                "Key": _key(self._arn(transition)),
                "UpdateExpression": "SET claimedBy = :run, claimExpiresAt = :expires",
                "ConditionExpression": f"{state} AND {_CLAIM_FREE}",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": values,
            },
        )

    def record(self, transition: Transition, run_id: str, recorded_at: datetime) -> None:
        """After a publish: store what was announced and drop the claim."""
        job = transition.job
        updated = job.last_updated_time.isoformat() if job.last_updated_time else None
        assignments = ["recordedAt = :recorded"]
        removals = ["claimedBy", "claimExpiresAt", "deliveredFor", "delivered"]
        values: dict[str, AttributeValueTypeDef] = {
            ":run": {"S": run_id},
            ":recorded": {"S": recorded_at.isoformat()},
        }
        for placeholder, attribute, value in (
            (":status", "#s", job.status),
            (":name", "jobName", job.name),
            (":updated", "lastUpdatedDateTime", updated),
        ):
            if value is None:
                removals.append(attribute)
            else:
                assignments.append(f"{attribute} = {placeholder}")
                values[placeholder] = {"S": value}
        if transition.event_type is EventType.JOB_STUCK and job.status is not None:
            assignments.append("stuckStatus = :status")
        else:
            removals.append("stuckStatus")
        self._update(
            job,
            {
                "Key": _key(self._arn(transition)),
                "UpdateExpression": f"SET {', '.join(assignments)} REMOVE {', '.join(removals)}",
                "ConditionExpression": "claimedBy = :run",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": values,
            },
        )

    def release(self, transition: Transition, run_id: str, delivered: frozenset[str]) -> None:
        """After a failed delivery: drop the claim so the next poll tries again, noting the
        channels that did receive it so they are not sent it twice."""
        if delivered:
            update = (
                "SET deliveredFor = :key, delivered = :channels REMOVE claimedBy, claimExpiresAt"
            )
            values: dict[str, AttributeValueTypeDef] = {
                ":run": {"S": run_id},
                ":key": {"S": transition.key},
                ":channels": {"SS": sorted(delivered)},
            }
        else:
            update = "REMOVE claimedBy, claimExpiresAt"
            values = {":run": {"S": run_id}}
        self._update(
            transition.job,
            {
                "Key": _key(self._arn(transition)),
                "UpdateExpression": update,
                "ConditionExpression": "claimedBy = :run",
                "ExpressionAttributeValues": values,
            },
        )

    @staticmethod
    def _arn(transition: Transition) -> str:
        assert transition.job.arn is not None, "jobs without an ARN are never diffed"
        return transition.job.arn

    def _update(self, job: JobSummary, request: dict[str, object]) -> None:
        try:
            self._client.update_item(
                **cast("UpdateItemInputTypeDef", {"TableName": self._table, **request})
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ClaimLostError(f"{job.arn} is held or was recorded by another poll") from err
            raise SnapshotError(f"updating {job.arn} in {self._table} failed: {err}") from err
        except BotoCoreError as err:
            raise SnapshotError(f"updating {job.arn} in {self._table} failed: {err}") from err
