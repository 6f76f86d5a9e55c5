"""Every service-to-service delivery in the template is allowed where it lands.

The edges are read from the template itself: alarm actions, subscriptions with a dead-letter
queue, Lambda subscriptions, rule targets and their dead-letter queues, asynchronous-invoke
destinations and AWS Chatbot's topics. For each, the target's resource policy (topic policy,
queue policy, Lambda permission) must allow the delivering service from that source, no deny
may stand in its way, and where the target is encrypted with a KMS key, the key's policy must
let the service use it. A service that cannot reach what it delivers to fails in silence.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra import principals
from tests.infra.conftest import configured

if TYPE_CHECKING:
    from collections.abc import Iterator

    from aws_cdk.assertions import Template

# A service delivers over TLS, so a deny on plain-text requests does not stand in its way.
TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}
THIS_ACCOUNT = {"Ref": "AWS::AccountId"}
# What a producer needs of the key of an encrypted topic or queue (SNS and SQS developer
# guides, "Enable compatibility between event sources from AWS services and encrypted topics"
# and "Configure KMS permissions for AWS services").
KMS_PRODUCER_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")

ALARM_ACTION = "CloudWatch alarm -> SNS topic"
SUBSCRIPTION_DEAD_LETTERS = "SNS subscription -> SQS dead-letter queue"
LAMBDA_SUBSCRIPTION = "SNS -> Lambda subscriber"
RULE_TARGET = "EventBridge rule -> Lambda target"
RULE_DEAD_LETTERS = "EventBridge rule -> SQS dead-letter queue"
ASYNC_DESTINATION = "Lambda asynchronous invocation -> SQS destination"
CHATBOT_SUBSCRIPTION = "AWS Chatbot -> SNS topic"


@dataclass(frozen=True)
class Edge:
    kind: str
    source: Any  # the source's ARN, as the template writes it (aws:SourceArn)
    target: str  # logical ID of the resource delivered to
    # The service principal that delivers; None where a role acts instead: the function's
    # execution role for a Lambda destination (its identity policy must allow the delivery),
    # Chatbot's own role when it subscribes.
    principal: str | None
    action: str


def arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def referenced(value: Any) -> str | None:
    """The logical ID a Ref or GetAtt points at."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def of_type(template: Template, resource_type: str) -> dict[str, Any]:
    return dict(template.find_resources(resource_type))


def edges(template: Template) -> Iterator[Edge]:
    functions = of_type(template, "AWS::Lambda::Function")
    for alarm_id, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in props.get(key, []):
                topic = referenced(action)
                assert topic, f"{alarm_id} acts on {action}, not a topic of this stack"
                yield Edge(
                    ALARM_ACTION, arn_of(alarm_id), topic, principals.CLOUDWATCH, "sns:Publish"
                )
    for subscription in of_type(template, "AWS::SNS::Subscription").values():
        props = subscription["Properties"]
        if "RedrivePolicy" in props:
            queue = referenced(props["RedrivePolicy"]["deadLetterTargetArn"])
            assert queue
            yield Edge(
                SUBSCRIPTION_DEAD_LETTERS,
                props["TopicArn"],
                queue,
                principals.SNS,
                "sqs:SendMessage",
            )
        if props["Protocol"] == "lambda":
            function = referenced(props["Endpoint"])
            assert function
            yield Edge(
                LAMBDA_SUBSCRIPTION,
                props["TopicArn"],
                function,
                principals.SNS,
                "lambda:InvokeFunction",
            )
    for rule_id, rule in of_type(template, "AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            function = referenced(target["Arn"])
            if function in functions:
                yield Edge(
                    RULE_TARGET,
                    arn_of(rule_id),
                    function,
                    principals.EVENTS,
                    "lambda:InvokeFunction",
                )
            if "DeadLetterConfig" in target:
                queue = referenced(target["DeadLetterConfig"]["Arn"])
                assert queue
                yield Edge(
                    RULE_DEAD_LETTERS, arn_of(rule_id), queue, principals.EVENTS, "sqs:SendMessage"
                )
    for config in of_type(template, "AWS::Lambda::EventInvokeConfig").values():
        function = referenced(config["Properties"]["FunctionName"])
        assert function
        for destination in config["Properties"].get("DestinationConfig", {}).values():
            queue = referenced(destination["Destination"])
            assert queue
            # Lambda sends the record with the function's execution role (Lambda developer
            # guide, "Configuring destinations for asynchronous invocation").
            yield Edge(ASYNC_DESTINATION, arn_of(function), queue, None, "sqs:SendMessage")
    for chatbot in of_type(template, "AWS::Chatbot::SlackChannelConfiguration").values():
        for topic_arn in chatbot["Properties"].get("SnsTopicArns", []):
            topic = referenced(topic_arn)
            assert topic
            yield Edge(CHATBOT_SUBSCRIPTION, None, topic, None, "sns:Subscribe")


def matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in as_list(patterns))


def admits(conditions: dict[str, Any] | None, source: Any) -> bool:
    """Whether a statement's conditions hold for a delivery from `source` in this account.

    Only conditions this stack can be expected to use are understood; any other makes the
    statement count as not applying, so an unknown condition fails the test, not a delivery.
    """
    for operator, keys in (conditions or {}).items():
        for key, expected in keys.items():
            if key.lower() == "aws:sourcearn" and operator in {"ArnEquals", "ArnLike"}:
                if source not in as_list(expected):
                    return False
            elif key.lower() == "aws:sourceaccount" and operator == "StringEquals":
                if as_list(expected) != [THIS_ACCOUNT]:
                    return False
            else:
                return False
    return True


def names_principal(statement: dict[str, Any], principal: str | None) -> bool:
    """Whether the statement applies to the principal (None: an identity policy's own role)."""
    named = statement.get("Principal")
    if principal is None or named in ("*", {"AWS": "*"}):
        return True
    return isinstance(named, dict) and principal in as_list(named.get("Service", []))


def allowed(
    statements: list[dict[str, Any]],
    principal: str | None,
    action: str,
    resource: Any,
    source: Any,
) -> bool:
    """Allowed by some statement and denied by none (a TLS-only deny does not apply)."""
    relevant = [
        s
        for s in statements
        if names_principal(s, principal)
        and matches(s["Action"], action)
        and any(r in ("*", resource) for r in as_list(s.get("Resource", "*")))
    ]
    denied = any(s["Effect"] == "Deny" and s.get("Condition") != TLS_ONLY for s in relevant)
    granted = any(s["Effect"] == "Allow" and admits(s.get("Condition"), source) for s in relevant)
    return granted and not denied


def resource_policy(template: Template, target: str) -> tuple[list[dict[str, Any]], Any]:
    """The statements of the topic or queue policies guarding the target, and its ARN in them."""
    target_type = template.to_json()["Resources"][target]["Type"]
    policy_type, attached_to, resource = {
        "AWS::SNS::Topic": ("AWS::SNS::TopicPolicy", "Topics", {"Ref": target}),
        "AWS::SQS::Queue": ("AWS::SQS::QueuePolicy", "Queues", arn_of(target)),
    }[target_type]
    statements = [
        statement
        for policy in of_type(template, policy_type).values()
        if {"Ref": target} in policy["Properties"][attached_to]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    return statements, resource


def lambda_permissions(template: Template, function: str) -> list[dict[str, Any]]:
    """The function's Lambda permissions, as policy statements."""
    statements = []
    for permission in of_type(template, "AWS::Lambda::Permission").values():
        props = permission["Properties"]
        if referenced(props["FunctionName"]) != function:
            continue
        condition: dict[str, Any] = {}
        if "SourceArn" in props:
            condition["ArnEquals"] = {"aws:SourceArn": props["SourceArn"]}
        if "SourceAccount" in props:
            condition["StringEquals"] = {"aws:SourceAccount": props["SourceAccount"]}
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"Service": props["Principal"]},
                "Action": props["Action"],
                "Condition": condition,
            }
        )
    return statements


def key_of(template: Template, target: str) -> str | None:
    """The logical ID of the KMS key encrypting a topic or queue; None if it has none.

    A key that is not in the template (an alias such as alias/aws/sns) is an AWS managed
    key, whose policy no service principal can be added to.
    """
    encrypted_with = template.to_json()["Resources"][target]["Properties"].get("KmsMasterKeyId")
    if encrypted_with is None:
        return None
    key = referenced(encrypted_with)
    assert key in of_type(template, "AWS::KMS::Key"), f"{target} uses a key no policy here grants"
    return key


def role_statements(template: Template, function: str) -> list[dict[str, Any]]:
    """The statements of the IAM policies attached to the function's execution role."""
    role = referenced(of_type(template, "AWS::Lambda::Function")[function]["Properties"]["Role"])
    return [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def guarding_statements(template: Template, edge: Edge) -> tuple[list[dict[str, Any]], Any]:
    """What must allow the delivery, and the target as those statements name it."""
    if edge.kind == ASYNC_DESTINATION:
        return role_statements(template, edge.source["Fn::GetAtt"][0]), arn_of(edge.target)
    if edge.action == "lambda:InvokeFunction":
        return lambda_permissions(template, edge.target), "*"
    return resource_policy(template, edge.target)


def key_statements(template: Template, edge: Edge, key: str) -> tuple[list[dict[str, Any]], Any]:
    """What must let the deliverer use the target's key: the key policy, or the role's."""
    if edge.principal is None:
        return guarding_statements(template, edge)[0], arn_of(key)
    key_policy = template.to_json()["Resources"][key]["Properties"]["KeyPolicy"]
    return key_policy["Statement"], "*"  # in a key policy, "*" is the key itself


def problems(template: Template) -> Iterator[str]:
    for edge in edges(template):
        statements, resource = guarding_statements(template, edge)
        if edge.kind == CHATBOT_SUBSCRIPTION:
            # SNS decrypts what it delivers to Chatbot's HTTPS endpoint, so the key is not
            # involved, and Chatbot subscribes with its own role: no statement may deny it.
            if any(
                s["Effect"] == "Deny"
                and matches(s["Action"], edge.action)
                and s.get("Condition") != TLS_ONLY
                for s in statements
            ):
                yield f"{edge.kind}: {edge.target}'s policy denies {edge.action}"
            continue
        if not allowed(statements, edge.principal, edge.action, resource, edge.source):
            yield f"{edge.kind}: {edge.target} does not allow {edge.principal} {edge.action}"
        key = None if edge.action == "lambda:InvokeFunction" else key_of(template, edge.target)
        if key is not None:
            statements, resource = key_statements(template, edge, key)
            for kms_action in KMS_PRODUCER_ACTIONS:
                if not allowed(statements, edge.principal, kms_action, resource, edge.source):
                    yield f"{edge.kind}: key {key} of {edge.target} refuses {kms_action}"


# The edges each configuration must have, so the walk cannot pass by finding nothing.
EXPECTED_KINDS = {
    "default": {ALARM_ACTION, RULE_TARGET, RULE_DEAD_LETTERS, ASYNC_DESTINATION},
    "every option": {
        ALARM_ACTION,
        SUBSCRIPTION_DEAD_LETTERS,
        LAMBDA_SUBSCRIPTION,
        RULE_TARGET,
        RULE_DEAD_LETTERS,
        ASYNC_DESTINATION,
        CHATBOT_SUBSCRIPTION,
    },
}


def test_every_service_can_reach_what_it_delivers_to(each_configuration: Template) -> None:
    assert list(problems(each_configuration)) == []


def test_the_walk_finds_every_kind_of_delivery() -> None:
    for name, kinds in EXPECTED_KINDS.items():
        assert {edge.kind for edge in edges(configured(name))} == kinds, name


def test_every_alarm_is_an_edge_to_an_encrypted_topic(all_options_template: Template) -> None:
    alarm_edges = [e for e in edges(all_options_template) if e.kind == ALARM_ACTION]
    assert {e.source["Fn::GetAtt"][0] for e in alarm_edges} == set(
        of_type(all_options_template, "AWS::CloudWatch::Alarm")
    )
    assert all(key_of(all_options_template, e.target) for e in alarm_edges)


def test_the_one_scope_errors_alarm_reaches_the_alarm_topic(
    each_configuration: Template,
) -> None:
    """However many scopes (in an organization, accounts found at run time), one alarm on
    UnreachableScopes: an edge to the alarm topic that its policy and key let through."""
    alarms = {
        alarm_id: alarm["Properties"]
        for alarm_id, alarm in of_type(each_configuration, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"]["MetricName"] in ("UnreachableScopes", "ScopeErrors")
    }
    ((alarm_id, props),) = alarms.items()
    assert props["MetricName"] == "UnreachableScopes"
    (edge,) = [
        e
        for e in edges(each_configuration)
        if e.kind == ALARM_ACTION and e.source == arn_of(alarm_id)
    ]
    assert "Alarms" in edge.target
    statements, resource = guarding_statements(each_configuration, edge)
    assert allowed(statements, edge.principal, edge.action, resource, edge.source)
    assert not [p for p in problems(each_configuration) if edge.target in p]
