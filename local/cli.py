"""Ask a deployed notifier what its next poll would send, or what it has recorded.

    python -m local.cli poll [--apply] [--stack NAME | --table NAME --topic ARN]
    python -m local.cli status [--stack NAME | --table NAME]

Uses the caller's AWS credentials and region. `poll` is read-only unless --apply is given:
it lists the jobs, diffs them against the stack's snapshot and prints the transitions the
next scheduled run would publish. With --apply it runs that poll (publish, then record).

Exit codes: 0 done; 1 a publish failed (--apply); 2 usage; 3 no credentials or region;
4 stack or table not found; 5 any other AWS error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from poller.core import diff, latest_per_job
from poller.errors import JobListingError, SnapshotError
from poller.personalize_source import JobSource
from poller.poll import PollRun, poll
from poller.settings import DEFAULT_STUCK_AFTER_MINUTES, Settings
from poller.snapshot_store import SnapshotStore
from poller.wiring import channels

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poller.models import JobSummary, SnapshotItem

DEFAULT_STACK = "PersonalizeSegmentJobNotifier"
# Output names of infra/stack.py; tests/infra pins them against the synthesized template.
TABLE_OUTPUT = "SnapshotTableName"
TOPIC_OUTPUT = "TopicArn"
PEOPLE_TOPIC_OUTPUT = "PeopleTopicArn"
SOLUTION_VERSIONS_ENV = "SOLUTION_VERSION_ARNS"

CLI_TIME_BUDGET_SECONDS = 900.0  # as long as the longest Lambda run
EXIT_OK, EXIT_PUBLISH_FAILED, EXIT_USAGE, EXIT_CREDENTIALS, EXIT_NOT_FOUND, EXIT_AWS = range(6)


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    table_name: str
    topic_arn: str | None
    region: str
    people_topic_arn: str | None = None


def resolve(args: argparse.Namespace, session: boto3.session.Session) -> Target:
    region = session.region_name
    if not region:
        raise CliError("no AWS region: set AWS_REGION or pass --region", EXIT_CREDENTIALS)
    if session.get_credentials() is None:
        raise CliError("no AWS credentials found (profile, environment or SSO)", EXIT_CREDENTIALS)
    if args.table:
        return Target(args.table, getattr(args, "topic", None), region)
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            raise CliError(
                f"stack {args.stack} not found in {region}: deploy it or pass --stack/--region",
                EXIT_NOT_FOUND,
            ) from err
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if TABLE_OUTPUT not in outputs:
        raise CliError(f"stack {args.stack} has no {TABLE_OUTPUT} output", EXIT_NOT_FOUND)
    return Target(
        outputs[TABLE_OUTPUT], outputs.get(TOPIC_OUTPUT), region, outputs.get(PEOPLE_TOPIC_OUTPUT)
    )


def stuck_after(args: argparse.Namespace) -> timedelta:
    return timedelta(minutes=args.stuck_after_minutes)


def poll_run(args: argparse.Namespace, target: Target) -> PollRun:
    started = time.monotonic()
    return PollRun(
        region=target.region,
        now=datetime.now(UTC),
        run_id=f"cli-{uuid.uuid4()}",
        stuck_after=stuck_after(args),
        time_left=lambda: CLI_TIME_BUDGET_SECONDS - (time.monotonic() - started),
    )


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def command_poll(args: argparse.Namespace, session: boto3.session.Session) -> int:
    target = resolve(args, session)
    arns = [a for a in (args.solution_version_arn or []) if a]
    source = JobSource(arns, client=session.client("personalize"))
    store = SnapshotStore(target.table_name, client=session.client("dynamodb"))
    if args.apply:
        if not target.topic_arn:
            raise CliError("--apply needs the topic: pass --topic or use --stack", EXIT_USAGE)
        settings = Settings(
            table_name=target.table_name,
            topic_arn=target.topic_arn,
            region=target.region,
            event_bus_name=args.event_bus,
            people_topic_arn=target.people_topic_arn,
        )
        result = poll(source, store, channels(settings, session), poll_run(args, target))
        print(
            f"polled {result.jobs_seen} jobs: {len(result.transitions)} transitions, "
            f"{result.published} published, {result.publish_failures} failed"
        )
        return EXIT_PUBLISH_FAILED if result.publish_failures else EXIT_OK

    jobs = latest_per_job(source.list_jobs().jobs)
    if store.load_marker() is None:
        print(f"first run: the next poll records {len(jobs)} jobs and publishes nothing")
        return EXIT_OK
    snapshot = store.load()
    transitions = diff(snapshot, jobs.values(), datetime.now(UTC), stuck_after(args))
    count = len(transitions)
    print(f"{len(jobs)} jobs, {len(snapshot)} recorded; the next poll would publish {count}:")
    if transitions:
        rows = [
            (
                t.event_type.value,
                t.job.name or "-",
                t.previous_status or "(new)",
                t.job.status or "-",
            )
            for t in transitions
        ]
        print(table(rows, ("EVENT", "JOB", "FROM", "TO")))
    return EXIT_OK


def command_status(args: argparse.Namespace, session: boto3.session.Session) -> int:
    target = resolve(args, session)
    store = SnapshotStore(target.table_name, client=session.client("dynamodb"))
    snapshot: dict[str, SnapshotItem] = store.load()
    live: dict[str, JobSummary] = latest_per_job(
        JobSource(client=session.client("personalize")).list_jobs().jobs
    )
    rows = []
    for arn in sorted(set(snapshot) | set(live)):
        job, recorded = live.get(arn), snapshot.get(arn)
        name = (job and job.name) or (recorded and recorded.job_name) or arn.rsplit("/", 1)[-1]
        updated = (
            job.last_updated_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            if job and job.last_updated_time
            else "-"
        )
        rows.append(
            (
                name,
                (job.status if job else None) or "(not listed)",
                (recorded.status if recorded else None) or "(not recorded)",
                updated,
            )
        )
    print(table(rows, ("JOB", "STATUS", "RECORDED", "UPDATED (UTC)")))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m local.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--region", help="AWS region (default: from your AWS configuration)")
    root.add_argument("--profile", help="AWS profile")
    commands = root.add_subparsers(dest="command", required=True)
    for name, handler, help_text in (
        ("poll", command_poll, "what the next poll would publish (read-only without --apply)"),
        ("status", command_status, "each job's live and recorded status"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.set_defaults(handler=handler)
        command.add_argument("--stack", default=DEFAULT_STACK, help="deployed stack name")
        command.add_argument("--table", help="snapshot table name (instead of --stack)")
    poll_parser = commands.choices["poll"]
    poll_parser.add_argument("--topic", help="topic ARN (with --table, for --apply)")
    poll_parser.add_argument(
        "--event-bus", default="default", help="event bus for --apply, as the stack is configured"
    )
    poll_parser.add_argument("--dry-run", action="store_true", help="the default: read only")
    poll_parser.add_argument("--apply", action="store_true", help="publish and record")
    poll_parser.add_argument(
        "--stuck-after-minutes",
        type=int,
        default=DEFAULT_STUCK_AFTER_MINUTES,
        help="report jobs waiting longer than this as stuck, as the stack is configured",
    )
    poll_parser.add_argument(
        "--solution-version-arn",
        action="append",
        default=[a for a in os.environ.get(SOLUTION_VERSIONS_ENV, "").split(",") if a],
        help="only these solution versions, as the stack is configured (repeatable)",
    )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "apply", False) and getattr(args, "dry_run", False):
        print("error: --apply and --dry-run exclude each other", file=sys.stderr)
        return EXIT_USAGE
    try:
        session = boto3.session.Session(region_name=args.region, profile_name=args.profile)
        code: int = args.handler(args, session)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except (NoCredentialsError, NoRegionError, ProfileNotFound) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CREDENTIALS
    except (JobListingError, SnapshotError) as err:
        cause: Any = err.__cause__
        code_name = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else ""
        print(f"error: {err}", file=sys.stderr)
        return EXIT_NOT_FOUND if code_name == "ResourceNotFoundException" else EXIT_AWS
    except (ClientError, BotoCoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_AWS
    return code


if __name__ == "__main__":
    sys.exit(main())
