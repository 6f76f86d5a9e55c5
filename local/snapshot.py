"""The snapshot table seen from outside the poller: what it holds, and the scope markers'
times set as if time had passed. For tests and the benchmark, which must choose the kind
of poll they measure rather than leave it to the wall clock.

The layout is the store's own (poller.snapshot_store): job records and, under
SCOPE_PREFIX, one marker per scope.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from poller.scanning import FULL_READ_EVERY
from poller.table import JOB_PARTITION, PARTITION_KEY, SCOPE_PREFIX, SORT_KEY

if TYPE_CHECKING:
    from collections.abc import Iterator

# A marker whose last full read is this old makes the next poll of its scope a full read.
FULL_READ_OVERDUE = FULL_READ_EVERY + timedelta(hours=1)


def items(dynamodb: Any, table_name: str) -> Iterator[dict[str, Any]]:
    """Every item of the table, each attribute as its Python value (numbers as Decimal,
    maps as dicts, string sets as sets)."""
    plain = TypeDeserializer().deserialize
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name):
        for item in page["Items"]:
            yield {name: plain(value) for name, value in item.items()}


def job_records(dynamodb: Any, table_name: str) -> dict[str, dict[str, Any]]:
    """Job records by ARN: what the poller remembers of each job."""
    return {
        item[SORT_KEY]: item
        for item in items(dynamodb, table_name)
        if item[PARTITION_KEY] == JOB_PARTITION and not item[SORT_KEY].startswith("#")
    }


def scope_markers(dynamodb: Any, table_name: str) -> dict[str, dict[str, Any]]:
    """Scope markers by scope key ("*" for every job, else a solution version ARN)."""
    return {
        item[SORT_KEY].removeprefix(SCOPE_PREFIX): item
        for item in items(dynamodb, table_name)
        if item[SORT_KEY].startswith(SCOPE_PREFIX)
    }


def set_scope_times(dynamodb: Any, table_name: str, **times: datetime) -> int:
    """Set times (e.g. lastFullReadAt, baselineStartedAt) in every scope marker, stored as
    the store stores them (epoch seconds); returns how many markers were changed."""
    names = {f"#a{i}": name for i, name in enumerate(times)}
    values = {f":v{i}": {"N": str(when.timestamp())} for i, when in enumerate(times.values())}
    update = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(times)))
    markers = scope_markers(dynamodb, table_name)
    for key in markers:
        dynamodb.update_item(
            TableName=table_name,
            Key={PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": SCOPE_PREFIX + key}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    return len(markers)


def make_full_read_due(dynamodb: Any, table_name: str) -> int:
    """Make the next poll of every scope read every record, as the hourly one does."""
    return set_scope_times(
        dynamodb, table_name, lastFullReadAt=datetime.now(UTC) - FULL_READ_OVERDUE
    )
