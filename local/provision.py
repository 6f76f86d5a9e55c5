"""Create the poller's resources in local AWS from the template, and resolve its environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.session import Session

    from local.template import PollerSpec

from local.template import TemplateError


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    topic_arn: str
    environment: dict[str, str]


def provision(spec: PollerSpec, session: Session) -> LocalResources:
    """Create the table and topic the poller's environment references; resolve the refs."""
    dynamodb = session.client("dynamodb")
    sns = session.client("sns")
    table_name = spec.table_id
    dynamodb.create_table(TableName=table_name, **spec.table)
    topic_arn = sns.create_topic(Name=spec.topic_id)["TopicArn"]
    resolved_refs = {spec.table_id: table_name, spec.topic_id: topic_arn}

    environment: dict[str, str] = {}
    for name, value in spec.environment.items():
        if isinstance(value, str):
            environment[name] = value
        elif isinstance(value, dict) and value.get("Ref") in resolved_refs:
            environment[name] = resolved_refs[value["Ref"]]
        else:
            raise TemplateError(f"cannot resolve the poller's {name}={value!r} locally")
    return LocalResources(table_name, topic_arn, environment)


def subscribe_queue(session: Session, topic_arn: str, name: str) -> str:
    """An SQS queue subscribed to the topic, as a pipeline would; returns its URL."""
    sqs: Any = session.client("sqs")
    queue_url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url
