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
# Where the public Powertools for AWS Lambda (Python) layer is published, each region once,
# as its documentation lists it (POWERTOOLS_LAYER_DOCS, "Lambda Layer"; python3.13). Read
# there again before changing the layer (POWERTOOLS_LAYER_NAME, powertoolsLayerVersion).
POWERTOOLS_LAYER_DOCS = (
    "https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/"
)
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python313-arm64"
# "All regional Layer ARNs", its x86_64 and arm64 tabs: the aws partition, one publisher.
POWERTOOLS_ACCOUNT = "017000801446"
POWERTOOLS_X86_64_REGIONS = frozenset(
    """
    af-south-1 ap-east-1 ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-south-1 ap-south-2
    ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5 ap-southeast-7
    ca-central-1 ca-west-1 eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2
    eu-west-1 eu-west-2 eu-west-3 il-central-1 me-central-1 me-south-1 mx-central-1
    sa-east-1 us-east-1 us-east-2 us-west-1 us-west-2
    """.split()  # noqa: SIM905 (as the docs list them, a region a word)
)
POWERTOOLS_ARM64_REGIONS = frozenset(
    """
    af-south-1 ap-east-1 ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-south-1 ap-south-2
    ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5 ap-southeast-7
    ca-central-1 eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2
    eu-west-1 eu-west-2 eu-west-3 il-central-1 me-central-1 me-south-1 mx-central-1
    sa-east-1 us-east-1 us-east-2 us-west-1 us-west-2
    """.split()  # noqa: SIM905 (as the docs list them, a region a word)
)
# "AWS China regions" and "AWS GovCloud regions": both architectures, one publisher each.
POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION = {
    "cn-north-1": "498634801083",
    "us-gov-east-1": "165087284144",
    "us-gov-west-1": "165093116878",
}
# The functions run on arm64 with the arm64 layer. Where only the x86_64 layer is published,
# or none, the deploy stops with that reason before creating anything (published_here).
POWERTOOLS_PUBLISHED_REGIONS = sorted(
    POWERTOOLS_X86_64_REGIONS
    | POWERTOOLS_ARM64_REGIONS
    | set(POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION)
)
POWERTOOLS_X86_64_ONLY_REGIONS = sorted(POWERTOOLS_X86_64_REGIONS - POWERTOOLS_ARM64_REGIONS)


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
                "No reserved concurrency by default: Lambda keeps 100 of an account's "
                "concurrency unreserved, so a reservation needs a concurrency quota of at least "
                "the reservation plus 100 (plus other functions' reservations), and new accounts "
                "start with a reduced quota. The poller opts in with reservedConcurrency.",
            )


class PowertoolsLayerPublisher(Construct):
    """The account that publishes the Powertools layer in the region being deployed to.

    Chosen at deploy time by conditions on the partition and region: a mapping lookup is not
    an option, as CloudFormation fails a lookup of a region the mapping does not list even
    in the branch of a condition it does not take. A rule stops the deploy, with a message,
    where the documentation lists no Powertools layer, or only the x86_64 one.
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
        CfnRule(self, "PublishedHere", assertions=published_here())
        # The innermost choice needs no condition: the rule leaves only that region.
        *conditional, (_, account) = POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION.items()
        for region, publisher in reversed(conditional):
            in_region = CfnCondition(
                self, f"In{region}", expression=Fn.condition_equals(Aws.REGION, region)
            )
            account = Fn.condition_if(in_region.logical_id, publisher, account).to_string()
        in_aws = CfnCondition(
            self, "InAwsPartition", expression=Fn.condition_equals(Aws.PARTITION, "aws")
        )
        self.account = Fn.condition_if(in_aws.logical_id, POWERTOOLS_ACCOUNT, account).to_string()


def no_layer_here() -> str:
    outside = ", ".join(POWERTOOLS_ACCOUNTS_OUTSIDE_AWS_PARTITION)
    return (
        "The public Powertools for AWS Lambda (Python) layer is not listed for this region in "
        f"{POWERTOOLS_LAYER_DOCS} (outside the aws partition it is published only in "
        f"{outside}): this stack cannot be deployed here. Once the documentation lists the "
        "region, add it in infra/constructs/powertools_function.py."
    )


def no_arm64_layer_here() -> str:
    return (
        "Only the x86_64 Powertools layer is published in "
        f"{', '.join(POWERTOOLS_X86_64_ONLY_REGIONS)} ({POWERTOOLS_LAYER_DOCS}), and this "
        "stack's functions run on arm64: deploy it in a region with the arm64 layer."
    )


def published_here() -> list[CfnRuleAssertion]:
    """The deploy's region has the arm64 layer; each assertion names one way it may not.

    They never fail together, so the deploy gives one reason.
    """
    assertions = [
        CfnRuleAssertion(
            assert_=Fn.condition_contains(POWERTOOLS_PUBLISHED_REGIONS, Aws.REGION),
            assert_description=no_layer_here(),
        )
    ]
    if POWERTOOLS_X86_64_ONLY_REGIONS:
        assertions.append(
            CfnRuleAssertion(
                assert_=Fn.condition_not(
                    Fn.condition_contains(POWERTOOLS_X86_64_ONLY_REGIONS, Aws.REGION)
                ),
                assert_description=no_arm64_layer_here(),
            )
        )
    return assertions


def layer_refusal(region: str) -> str | None:
    """Why the rule above would stop a deploy to `region`, or None: the same check, for synth
    to make when it knows the region (the CDK CLI's CDK_DEFAULT_REGION)."""
    if region not in POWERTOOLS_PUBLISHED_REGIONS:
        return no_layer_here()
    if region in POWERTOOLS_X86_64_ONLY_REGIONS:
        return no_arm64_layer_here()
    return None
