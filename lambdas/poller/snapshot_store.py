"""DynamoSnapshotStore: what has been announced of each job, and where each scope stands.

A full read is one Query (paged by DynamoDB's 1 MB limit); a partial read fetches only the
jobs asked for, 100 keys per BatchGetItem. Never one request per job. The item format is
in poller.codec, the keys and the I/O in poller.table, the claim lease in poller.lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

from poller.aws import RETRY_CONFIG
from poller.codec import (
    decode,
    encode,
    epoch,
    epoch_or_none,
    record_attributes,
    record_from,
    scope_state,
    text,
    watched_scopes,
)
from poller.lease import ClaimLease
from poller.models import Record, Scope, ScopeMarkers, ScopeState
from poller.table import (
    JOB_PARTITION,
    PARTITION_KEY,
    SCOPE_PREFIX,
    SORT_KEY,
    WATCHED_KEY,
    ConditionFailedError,
    Table,
    key,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence
    from datetime import datetime

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        WriteRequestTypeDef,
    )

    from poller.models import Transition

logger = Logger(child=True)

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
MARKER_ATTRIBUTES = (
    "baselineStartedAt",
    "baselineComplete",
    "baselinePolls",
    "checkpoint",
    "watermark",
    "lastFullReadAt",
    "rewatched",
    "catchUpUntil",
)
# Another poll's later watermark wins; the same one is written again (one request); a
# malformed (not a number) one, or one later than this poll's clock, is replaced.
WATERMARK_NEVER_BACK = (
    "attribute_not_exists(watermark) OR NOT attribute_type(watermark, :n) "
    "OR watermark <= :w OR watermark > :now"
)


class DynamoSnapshotStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = Table(table_name, client or boto3.client("dynamodb", config=RETRY_CONFIG))
        self._lease = ClaimLease(self._table)

    # --- reads -------------------------------------------------------------------------
    def load_scopes(self, scopes: Sequence[Scope]) -> ScopeMarkers:
        by_key = {SCOPE_PREFIX + scope.key: scope for scope in scopes}
        states = {}
        watched = None
        for sort_key, item in self._get_many([*by_key, WATCHED_KEY]):
            if sort_key == WATCHED_KEY:
                watched = watched_scopes(item)
            elif (state := scope_state(item)) is not None:
                states[by_key[sort_key]] = state
        return ScopeMarkers(states, watched)

    def load(self, arns: Collection[str]) -> dict[str, Record]:
        return {arn: record_from(arn, item) for arn, item in self._get_many(list(arns))}

    def load_all(self) -> dict[str, Record]:
        """Every job's record, in pages of a Query."""
        pages = self._table.client.get_paginator("query").paginate(
            TableName=self._table.name,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": JOB_PARTITION}},
            ConsistentRead=True,
        )
        items = self._table.call(
            "reading every record", lambda: [i for p in pages for i in p.get("Items", [])]
        )
        records = {}
        for raw in items:
            item = decode(raw)
            arn = text(item.get(SORT_KEY))
            if arn and not arn.startswith("#"):
                records[arn] = record_from(arn, item)
        return records

    def _get_many(self, sort_keys: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        table = self._table
        found: list[dict[str, Any]] = []

        def send(keys: list[dict[str, AttributeValueTypeDef]]) -> list[Any]:
            request: KeysAndAttributesTypeDef = {"Keys": keys, "ConsistentRead": True}
            response = table.client.batch_get_item(RequestItems={table.name: request})
            found.extend(response.get("Responses", {}).get(table.name, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(table.name)
            return list(unprocessed["Keys"]) if unprocessed else []

        for start in range(0, len(sort_keys), BATCH_GET_LIMIT):
            keys = [key(k) for k in sort_keys[start : start + BATCH_GET_LIMIT]]
            table.until_processed("reading records", keys, send)
        for raw in found:
            item = decode(raw)
            sort_key = text(item.get(SORT_KEY))
            if sort_key:
                yield sort_key, item

    # --- scope markers -------------------------------------------------------------------
    def reset_scope(self, scope: Scope, fresh: ScopeState) -> None:
        """Replace the scope's marker with a fresh baseline, in one write, whatever it held
        (no watermark, checkpoint, full read or hold carries over)."""
        kept = {
            "baselineStartedAt": epoch(fresh.baseline_started_at),
            "baselineComplete": fresh.baseline_complete,
            "baselinePolls": fresh.baseline_polls,
            "rewatched": fresh.rewatched,
        }
        self._table.update(
            f"resetting scope {scope.key}",
            Key=key(SCOPE_PREFIX + scope.key),
            UpdateExpression=_update(
                [f"{name} = :{name}" for name in kept],
                [name for name in MARKER_ATTRIBUTES if name not in kept],
            ),
            ExpressionAttributeValues=encode({f":{name}": v for name, v in kept.items()}),
        )

    def save_watched(self, keys: frozenset[str]) -> None:
        """Store the watched scope keys (a string set: never empty)."""
        if not keys:
            raise ValueError("a run watching no scope has no watched set to store")
        self._table.update(
            "saving the watched scopes",
            Key=key(WATCHED_KEY),
            UpdateExpression="SET scopes = :scopes",
            ExpressionAttributeValues=encode({":scopes": set(keys)}),
        )

    def save_scope(self, scope: Scope, state: ScopeState, now: datetime) -> None:
        """Store where the scope stands. Its watermark never moves back and its baseline,
        once complete, stays complete, whatever order overlapping polls finish in."""
        assignments, removals, values = _marker(state)
        action, marker = f"saving scope {scope.key}", key(SCOPE_PREFIX + scope.key)
        if state.watermark is not None:
            try:
                self._table.update(
                    action,
                    Key=marker,
                    UpdateExpression=_update(["watermark = :w", *assignments], removals),
                    ConditionExpression=WATERMARK_NEVER_BACK,
                    ExpressionAttributeValues=encode(
                        {**values, ":w": epoch(state.watermark), ":n": "N", ":now": epoch(now)}
                    ),
                )
                return
            except ConditionFailedError:
                logger.info("another poll moved the watermark further", extra={"scope": scope.key})
        self._table.update(
            action,
            Key=marker,
            UpdateExpression=_update(assignments, removals),
            ExpressionAttributeValues=encode(values),
        )

    # --- baseline ----------------------------------------------------------------------
    def write_baseline(self, items: Sequence[Record], recorded_at: datetime) -> None:
        """Record jobs silently: they existed before their scope was watched."""
        table = self._table

        def send(requests: list[WriteRequestTypeDef]) -> list[Any]:
            response = table.client.batch_write_item(RequestItems={table.name: requests})
            return list(response.get("UnprocessedItems", {}).get(table.name, []))

        requests: list[WriteRequestTypeDef] = [
            {
                "PutRequest": {
                    "Item": {**key(item.arn), **encode(record_attributes(item, recorded_at))}
                }
            }
            for item in items
        ]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            table.until_processed(
                "writing the baseline", requests[start : start + BATCH_WRITE_LIMIT], send
            )

    # --- the lease --------------------------------------------------------------------------
    def claim(self, transition: Transition, run_id: str, now: float, expires_at: float) -> None:
        self._lease.claim(transition, run_id, now, expires_at)

    def record(self, transition: Transition, run_id: str, recorded_at: datetime) -> None:
        self._lease.record(transition, run_id, recorded_at)

    def release(self, transition: Transition, run_id: str, delivered: Mapping[str, str]) -> None:
        self._lease.release(transition, run_id, delivered)


def _marker(state: ScopeState) -> tuple[list[str], list[str], dict[str, object]]:
    """A marker's update: what is set, what is removed, and the values."""
    assignments = [
        "baselineStartedAt = if_not_exists(baselineStartedAt, :started)",
        "baselinePolls = :polls",
        # Once complete, a baseline stays complete.
        "baselineComplete = :complete"
        if state.baseline_complete
        else "baselineComplete = if_not_exists(baselineComplete, :complete)",
    ]
    values: dict[str, object] = {
        ":started": epoch(state.baseline_started_at),
        ":polls": state.baseline_polls,
        ":complete": state.baseline_complete,
    }
    optional = {
        "rewatched": True if state.rewatched else None,
        "checkpoint": state.checkpoint,
        "lastFullReadAt": epoch_or_none(state.last_full_read_at),
        "catchUpUntil": epoch_or_none(state.catch_up_until),
    }
    removals = [name for name, value in optional.items() if value is None and name != "rewatched"]
    for name, value in optional.items():
        if value is not None:
            assignments.append(f"{name} = :{name}")
            values[f":{name}"] = value
    return assignments, removals, values


def _update(assignments: Sequence[str], removals: Sequence[str]) -> str:
    return f"SET {', '.join(assignments)}" + (f" REMOVE {', '.join(removals)}" if removals else "")
