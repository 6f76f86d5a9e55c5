"""Assertions on the synthesized template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from notifier_cli.deployment import FUNCTION_OUTPUT
from poller.settings import Settings
from tests.infra.conftest import allowed, synth


def only(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {list(resources)}"
    resource_id, resource = next(iter(resources.items()))
    return resource_id, dict(resource)


def logical_id(template: Template, resource_type: str) -> str:
    return only(template, resource_type)[0]


def events_topic_id(template: Template) -> str:
    ref: str = poller(template)["Environment"]["Variables"]["TOPIC_ARN"]["Ref"]
    return ref


def people_topic_id(template: Template) -> str:
    ref: str = poller(template)["Environment"]["Variables"]["PEOPLE_TOPIC_ARN"]["Ref"]
    return ref


def alarm_topic_id(template: Template) -> str:
    poller_topics = {events_topic_id(template), people_topic_id(template)}
    (topic_id,) = [t for t in template.find_resources("AWS::SNS::Topic") if t not in poller_topics]
    return topic_id


def failed_runs_queue_id(template: Template) -> str:
    _, config = only(template, "AWS::Lambda::EventInvokeConfig")
    queue_id: str = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"][
        "Fn::GetAtt"
    ][0]
    return queue_id


def role_statements(template: Template) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


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
    assert poller(template)["Environment"]["Variables"]["RUN_SECONDS"] == "720"


def test_function_settings(default_template: Template) -> None:
    props = poller(default_template)
    assert props["Runtime"] in {"python3.12", "python3.13", "python3.14"}
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 900, "Lambda's longest, for catch-up runs"
    assert int(props["Environment"]["Variables"]["RUN_SECONDS"]) < 5 * 60, "a scheduled run"
    assert props["TracingConfig"] == {"Mode": "Active"}
    (layer,) = props["Layers"]
    assert layer["Fn::Join"][1][-1] == ":layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    assert props["Code"]["S3Key"].endswith(".zip")


def test_environment_references_table_and_topic(template: Template) -> None:
    env = poller(template)["Environment"]["Variables"]
    assert env["SNAPSHOT_TABLE_NAME"] == {"Ref": logical_id(template, "AWS::DynamoDB::Table")}
    assert (
        template.find_resources("AWS::SNS::Topic")[events_topic_id(template)]["Properties"][
            "DisplayName"
        ]
        == "Personalize batch segment jobs"
    )
    assert env["SOLUTION_VERSION_ARNS"] == "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
    assert env["POWERTOOLS_METRICS_NAMESPACE"]
    assert env["POWERTOOLS_SERVICE_NAME"]
    # The poller's settings wrote it: every name it reads, and nothing it does not.
    written = set(Settings("table", "topic", "region").to_env())
    assert {name for name in env if not name.startswith("POWERTOOLS_")} == written


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
    def arn(service: str, resource: str) -> dict[str, Any]:
        return {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    f":{service}:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    f":{resource}",
                ],
            ]
        }

    table = {"Fn::GetAtt": [logical_id(template, "AWS::DynamoDB::Table"), "Arn"]}
    key = {"Fn::GetAtt": [logical_id(template, "AWS::KMS::Key"), "Arn"]}
    log_group = {"Fn::GetAtt": [logical_id(template, "AWS::Logs::LogGroup"), "Arn"]}
    failed_runs = {"Fn::GetAtt": [failed_runs_queue_id(template), "Arn"]}
    topics = sorted(
        [{"Ref": events_topic_id(template)}, {"Ref": people_topic_id(template)}], key=json.dumps
    )
    (poller_id,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "poller.handler.handler"}}
    )
    assert allowed(role_statements(template)) == {
        # A catch-up run is the poller invoked by itself, and nothing else. Within one
        # account the role's own policy is enough: no resource-based permission is needed.
        "lambda:InvokeFunction": [{"Fn::GetAtt": [poller_id, "Arn"]}],
        "personalize:ListBatchSegmentJobs": ["*"],
        "personalize:DescribeBatchSegmentJob": [arn("personalize", "batch-segment-job/*")],
        "dynamodb:BatchGetItem": [table],
        "dynamodb:BatchWriteItem": [table],
        "dynamodb:Query": [table],
        "dynamodb:UpdateItem": [table],
        "events:PutEvents": [arn("events", "event-bus/default")],
        "sns:Publish": topics,
        "kms:Decrypt": [key],
        "kms:GenerateDataKey*": [key],
        "logs:CreateLogStream": [log_group],
        "logs:PutLogEvents": [log_group],
        "sqs:GetQueueAttributes": [failed_runs],
        "sqs:GetQueueUrl": [failed_runs],
        "sqs:SendMessage": [failed_runs],
        "xray:PutTelemetryRecords": ["*"],
        "xray:PutTraceSegments": ["*"],
    }
    assert all(s["Effect"] == "Allow" for s in role_statements(template))
    _, role = only(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]


def key_statements_by_service(template: Template) -> dict[str, dict[str, Any]]:
    _, key = only(template, "AWS::KMS::Key")
    return {
        json.dumps(statement["Principal"]["Service"]): statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if "Service" in statement.get("Principal", {})
    }


def test_topics_are_encrypted_with_a_rotated_customer_key(template: Template) -> None:
    key_id, key = only(template, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    for topic in template.find_resources("AWS::SNS::Topic").values():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    # Only CloudWatch publishes to a topic as a service (alarms), and CloudWatch Logs writes
    # the log groups; no other service may use the key on its own.
    by_service = key_statements_by_service(template)
    assert by_service[json.dumps("cloudwatch.amazonaws.com")]["Action"] == [
        "kms:Decrypt",
        "kms:GenerateDataKey*",
    ]
    assert len(by_service) == 2


def test_log_groups_are_encrypted_for_cloudwatch_logs_only(
    all_options_template: Template,
) -> None:
    key_id, _ = only(all_options_template, "AWS::KMS::Key")
    log_groups = all_options_template.find_resources("AWS::Logs::LogGroup")
    assert len(log_groups) == 2
    for log_group in log_groups.values():
        assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    (logs,) = [
        statement
        for service, statement in key_statements_by_service(all_options_template).items()
        if "logs" in service
    ]
    # CloudWatch Logs' principal is regional; the encryption context names the log group.
    assert logs["Principal"]["Service"] == {
        "Fn::Join": [".", ["logs", {"Ref": "AWS::Region"}, {"Ref": "AWS::URLSuffix"}]]
    }
    assert "kms:GenerateDataKey*" in logs["Action"]
    assert list(logs["Condition"]["ArnLike"]) == ["kms:EncryptionContext:aws:logs:arn"]
    (context,) = logs["Condition"]["ArnLike"].values()
    assert context["Fn::Join"][1] == [
        "arn:",
        {"Ref": "AWS::Partition"},
        ":logs:",
        {"Ref": "AWS::Region"},
        ":",
        {"Ref": "AWS::AccountId"},
        ":log-group:*",
    ]


def test_topics_deny_publishing_without_tls(template: Template) -> None:
    policies = template.find_resources("AWS::SNS::TopicPolicy")
    covered = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny":
                assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                covered |= {t["Ref"] for t in policy["Properties"]["Topics"]}
    assert covered == set(template.find_resources("AWS::SNS::Topic"))


def test_table_is_protected(template: Template) -> None:
    _, table = only(template, "AWS::DynamoDB::Table")
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    assert table["UpdateReplacePolicy"] == "Retain"


def test_failed_runs_are_kept(default_template: Template) -> None:
    queue_id = failed_runs_queue_id(default_template)
    for queue in default_template.find_resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    _, config = only(default_template, "AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["MaximumRetryAttempts"] == 0
    _, rule = only(default_template, "AWS::Events::Rule")
    (target,) = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_reserved_concurrency_is_opt_in(
    default_template: Template, all_options_template: Template
) -> None:
    # Lambda keeps 100 of an account's concurrency unreserved: a reservation needs a quota
    # of at least itself plus 100, which a new account's reduced quota may not have.
    for function in default_template.find_resources("AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in function["Properties"]
    assert poller(synth({"reservedConcurrency": "3"}))["ReservedConcurrentExecutions"] == 3
    # It is the poller's setting; the Slack forwarder never reserves.
    (forwarder,) = all_options_template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "slack_forwarder.handler.handler"}}
    ).values()
    assert "ReservedConcurrentExecutions" not in forwarder["Properties"]


@pytest.mark.parametrize("minutes", [1, 360, 361, 1440])
def test_every_documented_schedule_synthesizes(minutes: int) -> None:
    template = synth({"scheduleMinutes": str(minutes)})
    _, config = only(template, "AWS::Lambda::EventInvokeConfig")
    # An event older than a period is stale; Lambda keeps one for 6 hours at most.
    assert config["Properties"]["MaximumEventAgeInSeconds"] == min(minutes * 60, 6 * 3600)
    assert int(poller(template)["Environment"]["Variables"]["RUN_SECONDS"]) < minutes * 60
    (heartbeat,) = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "PollSucceeded"
    ]
    assert heartbeat["Period"] == minutes * 60
    # CloudWatch evaluates an alarm over at most 7 days (1 day below an hour's period).
    limit = 7 * 86400 if heartbeat["Period"] >= 3600 else 86400
    assert heartbeat["Period"] * heartbeat["EvaluationPeriods"] <= limit


def test_alarms_notify_the_alarm_topic(default_template: Template) -> None:
    found = default_template.find_resources("AWS::CloudWatch::Alarm")
    by_name = {
        re.sub(r"^Alerting|[0-9A-F]{8}$", "", rid): a["Properties"] for rid, a in found.items()
    }
    assert set(by_name) == {
        "Errors",
        "Throttles",
        "FailedRuns",
        "FailedDeliveries",
        "Deferred",
        "ListingIncomplete",
        "BaselineUnfinished",
        "Heartbeat",
        # One for every unreachable scope, however many (see test_scopes.py).
        "ScopeErrors",
    }
    topic = {"Ref": alarm_topic_id(default_template)}
    for props in by_name.values():
        assert props["AlarmActions"] == [topic]
    queues = {
        "FailedRuns": failed_runs_queue_id(default_template),
        "FailedDeliveries": next(
            q for q in default_template.find_resources("AWS::SQS::Queue") if "FailedDeliveries" in q
        ),
    }
    for name, queue_id in queues.items():
        assert by_name[name]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert by_name[name]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
    assert by_name["Errors"]["MetricName"] == "Errors"
    assert by_name["Throttles"]["MetricName"] == "Throttles"
    heartbeat = by_name["Heartbeat"]
    assert heartbeat["Namespace"] == "PersonalizeSegmentJobNotifier"
    assert heartbeat["Dimensions"] == [{"Name": "service", "Value": "segment-job-notifier"}]
    assert heartbeat["ComparisonOperator"] == "LessThanThreshold"
    assert heartbeat["Threshold"] == 1
    assert heartbeat["Period"] == 300
    assert heartbeat["EvaluationPeriods"] == 3
    assert heartbeat["DatapointsToAlarm"] == 3
    assert heartbeat["TreatMissingData"] == "breaching"
    assert heartbeat["MetricName"] == "PollSucceeded"
    assert by_name["Errors"]["Threshold"] == 1
    assert by_name["Errors"]["Statistic"] == "Sum"


def test_heartbeat_follows_the_schedule() -> None:
    template = synth({"scheduleMinutes": "30"})
    (heartbeat,) = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "PollSucceeded"
    ]
    assert heartbeat["Period"] == 1800


@pytest.mark.parametrize(
    ("alarm", "metric", "statistic", "threshold"),
    [
        ("Deferred", "TransitionsDeferred", "Sum", 1),
        ("ListingIncomplete", "ListingIncomplete", "Sum", 1),
        # A first run still unfinished after 3 runs.
        ("BaselineUnfinished", "BaselinePolls", "Maximum", 3),
    ],
)
def test_falling_behind_is_never_silent(
    alarm: str, metric: str, statistic: str, threshold: int
) -> None:
    template = synth({"scheduleMinutes": "10"})
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    (props,) = [a["Properties"] for rid, a in alarms.items() if rid.startswith(f"Alerting{alarm}")]
    assert props["MetricName"] == metric
    assert props["Namespace"] == "PersonalizeSegmentJobNotifier"
    assert props["Dimensions"] == [{"Name": "service", "Value": "segment-job-notifier"}]
    assert props["Statistic"] == statistic
    assert props["Period"] == 600  # one schedule period
    assert props["EvaluationPeriods"] == 1
    assert props["Threshold"] == threshold
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # A poll that did not fall behind may emit nothing: no data is no breach.
    assert props["TreatMissingData"] == "notBreaching"
    # The description says what to do, not only what happened.
    assert "scheduleMinutes" in props["AlarmDescription"]
    assert props["AlarmActions"] == [{"Ref": alarm_topic_id(template)}]


def test_dashboard(default_template: Template) -> None:
    _, dashboard = only(default_template, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "JobsSeen",
        "Transitions",
        "Published",
        "PublishFailures",
        "PollDuration",
        "Pages",
        "TransitionsDeferred",
        "ListingIncomplete",
        "BaselinePolls",
    ):
        assert metric in body


def test_environment_carries_the_stuck_limit() -> None:
    env = poller(synth({"stuckAfterMinutes": "90"}))["Environment"]["Variables"]
    assert env["STUCK_AFTER_MINUTES"] == "90"


def subscribers(template: Template, topic_id: str) -> list[str]:
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    assert all(s["Properties"]["Protocol"] == "email" for s in subscriptions.values())
    return sorted(
        s["Properties"]["Endpoint"]
        for s in subscriptions.values()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    )


def test_email_subscriptions_from_context(template: Template, default_template: Template) -> None:
    emails = ["ml-team@example.com", "ops@example.com"]
    assert subscribers(template, people_topic_id(template)) == emails
    assert subscribers(template, events_topic_id(template)) == []
    # Alarms go to the same people unless alarmEmails says otherwise.
    assert subscribers(template, alarm_topic_id(template)) == emails
    default_template.resource_count_is("AWS::SNS::Subscription", 0)


def test_alarm_emails_can_differ() -> None:
    template = synth({"notifyEmails": "team@example.com", "alarmEmails": "oncall@example.com"})
    assert subscribers(template, people_topic_id(template)) == ["team@example.com"]
    assert subscribers(template, alarm_topic_id(template)) == ["oncall@example.com"]


def test_outputs(template: Template) -> None:
    outputs = template.find_outputs("*")
    assert outputs["TopicArn"]["Value"] == {"Ref": events_topic_id(template)}
    assert outputs["PeopleTopicArn"]["Value"] == {"Ref": people_topic_id(template)}
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": alarm_topic_id(template)}
    assert outputs["SnapshotTableName"]["Value"] == {
        "Ref": logical_id(template, "AWS::DynamoDB::Table")
    }
    assert "PollerFunctionName" in outputs
    # The command-line tool finds the deployed poller, and so its configuration, by this name.
    assert FUNCTION_OUTPUT in outputs


def test_log_group_has_retention(default_template: Template) -> None:
    default_template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_email_subscriptions_keep_what_they_could_not_deliver(template: Template) -> None:
    queue_id = next(
        q for q in template.find_resources("AWS::SQS::Queue") if "FailedDeliveries" in q
    )
    for subscription in template.find_resources("AWS::SNS::Subscription").values():
        assert subscription["Properties"]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}
        }


def test_email_subscribers_get_what_people_need_by_default(template: Template) -> None:
    people_topic = {"Ref": people_topic_id(template)}
    for subscription in template.find_resources("AWS::SNS::Subscription").values():
        props = subscription["Properties"]
        if props["TopicArn"] == people_topic:
            assert props["FilterPolicy"] == {
                "eventType": ["JOB_FAILED", "JOB_STUCK", "JOB_SUCCEEDED", "JOB_DIGEST"]
            }
        else:
            assert "FilterPolicy" not in props  # alarms carry no eventType
    env = poller(template)["Environment"]["Variables"]
    assert env["PEOPLE_EVENT_TYPES"] == "JOB_SUCCEEDED,JOB_FAILED,JOB_STUCK"
    assert env["STORM_THRESHOLD"] == "20"


def test_email_event_types_are_configurable() -> None:
    template = synth({"notifyEmails": "a@example.com", "emailEventTypes": "JOB_FAILED"})
    (subscription,) = [
        s["Properties"]
        for s in template.find_resources("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": people_topic_id(template)}
    ]
    assert subscription["FilterPolicy"] == {"eventType": ["JOB_FAILED", "JOB_DIGEST"]}
    # The people topic still carries what Slack wants.
    env = poller(template)["Environment"]["Variables"]
    assert env["PEOPLE_EVENT_TYPES"] == "JOB_SUCCEEDED,JOB_FAILED,JOB_STUCK"


def test_people_topic_carries_what_emails_or_slack_want() -> None:
    template = synth(
        {"emailEventTypes": "JOB_FAILED", "slackEventTypes": "JOB_FAILED,JOB_STATUS_CHANGED"}
    )
    env = poller(template)["Environment"]["Variables"]
    assert env["PEOPLE_EVENT_TYPES"] == "JOB_FAILED,JOB_STATUS_CHANGED"


def test_slack_through_chatbot(default_template: Template) -> None:
    template = synth({"slackWorkspaceId": "T0123ABCD", "slackChannelId": "C0456EFGH"})
    _, slack = only(template, "AWS::Chatbot::SlackChannelConfiguration")
    props = slack["Properties"]
    assert props["SlackWorkspaceId"] == "T0123ABCD"
    assert props["SlackChannelId"] == "C0456EFGH"
    assert props["SnsTopicArns"] == [{"Ref": people_topic_id(template)}]
    assert props["LoggingLevel"] == "ERROR"
    (guardrail_ref,) = props["GuardrailPolicies"]
    guardrail = template.find_resources("AWS::IAM::ManagedPolicy")[guardrail_ref["Ref"]]
    assert guardrail["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "*", "Effect": "Deny", "Resource": "*"}
    ]
    role_id = props["IamRoleArn"]["Fn::GetAtt"][0]
    role = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "chatbot.amazonaws.com"
    }
    assert "ManagedPolicyArns" not in role
    default_template.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)


def test_events_go_to_the_configured_bus() -> None:
    template = synth({"eventBusName": "ml-pipelines"})
    assert poller(template)["Environment"]["Variables"]["EVENT_BUS_NAME"] == "ml-pipelines"
    (statement,) = [s for s in role_statements(template) if s["Action"] == "events:PutEvents"]
    assert statement["Resource"]["Fn::Join"][1][-1] == ":event-bus/ml-pipelines"


def test_slack_webhook_forwarder() -> None:
    template = synth({"slackWebhookSecretName": "notifier/slack-webhook"})
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "slack_forwarder.handler.handler"}}
    )
    ((function_id, function),) = functions.items()
    env = function["Properties"]["Environment"]["Variables"]
    assert env["WEBHOOK_SECRET_NAME"] == "notifier/slack-webhook"
    assert "hooks.slack.com" not in json.dumps(template.to_json())
    (subscription,) = [
        s["Properties"]
        for s in template.find_resources("AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "lambda"
    ]
    assert subscription["TopicArn"] == {"Ref": people_topic_id(template)}
    assert subscription["Endpoint"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert subscription["FilterPolicy"] == {
        "eventType": ["JOB_FAILED", "JOB_STUCK", "JOB_SUCCEEDED", "JOB_DIGEST"]
    }
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        st
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    secret_reads = [st for st in statements if "secretsmanager:GetSecretValue" in st["Action"]]
    assert len(secret_reads) == 1
    resource = json.dumps(secret_reads[0]["Resource"])
    assert ":secret:notifier/slack-webhook-??????" in resource
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert any("SlackErrors" in alarm_id for alarm_id in alarms)
    assert any("SlackUndelivered" in alarm_id for alarm_id in alarms)
