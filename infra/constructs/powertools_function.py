"""A Python Lambda as both of this stack's functions are built: arm64, the public
Powertools layer, its own encrypted log group with retention, and a role that may write only
there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import (
    Aws,
    CfnCondition,
    CfnRule,
    CfnRuleAssertion,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

from infra import principals
from infra.checkov import skip_checkov

if TYPE_CHECKING:
    from aws_cdk import aws_kms as kms

    from infra.config import NotifierConfig

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
METRICS_NAMESPACE = "PersonalizeSegmentJobNotifier"
ON_FAILURE_DESTINATION = (
    "Failed asynchronous invocations go to an on-failure destination queue; a "
    "DeadLetterConfig would receive the same event twice."
)
# Who publishes the public Powertools for AWS Lambda (Python) layer (Powertools docs,
# "Installation > Lambda Layer"): one account in every region of the aws partition, and one
# account per region in the only China and GovCloud regions it is published in.
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python313-arm64"
POWERTOOLS_ACCOUNT = "017000801446"
POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION = {
    "cn-north-1": "498634801083",
    "us-gov-east-1": "165087284144",
    "us-gov-west-1": "165093116878",
}


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
        log_key: kms.IKey,
        reserved_concurrent_executions: int | None = None,
        role_name: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        # Logs carry job names and failure reasons: encrypted with the stack's key, whose
        # policy lets CloudWatch Logs use it for this account's log groups.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=config.log_retention,
            encryption_key=log_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(principals.LAMBDA),
            description=description,
            role_name=role_name,  # None: CloudFormation names it
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
            f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{PowertoolsLayerPublisher.of(self).account}:layer:"
            f"{POWERTOOLS_LAYER_NAME}:{config.powertools_layer_version}",
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
                    "reason": ON_FAILURE_DESTINATION,
                },
            ],
        )
        skip_checkov(self.function, "CKV_AWS_116", ON_FAILURE_DESTINATION)
        skip_checkov(
            self.function,
            "CKV_AWS_117",
            "The function calls only public AWS APIs (and Slack's webhook): a VPC would add NAT "
            "or endpoints and protect no private resource.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_173",
            "The environment holds no secret (table name, topic ARNs, a secret's name) and "
            "Lambda encrypts it at rest; a customer key would only add a decrypt permission.",
        )
        if reserved_concurrent_executions is None:
            skip_checkov(
                self.function,
                "CKV_AWS_115",
                "No reserved concurrency by default: a reservation comes out of the account's "
                "unreserved pool, which new accounts have at its minimum of 10, so any "
                "reservation fails deploy there. The poller opts in with reservedConcurrency.",
            )


class PowertoolsLayerPublisher(Construct):
    """The account that publishes the Powertools layer in the region being deployed to.

    Chosen at deploy time by conditions on the partition and region: a mapping lookup is not
    an option, as CloudFormation fails a lookup of a region the mapping does not list even
    in the branch of a condition it does not take. A rule stops the deploy, with a message,
    where no Powertools layer is published.
    """

    ID = "PowertoolsLayerPublisher"

    @classmethod
    def of(cls, scope: Construct) -> PowertoolsLayerPublisher:
        """The stack's one instance, shared by its functions."""
        stack = Stack.of(scope)
        found = stack.node.try_find_child(cls.ID)
        return found if isinstance(found, cls) else cls(stack, cls.ID)

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        regions = list(POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION)
        in_aws_partition = Fn.condition_equals(Aws.PARTITION, "aws")
        CfnRule(
            self,
            "PublishedHere",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_or(
                        in_aws_partition, Fn.condition_contains(regions, Aws.REGION)
                    ),
                    assert_description="The public Powertools for AWS Lambda layer is "
                    "published in the aws partition and, outside it, only in "
                    f"{', '.join(regions)}: this stack cannot be deployed in this region.",
                )
            ],
        )
        # The innermost choice needs no condition: the rule leaves only that region.
        *conditional, (_, account) = POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION.items()
        for region, publisher in reversed(conditional):
            in_region = CfnCondition(
                self, f"In{region}", expression=Fn.condition_equals(Aws.REGION, region)
            )
            account = Fn.condition_if(in_region.logical_id, publisher, account).to_string()
        in_aws = CfnCondition(self, "InAwsPartition", expression=in_aws_partition)
        self.account = Fn.condition_if(in_aws.logical_id, POWERTOOLS_ACCOUNT, account).to_string()
