"""The poller: schedule -> Lambda -> snapshot table, publishing to the topic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

if TYPE_CHECKING:
    from aws_cdk import aws_sns as sns

    from infra.config import NotifierConfig

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
POWERTOOLS_ACCOUNT = "017000801446"  # publisher of the public Powertools for AWS Lambda layers
METRICS_NAMESPACE = "PersonalizeSegmentJobNotifier"
SERVICE_NAME = "segment-job-notifier"


class Notifier(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: NotifierConfig, topic: sns.ITopic
    ) -> None:
        super().__init__(scope, id)

        self.table = dynamodb.Table(
            self,
            "Snapshot",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # The snapshot is what keeps a redeploy from re-announcing or missing transitions.
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.log_group = logs.LogGroup(
            self,
            "PollerLogs",
            retention=config.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )

        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
            f"AWSLambdaPowertoolsPythonV3-python313-arm64:{config.powertools_layer_version}",
        )
        self.function = lambda_.Function(
            self,
            "Poller",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="poller.handler.handler",
            code=lambda_.Code.from_asset(
                str(LAMBDAS_DIR), exclude=["**/__pycache__", "**/*.pyc", "**/requirements.txt"]
            ),
            layers=[powertools],
            memory_size=256,
            timeout=Duration.seconds(config.timeout_seconds),
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            environment={
                "SNAPSHOT_TABLE_NAME": self.table.table_name,
                "TOPIC_ARN": topic.topic_arn,
                "SOLUTION_VERSION_ARNS": ",".join(config.solution_version_arns),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": config.log_level,
                "POWERTOOLS_TRACE_DISABLED": str(not config.tracing).lower(),
            },
            description="Polls Personalize batch segment jobs and publishes status transitions",
        )

        # Exactly the calls the poller makes, on exactly its resources.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["personalize:ListBatchSegmentJobs"],
                resources=["*"],  # List* has no resource-level permissions in Personalize
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
                resources=[self.table.table_arn],
            )
        )
        topic.grant_publish(self.function)

        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Starts a poll of Personalize batch segment jobs",
            schedule=events.Schedule.rate(Duration.minutes(config.schedule_minutes)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
