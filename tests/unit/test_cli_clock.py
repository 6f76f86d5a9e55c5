"""The command-line tool's view of AWS's clock, from the Date of an answer."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from notifier_cli.deployment import clock_offset

NOW = 1_800_000_000.25


def test_a_laptop_an_hour_behind_takes_aws_clock() -> None:
    date = formatdate(NOW, usegmt=True)
    assert clock_offset({"date": date}, NOW - 3600) == pytest.approx(3600, abs=1)


@pytest.mark.parametrize("headers", [{}, {"date": "not a date"}])
def test_without_a_readable_date_the_machines_clock_is_used(headers: dict[str, str]) -> None:
    assert clock_offset(headers, NOW) == 0.0


def test_a_skew_below_what_a_date_can_show_is_none() -> None:
    assert clock_offset({"date": formatdate(NOW, usegmt=True)}, NOW + 0.9) == 0.0
