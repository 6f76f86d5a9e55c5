"""DynamoSnapshotStore: what has been announced of each job, and where each scope stands.

Layout: partition "pk" = JOB_PARTITION; sort key "sk" = the job ARN for a job's record,
or SCOPE_PREFIX + scope key for a scope's marker (its baseline, listing checkpoint,
watermark and last full read). A full read is one Query (paged by DynamoDB's 1 MB
limit); a partial read fetches only the jobs asked for, 100 keys per BatchGetItem. Never
one request per job.

Each transition is claimed before it is published and recorded after: the claim is a
conditional write that only one poll can win while the job still holds the status that
poll diffed against, so two overlapping polls never both send the same transition. A
claim expires (its lease) so a poll that dies after claiming cannot block the job.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from job_events.vocabulary import EventType
from poller.aws import RETRY_CONFIG
from poller.core import recorded_time
from poller.errors import ClaimLostError, SnapshotError
from poller.models import Scope, ScopeMarkers, ScopeState, SnapshotItem

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        WriteRequestTypeDef,
    )

    from poller.models import Transition

logger = Logger(child=True)

PARTITION_KEY = "pk"
SORT_KEY = "sk"
JOB_PARTITION = "batch-segment-job"
SCOPE_PREFIX = "#scope#"
WATCHED_KEY = "#watched"  # the scope keys the last run watched
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
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
UNPROCESSED_ATTEMPTS = 6
CONDITION_FAILED = "ConditionalCheckFailedException"
# A claim without an expiry (hand-edited) counts as lapsed: it must never block a job.
_CLAIM_FREE = (
    "(attribute_not_exists(claimedBy) OR attribute_not_exists(claimExpiresAt)"
    " OR claimExpiresAt < :now)"
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _encode(values: Mapping[str, object]) -> dict[str, AttributeValueTypeDef]:
    """DynamoDB attribute values for the values given; None leaves an attribute out."""
    return {
        name: _serializer.serialize(value) for name, value in values.items() if value is not None
    }


def _decode(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _key(sort_key: str) -> dict[str, AttributeValueTypeDef]:
    return _encode({PARTITION_KEY: JOB_PARTITION, SORT_KEY: sort_key})


def _epoch(value: datetime) -> Decimal:
    return Decimal(str(round(value.timestamp(), 6)))


def _time(value: object) -> datetime | None:
    """A stored time (epoch number or ISO text); None if it is missing or malformed."""
    try:
        if isinstance(value, Decimal):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _snapshot_item(arn: str, item: Mapping[str, Any]) -> SnapshotItem:
    if "status" in item and _text(item["status"]) is None:
        # Hand-written or older items: treat as never announced; the next record repairs it.
        logger.warning(
            "snapshot item has a malformed status; it will be repaired",
            extra={"batch_segment_job_arn": arn, "status_attribute": str(item["status"])},
        )
    return SnapshotItem(
        arn,
        _text(item.get("status")),
        _text(item.get("jobName")),
        _text(item.get("stuckStatus")),
        _delivered(item),
        last_updated=_time(item.get("lastUpdatedDateTime")),
        recorded_at=_time(item.get("recordedAt")),
    )


def _delivered(item: Mapping[str, Any]) -> dict[str, str]:
    delivered = item.get("delivered")
    if isinstance(delivered, dict):
        return {c: k for c, k in delivered.items() if isinstance(k, str)}
    # Items written before channels kept their own keys: one key for a set of channels.
    key = _text(item.get("deliveredFor"))
    if key and isinstance(delivered, set):
        return {c: key for c in delivered if isinstance(c, str)}
    return {}


def _scope_state(item: Mapping[str, Any]) -> ScopeState | None:
    started = _time(item.get("baselineStartedAt"))
    if started is None:
        return None
    polls = item.get("baselinePolls")
    return ScopeState(
        baseline_started_at=started,
        baseline_complete=item.get("baselineComplete") is True,
        baseline_polls=int(polls) if isinstance(polls, Decimal) else 0,
        checkpoint=_text(item.get("checkpoint")),
        watermark=_time(item.get("watermark")),
        last_full_read_at=_time(item.get("lastFullReadAt")),
        rewatched=item.get("rewatched") is True,
        catch_up_until=_time(item.get("catchUpUntil")),
    )


class _Table:
    """The table's I/O: one place that retries partial batches and translates errors."""

    def __init__(self, name: str, client: DynamoDBClient) -> None:
        self.name = name
        self.client = client

    def call(self, action: str, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == CONDITION_FAILED:
                raise ClaimLostError(f"{action}: held or recorded by another poll") from err
            raise SnapshotError(f"{action} in {self.name} failed: {err}") from err
        except BotoCoreError as err:
            raise SnapshotError(f"{action} in {self.name} failed: {err}") from err

    def until_processed(
        self, action: str, pending: list[Any], send: Callable[[list[Any]], list[Any]]
    ) -> None:
        """Resend what a batch call left unprocessed (partial success), with backoff.

        botocore retries a throttled call as a whole; this retries the unprocessed part.
        """
        for attempt in range(UNPROCESSED_ATTEMPTS):
            if attempt:
                time.sleep(min(0.05 * 2**attempt, 2.0))
            pending = self.call(action, partial(send, pending))
            if not pending:
                return
        raise SnapshotError(f"{action}: {len(pending)} items stayed unprocessed in {self.name}")

    def update(self, action: str, **request: Any) -> None:
        self.call(action, lambda: self.client.update_item(TableName=self.name, **request))


class DynamoSnapshotStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = _Table(table_name, client or boto3.client("dynamodb", config=RETRY_CONFIG))
        self._lease = ClaimLease(self._table)

    # --- reads -------------------------------------------------------------------------
    def load_scopes(self, scopes: Sequence[Scope]) -> ScopeMarkers:
        by_key = {SCOPE_PREFIX + scope.key: scope for scope in scopes}
        states = {}
        watched = None
        for sort_key, item in self._get_many([*by_key, WATCHED_KEY]):
            if sort_key == WATCHED_KEY:
                keys = item.get("scopes")
                if isinstance(keys, set):
                    watched = frozenset(k for k in keys if isinstance(k, str))
            elif (state := _scope_state(item)) is not None:
                states[by_key[sort_key]] = state
        return ScopeMarkers(states, watched)

    def load(self, arns: Collection[str]) -> dict[str, SnapshotItem]:
        return {arn: _snapshot_item(arn, item) for arn, item in self._get_many(list(arns))}

    def load_all(self) -> dict[str, SnapshotItem]:
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
            item = _decode(raw)
            arn = _text(item.get(SORT_KEY))
            if arn and not arn.startswith("#"):
                records[arn] = _snapshot_item(arn, item)
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
            keys = [_key(k) for k in sort_keys[start : start + BATCH_GET_LIMIT]]
            table.until_processed("reading records", keys, send)
        for raw in found:
            item = _decode(raw)
            sort_key = _text(item.get(SORT_KEY))
            if sort_key:
                yield sort_key, item

    # --- scope markers -------------------------------------------------------------------
    def reset_scope(self, scope: Scope, fresh: ScopeState) -> None:
        """Replace the scope's marker with a fresh baseline, in one write, whatever it held
        (no watermark, checkpoint, full read or hold carries over)."""
        kept = {
            "baselineStartedAt": _epoch(fresh.baseline_started_at),
            "baselineComplete": fresh.baseline_complete,
            "baselinePolls": fresh.baseline_polls,
            "rewatched": fresh.rewatched,
        }
        dropped = [name for name in MARKER_ATTRIBUTES if name not in kept]
        self._table.update(
            f"resetting scope {scope.key}",
            Key=_key(SCOPE_PREFIX + scope.key),
            UpdateExpression="SET "
            + ", ".join(f"{name} = :{name}" for name in kept)
            + " REMOVE "
            + ", ".join(dropped),
            ExpressionAttributeValues=_encode({f":{name}": v for name, v in kept.items()}),
        )

    def save_watched(self, keys: frozenset[str]) -> None:
        """Store the watched scope keys (a string set: never empty)."""
        if not keys:
            raise ValueError("a run watching no scope has no watched set to store")
        self._table.update(
            "saving the watched scopes",
            Key=_key(WATCHED_KEY),
            UpdateExpression="SET scopes = :scopes",
            ExpressionAttributeValues=_encode({":scopes": set(keys)}),
        )

    def save_scope(self, scope: Scope, state: ScopeState, now: datetime) -> None:
        """Store where the scope stands. Its watermark never moves back and its baseline,
        once complete, stays complete, whatever order overlapping polls finish in."""
        assignments = [
            "baselineStartedAt = if_not_exists(baselineStartedAt, :started)",
            "baselinePolls = :polls",
            "baselineComplete = :complete"
            if state.baseline_complete
            else "baselineComplete = if_not_exists(baselineComplete, :complete)",
        ]
        removals = []
        values: dict[str, object] = {
            ":started": _epoch(state.baseline_started_at),
            ":polls": state.baseline_polls,
            ":complete": state.baseline_complete,
        }
        if state.rewatched:
            assignments.append("rewatched = :rewatched")
            values[":rewatched"] = True
        for attribute, value in (
            ("checkpoint", state.checkpoint),
            (
                "lastFullReadAt",
                _epoch(state.last_full_read_at) if state.last_full_read_at else None,
            ),
            ("catchUpUntil", _epoch(state.catch_up_until) if state.catch_up_until else None),
        ):
            if value is None:
                removals.append(attribute)
            else:
                assignments.append(f"{attribute} = :{attribute}")
                values[f":{attribute}"] = value
        request: dict[str, Any] = {
            "Key": _key(SCOPE_PREFIX + scope.key),
            "UpdateExpression": f"SET {', '.join(assignments)}"
            + (f" REMOVE {', '.join(removals)}" if removals else ""),
        }
        action = f"saving scope {scope.key}"
        if state.watermark is not None:
            with_watermark = {
                "Key": request["Key"],
                "UpdateExpression": request["UpdateExpression"].replace(
                    "SET ", "SET watermark = :w, ", 1
                ),
                # Another poll's later watermark wins; the same one is written again (one
                # request); a malformed (not a number) one, or one later than this poll's
                # clock, is replaced.
                "ConditionExpression": "attribute_not_exists(watermark) OR "
                "NOT attribute_type(watermark, :n) OR watermark <= :w OR watermark > :now",
                "ExpressionAttributeValues": _encode(
                    {**values, ":w": _epoch(state.watermark), ":n": "N", ":now": _epoch(now)}
                ),
            }
            try:
                self._table.update(action, **with_watermark)
                return
            except ClaimLostError:
                logger.info("another poll moved the watermark further", extra={"scope": scope.key})
        self._table.update(action, **request, ExpressionAttributeValues=_encode(values))

    # --- baseline ----------------------------------------------------------------------
    def write_baseline(self, items: Sequence[SnapshotItem], recorded_at: datetime) -> None:
        """Record jobs silently: they existed before their scope was watched."""
        table = self._table

        def send(requests: list[WriteRequestTypeDef]) -> list[Any]:
            response = table.client.batch_write_item(RequestItems={table.name: requests})
            return list(response.get("UnprocessedItems", {}).get(table.name, []))

        requests: list[WriteRequestTypeDef] = [
            {
                "PutRequest": {
                    "Item": {
                        **_key(item.arn),
                        **_encode(
                            {
                                "status": item.status,
                                "jobName": item.job_name,
                                "stuckStatus": item.stuck_status,
                                "lastUpdatedDateTime": _iso(item.last_updated),
                                "recordedAt": _iso(recorded_at),
                            }
                        ),
                    }
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


class ClaimLease:
    """The right to announce one transition: taken by a conditional write that only one
    poll can win, and ended by recording what was announced or by releasing it."""

    def __init__(self, table: _Table) -> None:
        self._table = table

    def claim(self, transition: Transition, run_id: str, now: float, expires_at: float) -> None:
        """Take the right to publish `transition`; ClaimLostError if another poll has it."""
        previous = transition.previous_status
        values: dict[str, object] = {
            ":run": run_id,
            ":now": Decimal(str(now)),
            ":expires": Decimal(str(expires_at)),
        }
        if transition.event_type is EventType.JOB_STUCK:
            state = (
                "#s = :previous AND (attribute_not_exists(stuckStatus) OR stuckStatus <> :previous)"
            )
            values[":previous"] = previous
        elif previous is None:
            state = "(attribute_not_exists(#s) OR NOT attribute_type(#s, :string))"
            values[":string"] = "S"
        else:
            state = "#s = :previous"
            values[":previous"] = previous
        self._table.update(
            f"claiming {transition.job.arn}",
            Key=_key(_arn(transition)),
            UpdateExpression="SET claimedBy = :run, claimExpiresAt = :expires",
            ConditionExpression=f"{state} AND {_CLAIM_FREE}",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_encode(values),
        )

    def record(self, transition: Transition, run_id: str, recorded_at: datetime) -> None:
        """After a publish: store what was announced and drop the claim."""
        job = transition.job
        stuck = job.status if transition.event_type is EventType.JOB_STUCK else None
        fields = {
            "#s": job.status,
            "jobName": job.name,
            # Never later than this poll: a summary dated in the future would make every
            # real later update look older than the record.
            "lastUpdatedDateTime": _iso(recorded_time(job.last_updated_time, recorded_at)),
            "stuckStatus": stuck,
            "recordedAt": _iso(recorded_at),
        }
        assignments = [
            f"{name} = :v{i}" for i, (name, v) in enumerate(fields.items()) if v is not None
        ]
        removals = [name for name, value in fields.items() if value is None]
        removals += ["claimedBy", "claimExpiresAt", "deliveredFor", "delivered"]
        values = {f":v{i}": v for i, v in enumerate(fields.values()) if v is not None}
        self._table.update(
            f"recording {job.arn}",
            Key=_key(_arn(transition)),
            UpdateExpression=f"SET {', '.join(assignments)} REMOVE {', '.join(removals)}",
            ConditionExpression="claimedBy = :run",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_encode({**values, ":run": run_id}),
        )

    def release(self, transition: Transition, run_id: str, delivered: Mapping[str, str]) -> None:
        """After a failed delivery: drop the claim so the next poll tries again, noting what
        each channel did receive so it is not sent twice."""
        if delivered:
            update = "SET delivered = :delivered REMOVE claimedBy, claimExpiresAt, deliveredFor"
            values: dict[str, object] = {":delivered": dict(delivered)}
        else:
            update, values = "REMOVE claimedBy, claimExpiresAt, deliveredFor, delivered", {}
        self._table.update(
            f"releasing {transition.job.arn}",
            Key=_key(_arn(transition)),
            UpdateExpression=update,
            ConditionExpression="claimedBy = :run",
            ExpressionAttributeValues=_encode({**values, ":run": run_id}),
        )


def _iso(value: datetime | None) -> str | None:
    # One fixed format in UTC, so stored times compare correctly as strings too.
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def _arn(transition: Transition) -> str:
    assert transition.job.arn is not None, "jobs without an ARN are never diffed"
    return transition.job.arn
