"""The claim lease: the right to announce one transition, taken by a conditional write that
only one poll can win while the job still holds the status that poll compared with, and
ended by recording what was announced or by releasing it. A claim expires, so a poll that
dies after claiming cannot block the job.

Each condition is named where it is built, and this is the only place where a condition
that fails becomes ClaimLostError.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from job_events.vocabulary import EventType
from poller.codec import encode, epoch, epoch_or_none
from poller.errors import ClaimLostError
from poller.rules import recorded_time
from poller.table import ConditionFailedError, key

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from poller.models import Transition
    from poller.table import Table

# Nobody holds the claim, or its lease has lapsed. A claim without an expiry (hand-edited)
# counts as lapsed: it must never block a job.
CLAIM_FREE = (
    "(attribute_not_exists(claimedBy) OR attribute_not_exists(claimExpiresAt)"
    " OR claimExpiresAt < :now)"
)
HELD_BY_THIS_RUN = "claimedBy = :run"
# The job still holds the status the poll compared with ...
STATUS_UNCHANGED = "#s = :previous"
# ... or, for a job first seen, has no status (none, or a hand-edited one that is not text).
NEVER_ANNOUNCED = "(attribute_not_exists(#s) OR NOT attribute_type(#s, :string))"
# ... and, for a stuck job, was not yet reported stuck in it.
NOT_YET_STUCK = "(attribute_not_exists(stuckStatus) OR stuckStatus <> :previous)"
CLAIM_ATTRIBUTES = ("claimedBy", "claimExpiresAt", "deliveredFor", "delivered")


def _unchanged(transition: Transition) -> tuple[str, dict[str, object]]:
    """The condition that the job is as the poll saw it, with its values."""
    previous = transition.previous_status
    if transition.event_type is EventType.JOB_STUCK:
        return f"{STATUS_UNCHANGED} AND {NOT_YET_STUCK}", {":previous": previous}
    if previous is None:
        return NEVER_ANNOUNCED, {":string": "S"}
    return STATUS_UNCHANGED, {":previous": previous}


class ClaimLease:
    def __init__(self, table: Table) -> None:
        self._table = table

    def claim(self, transition: Transition, run_id: str, now: float, expires_at: float) -> None:
        """Take the right to publish `transition`; ClaimLostError if another poll has it."""
        unchanged, values = _unchanged(transition)
        self._conditional(
            f"claiming {transition.job.arn}",
            Key=key(_arn(transition)),
            UpdateExpression="SET claimedBy = :run, claimExpiresAt = :expires",
            ConditionExpression=f"{unchanged} AND {CLAIM_FREE}",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=encode(
                {
                    **values,
                    ":run": run_id,
                    ":now": Decimal(str(now)),
                    ":expires": Decimal(str(expires_at)),
                }
            ),
        )

    def record(self, transition: Transition, run_id: str, recorded_at: datetime) -> None:
        """After a publish: store what was announced and drop the claim."""
        job = transition.job
        fields = {
            "#s": job.status,
            "jobName": job.name,
            # Never later than this poll: a summary dated in the future would make every
            # real later update look older than the record.
            "lastUpdatedDateTime": epoch_or_none(recorded_time(job.last_updated_time, recorded_at)),
            "stuckStatus": job.status if transition.event_type is EventType.JOB_STUCK else None,
            "recordedAt": epoch(recorded_at),
        }
        kept = {name: value for name, value in fields.items() if value is not None}
        dropped = [name for name, value in fields.items() if value is None]
        names = {name: f":v{index}" for index, name in enumerate(kept)}
        self._conditional(
            f"recording {job.arn}",
            Key=key(_arn(transition)),
            UpdateExpression="SET "
            + ", ".join(f"{name} = {value}" for name, value in names.items())
            + " REMOVE "
            + ", ".join([*dropped, *CLAIM_ATTRIBUTES]),
            ConditionExpression=HELD_BY_THIS_RUN,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=encode(
                {**{names[name]: value for name, value in kept.items()}, ":run": run_id}
            ),
        )

    def release(self, transition: Transition, run_id: str, delivered: Mapping[str, str]) -> None:
        """After a failed delivery: drop the claim so the next poll tries again, noting what
        each channel did receive so it is not sent twice."""
        values: dict[str, object] = {":run": run_id}
        if delivered:
            update = "SET delivered = :delivered REMOVE claimedBy, claimExpiresAt, deliveredFor"
            values[":delivered"] = dict(delivered)
        else:
            update = "REMOVE " + ", ".join(CLAIM_ATTRIBUTES)
        self._conditional(
            f"releasing {transition.job.arn}",
            Key=key(_arn(transition)),
            UpdateExpression=update,
            ConditionExpression=HELD_BY_THIS_RUN,
            ExpressionAttributeValues=encode(values),
        )

    def _conditional(self, action: str, **request: object) -> None:
        try:
            self._table.update(action, **request)
        except ConditionFailedError as err:
            raise ClaimLostError(f"{action}: held or recorded by another poll") from err


def _arn(transition: Transition) -> str:
    assert transition.job.arn is not None, "jobs without an ARN are never diffed"
    return transition.job.arn
