"""`make bench`'s organization measurement, at a few accounts: the same local AWS, worker
processes and checks as the 200-account run, so the bench cannot rot between its runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from local.bench import QUIET, worker
from local.bench_organization import (
    REGIONS,
    STEADY_REPEATS,
    largest_organization,
    measure,
    organization_report,
)

if TYPE_CHECKING:
    from local.local_aws import LocalAws


def test_an_organization_is_found_listed_and_measured_per_poll(local_aws: LocalAws) -> None:
    smaller = measure(local_aws, worker, 2, QUIET)
    org = {**measure(local_aws, worker, 4, QUIET), "smaller": smaller}

    # The accounts came from the StackSet: one ListStackInstances per poll, one AssumeRole
    # per member, in the first poll only; the steady polls' requests are theirs alone.
    first, steady = org["first"]["calls"], org["steady"]["calls"]
    assert first["cloudformation:ListStackInstances"] == 1
    assert first["sts:AssumeRole"] == 3
    assert "sts:AssumeRole" not in steady
    assert steady["personalize:ListBatchSegmentJobs"] == STEADY_REPEATS * 4 * len(REGIONS)
    assert org["mb"] == 1024  # an organization's poller
    assert org["first"]["peak_mib"] > org["first"]["before_mib"] > 0
    by_cpu, by_memory = largest_organization(org)
    assert by_cpu > 0
    assert by_memory > 0
    report = "\n".join(organization_report(org))
    assert "x 3 regions within one run" in report
    assert "first and steady polls: met." in report
