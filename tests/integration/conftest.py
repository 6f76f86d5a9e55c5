from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local.lambda_context import LocalLambdaContext
from local.local_aws import drain_queue
from poller.snapshot_store import JOB_PARTITION, MARKER_KEY, PARTITION_KEY, SORT_KEY

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Iterator

    from local.local_aws import LocalAws
    from local.personalize_emulator import PersonalizeEmulator

TABLE = "segment-job-snapshot"


@dataclass
class Stack:
    """The notifier's resources in local AWS, with helpers to run and observe it."""

    aws: LocalAws
    table_name: str
    topic_arn: str
    queue_url: str
    calls: Counter[str]
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def personalize(self) -> PersonalizeEmulator:
        return self.aws.personalize

    def invoke(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = poller_handler().handler(
            event if event is not None else {"source": "aws.events"}, LocalLambdaContext()
        )
        return result

    def notifications(self) -> list[dict[str, Any]]:
        """SNS notifications delivered to the SQS subscriber since the last call."""
        sqs = observer_client("sqs")
        fresh = list(drain_queue(sqs, self.queue_url))
        self.received += fresh
        return fresh

    def snapshot(self) -> dict[str, dict[str, Any]]:
        dynamodb = observer_client("dynamodb")
        items = dynamodb.scan(TableName=self.table_name)["Items"]
        return {
            item[SORT_KEY]["S"]: {k: next(iter(v.values())) for k, v in item.items()}
            for item in items
            if item[PARTITION_KEY]["S"] == JOB_PARTITION and item[SORT_KEY]["S"] != MARKER_KEY
        }


def poller_handler() -> Any:
    """The handler module, imported as Lambda would: after its environment is set."""
    return importlib.import_module("poller.handler")


def observer_client(service: str) -> Any:
    """A client outside boto3's default session, so the test's own calls are not counted."""
    return boto3.session.Session().client(service)  # type: ignore[call-overload]


def create_stack(aws: LocalAws, calls: Counter[str]) -> Stack:
    dynamodb = observer_client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    sns = observer_client("sns")
    sqs = observer_client("sqs")
    topic_arn = sns.create_topic(Name="segment-job-events")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="segment-job-events-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return Stack(aws, TABLE, topic_arn, queue_url, calls)


@pytest.fixture
def stack(
    local_aws: LocalAws, api_calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    local_aws.reset()
    created = create_stack(local_aws, api_calls)
    monkeypatch.setenv("SNAPSHOT_TABLE_NAME", created.table_name)
    monkeypatch.setenv("TOPIC_ARN", created.topic_arn)
    monkeypatch.delenv("SOLUTION_VERSION_ARNS", raising=False)
    reset_handler_caches()
    yield created
    reset_handler_caches()


def reset_handler_caches() -> None:
    """Forget settings and clients, as a new Lambda container would."""
    poller_handler().settings.cache_clear()
    poller_handler().adapters.cache_clear()


def ts(minutes: float) -> float:
    """Epoch seconds, `minutes` after a fixed start, for readable job timelines."""
    return datetime(2026, 11, 1, 9, 0, tzinfo=UTC).timestamp() + minutes * 60
