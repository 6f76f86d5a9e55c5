"""The snapshot table's item format: what a record or a scope marker holds, as DynamoDB
attribute values, and back. No I/O.

Every time is written one way, epoch seconds (a number: the conditions compare them).
Items written by earlier versions hold ISO text in `lastUpdatedDateTime` and `recordedAt`;
they are read as well.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from poller.models import Record, ScopeState

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

logger = Logger(child=True)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def encode(values: Mapping[str, object]) -> dict[str, AttributeValueTypeDef]:
    """DynamoDB attribute values for the values given; None leaves an attribute out."""
    return {
        name: _serializer.serialize(value) for name, value in values.items() if value is not None
    }


def decode(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def epoch(value: datetime) -> Decimal:
    """A time as the table keeps it: epoch seconds, to the microsecond."""
    return Decimal(str(round(value.timestamp(), 6)))


def epoch_or_none(value: datetime | None) -> Decimal | None:
    return None if value is None else epoch(value)


def time_of(value: object) -> datetime | None:
    """A stored time (epoch number, or an earlier version's ISO text); None if it is
    missing or malformed."""
    try:
        if isinstance(value, Decimal):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def record_attributes(item: Record, recorded_at: datetime) -> dict[str, object]:
    """A job's record as written silently (its baseline)."""
    return {
        "status": item.status,
        "jobName": item.job_name,
        "stuckStatus": item.stuck_status,
        "lastUpdatedDateTime": epoch_or_none(item.last_updated),
        "recordedAt": epoch(recorded_at),
    }


def record_from(arn: str, item: Mapping[str, Any]) -> Record:
    if "status" in item and text(item["status"]) is None:
        # Hand-written or older items: treat as never announced; the next record repairs it.
        logger.warning(
            "snapshot item has a malformed status; it will be repaired",
            extra={"batch_segment_job_arn": arn, "status_attribute": str(item["status"])},
        )
    return Record(
        arn,
        text(item.get("status")),
        text(item.get("jobName")),
        text(item.get("stuckStatus")),
        _delivered(item),
        last_updated=time_of(item.get("lastUpdatedDateTime")),
        recorded_at=time_of(item.get("recordedAt")),
    )


def _delivered(item: Mapping[str, Any]) -> dict[str, str]:
    delivered = item.get("delivered")
    if isinstance(delivered, dict):
        return {c: k for c, k in delivered.items() if isinstance(k, str)}
    # Items written before channels kept their own keys: one key for a set of channels.
    key = text(item.get("deliveredFor"))
    if key and isinstance(delivered, set):
        return {c: key for c in delivered if isinstance(c, str)}
    return {}


def scope_state(item: Mapping[str, Any]) -> ScopeState | None:
    """A scope's marker; None if it has no baseline start (it reads as a new scope)."""
    started = time_of(item.get("baselineStartedAt"))
    if started is None:
        return None
    polls = item.get("baselinePolls")
    return ScopeState(
        baseline_started_at=started,
        baseline_complete=item.get("baselineComplete") is True,
        baseline_polls=int(polls) if isinstance(polls, Decimal) else 0,
        checkpoint=text(item.get("checkpoint")),
        watermark=time_of(item.get("watermark")),
        last_full_read_at=time_of(item.get("lastFullReadAt")),
        rewatched=item.get("rewatched") is True,
        catch_up_until=time_of(item.get("catchUpUntil")),
    )


def watched_scopes(item: Mapping[str, Any]) -> frozenset[str] | None:
    keys = item.get("scopes")
    return frozenset(k for k in keys if isinstance(k, str)) if isinstance(keys, set) else None
