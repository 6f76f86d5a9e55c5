"""The snapshot table's item format, without a table."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from poller.codec import (
    decode,
    encode,
    epoch,
    record_attributes,
    record_from,
    scope_state,
    time_of,
)
from poller.models import Record, ScopeState

T = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=UTC)
ARN = "arn:aws:personalize:us-east-1:123456789012:batch-segment-job/j"


def test_times_are_written_as_epoch_seconds_and_read_back_to_the_microsecond() -> None:
    assert epoch(T) == Decimal("1793525415.123456")
    assert time_of(epoch(T)) == T


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("2026-11-01T09:30:15.123456+00:00", T),  # an earlier version's ISO text
        ("2026-11-01T09:30:15.123456", T),  # without a zone: UTC
        ("yesterday", None),
        (Decimal("1e30"), None),
        (True, None),
        (None, None),
    ],
)
def test_a_stored_time_reads_as_a_time_or_none(stored: object, read: datetime | None) -> None:
    assert time_of(stored) == read


def test_a_record_round_trips_through_attribute_values() -> None:
    item = Record(ARN, "ACTIVE", "j", None, last_updated=T)

    stored = decode(encode(record_attributes(item, T)))

    assert stored["lastUpdatedDateTime"] == stored["recordedAt"] == epoch(T)
    assert record_from(ARN, stored) == Record(
        ARN, "ACTIVE", "j", None, last_updated=T, recorded_at=T
    )


def test_a_marker_without_a_baseline_start_reads_as_a_new_scope() -> None:
    assert scope_state({"checkpoint": "token"}) is None
    assert scope_state({"baselineStartedAt": epoch(T), "baselinePolls": "x"}) == ScopeState(T)
