"""The poller: schedule -> Lambda -> snapshot table, publishing to the topic."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from aws_cdk import Aws, CfnCondition, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from infra.checkov import skip_checkov
from infra.config import LAMBDA_MAX_TIMEOUT_SECONDS
from infra.constructs.channels import dead_letter_queue
from infra.constructs.powertools_function import METRICS_NAMESPACE, PowertoolsFunction
from infra.scopes import (
    POLLER_ROLE_NAME,
    any_member_role_arn,
    member_role_arn,
    member_stack_set_arn,
    member_stack_set_name,
)
from job_events.vocabulary import EventType
from poller.settings import Settings
from poller.table import PARTITION_KEY, SORT_KEY

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sns as sns

    from infra.config import NotifierConfig

SERVICE_NAME = "segment-job-notifier"
STRING = dynamodb.AttributeType.STRING
LAMBDA_MAX_EVENT_AGE_MINUTES = 6 * 60  # the longest Lambda keeps an asynchronous event
# Describe on this account's batch segment jobs, in whichever regions are watched.
OWN_JOBS_RESOURCE = (
    r"/^Resource::arn:<AWS::Partition>:personalize:(<AWS::Region>|[a-z0-9-]+):"
    r"<AWS::AccountId>:batch-segment-job\/\*$/g"
)
# In an organization: the member role, by name, in any account of this one's organization.
# The principal's organization, as a policy variable: the organization ID is never a setting
# to get wrong, and an account outside any organization matches nothing.
SAME_ORGANIZATION = {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}
# What CloudFormation needs of a delegated administrator of StackSets besides the call itself
# (CloudFormation User Guide, "Register a delegated administrator member account").
DELEGATED_ADMIN_ACTIONS = ("organizations:ListDelegatedAdministrators",)


class Notifier(Construct):
    """The poller, the snapshot it keeps, the schedule that starts it, and a queue that
    keeps what a failed scheduled run was given."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: NotifierConfig,
        topic: sns.ITopic,
        people_topic: sns.ITopic,
        log_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id)
        self.period = Duration.minutes(config.schedule_minutes)
        self.table = self._build_table()
        # Keeps what a failed scheduled run was given, for inspection; alarmed when not empty.
        self.dead_letters = dead_letter_queue(
            self, "FailedRuns", "the poller's on-failure destination and the schedule's DLQ"
        )
        poller = self._build_poller(config, topic, people_topic, log_key)
        self.function, self.role, self.log_group = poller.function, poller.role, poller.log_group
        self._keep_failed_runs(config.schedule_minutes)
        grant_poller_calls(
            self,
            self.role,
            config=config,
            function=self.function,
            table=self.table,
            topics=(topic, people_topic),
        )
        self.schedule = self._build_schedule()

    def metric(
        self, name: str, statistic: str, dimensions: Mapping[str, str] | None = None
    ) -> cloudwatch.Metric:
        """One of the poller's own metrics (Powertools, by service), per schedule period."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": SERVICE_NAME, **(dimensions or {})},
            period=self.period,
            statistic=statistic,
        )

    def _build_table(self) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            "Snapshot",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            # The snapshot is what keeps a redeploy from re-announcing or missing transitions.
            removal_policy=RemovalPolicy.RETAIN,
        )
        skip_checkov(
            table,
            "CKV_AWS_119",
            "Encrypted with the AWS managed KMS key (aws/dynamodb), logged in CloudTrail. The "
            "table holds what ListBatchSegmentJobs returns to anyone allowed to call it; a "
            "customer key would add a key permission to every poll and protect nothing more.",
        )
        return table

    def _build_poller(
        self,
        config: NotifierConfig,
        topic: sns.ITopic,
        people_topic: sns.ITopic,
        log_key: kms.IKey,
    ) -> PowertoolsFunction:
        return PowertoolsFunction(
            self,
            "Poller",
            config=config,
            handler="poller.handler.handler",
            service_name=SERVICE_NAME,
            description="Polls Personalize batch segment jobs and publishes status transitions",
            # Sized from `make bench` (infra.config.POLLER_MB); Lambda's CPU grows with it.
            memory_size=config.poller_memory,
            # Lambda's longest: a catch-up run lists a scope too large for a scheduled run,
            # whose own time (RUN_SECONDS) stays shorter than the period.
            timeout=Duration.seconds(LAMBDA_MAX_TIMEOUT_SECONDS),
            # Opt-in (reservedConcurrency): Lambda keeps 100 of the account's concurrency
            # unreserved, so a reservation fails the deploy unless the region's concurrency
            # quota is at least the reservation plus 100. Overlapping polls are safe without
            # it: each transition is claimed before it is published.
            reserved_concurrent_executions=config.reserved_concurrency,
            log_key=log_key,
            # Named when it watches other accounts: each member role trusts this name.
            role_name=POLLER_ROLE_NAME if config.watches_other_accounts else None,
            # The poller's own settings model writes its environment: one contract.
            environment=Settings(
                table_name=self.table.table_name,
                topic_arn=topic.topic_arn,
                region=Aws.REGION,  # Lambda sets AWS_REGION itself
                solution_version_arns=tuple(config.solution_version_arns),
                event_bus_name=config.event_bus_name,
                people_topic_arn=people_topic.topic_arn,
                people_event_types=frozenset(EventType(t) for t in config.people_event_types),
                storm_threshold=config.storm_threshold,
                stuck_after=timedelta(minutes=config.stuck_after_minutes),
                watched_accounts=tuple(config.accounts),
                watched_regions=tuple(config.regions),
                member_role_name=config.member_role_name,
                run_seconds=config.run_seconds,
                allowed_regions=tuple(config.allow_regions),
                # In an organization: the accounts are the member StackSet's instances.
                discover_stack_set=(
                    member_stack_set_name(Stack.of(self).stack_name)
                    if config.discovers_accounts
                    else None
                ),
                stack_set_call_as=config.stack_set_call_as,
            ).to_env(),
        )

    def _keep_failed_runs(self, schedule_minutes: int) -> None:
        # No retry of a failed scheduled run (the next tick is the retry); keep its event.
        # An event older than a period is stale, and Lambda keeps one for 6 hours at most.
        self.function.configure_async_invoke(
            retry_attempts=0,
            max_event_age=Duration.minutes(min(schedule_minutes, LAMBDA_MAX_EVENT_AGE_MINUTES)),
            on_failure=destinations.SqsDestination(self.dead_letters),
        )

    def _build_schedule(self) -> events.Rule:
        return events.Rule(
            self,
            "Schedule",
            description="Starts a poll of Personalize batch segment jobs",
            schedule=events.Schedule.rate(self.period),
            targets=[
                targets.LambdaFunction(
                    self.function, retry_attempts=0, dead_letter_queue=self.dead_letters
                )
            ],
        )


# The poller role's permissions: functions rather than a construct of their own, so that the
# policies they add stay children of the Notifier (and keep their logical IDs).


def grant_poller_calls(
    scope: Construct,
    role: iam.Role,
    *,
    config: NotifierConfig,
    function: lambda_.IFunction,
    table: dynamodb.ITable,
    topics: Sequence[sns.ITopic],
) -> None:
    """Exactly the calls the poller makes, on exactly its resources."""
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["personalize:ListBatchSegmentJobs"],
            resources=["*"],  # List* has no resource-level permissions in Personalize
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["personalize:DescribeBatchSegmentJob"],
            resources=[
                f"arn:{Aws.PARTITION}:personalize:{region}:{Aws.ACCOUNT_ID}:batch-segment-job/*"
                for region in (config.regions or [Aws.REGION])
            ],
        )
    )
    if config.discovers_accounts:
        assume_organization_member_roles(scope, role, config.member_role_name)
        list_member_accounts(scope, role, config.stack_set_call_as)
    elif config.accounts:
        assume_member_roles(scope, role, config.accounts, config.member_role_name)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=[
                "dynamodb:BatchGetItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
            ],
            resources=[table.table_arn],
        )
    )
    # A catch-up run is this function invoked by itself (asynchronously). A policy of its
    # own: in the role's default policy, the function's ARN would be a dependency cycle.
    iam.Policy(
        scope,
        "StartCatchUpRuns",
        statements=[
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[function.function_arn]
            )
        ],
        roles=[role],
    )
    for topic in topics:
        topic.grant_publish(role)
    events.EventBus.from_event_bus_name(scope, "Bus", config.event_bus_name).grant_put_events_to(
        role
    )
    suppress_wildcard_findings(role)


def assume_member_roles(
    scope: Construct, role: iam.IRole, accounts: Sequence[str], role_name: str
) -> None:
    """sts:AssumeRole on the member role of each listed account but this stack's own.

    Whether a listed account is this one is known only at deploy time (the template does
    not know its account), so this account's member role is denied outright: in its own
    account the poller reads with its own role. A single listed account may be this one:
    then the policy exists only where it is another.
    """
    policy = _member_roles_policy(
        scope,
        role,
        role_name,
        iam.PolicyStatement(
            actions=["sts:AssumeRole"],
            resources=[member_role_arn(account, role_name) for account in accounts],
        ),
    )
    if len(accounts) == 1:
        cfn_policy = policy.node.default_child
        if not isinstance(cfn_policy, iam.CfnPolicy):
            raise TypeError(f"{policy.node.path} has no AWS::IAM::Policy")
        cfn_policy.cfn_options.condition = CfnCondition(
            scope,
            "WatchesAnotherAccount",
            expression=Fn.condition_not(Fn.condition_equals(Aws.ACCOUNT_ID, accounts[0])),
        )


def _member_roles_policy(
    scope: Construct, role: iam.IRole, role_name: str, allowed: iam.PolicyStatement
) -> iam.Policy:
    """The poller's AssumeMemberRoles policy: the member roles `allowed`, and never this
    account's own (there the poller reads with its own role)."""
    return iam.Policy(
        scope,
        "AssumeMemberRoles",
        statements=[
            allowed,
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["sts:AssumeRole"],
                resources=[member_role_arn(Aws.ACCOUNT_ID, role_name)],
            ),
        ],
        roles=[role],
    )


def assume_organization_member_roles(scope: Construct, role: iam.IRole, role_name: str) -> None:
    """sts:AssumeRole on the member role, by name, in any account of this stack's organization
    but its own: one statement however many accounts the organization has.

    `aws:ResourceOrgID` is the organization of the account that owns the role assumed;
    `${aws:PrincipalOrgID}` the poller's own (IAM User Guide, global condition keys). A role
    of that name outside the organization, or a poller outside any, matches nothing.
    """
    policy = _member_roles_policy(
        scope,
        role,
        role_name,
        iam.PolicyStatement(
            actions=["sts:AssumeRole"],
            resources=[any_member_role_arn(role_name)],
            conditions=SAME_ORGANIZATION,
        ),
    )
    NagSuppressions.add_resource_suppressions(
        policy,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="The member role by its one name in any account, because the accounts "
                "are found at run time (the member StackSet's instances); limited by the "
                "condition aws:ResourceOrgID = ${aws:PrincipalOrgID} to this organization, and "
                "this account's own role denied.",
                applies_to=[
                    RegexAppliesTo(
                        regex=rf"/^Resource::arn:<AWS::Partition>:iam::\*:role\/{re.escape(role_name)}$/g"
                    )
                ],
            )
        ],
    )


def list_member_accounts(scope: Construct, role: iam.IRole, call_as: str) -> None:
    """cloudformation:ListStackInstances on the member StackSet: its instances are the member
    accounts. As a delegated administrator, the StackSet is the management account's (whose ID
    the template does not know), and CloudFormation checks the caller's registration."""
    own = call_as == "SELF"
    statements = [
        iam.PolicyStatement(
            actions=["cloudformation:ListStackInstances"],
            resources=[
                member_stack_set_arn(Stack.of(scope).stack_name, Aws.ACCOUNT_ID if own else "*")
            ],
        )
    ]
    if not own:
        statements.append(
            iam.PolicyStatement(actions=list(DELEGATED_ADMIN_ACTIONS), resources=["*"])
        )
    policy = iam.Policy(scope, "DiscoverMemberAccounts", statements=statements, roles=[role])
    NagSuppressions.add_resource_suppressions(
        policy,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="The member StackSet by its name; the ID suffix is CloudFormation's, and "
                "a delegated administrator's StackSet lives in the management account, whose "
                "ID the template does not know.",
                applies_to=[
                    RegexAppliesTo(
                        regex=r"/^Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:"
                        r"(<AWS::AccountId>|\*):stackset\/.+:\*$/g"
                    )
                ],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="organizations:ListDelegatedAdministrators has no resource-level "
                "permissions; CloudFormation needs it of a delegated administrator of StackSets.",
                applies_to=["Resource::*"],
            ),
        ],
    )


def suppress_wildcard_findings(role: iam.Role) -> None:
    """Why each wildcard in the poller role's own policy is as narrow as it can be."""
    NagSuppressions.add_resource_suppressions(
        role,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="personalize:ListBatchSegmentJobs has no resource-level permissions, "
                "and X-Ray's PutTraceSegments/PutTelemetryRecords accept only '*'; both need "
                "Resource '*'.",
                applies_to=["Resource::*"],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="DescribeBatchSegmentJob is called for whichever job just finished; "
                "the resources are every batch segment job of this account in each watched "
                "region (one ARN per region), nothing else.",
                applies_to=[RegexAppliesTo(regex=OWN_JOBS_RESOURCE)],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="kms:GenerateDataKey* on the topic key only (granted by "
                "Topic.grantPublish): SNS needs a data key to encrypt what the poller "
                "publishes.",
                applies_to=["Action::kms:GenerateDataKey*"],
            ),
        ],
        apply_to_children=True,
    )
