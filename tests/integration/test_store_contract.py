"""The snapshot store's contract: every scenario runs against DynamoSnapshotStore (moto, the
table's keys from the synthesized template) and against tests.fakes.MemoryStore, and both
must give the same results. This pins that the fast unit tests' fake keeps the real
store's conditions: which claims win, what a record or a release leaves, how baselines
and scope markers are written, and that a watermark never moves back."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from job_events.vocabulary import EventType
from poller.errors import ClaimLostError
from poller.models import JobSummary, Record, Scope, ScopeState, Transition
from poller.snapshot_store import DynamoSnapshotStore
from poller.table import JOB_PARTITION, PARTITION_KEY, SCOPE_PREFIX, SORT_KEY
from tests.fakes import MemoryStore, ScriptedClock, job_arn, solution_version_arn
from tests.integration.conftest import observer_client

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.local_aws import LocalAws
    from local.template import PollerSpec
    from poller.ports import SnapshotStore

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)  # the clock of the polls that save scope states
ARN = job_arn("contract")
OTHER = job_arn("contract-other")
SCOPE = Scope(None, "123456789012", "us-east-1")
VERSION_SCOPE = Scope(solution_version_arn("segments"), "123456789012", "us-east-1")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def job(
    status: str | None, minutes: float = 0, name: str = "contract", arn: str = ARN
) -> JobSummary:
    return JobSummary(arn=arn, name=name, status=status, last_updated_time=at(minutes))


def moved(previous: str | None, status: str, minutes: float = 0) -> Transition:
    kind = {"ACTIVE": EventType.JOB_SUCCEEDED, "CREATE FAILED": EventType.JOB_FAILED}.get(
        status, EventType.JOB_STATUS_CHANGED
    )
    return Transition(kind, job(status, minutes), previous)


def stuck(status: str, minutes: float = 0) -> Transition:
    return Transition(EventType.JOB_STUCK, job(status, minutes), status)


class Subject:
    """A store under contract, and how a person or an older version might have edited
    what it holds (the store's own methods never write such items)."""

    def __init__(
        self,
        name: str,
        store: SnapshotStore,
        hand_edit_status: Callable[[str, Any], None],
        hand_edit_watermark: Callable[[Scope, Any], None],
        hand_edit_claim: Callable[[str, str], None],
    ) -> None:
        self.name = name
        self.store = store
        self.hand_edit_status = hand_edit_status
        self.hand_edit_watermark = hand_edit_watermark
        self.hand_edit_claim = hand_edit_claim  # claimedBy, without claimExpiresAt

    def claims(self, transition: Transition, run_id: str, now: float = 1000.0) -> bool:
        """Whether the claim wins (its lease ends 100 s after `now`)."""
        try:
            self.store.claim(transition, run_id, now, now + 100)
        except ClaimLostError:
            return False
        return True

    def keeps(self, action: Callable[[], None]) -> bool:
        """Whether a record or release goes through (False: the claim was not this run's)."""
        try:
            action()
        except ClaimLostError:
            return False
        return True

    def record(self, arn: str = ARN) -> Record | None:
        return self.store.load([arn]).get(arn)

    def scope(self, scope: Scope = SCOPE) -> ScopeState | None:
        return self.store.load_scopes([scope]).states.get(scope)


def dynamo_subject(local_aws: LocalAws, spec: PollerSpec) -> Subject:
    client = observer_client("dynamodb")
    table = f"contract-{uuid.uuid4().hex[:12]}"
    client.create_table(TableName=table, **spec.table)
    serialize = TypeSerializer().serialize

    def key(sort_key: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": sort_key}}

    def hand_edit(sort_key: str, attribute: str, value: Any) -> None:
        client.update_item(
            TableName=table,
            Key=key(sort_key),
            UpdateExpression="SET #a = :v",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": serialize(value)},
        )

    def watermark(scope: Scope, value: Any) -> None:
        stored = Decimal(str(value.timestamp())) if isinstance(value, datetime) else value
        hand_edit(SCOPE_PREFIX + scope.key, "watermark", stored)

    return Subject(
        "dynamo",
        DynamoSnapshotStore(table, client),
        lambda arn, status: hand_edit(arn, "status", status),
        watermark,
        lambda arn, run_id: hand_edit(arn, "claimedBy", run_id),
    )


def memory_subject() -> Subject:
    store = MemoryStore(ScriptedClock(T0))

    def status(arn: str, value: Any) -> None:
        store.items[arn].status = value

    def watermark(scope: Scope, value: Any) -> None:
        store.scopes[scope] = replace(store.scopes[scope], watermark=value)

    def claim(arn: str, run_id: str) -> None:
        store.items[arn].claimed_by, store.items[arn].claim_expires_at = run_id, None

    return Subject("memory", store, status, watermark, claim)


@pytest.fixture(params=["dynamo", "memory"])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "memory":
        return memory_subject()
    local_aws: LocalAws = request.getfixturevalue("local_aws")
    spec: PollerSpec = request.getfixturevalue("spec")
    return dynamo_subject(local_aws, spec)


def recorded(subject: Subject, transition: Transition, recorded_at: datetime = T0) -> None:
    """A transition claimed, announced and recorded by one run."""
    assert subject.claims(transition, "recorder")
    subject.store.record(transition, "recorder", recorded_at)


# --- claims --------------------------------------------------------------------------------


def test_a_new_job_is_claimed_once(subject: Subject) -> None:
    assert subject.claims(moved(None, "PENDING"), "run-a")
    assert not subject.claims(moved(None, "PENDING"), "run-b")
    assert not subject.claims(moved(None, "PENDING"), "run-a"), "not even by the same run"
    assert subject.record() == Record(ARN, None), "a claim alone announces nothing"


def test_a_moved_job_is_claimed_only_from_the_status_it_was_diffed_against(
    subject: Subject,
) -> None:
    recorded(subject, moved(None, "IN PROGRESS"))

    assert not subject.claims(moved(None, "ACTIVE"), "run-a"), "not new: it has a status"
    assert not subject.claims(moved("PENDING", "ACTIVE"), "run-a"), "another poll moved it"
    assert subject.claims(moved("IN PROGRESS", "ACTIVE"), "run-a")
    assert not subject.claims(moved("IN PROGRESS", "ACTIVE"), "run-b")


def test_a_stuck_job_is_claimed_once_per_status(subject: Subject) -> None:
    recorded(subject, moved(None, "IN PROGRESS"))

    assert not subject.claims(stuck("PENDING"), "run-a"), "stuck in a status it left"
    recorded(subject, stuck("IN PROGRESS"))
    assert not subject.claims(stuck("IN PROGRESS"), "run-a"), "already announced stuck"
    recorded(subject, moved("IN PROGRESS", "ACTIVE"))
    assert subject.record() == Record(ARN, "ACTIVE", "contract", last_updated=T0, recorded_at=T0), (
        "a move forgets the stuck status"
    )


def test_a_claim_held_by_another_run_wins_only_once_its_lease_lapses(subject: Subject) -> None:
    recorded(subject, moved(None, "PENDING"))
    assert subject.claims(moved("PENDING", "ACTIVE"), "dead-run", now=1000.0)  # until 1100

    assert not subject.claims(moved("PENDING", "ACTIVE"), "run-b", now=1099.0)
    assert subject.claims(moved("PENDING", "ACTIVE"), "run-b", now=1101.0)
    assert not subject.keeps(
        lambda: subject.store.record(moved("PENDING", "ACTIVE"), "dead-run", T0)
    ), "the run whose lease lapsed no longer holds the job"
    assert subject.keeps(lambda: subject.store.record(moved("PENDING", "ACTIVE"), "run-b", T0))
    assert subject.record() == Record(ARN, "ACTIVE", "contract", last_updated=T0, recorded_at=T0)


# --- record and release --------------------------------------------------------------------


def test_a_claim_without_an_expiry_counts_as_lapsed(subject: Subject) -> None:
    recorded(subject, moved(None, "PENDING"))
    subject.hand_edit_claim(ARN, "a-hand-edit")

    assert subject.claims(moved("PENDING", "ACTIVE"), "next-run")


def test_a_record_keeps_what_was_announced_and_ends_the_claim(subject: Subject) -> None:
    assert not subject.keeps(
        lambda: subject.store.record(moved(None, "PENDING"), "run-a", at(5))
    ), "no claim, no record"
    assert subject.claims(moved(None, "PENDING", minutes=90), "run-a")

    subject.store.record(moved(None, "PENDING", minutes=90), "run-a", at(5))

    # The job's update time is kept, but never later than the poll that recorded it.
    assert subject.record() == Record(
        ARN, "PENDING", "contract", last_updated=at(5), recorded_at=at(5)
    )
    assert subject.claims(moved("PENDING", "ACTIVE"), "run-b"), "the claim ended"


def test_a_release_ends_the_claim_and_keeps_what_each_channel_got(subject: Subject) -> None:
    recorded(subject, moved(None, "IN PROGRESS"))
    transition = moved("IN PROGRESS", "ACTIVE")
    assert subject.claims(transition, "run-a")

    subject.store.release(transition, "run-a", {"sns": transition.key, "people": transition.key})

    record = subject.record()
    assert record is not None
    assert record.status == "IN PROGRESS"
    assert record.delivered == {"sns": "JOB_SUCCEEDED:ACTIVE", "people": "JOB_SUCCEEDED:ACTIVE"}
    assert not subject.keeps(lambda: subject.store.release(transition, "run-a", {}))
    assert subject.claims(transition, "run-b"), "free at once for the next poll"
    subject.store.release(transition, "run-b", {})
    assert subject.store.load([ARN])[ARN].delivered == {}
    assert subject.claims(transition, "run-c")
    subject.store.release(transition, "run-c", {"events": transition.key})
    assert subject.claims(transition, "run-d")
    subject.store.record(transition, "run-d", T0)
    assert subject.record() == Record(ARN, "ACTIVE", "contract", last_updated=T0, recorded_at=T0), (
        "a record forgets what channels were ahead"
    )


# --- baseline and reads ---------------------------------------------------------------------


def test_baseline_writes_are_read_back_and_replace_what_was_there(subject: Subject) -> None:
    recorded(subject, moved(None, "PENDING"))
    assert subject.claims(moved("PENDING", "ACTIVE"), "run-a")
    baseline = [
        Record(ARN, "ACTIVE", "contract", last_updated=at(-60)),
        Record(OTHER, "IN PROGRESS", None, stuck_status="IN PROGRESS", last_updated=None),
    ]

    subject.store.write_baseline(baseline, at(1))

    expected = {item.arn: replace(item, recorded_at=at(1)) for item in baseline}
    assert subject.store.load([ARN, OTHER, job_arn("unknown")]) == expected
    assert subject.store.load_all() == expected
    assert subject.store.load([]) == {}
    assert subject.claims(moved("ACTIVE", "CREATE FAILED"), "run-b"), "the old claim is gone"


def test_scope_markers_are_not_records(subject: Subject) -> None:
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(1)), NOW)
    subject.store.write_baseline([Record(ARN, "ACTIVE")], T0)

    assert set(subject.store.load_all()) == {ARN}


def test_a_hand_edited_status_reads_as_none_and_is_repaired_as_a_new_job(
    subject: Subject,
) -> None:
    subject.store.write_baseline([Record(ARN, "ACTIVE", "contract")], T0)
    subject.hand_edit_status(ARN, 3)

    assert subject.record() == Record(ARN, None, "contract", recorded_at=T0)
    assert not subject.claims(moved("ACTIVE", "CREATE FAILED"), "run-a")
    recorded(subject, moved(None, "ACTIVE"), at(2))
    assert subject.record() == Record(ARN, "ACTIVE", "contract", last_updated=T0, recorded_at=at(2))


# --- scope markers -------------------------------------------------------------------------


def test_a_scope_state_is_saved_and_loaded(subject: Subject) -> None:
    state = ScopeState(
        baseline_started_at=T0,
        baseline_polls=1,
        checkpoint="eyJvZmZzZXQiOiAyMDB9",
        watermark=at(-5),
        last_full_read_at=at(1),
    )

    subject.store.save_scope(SCOPE, state, NOW)

    assert subject.scope() == state
    assert subject.store.load_scopes([SCOPE, VERSION_SCOPE]).states == {SCOPE: state}
    subject.store.save_scope(VERSION_SCOPE, ScopeState(baseline_started_at=at(30)), NOW)
    assert subject.scope(VERSION_SCOPE) == ScopeState(baseline_started_at=at(30))
    assert subject.scope() == state, "each scope has its own marker"


def test_a_reset_scope_starts_again_fresh_whatever_its_marker_held(subject: Subject) -> None:
    subject.store.save_scope(
        SCOPE,
        ScopeState(
            baseline_started_at=T0,
            baseline_complete=True,
            baseline_polls=3,
            checkpoint="token",
            watermark=at(5),
            last_full_read_at=at(6),
            catch_up_until=at(7),
        ),
        NOW,
    )
    fresh = ScopeState(baseline_started_at=NOW, rewatched=True)

    subject.store.reset_scope(SCOPE, fresh)

    assert subject.scope() == fresh
    subject.store.save_scope(SCOPE, replace(fresh, baseline_polls=1), NOW)
    assert subject.scope() == replace(fresh, baseline_polls=1), "its baseline start stays"


def test_the_watched_scopes_are_saved_and_read_with_the_markers(subject: Subject) -> None:
    assert subject.store.load_scopes([SCOPE]).watched is None, "no run has said"

    subject.store.save_watched(frozenset({SCOPE.key, VERSION_SCOPE.key}))

    assert subject.store.load_scopes([SCOPE]).watched == frozenset({SCOPE.key, VERSION_SCOPE.key})
    subject.store.save_watched(frozenset({SCOPE.key}))
    assert subject.store.load_scopes([]).watched == frozenset({SCOPE.key})
    with pytest.raises(ValueError, match="no scope"):
        subject.store.save_watched(frozenset())


def test_a_scope_moves_on_but_its_baseline_start_and_completion_stay(subject: Subject) -> None:
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, checkpoint="page-3"), NOW)
    subject.store.save_scope(
        SCOPE,
        ScopeState(
            baseline_started_at=at(60),  # an overlapping first run that began later
            baseline_complete=True,
            baseline_polls=2,
            last_full_read_at=at(61),
        ),
        NOW,
    )
    done = ScopeState(
        baseline_started_at=T0, baseline_complete=True, baseline_polls=2, last_full_read_at=at(61)
    )
    assert subject.scope() == done, "the checkpoint is gone, the start is the first one"

    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, baseline_polls=5), NOW)

    assert subject.scope() == replace(done, baseline_polls=5, last_full_read_at=None), (
        "completion never reverts"
    )


def test_the_watermark_never_moves_back(subject: Subject) -> None:
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(10)), NOW)
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(5)), NOW)
    assert subject.scope() == ScopeState(baseline_started_at=T0, watermark=at(10))

    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, baseline_polls=1), NOW)
    assert subject.scope() == ScopeState(
        baseline_started_at=T0, baseline_polls=1, watermark=at(10)
    ), "a state without a watermark keeps the stored one"

    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(10)), NOW)
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(11)), NOW)
    assert subject.scope() == ScopeState(baseline_started_at=T0, watermark=at(11))


def test_a_malformed_watermark_reads_as_none_and_is_rewritten(subject: Subject) -> None:
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(10)), NOW)
    subject.hand_edit_watermark(SCOPE, "soon")

    assert subject.scope() == ScopeState(baseline_started_at=T0)
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(5)), NOW)
    assert subject.scope() == ScopeState(baseline_started_at=T0, watermark=at(5))


def test_a_watermark_later_than_the_polls_clock_is_rewritten(subject: Subject) -> None:
    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(10)), NOW)
    subject.hand_edit_watermark(SCOPE, NOW + timedelta(days=365))

    subject.store.save_scope(SCOPE, ScopeState(baseline_started_at=T0, watermark=at(20)), NOW)

    assert subject.scope() == ScopeState(baseline_started_at=T0, watermark=at(20))
