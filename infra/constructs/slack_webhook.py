"""Optional Slack incoming-webhook forwarder, for teams without AWS Chatbot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from cdk_nag import NagSuppressions
from constructs import Construct

from infra.constructs.channels import DIGEST_EVENT_TYPE, dead_letter_queue
from infra.constructs.notifier import LAMBDAS_DIR, METRICS_NAMESPACE, POWERTOOLS_ACCOUNT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from infra.config import NotifierConfig

# A secret imported by name is granted with a "-??????" wildcard for its random suffix.
SECRET_SUFFIX_WILDCARD = r"/^Resource::arn:<AWS::Partition>:secretsmanager:.*-\?{6}$/g"  # noqa: S105


class SlackWebhook(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: NotifierConfig,
        secret_name: str,
        topic: sns.ITopic,
        event_types: Sequence[str],
    ) -> None:
        super().__init__(scope, id)
        # The webhook URL stays in Secrets Manager; only the secret's name is configured.
        secret = secretsmanager.Secret.from_secret_name_v2(self, "WebhookUrl", secret_name)
        self.dead_letters = dead_letter_queue(
            self, "Undelivered", "the Slack forwarder's on-failure destination"
        )
        log_group = logs.LogGroup(
            self, "Logs", retention=config.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Reads the Slack webhook secret and writes its own logs",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        secret.grant_read(role)
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
            f"AWSLambdaPowertoolsPythonV3-python313-arm64:{config.powertools_layer_version}",
        )
        self.function = lambda_.Function(
            self,
            "Forwarder",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="slack_forwarder.handler.handler",
            code=lambda_.Code.from_asset(
                str(LAMBDAS_DIR), exclude=["**/__pycache__", "**/*.pyc", "**/requirements.txt"]
            ),
            layers=[powertools],
            role=role,
            memory_size=256,
            timeout=Duration.seconds(60),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            environment={
                "WEBHOOK_SECRET_NAME": secret_name,
                "POWERTOOLS_SERVICE_NAME": "segment-job-slack-forwarder",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": config.log_level,
                "POWERTOOLS_TRACE_DISABLED": str(not config.tracing).lower(),
            },
            description="Posts batch segment job notifications to a Slack incoming webhook",
        )
        # SNS invokes asynchronously: Lambda retries twice, then keeps the message here.
        self.function.configure_async_invoke(
            retry_attempts=2, on_failure=destinations.SqsDestination(self.dead_letters)
        )
        topic.add_subscription(
            subscriptions.LambdaSubscription(
                self.function,
                # If SNS cannot even invoke the function, the message is kept here too.
                dead_letter_queue=self.dead_letters,
                filter_policy={
                    "eventType": sns.SubscriptionFilter.string_filter(
                        allowlist=[*event_types, DIGEST_EVENT_TYPE]
                    )
                },
            )
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [
                {
                    "id": "AwsSolutions-L1",
                    "reason": "Pinned to python3.13 with the pinned public Powertools layer.",
                },
                {
                    "id": "Serverless-LambdaLatestVersion",
                    "reason": "Pinned to python3.13 together with its Powertools layer.",
                },
                {
                    "id": "Serverless-LambdaDLQ",
                    "reason": "Failed invocations go to the on-failure destination (the "
                    "Undelivered queue); a DeadLetterConfig would receive them twice.",
                },
            ],
        )
        NagSuppressions.add_resource_suppressions(
            role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "X-Ray's PutTraceSegments/PutTelemetryRecords accept only '*'.",
                    "applies_to": ["Resource::*"],
                },
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "A secret imported by name has a random six-character suffix "
                    "in its ARN; the '-??????' wildcard matches that suffix only.",
                    "applies_to": [{"regex": SECRET_SUFFIX_WILDCARD}],
                },
            ],
            apply_to_children=True,
        )
