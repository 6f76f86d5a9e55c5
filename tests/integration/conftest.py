from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.retries.standard import ExponentialBackoff

from local.lambda_context import LOCAL_RUNTIME_ENV, LocalLambdaContext
from local.local_aws import drain_queue
from local.provision import create_queue, provision, subscribe_queue
from local.template import PollerSpec, read_poller, synth
from poller.eventbridge_publisher import SOURCE
from poller.snapshot_store import JOB_PARTITION, MARKER_KEY, PARTITION_KEY, SORT_KEY

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Iterator

    from local.local_aws import LocalAws
    from local.personalize_emulator import PersonalizeEmulator


@dataclass
class Stack:
    """The notifier's resources in local AWS, built from the synthesized template."""

    aws: LocalAws
    spec: PollerSpec
    table_name: str
    topic_arn: str
    queue_url: str
    calls: Counter[str]
    bus_queue_url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    # Whether the handler's next polls read every record; by default they read only the
    # records of jobs updated near the watermark, as most scheduled polls do.
    full_reconcile: bool = False

    @property
    def personalize(self) -> PersonalizeEmulator:
        return self.aws.personalize

    def invoke(self, event: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = poller_handler(self.spec).handler(
            event if event is not None else {"source": "aws.events"}, LocalLambdaContext()
        )
        return result

    def notifications(self) -> list[dict[str, Any]]:
        """SNS notifications delivered to the SQS subscriber since the last call."""
        fresh = list(drain_queue(observer_client("sqs"), self.queue_url))
        self.received += fresh
        return fresh

    def bus_events(self) -> list[dict[str, Any]]:
        """Events a rule on the default bus matched since the last call (SQS target)."""
        return [
            dict(message) for message in drain_queue(observer_client("sqs"), self.bus_queue_url)
        ]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Job items in the snapshot table, by job ARN, as plain strings."""
        items = observer_client("dynamodb").scan(TableName=self.table_name)["Items"]
        return {
            item[SORT_KEY]["S"]: {k: next(iter(v.values())) for k, v in item.items()}
            for item in items
            if item[PARTITION_KEY]["S"] == JOB_PARTITION and item[SORT_KEY]["S"] != MARKER_KEY
        }


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
    local_aws: LocalAws, spec: PollerSpec, api_calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    local_aws.reset()
    session = boto3.session.Session()
    resources = provision(spec, session)
    for name, value in {**resources.environment, **LOCAL_RUNTIME_ENV}.items():
        monkeypatch.setenv(name, value)
    queue_url = subscribe_queue(session, resources.topic_arn, "pipeline")
    created = Stack(
        local_aws,
        spec,
        resources.table_name,
        resources.topic_arn,
        queue_url,
        api_calls,
        bus_queue_url=route_bus_to_queue(session, "machines"),
    )
    monkeypatch.setattr(
        poller_handler(spec), "reconcile_due", lambda *_args: created.full_reconcile
    )
    reset_handler_caches(spec)
    yield created
    reset_handler_caches(spec)


def route_bus_to_queue(session: Any, name: str, pattern: dict[str, Any] | None = None) -> str:
    """A rule on the default bus (by default for every notifier event) to a new SQS queue."""
    queue_url, queue_arn = create_queue(session, name)
    events = session.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern or {"source": [SOURCE]}))
    events.put_targets(Rule=name, Targets=[{"Id": name, "Arn": queue_arn}])
    return queue_url


def reset_handler_caches(spec: PollerSpec) -> None:
    """Forget settings and clients, as a new Lambda container would."""
    poller_handler(spec).settings.cache_clear()
    poller_handler(spec).adapters.cache_clear()


def ts(minutes: float) -> float:
    """Epoch seconds, `minutes` after a fixed start, for readable job timelines."""
    return datetime(2026, 11, 1, 9, 0, tzinfo=UTC).timestamp() + minutes * 60


@pytest.fixture(autouse=True)
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries as configured, without sleeping between attempts.

    Tests assert how many attempts reach the endpoints, never how long they took.
    """
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda _self, _context: 0.0)
