"""Create the poller's resources in local AWS from the template (with OUs, its member
StackSet too), and resolve its environment."""

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

    environment = {
        name: _resolved(f"the poller's {name}", value, resolved_refs)
        for name, value in spec.environment.items()
    }
    return LocalResources(table_name, topic_arns, environment)


def create_member_stack_set(template: dict[str, Any], session: Session, account_id: str) -> str:
    """The template's StackSet of the member role, in local CloudFormation, deployed from
    `account_id`; returns its name. Its instances are created by account (moto's
    service-managed StackSets deploy only to the accounts of moto's own organization, whose
    IDs it makes up), so it is made self-managed, with the template's member template."""
    (stack_set,) = [
        resource["Properties"]
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::CloudFormation::StackSet"
    ]
    refs = {"AWS::AccountId": account_id}
    name: str = stack_set["StackSetName"]
    session.client("cloudformation").create_stack_set(
        StackSetName=name,
        TemplateBody=stack_set["TemplateBody"],
        Capabilities=stack_set.get("Capabilities", []),
        Parameters=[
            {
                "ParameterKey": parameter["ParameterKey"],
                "ParameterValue": _resolved(
                    f"the StackSet's {parameter['ParameterKey']}", parameter["ParameterValue"], refs
                ),
            }
            for parameter in stack_set.get("Parameters", [])
        ],
    )
    return name


def _resolved(what: str, value: Any, refs: dict[str, str]) -> str:
    """A template value made concrete: a string, or a Ref to something created locally."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("Ref") in refs:
        return refs[value["Ref"]]
    raise TemplateError(f"cannot resolve {what}={value!r} locally")


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
