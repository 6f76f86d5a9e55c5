"""Assertions on the synthesized template."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from local import cli
from tests.infra.conftest import synth


def only(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {list(resources)}"
    resource_id, resource = next(iter(resources.items()))
    return resource_id, dict(resource)


def logical_id(template: Template, resource_type: str) -> str:
    return only(template, resource_type)[0]


def poller(template: Template) -> dict[str, Any]:
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "poller.handler.handler"}}
    )
    assert len(functions) == 1
    properties: dict[str, Any] = next(iter(functions.values()))["Properties"]
    return properties


def test_schedule_targets_the_poller_every_five_minutes(default_template: Template) -> None:
    function_id = next(
        iter(
            default_template.find_resources(
                "AWS::Lambda::Function", {"Properties": {"Handler": "poller.handler.handler"}}
            )
        )
    )
    default_template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(5 minutes)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
                        "RetryPolicy": {"MaximumRetryAttempts": 0},
                    }
                )
            ],
        },
    )
    default_template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction"},
    )


def test_schedule_period_is_configurable() -> None:
    template = synth({"scheduleMinutes": "15"})
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(15 minutes)"}
    )
    assert poller(template)["Timeout"] == 720


def test_function_settings(default_template: Template) -> None:
    props = poller(default_template)
    assert props["Runtime"] in {"python3.12", "python3.13", "python3.14"}
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 256
    assert props["Timeout"] < 5 * 60
    assert props["TracingConfig"] == {"Mode": "Active"}
    (layer,) = props["Layers"]
    layer_arn = "".join(part if isinstance(part, str) else "" for part in layer["Fn::Join"][1])
    assert ":017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:" in layer_arn
    assert props["Code"]["S3Key"].endswith(".zip")


def test_environment_references_table_and_topic(template: Template) -> None:
    env = poller(template)["Environment"]["Variables"]
    assert env["SNAPSHOT_TABLE_NAME"] == {"Ref": logical_id(template, "AWS::DynamoDB::Table")}
    assert env["TOPIC_ARN"] == {"Ref": logical_id(template, "AWS::SNS::Topic")}
    assert env["SOLUTION_VERSION_ARNS"] == "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
    assert env["POWERTOOLS_METRICS_NAMESPACE"]
    assert env["POWERTOOLS_SERVICE_NAME"]


def test_table_is_on_demand_keyed_by_pk_and_sk(template: Template) -> None:
    _, table = only(template, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"


def test_role_has_least_privilege(template: Template) -> None:
    table_id = logical_id(template, "AWS::DynamoDB::Table")
    topic_id = logical_id(template, "AWS::SNS::Topic")
    policies = template.find_resources("AWS::IAM::Policy")
    statements = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action = {
        tuple(sorted(s["Action"])) if isinstance(s["Action"], list) else (s["Action"],): s
        for s in statements
    }
    xray = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
    assert set(by_action) == {
        ("personalize:ListBatchSegmentJobs",),
        ("dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:UpdateItem"),
        ("sns:Publish",),
        xray,
    }
    assert by_action[("personalize:ListBatchSegmentJobs",)]["Resource"] == "*"
    dynamo = by_action[("dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:UpdateItem")]
    assert dynamo["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    assert by_action[("sns:Publish",)]["Resource"] == {"Ref": topic_id}
    assert all(s["Effect"] == "Allow" for s in statements)


def test_email_subscriptions_from_context(template: Template, default_template: Template) -> None:
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions.values()) == [
        "ml-team@example.com",
        "ops@example.com",
    ]
    assert all(s["Properties"]["Protocol"] == "email" for s in subscriptions.values())
    default_template.resource_count_is("AWS::SNS::Subscription", 0)


def test_outputs(template: Template) -> None:
    outputs = template.find_outputs("*")
    topic_id = logical_id(template, "AWS::SNS::Topic")
    assert outputs["TopicArn"]["Value"] == {"Ref": topic_id}
    assert outputs["SnapshotTableName"]["Value"] == {
        "Ref": logical_id(template, "AWS::DynamoDB::Table")
    }
    assert "PollerFunctionName" in outputs
    # The command-line tool finds the deployed table and topic by these output names.
    assert {cli.TABLE_OUTPUT, cli.TOPIC_OUTPUT} <= set(outputs)


def test_log_group_has_retention(default_template: Template) -> None:
    default_template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
