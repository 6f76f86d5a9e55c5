"""One fixture module for the integration tests: the notifier's resources in local AWS,
built from the synthesized template, and one way to build jobs, invoke the real handler
and read what was heard, recorded and called."""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.retries.standard import ExponentialBackoff

from local.lambda_context import LOCAL_RUNTIME_ENV, LocalLambdaContext
from local.local_aws import drain_queue
from local.provision import create_queue, provision, subscribe_queue
from local.snapshot import job_records, make_full_read_due, scope_markers, set_scope_times
from local.template import PollerSpec, read_poller, synth
from poller.channels.eventbridge import SOURCE

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.local_aws import LocalAws
    from local.personalize_emulator import PersonalizeEmulator

Heard = tuple[str | None, str | None, str | None]  # job name, previous status, status
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
WRITES = frozenset({"PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem"})


@dataclass
class Stack:
    """The notifier's resources in local AWS, built from the synthesized template."""

    aws: LocalAws
    spec: PollerSpec
    table_name: str
    topic_arn: str
    queue_url: str  # subscribed to the events topic, as a pipeline would be
    bus_queue_url: str  # target of a rule on the bus for every notifier event
    monkeypatch: pytest.MonkeyPatch
    sent: list[str] = field(default_factory=list)  # the handler's AWS requests, in order
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def personalize(self) -> PersonalizeEmulator:
        return self.aws.personalize

    # --- the world ---------------------------------------------------------------------
    def add_jobs(
        self,
        stem: str,
        count: int,
        status: str = "ACTIVE",
        *,
        every: timedelta = timedelta(minutes=1),
        **fields: Any,
    ) -> list[str]:
        """Jobs `stem-0000` ... created (and last updated) `every` apart, the last one
        `every` before now; returns their ARNs, oldest first."""
        now = datetime.now(UTC)
        return [
            self.personalize.add_job(
                f"{stem}-{i:04d}", status, at=(now - (count - i) * every).timestamp(), **fields
            )
            for i in range(count)
        ]

    def configure(self, **environment: str) -> None:
        """Change the poller's environment, as a deploy with new context would."""
        for name, value in environment.items():
            self.monkeypatch.setenv(name, value)
        reset_handler_caches(self.spec)

    # --- the poller --------------------------------------------------------------------
    def invoke(
        self, event: Any = SCHEDULED, context: LocalLambdaContext | None = None
    ) -> dict[str, Any]:
        """One invocation of the real handler, by default as the schedule makes it."""
        handler = poller_handler(self.spec).handler
        result: dict[str, Any] = handler(event, context or LocalLambdaContext())
        return result

    def start_watching(self, ago: timedelta = timedelta(minutes=10)) -> None:
        """The first poll, which records what exists silently, as if it ran `ago`: jobs
        created since then are new."""
        assert self.invoke()["firstRun"] is True
        assert self.heard() == []
        self.rewind_baseline(ago)
        self.clear_calls()

    def full_read_due(self) -> None:
        """Make the next poll read every record, as the hourly one does."""
        assert make_full_read_due(observer_client("dynamodb"), self.table_name) > 0

    def rewind_baseline(self, by: timedelta) -> None:
        """As if the notifier had started watching `by` earlier."""
        started = datetime.now(UTC) - by
        set_scope_times(observer_client("dynamodb"), self.table_name, baselineStartedAt=started)

    # --- what was heard, recorded and called -------------------------------------------
    def notifications(self) -> list[dict[str, Any]]:
        """SNS notifications the events topic delivered since the last call (envelopes)."""
        fresh = list(drain_queue(observer_client("sqs"), self.queue_url))
        self.received += fresh
        return fresh

    def heard(self) -> list[Heard]:
        """(job name, previous status, status) of each event the events topic delivered
        since the last call, in the order delivered."""
        return [
            (e["jobName"], e["previousStatus"], e["status"]) for e in events(self.notifications())
        ]

    def bus_events(self) -> list[dict[str, Any]]:
        """Events the rule on the bus matched since the last call."""
        return self.drain(self.bus_queue_url)

    @staticmethod
    def drain(queue_url: str) -> list[dict[str, Any]]:
        """What waits in a queue: SNS notifications (envelopes) or EventBridge events."""
        return [dict(m) for m in drain_queue(observer_client("sqs"), queue_url)]

    def people_queue(self, filter_policy: dict[str, Any] | None = None) -> str:
        """A queue subscribed to the people topic (optionally with a filter policy)."""
        name = f"people-{len(filter_policy or {})}"
        session = boto3.session.Session()
        return subscribe_queue(session, os.environ["PEOPLE_TOPIC_ARN"], name, filter_policy)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Job records by ARN, each attribute as its Python value (numbers as Decimal)."""
        return job_records(observer_client("dynamodb"), self.table_name)

    def markers(self) -> dict[str, dict[str, Any]]:
        """Scope marker items by scope key: baseline, checkpoint, watermark, last full read."""
        return scope_markers(observer_client("dynamodb"), self.table_name)

    def marker(self) -> dict[str, Any]:
        """The marker of the one scope the poller watches."""
        (only,) = self.markers().values()
        return only

    @property
    def calls(self) -> Counter[str]:
        """Requests per "service:Operation" since the last clear_calls(): each the handler
        sent through boto3's default session, and each the Personalize endpoint answered
        (the poller lists and describes through clients of its own)."""
        personalize = {f"personalize:{op}": n for op, n in self.personalize.calls.items()}
        return Counter(self.sent) + Counter(personalize)

    def clear_calls(self) -> None:
        self.sent.clear()
        self.personalize.calls.clear()

    def writes(self) -> int:
        """DynamoDB write requests the handler sent."""
        return sum(n for call, n in self.calls.items() if call.split(":")[1] in WRITES)


def events(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event JSON each SNS notification carries."""
    return [json.loads(str(n["Message"])) for n in notifications]


def poller_handler(spec: PollerSpec) -> Any:
    """The handler module named in the template, imported as Lambda would: after its env."""
    module, _, _function = spec.handler.rpartition(".")
    return importlib.import_module(module)


def observer_client(service: str) -> Any:
    """A client outside boto3's default session, so the test's own calls are not counted."""
    return boto3.session.Session().client(service)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The stack as `python app.py` synthesizes it with default configuration."""
    return synth()


@pytest.fixture(scope="session")
def spec(template: dict[str, Any]) -> PollerSpec:
    return read_poller(template)


@pytest.fixture
def stack(
    local_aws: LocalAws, spec: PollerSpec, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    local_aws.reset()
    session = boto3.session.Session()
    resources = provision(spec, session)
    for name, value in {**resources.environment, **LOCAL_RUNTIME_ENV}.items():
        monkeypatch.setenv(name, value)
    created = Stack(
        local_aws,
        spec,
        resources.table_name,
        resources.topic_arn,
        subscribe_queue(session, resources.topic_arn, "pipeline"),
        route_bus_to_queue(session, "machines"),
        monkeypatch,
    )
    # The handler's clients come from boto3's default session, made afresh for each test.
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register(
        "before-send",
        lambda event_name, **_: created.sent.append(":".join(event_name.split(".", 2)[1:])),
    )
    reset_handler_caches(spec)
    yield created
    reset_handler_caches(spec)
    boto3.DEFAULT_SESSION = None


def route_bus_to_queue(session: Any, name: str, pattern: dict[str, Any] | None = None) -> str:
    """A rule on the default bus (by default for every notifier event) to a new SQS queue."""
    queue_url, queue_arn = create_queue(session, name)
    rules = session.client("events")
    rules.put_rule(Name=name, EventPattern=json.dumps(pattern or {"source": [SOURCE]}))
    rules.put_targets(Rule=name, Targets=[{"Id": name, "Arn": queue_arn}])
    return queue_url


def reset_handler_caches(spec: PollerSpec) -> None:
    """Forget settings and clients, as a new Lambda container would."""
    poller_handler(spec).settings.cache_clear()
    poller_handler(spec).adapters.cache_clear()


@pytest.fixture(autouse=True)
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries as configured, without sleeping between attempts.

    Tests assert how many attempts reach the endpoints, never how long they took.
    """
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda _self, _context: 0.0)
