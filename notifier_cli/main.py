"""Ask the notifier deployed in your AWS account, with the deployed function's configuration.

    python -m notifier_cli poll [--dry-run | --apply] [--stack NAME | --function NAME]
    python -m notifier_cli status [--stack NAME | --function NAME]

The poller function is the one the stack's PollerFunctionName output names, or --function.
Its environment (read with GetFunctionConfiguration) gives the table, the topics, the event
types people get, the storm threshold, the event bus, the watched solution versions and the
stuck limit, parsed as the function parses it. Uses your AWS credentials and region.

`poll` runs the function's own poll. By default it is a dry run: it reads the jobs and the
snapshot, describes finished jobs, and prints what each channel would receive (digests in a
storm included), writing and publishing nothing. With --apply it publishes and records, as
a scheduled run does.

Exit codes: 0 done; 1 an announcement could not be published (or rendered); 2 usage; 3 no
credentials or region, or AWS rejected the credentials; 4 stack, function or table not
found (or the function is not the notifier's poller); 5 any other AWS error (a snapshot
write failed, or no scope could be listed).
"""

from __future__ import annotations

import argparse
import sys

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from notifier_cli.commands import poll_command, status_command
from notifier_cli.deployment import DEFAULT_STACK
from notifier_cli.errors import CliError, ExitCode
from poller.errors import PollerError, PublishFailedError

CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError, ProfileNotFound)
# Error codes with which AWS rejects the caller's credentials rather than the request.
REJECTED_CREDENTIALS = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}
)
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m notifier_cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--region", help="AWS region (default: from your AWS configuration)")
    root.add_argument("--profile", help="AWS profile")
    commands = root.add_subparsers(dest="command", required=True)
    for name, command, help_text in (
        ("poll", poll_command, "the deployed poll, as a dry run unless --apply"),
        ("status", status_command, "each job's live and recorded status"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(run=command)
        where = sub.add_mutually_exclusive_group()
        where.add_argument("--stack", default=DEFAULT_STACK, help="the deployed stack's name")
        where.add_argument("--function", help="the poller function's name (instead of --stack)")
    mode = commands.choices["poll"].add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="the default: print, change nothing")
    mode.add_argument("--apply", action="store_true", help="publish and record")
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        # argparse has printed the usage error (or the help, which exits 0).
        return ExitCode.USAGE if exit_.code else ExitCode.OK
    try:
        session = boto3.session.Session(region_name=args.region, profile_name=args.profile)
        code: int = args.run(args, session)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except (PollerError, BotoCoreError, ClientError) as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_code(err)
    return code


def exit_code(err: BaseException) -> ExitCode:
    """The exit code of a failed poll, or of an AWS error seen through the poller's error
    raised from it."""
    if isinstance(err, PublishFailedError):
        return ExitCode.PUBLISH_FAILED
    cause = err.__cause__ if isinstance(err, PollerError) else err
    if isinstance(cause, CREDENTIAL_ERRORS):
        return ExitCode.CREDENTIALS
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code", "")
        if code in REJECTED_CREDENTIALS:
            return ExitCode.CREDENTIALS
        if code in NOT_FOUND_CODES:
            return ExitCode.NOT_FOUND
    return ExitCode.AWS
