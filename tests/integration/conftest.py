"""One fixture module for the integration tests: the notifier's resources in local AWS,
built from the synthesized template, and one way to build jobs, invoke the real handler
and read what was heard, recorded and called."""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.retries.standard import ExponentialBackoff

from local.demo import Layout
from local.lambda_context import LOCAL_RUNTIME_ENV, LocalLambdaContext
from local.local_aws import drain_queue
from local.provision import create_queue, provision, subscribe_queue
from local.snapshot import job_records, make_full_read_due, scope_markers, set_scope_times
from local.template import PollerSpec, TemplateError, read_poller, synth
from poller.channels.eventbridge import SOURCE
from poller.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.local_aws import LocalAws
    from local.personalize_emulator import PersonalizeEmulator

Heard = tuple[str | None, str | None, str | None]  # job name, previous status, status
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
WRITES = frozenset({"PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem"})
# The OU the organization template deploys the member role to (through the member StackSet).
MEMBER_OU = "ou-ab12-cdef3456"


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

    # --- the poller --------------------------------------------------------------------
    def invoke(
        self, event: Any = SCHEDULED, context: LocalLambdaContext | None = None
    ) -> dict[str, Any]:
        """One invocation of the real handler, by default as the schedule makes it.

        The resources have the same names in every test, so a warm container's settings
        and clients stay valid; after a change of environment, the container is new.
        """
        module = poller_handler(self.spec)
        if module.settings() != Settings.from_env(os.environ):
            reset_handler_caches(self.spec)
        result: dict[str, Any] = module.handler(event, context or LocalLambdaContext())
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
        name = f"people-{uuid.uuid4().hex[:8]}"
        topic = os.environ["PEOPLE_TOPIC_ARN"]
        return subscribe_queue(observer_session(), topic, name, filter_policy)

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
        sent to moto through boto3's default session, and each the Personalize endpoint
        answered (whatever session the poller's clients for each scope came from)."""
        to_moto = [call for call in self.sent if not call.startswith("personalize:")]
        personalize = {f"personalize:{op}": n for op, n in self.personalize.calls.items()}
        return Counter(to_moto) + Counter(personalize)

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


@cache
def observer_session() -> boto3.session.Session:
    """The tests' own session, apart from boto3's default one that the handler's requests
    are counted in. One for the whole run: a session parses each service's model once."""
    return boto3.session.Session()


@cache
def observer_client(service: str) -> Any:
    """A client of the tests' own session: the test's calls are not counted."""
    return observer_session().client(service)  # type: ignore[call-overload]


_recording: list[list[str]] = []  # where the handler's requests go: the current test's list


@cache
def handler_session() -> boto3.session.Session:
    """boto3's default session, which the handler's clients come from, for the whole run:
    its clients (and the service models they parsed) are reused from test to test, and
    each request they send is recorded for the test that is running."""
    session = boto3.session.Session()

    def record(event_name: str, **_: Any) -> None:
        if _recording:
            _recording[-1].append(":".join(event_name.split(".", 2)[1:]))

    session.events.register("before-send", record)
    return session


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The stack as `python app.py` synthesizes it for the demo: the default configuration
    with one email subscriber (one synth serves both)."""
    return synth(Layout.sized(1, 1).context())


@pytest.fixture(scope="session")
def spec(template: dict[str, Any]) -> PollerSpec:
    return read_poller(template)


@pytest.fixture(scope="session", params=["DELEGATED_ADMIN", "SELF"])
def organization_template(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The stack for an organization: the demo's configuration with member OUs and no list
    of accounts, so the poller finds the accounts from the member StackSet's instances. Once
    deployed in a delegated administrator of StackSets (the default), once in the management
    account (stackSetCallAs SELF)."""
    return synth(
        {
            **Layout.sized(1, 1).context(),
            "memberOrganizationalUnits": MEMBER_OU,
            "stackSetCallAs": request.param,
        }
    )


@pytest.fixture
def organization_stack(stack: Stack, organization_template: dict[str, Any]) -> Stack:
    """The stack fixture's resources with the poller configured as the organization's template
    configures it: the same table and topics (the same logical IDs), and every setting the
    template gives the function."""
    spec = read_poller(organization_template)
    if (spec.handler, spec.table_id, spec.table, spec.topic_ids, set(spec.environment)) != (
        stack.spec.handler,
        stack.spec.table_id,
        stack.spec.table,
        stack.spec.topic_ids,
        set(stack.spec.environment),
    ):
        raise TemplateError("the organization's poller is not wired as the default one")
    provisioned = {  # what each logical ID the default environment references became locally
        value["Ref"]: os.environ[name]
        for name, value in stack.spec.environment.items()
        if isinstance(value, dict) and "Ref" in value
    }
    for name, value in spec.environment.items():
        if isinstance(value, str):
            stack.configure(**{name: value})
        elif isinstance(value, dict) and value.get("Ref") in provisioned:
            stack.configure(**{name: provisioned[value["Ref"]]})
        else:
            raise TemplateError(f"cannot resolve the poller's {name}={value!r} locally")
    return replace(stack, spec=spec)


@pytest.fixture
def stack(
    local_aws: LocalAws, spec: PollerSpec, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    local_aws.reset()
    session = observer_session()
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
    if boto3.DEFAULT_SESSION is not handler_session():  # clients made elsewhere: forget them
        boto3.DEFAULT_SESSION = handler_session()
        reset_handler_caches(spec)
    _recording.append(created.sent)
    yield created
    _recording.remove(created.sent)


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
    poller_handler(spec).discovery.cache_clear()


@pytest.fixture(autouse=True)
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries as configured, without sleeping between attempts.

    Tests assert how many attempts reach the endpoints, never how long they took.
    """
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda _self, _context: 0.0)
