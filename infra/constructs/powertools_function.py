"""A Python Lambda as both of this stack's functions are built: arm64, the public
Powertools layer, its own log group with retention, and a role that may write only there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

if TYPE_CHECKING:
    from infra.config import NotifierConfig

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
POWERTOOLS_ACCOUNT = "017000801446"  # publisher of the public Powertools for AWS Lambda layers
METRICS_NAMESPACE = "PersonalizeSegmentJobNotifier"


class PowertoolsFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: NotifierConfig,
        handler: str,
        service_name: str,
        description: str,
        memory_size: int,
        timeout: Duration,
        environment: dict[str, str],
        reserved_concurrent_executions: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=config.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )
        # Instead of AWSLambdaBasicExecutionRole: logs only to this function's own log group.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
            f"AWSLambdaPowertoolsPythonV3-python313-arm64:{config.powertools_layer_version}",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(LAMBDAS_DIR), exclude=["**/__pycache__", "**/*.pyc", "**/requirements.txt"]
            ),
            layers=[powertools],
            role=self.role,
            memory_size=memory_size,
            timeout=timeout,
            reserved_concurrent_executions=reserved_concurrent_executions,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": config.log_level,
                "POWERTOOLS_TRACE_DISABLED": str(not config.tracing).lower(),
            },
            description=description,
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [
                {
                    "id": "AwsSolutions-L1",
                    "reason": "Pinned to python3.13, the runtime the pinned public Powertools "
                    "layer (AWSLambdaPowertoolsPythonV3-python313) is built for; both move "
                    "together.",
                },
                {
                    "id": "Serverless-LambdaLatestVersion",
                    "reason": "Pinned to python3.13 together with its Powertools layer.",
                },
                {
                    "id": "Serverless-LambdaDLQ",
                    "reason": "Failed asynchronous invocations go to an on-failure destination "
                    "queue; a DeadLetterConfig would receive the same event twice.",
                },
            ],
        )
