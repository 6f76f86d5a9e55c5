"""The tool's commands: `poll` runs the deployed function's poll (for real, or as a dry run),
`status` compares each job's live status with what the notifier recorded."""

from __future__ import annotations

import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from notifier_cli.deployment import find_deployment
from notifier_cli.errors import CliError, ExitCode
from notifier_cli.preview import ReadOnlyStore, printing
from poller import wiring
from poller.errors import JobListingError
from poller.poll import poll
from poller.report import raise_on_failure
from poller.rules import latest_per_job

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    import boto3

    from poller.models import JobSummary, Record
    from poller.poll import PollResult


def poll_command(args: argparse.Namespace, session: boto3.session.Session) -> int:
    deployment = find_deployment(session, args.stack, args.function)
    settings = deployment.settings
    source, store, deployed = wiring.adapters(
        settings, deployment.own_account, deployment.partition, session
    )
    # As long as the deployed function has for a run, on AWS's clock: a laptop that sleeps
    # loses that time as Lambda would, and claims are leased on the scheduled poll's clock.
    deadline = deployment.clock() + (settings.run_seconds or deployment.timeout_seconds)
    run = replace(
        wiring.poll_run(
            settings,
            deployment.own_account,
            f"notifier-cli-{uuid.uuid4()}",
            time_left=lambda: deadline - deployment.clock(),
            members=wiring.discovery(settings, session),
        ),
        now=datetime.fromtimestamp(deployment.clock(), UTC),
        clock=deployment.clock,
        catch_up_seconds=None,  # the tool starts no catch-up run: the schedule's runs do
    )
    if args.apply:
        result = poll(source, store, deployed, run)
        print(
            f"polled {result.jobs_seen} jobs for {deployment.function_name}: "
            f"{len(result.transitions)} transitions, {result.published} published, "
            f"{result.publish_failures} failed"
        )
    else:
        print(f"dry run of {deployment.function_name}: what each channel would receive")
        shown = [printing(channel, sys.stdout) for channel in deployed]
        result = poll(source, ReadOnlyStore(store), shown, run)
        print(
            f"{result.jobs_seen} jobs, {len(result.transitions)} to announce; "
            "nothing was published or recorded"
        )
    _print_notes(result)
    # The function's own verdict: what fails its invocation fails the command.
    raise_on_failure(result, {scope.place for scope in run.scopes})
    if result.claims_lost:
        raise CliError(
            f"{result.claims_lost} transitions were claimed by another poll, or this run's "
            "claim lapsed (a slow send, or a machine that slept): that poll announces them, "
            "not this one",
            ExitCode.CLAIM_LOST,
        )
    return ExitCode.OK


def _print_notes(result: PollResult) -> None:
    notes = [
        (
            result.first_run,
            "a first run is unfinished: jobs that existed before watching began are recorded "
            "silently, not announced",
        ),
        (result.storm, "storm: people get one digest instead of a message each"),
        (
            not result.listing_complete,
            "the listing stopped at the function's time limit; the next poll continues it",
        ),
        (result.deferred, f"{result.deferred} transitions are left for the next poll"),
        (
            result.claims_lost,
            f"{result.claims_lost} transitions were being announced by another poll",
        ),
    ]
    notes += [
        (True, f"scope {place} could not be listed: {why}")
        for place, why in result.unreachable.items()
    ]
    for applies, note in notes:
        if applies:
            print(f"note: {note}")


def status_command(args: argparse.Namespace, session: boto3.session.Session) -> int:
    deployment = find_deployment(session, args.stack, args.function)
    source, store, _channels = wiring.adapters(
        deployment.settings, deployment.own_account, deployment.partition, session
    )
    live: dict[str, JobSummary] = {}
    unlisted = 0
    for scope in deployment.scopes:
        try:
            # Status reads every page, however long that takes.
            live.update(latest_per_job(source.list_jobs(scope, None, lambda: False).jobs))
        except JobListingError as err:
            unlisted += 1
            print(f"note: scope {scope.place} could not be listed: {err}", file=sys.stderr)
    recorded = store.load_all()
    arns = sorted({*live, *recorded})
    rows = [_status_row(arn, live.get(arn), recorded.get(arn)) for arn in arns]
    print(table(rows, ("JOB", "STATUS", "RECORDED", "UPDATED (UTC)")))
    return ExitCode.AWS if unlisted else ExitCode.OK


def _status_row(
    arn: str, job: JobSummary | None, recorded: Record | None
) -> tuple[str, str, str, str]:
    name = (job and job.name) or (recorded and recorded.job_name) or arn.rsplit("/", 1)[-1]
    updated = job.last_updated_time if job else None
    return (
        name,
        (job.status if job else None) or "(not listed)",
        (recorded.status if recorded else None) or "(not recorded)",
        updated.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if updated else "-",
    )


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)
