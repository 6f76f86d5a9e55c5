"""The command-line tool against local AWS: it finds the deployed poller through the stack's
output, reads its configuration with GetFunctionConfiguration, and runs the function's own
poll, for real (--apply) or as a dry run. Its error paths and exit codes."""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from infra.config import STACK_NAME
from job_events.event import parse
from local.local_aws import drain_queue
from local.provision import create_queue, provision, subscribe_queue
from notifier_cli import deployment as deployment_module
from notifier_cli.deployment import DEFAULT_STACK, FUNCTION_OUTPUT
from notifier_cli.errors import ExitCode
from notifier_cli.main import main
from notifier_cli.preview import announcement_lines
from poller.aws import DELIVERY_LIMITS
from poller.channels.eventbridge import SOURCE
from poller.channels.sns import SnsPublisher
from poller.delivery import CLAIM_MARGIN_SECONDS
from poller.lease import ClaimLease
from poller.table import JOB_PARTITION, PARTITION_KEY, SORT_KEY
from tests.integration.conftest import observer_client

if TYPE_CHECKING:
    from local.local_aws import LocalAws
    from local.personalize_emulator import PersonalizeEmulator
    from local.template import PollerSpec
    from tests.integration.conftest import Stack

CLI_STACK = "NotifierForTheCli"
# Per-job fields only DescribeBatchSegmentJob returns: the poll adds them to finished jobs.
DETAILS: dict[str, Any] = {
    "jobInput": {"s3DataSource": {"path": "s3://segments-in/users.json"}},
    "jobOutput": {"s3DataDestination": {"path": "s3://segments-out/run-7/"}},
    "numResults": 25,
}
# Fields that say when a run happened, not what it announced.
RUN_SPECIFIC = frozenset({"detectedAt"})


@pytest.fixture(autouse=True)
def lambda_and_iam_in_local_aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's server also serves Lambda and IAM: the tool reads the function from Lambda."""
    for service in ("LAMBDA", "IAM"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", local_aws.moto_endpoint)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- deployments in local AWS ----------------------------------------------------------------
@dataclass(frozen=True)
class Deployed:
    """One notifier's channels, each with a queue that keeps what the channel received."""

    environment: dict[str, str]
    events_topic_queue: str
    people_topic_queue: str
    bus_queue: str

    def received(self) -> dict[str, list[dict[str, Any]]]:
        """What each channel received since the last call: the event JSON, and the subject
        and attributes or the bus's source and detail-type."""
        sqs = observer_client("sqs")
        return {
            "sns": [sns_message(m) for m in drain_queue(sqs, self.events_topic_queue)],
            "people": [sns_message(m) for m in drain_queue(sqs, self.people_topic_queue)],
            "events": [bus_event(e) for e in drain_queue(sqs, self.bus_queue)],
        }

    @property
    def table_name(self) -> str:
        return self.environment["SNAPSHOT_TABLE_NAME"]


def without_run_fields(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in RUN_SPECIFIC}


def sns_message(notification: dict[str, Any]) -> dict[str, Any]:
    return {
        "subject": notification["Subject"],
        "attributes": {k: v["Value"] for k, v in notification["MessageAttributes"].items()},
        "event": json.loads(notification["Message"]),
    }


def bus_event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": event["source"],
        "detail-type": event["detail-type"],
        "event": event["detail"],
    }


def canonical(received: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Per channel, what arrived regardless of order and of when the run happened."""
    return {
        channel: sorted(
            json.dumps({**m, "event": without_run_fields(m["event"])}, sort_keys=True)
            for m in messages
        )
        for channel, messages in received.items()
    }


def renamed(spec: PollerSpec, suffix: str) -> PollerSpec:
    """The same poller with its table and topics named apart, as a second deployment."""
    names = {spec.table_id: spec.table_id + suffix}
    names.update({topic: topic + suffix for topic in spec.topic_ids.values()})
    environment = {
        name: {"Ref": names[value["Ref"]]} if isinstance(value, dict) else value
        for name, value in spec.environment.items()
    }
    return replace(
        spec,
        table_id=names[spec.table_id],
        topic_ids={name: names[topic] for name, topic in spec.topic_ids.items()},
        environment=environment,
    )


def route_bus(session: boto3.session.Session, bus: str, queue_name: str) -> str:
    """Every notifier event put on `bus`, into a new queue; returns the queue's URL."""
    queue_url, queue_arn = create_queue(session, queue_name)
    events = session.client("events")
    events.put_rule(
        Name=queue_name, EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]})
    )
    events.put_targets(
        Rule=queue_name, EventBusName=bus, Targets=[{"Id": queue_name, "Arn": queue_arn}]
    )
    return queue_url


def poller_timeout(template: dict[str, Any], spec: PollerSpec) -> int:
    (timeout,) = [
        resource["Properties"]["Timeout"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler") == spec.handler
    ]
    return int(timeout)


def deploy_function(name: str, environment: dict[str, str], timeout: int = 240) -> None:
    """The poller function with this environment. Its code is never run here: the tool
    reads only the function's configuration."""
    session = boto3.session.Session()
    role = session.client("iam").create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("poller/handler.py", "")
    session.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="poller.handler.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=timeout,
        Environment={"Variables": environment},
    )


def deploy_outputs_stack(name: str, outputs: dict[str, str]) -> None:
    """A CloudFormation stack in moto with these outputs."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    observer_client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


def deploy_copy(
    stack: Stack,
    template: dict[str, Any],
    overrides: dict[str, str] | None = None,
    stack_name: str = CLI_STACK,
) -> Deployed:
    """A second notifier beside the fixture's, from the same template, with its own table,
    topics and bus; deployed as a stack whose output names its poller function."""
    session = boto3.session.Session()
    bus = f"{stack_name}-bus"
    session.client("events").create_event_bus(Name=bus)
    resources = provision(renamed(stack.spec, stack_name), session)
    environment = {**resources.environment, **(overrides or {}), "EVENT_BUS_NAME": bus}
    function = f"{stack_name}-poller"
    deploy_function(function, environment, poller_timeout(template, stack.spec))
    deploy_outputs_stack(stack_name, {FUNCTION_OUTPUT: function})
    return Deployed(
        environment,
        subscribe_queue(session, environment["TOPIC_ARN"], f"{stack_name}-events"),
        subscribe_queue(session, environment["PEOPLE_TOPIC_ARN"], f"{stack_name}-people"),
        route_bus(session, bus, f"{stack_name}-machines"),
    )


def scheduled(stack: Stack, overrides: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Deployed:
    """The fixture's notifier, polled by its handler, configured with `overrides`."""
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    environment = {name: os.environ[name] for name in stack.spec.environment}
    people_queue = subscribe_queue(
        boto3.session.Session(), environment["PEOPLE_TOPIC_ARN"], "scheduled-people"
    )
    return Deployed(environment, stack.queue_url, people_queue, stack.bus_queue_url)


def backdate(jobs: PersonalizeEmulator, arn: str, minutes: float) -> None:
    """Move a job's times back, as if it had waited `minutes` longer: the poller reads the
    real clock, and a test cannot wait hours for a job to become stuck."""
    (job,) = [job for job in jobs.jobs() if job["batchSegmentJobArn"] == arn]
    for field in ("creationDateTime", "lastUpdatedDateTime"):
        job[field] -= minutes * 60
    jobs.put_raw_job(job)


def table_items(table_name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = observer_client("dynamodb").scan(TableName=table_name)["Items"]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def recorded_status(deployed: Deployed, arn: str) -> str | None:
    key = {PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": arn}}
    item = observer_client("dynamodb").get_item(TableName=deployed.table_name, Key=key)
    status: str | None = item.get("Item", {}).get("status", {}).get("S")
    return status


# --- the same poll as the function -----------------------------------------------------------
def test_apply_announces_on_every_channel_what_a_scheduled_run_announces(
    stack: Stack,
    template: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = stack.personalize
    watched = jobs.solution_version_arn("segments", "1")
    # Deployed configuration that differs from the poller's defaults, so a tool that
    # ignored any of it would announce something else.
    deployed_config = {
        "SOLUTION_VERSION_ARNS": watched,
        "STORM_THRESHOLD": "1",
        "STUCK_AFTER_MINUTES": "120",
        "PEOPLE_EVENT_TYPES": "JOB_FAILED,JOB_STUCK",
    }
    by_handler = scheduled(stack, deployed_config, monkeypatch)
    by_cli = deploy_copy(stack, template, deployed_config)
    hour_ago = time.time() - 3600
    nightly = jobs.add_job("nightly", "IN PROGRESS", at=hour_ago, **DETAILS)
    weekly = jobs.add_job("weekly", "PENDING", at=hour_ago, **DETAILS)
    hung = jobs.add_job("hung", "IN PROGRESS", at=time.time() - 100 * 60)  # within the limit
    jobs.add_job("done", "ACTIVE", at=hour_ago)
    elsewhere = jobs.add_job(
        "elsewhere", "PENDING", at=hour_ago, solution_version_arn=jobs.solution_version_arn("x")
    )

    def both_poll() -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        stack.invoke()
        code, _, err = run(capsys, "poll", "--apply", "--stack", CLI_STACK)
        assert (code, err) == (ExitCode.OK, "")
        return by_handler.received(), by_cli.received()

    baseline = both_poll()
    jobs.set_status(nightly, "ACTIVE")
    jobs.set_status(weekly, "CREATE FAILED", failure_reason="Access Denied on s3://segments-in")
    fresh = jobs.add_job("fresh", "PENDING")
    jobs.set_status(elsewhere, "ACTIVE")
    backdate(jobs, hung, minutes=90)  # past the deployed limit, within the default
    storm = both_poll()
    jobs.set_status(fresh, "CREATE FAILED", failure_reason="bad input")
    single = both_poll()

    for handler_got, cli_got in (baseline, storm, single):
        assert canonical(cli_got) == canonical(handler_got)
    # What the deployed configuration made of this history, as the handler announced it.
    assert baseline[0] == {"sns": [], "people": [], "events": []}
    handler_got = storm[0]
    assert sorted((m["event"]["jobName"], m["event"]["eventType"]) for m in handler_got["sns"]) == [
        ("fresh", "JOB_STATUS_CHANGED"),
        ("hung", "JOB_STUCK"),
        ("nightly", "JOB_SUCCEEDED"),
        ("weekly", "JOB_FAILED"),
    ]
    assert [m["event"] for m in handler_got["events"]] == [m["event"] for m in handler_got["sns"]]
    nightly_event = next(
        m["event"] for m in handler_got["sns"] if m["event"]["jobName"] == "nightly"
    )
    assert nightly_event["jobOutput"] == "s3://segments-out/run-7/"  # described
    (digest,) = [m["event"] for m in handler_got["people"]]
    assert digest["eventType"] == "JOB_DIGEST"
    assert sorted(job["jobName"] for job in digest["jobs"]) == ["hung", "weekly"]
    (failed,) = [m["event"] for m in single[0]["people"]]
    assert (failed["jobName"], failed["eventType"]) == ("fresh", "JOB_FAILED")


def test_dry_run_prints_what_apply_then_sends_and_changes_nothing(
    stack: Stack, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = deploy_copy(stack, template, {"STORM_THRESHOLD": "2"})
    jobs = stack.personalize
    hour_ago = time.time() - 3600
    arns = {
        name: jobs.add_job(name, "IN PROGRESS", at=hour_ago, **DETAILS)
        for name in ("a", "b", "c", "d")
    }
    assert run(capsys, "poll", "--apply", "--stack", CLI_STACK)[0] == ExitCode.OK
    for name in ("a", "b"):
        jobs.set_status(arns[name], "ACTIVE")
    jobs.set_status(arns["c"], "CREATE FAILED", failure_reason="bad input")
    jobs.add_job("new", "PENDING")
    table_before = table_items(deployed.table_name)
    describes = jobs.calls["DescribeBatchSegmentJob"]

    code, out, err = run(capsys, "poll", "--stack", CLI_STACK)

    assert (code, err) == (ExitCode.OK, "")
    assert table_items(deployed.table_name) == table_before
    assert deployed.received() == {"sns": [], "people": [], "events": []}
    assert jobs.calls["DescribeBatchSegmentJob"] - describes == 3  # the finished jobs
    printed = [line for line in out.splitlines() if line.split(" ", 1)[0] in deployed.received()]
    assert "dry run" in out
    assert "nothing was published or recorded" in out
    assert "storm" in out

    assert run(capsys, "poll", "--apply", "--stack", CLI_STACK)[0] == ExitCode.OK

    sent = [
        line
        for channel, messages in deployed.received().items()
        for message in messages
        for line in announcement_lines(channel, parse(message["event"]))
    ]
    assert sorted(printed) == sorted(sent)
    assert sum(line.startswith("people  JOB_DIGEST") for line in printed) == 1
    assert any(line.endswith("c  IN PROGRESS -> CREATE FAILED") for line in printed)
    assert any(line.endswith("new  (new) -> PENDING") for line in printed)
    assert recorded_status(deployed, arns["c"]) == "CREATE FAILED"


def test_dry_run_of_a_first_run_announces_and_writes_nothing(
    stack: Stack, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = deploy_copy(stack, template, stack_name=DEFAULT_STACK)
    stack.personalize.add_job("old", "ACTIVE")

    code, out, _ = run(capsys, "poll", "--dry-run")

    assert code == ExitCode.OK
    assert "dry run of" in out
    assert "0 to announce" in out
    assert "first run" in out
    assert table_items(deployed.table_name) == []
    assert deployed.received() == {"sns": [], "people": [], "events": []}


def nightly_finished(
    stack: Stack, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> tuple[Deployed, str]:
    """A deployed copy whose first --apply recorded the job "nightly" IN PROGRESS (nothing
    of it left in the queues), which has since finished: the next poll announces ACTIVE."""
    deployed = deploy_copy(stack, template)
    arn = stack.personalize.add_job("nightly", "IN PROGRESS")
    run(capsys, "poll", "--apply", "--stack", CLI_STACK)
    deployed.received()
    stack.personalize.set_status(arn, "ACTIVE")
    return deployed, arn


def test_apply_exits_1_when_a_publish_fails_and_leaves_the_job_for_the_next_poll(
    stack: Stack, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deployed, arn = nightly_finished(stack, template, capsys)
    # The events topic and the people topic, each past its attempts.
    stack.aws.inject_fault(
        "sns:PublishBatch", "InternalError", 500, times=2 * DELIVERY_LIMITS.attempts
    )

    code, out, err = run(capsys, "poll", "--apply", "--stack", CLI_STACK)

    assert code == ExitCode.PUBLISH_FAILED
    assert "1 failed" in out
    assert err.startswith("error: 1 of 1 transitions could not be published")
    assert recorded_status(deployed, arn) == "IN PROGRESS"
    code, _, _ = run(capsys, "poll", "--apply", "--stack", CLI_STACK)
    assert code == ExitCode.OK
    assert recorded_status(deployed, arn) == "ACTIVE"


# --- a person's run never doubles an alert ------------------------------------------------
def test_a_claim_held_by_another_poll_is_not_sent_and_the_command_says_so(
    stack: Stack, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deployed, arn = nightly_finished(stack, template, capsys)
    key = {PARTITION_KEY: {"S": JOB_PARTITION}, SORT_KEY: {"S": arn}}
    observer_client("dynamodb").update_item(  # the scheduled poll is announcing it
        TableName=deployed.table_name,
        Key=key,
        UpdateExpression="SET claimedBy = :run, claimExpiresAt = :expires",
        ExpressionAttributeValues={
            ":run": {"S": "scheduled-run"},
            ":expires": {"N": str(time.time() + 300)},
        },
    )

    code, _, err = run(capsys, "poll", "--apply", "--stack", CLI_STACK)

    assert code == ExitCode.CLAIM_LOST
    assert "claimed by another poll" in err
    assert deployed.received() == {"sns": [], "people": [], "events": []}


def test_a_laptop_whose_clock_is_behind_leases_its_claims_on_aws_clock(
    stack: Stack,
    template: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nightly_finished(stack, template, capsys)
    real_time = time.time
    monkeypatch.setattr(deployment_module, "machine_time", lambda: real_time() - 3600)
    leases: list[float] = []
    claim = ClaimLease.claim

    def noting(lease: ClaimLease, transition: Any, run_id: str, now: float, expires: float) -> None:
        leases.append(expires)
        claim(lease, transition, run_id, now, expires)

    monkeypatch.setattr(ClaimLease, "claim", noting)

    code, _, _ = run(capsys, "poll", "--apply", "--stack", CLI_STACK)

    assert code == ExitCode.OK
    (expires,) = leases
    timeout = 60 * 4  # the deployed function's
    # On AWS's clock (to the second of the Date header), not an hour in the past.
    assert real_time() + timeout - 5 < expires < real_time() + timeout + CLAIM_MARGIN_SECONDS + 5


def test_a_laptop_that_sleeps_mid_send_sends_nothing_more_and_exits_non_zero(
    stack: Stack,
    template: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployed, _ = nightly_finished(stack, template, capsys)
    real_time = time.time
    slept = [0.0]
    monkeypatch.setattr(deployment_module, "machine_time", lambda: real_time() + slept[0])
    send = SnsPublisher.send

    def sleeping_after_the_first(publisher: SnsPublisher, messages: Any) -> dict[int, str]:
        failed = send(publisher, messages)
        slept[0] = 20 * 60  # the lid closes: the lease lapses meanwhile
        return failed

    monkeypatch.setattr(SnsPublisher, "send", sleeping_after_the_first)

    code, _, err = run(capsys, "poll", "--apply", "--stack", CLI_STACK)

    assert code == ExitCode.CLAIM_LOST
    assert "lapsed" in err
    received = deployed.received()
    assert len(received["sns"]) == 1, "sent before the sleep"
    assert received["events"] == [], "never sent once the lease had lapsed"
    assert received["people"] == []


def test_status_shows_live_and_recorded(
    stack: Stack, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_copy(stack, template)
    arn = stack.personalize.add_job("nightly", "IN PROGRESS")
    run(capsys, "poll", "--apply", "--stack", CLI_STACK)
    stack.personalize.set_status(arn, "ACTIVE")
    stack.personalize.add_job("fresh", "PENDING")

    code, out, _ = run(capsys, "status", "--function", f"{CLI_STACK}-poller")

    assert code == ExitCode.OK
    header, _rule, *lines = out.splitlines()
    assert re.split(r"\s{2,}", header) == ["JOB", "STATUS", "RECORDED", "UPDATED (UTC)"]
    rows = {cells[0]: cells[1:3] for cells in (re.split(r"\s{2,}", line) for line in lines)}
    assert rows == {"nightly": ["ACTIVE", "IN PROGRESS"], "fresh": ["PENDING", "(not recorded)"]}


# --- finding the deployment, and errors ------------------------------------------------------
def test_the_default_stack_is_the_name_the_app_deploys() -> None:
    assert DEFAULT_STACK == STACK_NAME


def test_missing_stack(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "poll", "--stack", "NoSuchStack")
    assert code == ExitCode.NOT_FOUND
    assert err.startswith("error: stack NoSuchStack not found in us-east-1")
    assert len(err.strip().splitlines()) == 1


def test_stack_without_the_function_output(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_outputs_stack("Unrelated", {"Something": "else"})
    code, _, err = run(capsys, "status", "--stack", "Unrelated")
    assert code == ExitCode.NOT_FOUND
    assert f"no {FUNCTION_OUTPUT} output" in err


def test_missing_function(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "poll", "--function", "no-such-function")
    assert code == ExitCode.NOT_FOUND
    assert err.startswith("error: function no-such-function not found in us-east-1")


def test_a_function_that_is_not_the_poller(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_function("something-else", {"LOG_LEVEL": "INFO"})
    code, _, err = run(capsys, "poll", "--function", "something-else")
    assert code == ExitCode.NOT_FOUND
    assert "something-else is not configured as the notifier's poller" in err
    assert "is not set" in err


def test_missing_table(
    stack: Stack, template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = deploy_copy(stack, template)
    observer_client("dynamodb").delete_table(TableName=deployed.table_name)

    code, _, err = run(capsys, "status", "--stack", CLI_STACK)

    assert code == ExitCode.NOT_FOUND
    assert deployed.table_name in err


def test_no_credentials(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)

    code, _, err = run(capsys, "poll")

    assert code == ExitCode.CREDENTIALS
    assert "no AWS credentials" in err


def test_no_region(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")

    code, _, err = run(capsys, "status")

    assert code == ExitCode.CREDENTIALS
    assert "no AWS region" in err


def test_rejected_credentials(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.aws.inject_fault("cloudformation:DescribeStacks", "ExpiredToken", 403)

    code, _, err = run(capsys, "status")

    assert code == ExitCode.CREDENTIALS
    assert "ExpiredToken" in err


def test_apply_and_dry_run_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "poll", "--apply", "--dry-run")
    assert code == ExitCode.USAGE
    assert "not allowed with argument" in err
