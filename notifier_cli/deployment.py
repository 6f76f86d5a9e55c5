"""The deployed poller: found through the stack's output (or by name), and configured by its
own environment, read with GetFunctionConfiguration and parsed as the function parses it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from job_events.arns import arn_part
from notifier_cli.errors import CliError, ExitCode
from poller.errors import ConfigurationError
from poller.settings import REGION_ENV, Settings

if TYPE_CHECKING:
    import boto3

    from poller.models import Scope

DEFAULT_STACK = "PersonalizeSegmentJobNotifier"
DATE_RESOLUTION_SECONDS = 2.0  # below this, a Date header cannot show a skew
# The stack output naming the poller function (infra/stack.py; tests/infra pins it).
FUNCTION_OUTPUT = "PollerFunctionName"


@dataclass(frozen=True, slots=True)
class Deployment:
    function_arn: str
    settings: Settings
    timeout_seconds: float  # the function's timeout: a poll run here gets as long
    # AWS's clock less this machine's, from the Date of Lambda's answer: a claim's lease is
    # measured on the clock the scheduled poll uses, however skewed this machine's is.
    clock_offset: float = 0.0

    def clock(self) -> float:
        """Epoch seconds by AWS's clock."""
        return machine_time() + self.clock_offset

    @property
    def function_name(self) -> str:
        return arn_part(self.function_arn, 5) or self.function_arn

    @property
    def own_account(self) -> str:
        """The account the poller runs in: its own scopes, and where member roles are not
        needed."""
        return arn_part(self.function_arn, 4) or ""

    @property
    def partition(self) -> str:
        return arn_part(self.function_arn, 1) or "aws"

    @property
    def scopes(self) -> tuple[Scope, ...]:
        return self.settings.scopes(self.own_account)


def find_deployment(session: boto3.session.Session, stack: str, function: str | None) -> Deployment:
    """The poller named, or the one `stack` outputs, with the configuration it runs with."""
    region = session.region_name
    if not region:
        raise CliError(
            "no AWS region: set AWS_DEFAULT_REGION or your profile's region, or pass --region",
            ExitCode.CREDENTIALS,
        )
    if session.get_credentials() is None:
        raise CliError(
            "no AWS credentials found (profile, environment or SSO)", ExitCode.CREDENTIALS
        )
    name = function or _function_of_stack(session, stack, region)
    return _read_function(session, name, region)


def _function_of_stack(session: boto3.session.Session, stack: str, region: str) -> str:
    try:
        stacks: list[dict[str, Any]] = session.client("cloudformation").describe_stacks(
            StackName=stack
        )["Stacks"]
    except ClientError as err:
        if "does not exist" not in str(err):
            raise
        raise CliError(
            f"stack {stack} not found in {region}: deploy it, or pass --stack, --function "
            "or --region",
            ExitCode.NOT_FOUND,
        ) from err
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    name = outputs.get(FUNCTION_OUTPUT)
    if not isinstance(name, str) or not name:
        raise CliError(
            f"stack {stack} has no {FUNCTION_OUTPUT} output: is it this notifier, "
            "deployed by this version? Pass --function to name the poller",
            ExitCode.NOT_FOUND,
        )
    return name


def _read_function(session: boto3.session.Session, name: str, region: str) -> Deployment:
    try:
        config: Any = session.client("lambda").get_function_configuration(FunctionName=name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        raise CliError(f"function {name} not found in {region}", ExitCode.NOT_FOUND) from err
    environment: dict[str, Any] = config.get("Environment", {})
    if "Error" in environment:
        # Lambda returns the error instead of the variables when it cannot decrypt them.
        error = environment["Error"]
        raise CliError(
            f"cannot read the environment of {name}: {error.get('ErrorCode')}: "
            f"{error.get('Message')}",
            ExitCode.AWS,
        )
    function_arn = str(config["FunctionArn"])
    # Lambda sets AWS_REGION for the function at run time; it is not a stored variable.
    variables = {**environment.get("Variables", {}), REGION_ENV: arn_part(function_arn, 3) or ""}
    try:
        settings = Settings.from_env(variables)
    except ConfigurationError as err:
        raise CliError(
            f"function {name} is not configured as the notifier's poller: {err}",
            ExitCode.NOT_FOUND,
        ) from err
    offset = clock_offset(config.get("ResponseMetadata", {}).get("HTTPHeaders", {}), machine_time())
    return Deployment(function_arn, settings, float(config["Timeout"]), offset)


def machine_time() -> float:
    """This machine's clock: skewed, or stopped while it sleeps, as a laptop's may be."""
    return time.time()


def clock_offset(headers: dict[str, str], local_now: float) -> float:
    """AWS's clock less this machine's, by the Date header of an answer; 0 if there is none,
    or if the two agree within what a Date (whole seconds) can tell."""
    try:
        # A Date is cut to its second: AWS's time was half a second later, on average.
        offset = parsedate_to_datetime(headers["date"]).timestamp() + 0.5 - local_now
    except (KeyError, TypeError, ValueError):
        return 0.0
    return offset if abs(offset) > DATE_RESOLUTION_SECONDS else 0.0
