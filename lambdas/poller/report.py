"""What a finished poll tells: its metrics, its summary line, and whether it failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from poller.errors import PublishFailedError, ScopesUnreachableError, SnapshotError

if TYPE_CHECKING:
    from collections.abc import Collection

    from aws_lambda_powertools import Metrics

    from poller.poll import PollResult

SCOPE_ERRORS_METRIC = "ScopeErrors"  # 1 per unreachable scope and run
SCOPE_DIMENSION = "scope"  # "<account>/<region>"


def add_metrics(metrics: Metrics, result: PollResult, duration_ms: float) -> None:
    for name, value in (
        ("JobsSeen", result.jobs_seen),
        ("JobsChecked", result.jobs_checked),
        ("Pages", result.pages),
        ("Transitions", len(result.transitions)),
        ("StuckJobs", result.stuck),
        ("Published", result.published),
        ("PublishFailures", result.publish_failures),
        ("RecordFailures", result.record_failures),
        ("TransitionsDeferred", result.deferred),
        ("EnrichmentDropped", result.enrichment_dropped),
        ("SummariesSkipped", sum(result.skipped.values())),
        ("ListingIncomplete", int(not result.listing_complete)),
        ("BaselinePolls", result.baseline_polls),
        ("CatchUpRuns", len(result.catch_up)),
        # Every unreachable scope in one number, for one alarm however many scopes there
        # are; ScopeErrors (by scope) says which.
        ("UnreachableScopes", len(result.unreachable)),
        # 1 when the member accounts are an earlier answer (ListStackInstances failed).
        ("DiscoveryStale", int(result.discovery_stale is not None)),
    ):
        metrics.add_metric(name, MetricUnit.Count, value)
    metrics.add_metric("PollDuration", MetricUnit.Milliseconds, duration_ms)
    for place in result.unreachable:
        # Its own dimension, so each scope's alarm names the account and region.
        with single_metric(
            SCOPE_ERRORS_METRIC,
            MetricUnit.Count,
            1,
            namespace=metrics.namespace,
            default_dimensions={**metrics.default_dimensions, SCOPE_DIMENSION: place},
        ) as metric:
            metric.add_dimension("service", metrics.service or "")
    # The heartbeat counts only polls that finished their work: everything listed,
    # nothing deferred, nothing lost to another poll. An unreachable scope has its own
    # alarm and keeps no other scope from its heartbeat.
    if result.clean:
        metrics.add_metric("PollSucceeded", MetricUnit.Count, 1)


def summary(result: PollResult) -> dict[str, Any]:
    return {
        "firstRun": result.first_run,
        "jobsSeen": result.jobs_seen,
        "pages": result.pages,
        "fullReconcile": result.full_read,
        "jobsChecked": result.jobs_checked,
        "listingComplete": result.listing_complete,
        "transitions": len(result.transitions),
        "published": result.published,
        "publishFailures": result.publish_failures,
        "recordFailures": result.record_failures,
        "claimsLost": result.claims_lost,
        "deferred": result.deferred,
        "enrichmentDropped": result.enrichment_dropped,
        "skipped": {outcome.value: count for outcome, count in result.skipped.items()},
        "baselinePolls": result.baseline_polls,
        "storm": result.storm,
        "unreachableScopes": result.unreachable,
        "catchUp": [scope.key for scope in result.catch_up],
        "scopesHeld": result.scopes_held,
        "scopesRewatched": result.scopes_rewatched,
        "scopesDropped": result.scopes_dropped,
        "stormScopes": result.storm_places,
        "discoveryStale": result.discovery_stale,
    }


def raise_on_failure(result: PollResult, places: Collection[str]) -> None:
    """Fail the invocation so the Errors metric and its alarm see it. `places`: the run's
    scopes' 'account/region' (several scopes share one with solution versions)."""
    if result.publish_failures:
        raise PublishFailedError(result.publish_failures, len(result.transitions))
    if result.record_failures:
        raise SnapshotError(
            f"{result.record_failures} transitions or baseline writes could not be claimed "
            "or recorded; a later poll does them"
        )
    if places and set(places) <= result.unreachable.keys():
        raise ScopesUnreachableError(result.unreachable)
