"""Create the poller's resources in local AWS from the template, and resolve its environment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.session import Session

    from local.template import PollerSpec

from local.template import TemplateError


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    topic_arns: dict[str, str]  # logical ID -> ARN
    environment: dict[str, str]

    @property
    def topic_arn(self) -> str:
        """The events topic: every event, one message each."""
        return self.environment["TOPIC_ARN"]


def provision(spec: PollerSpec, session: Session) -> LocalResources:
    """Create the table and topics the poller's environment references; resolve the refs."""
    dynamodb = session.client("dynamodb")
    sns = session.client("sns")
    table_name = spec.table_id
    dynamodb.create_table(TableName=table_name, **spec.table)
    topic_arns = {
        topic_id: sns.create_topic(Name=topic_id)["TopicArn"]
        for topic_id in set(spec.topic_ids.values())
    }
    resolved_refs = {spec.table_id: table_name, **topic_arns}

    environment: dict[str, str] = {}
    for name, value in spec.environment.items():
        if isinstance(value, str):
            environment[name] = value
        elif isinstance(value, dict) and value.get("Ref") in resolved_refs:
            environment[name] = resolved_refs[value["Ref"]]
        else:
            raise TemplateError(f"cannot resolve the poller's {name}={value!r} locally")
    return LocalResources(table_name, topic_arns, environment)


def create_queue(session: Session, name: str) -> tuple[str, str]:
    """A new SQS queue: its URL and its ARN."""
    sqs: Any = session.client("sqs")
    queue_url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return queue_url, queue_arn


def subscribe_queue(
    session: Session, topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None
) -> str:
    """An SQS queue subscribed to the topic, as a pipeline would; returns its URL."""
    queue_url, queue_arn = create_queue(session, name)
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    session.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes
    )
    return queue_url
