"""Where events go: encrypted SNS topics, their email subscriptions, and a queue that keeps
whatever SNS could not deliver to a subscriber."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

from infra import principals
from infra.checkov import skip_checkov
from job_events.vocabulary import DIGEST_EVENT_TYPE

if TYPE_CHECKING:
    from collections.abc import Sequence


class Channels(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        emails: Sequence[str],
        email_event_types: Sequence[str],
        slack_workspace_id: str | None = None,
        slack_channel_id: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        # The construct ID predates the log groups; renaming it would replace the key.
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the Personalize batch segment job notifier's topics and logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the encrypted alarm topic, so SNS asks KMS for a data key
        # on CloudWatch's behalf (SNS developer guide, "Enable compatibility between event
        # sources from AWS services and encrypted topics"). The topic policy limits which alarms.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal(principals.CLOUDWATCH)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        # CloudWatch Logs encrypts the functions' log groups with this key; the encryption
        # context names the log group, so only this account's log groups in this region qualify.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccount",
                principals=[iam.ServicePrincipal(principals.cloudwatch_logs())],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
        self.failed_deliveries = dead_letter_queue(
            self, "FailedDeliveries", "the redrive target of every subscription"
        )
        # Every event, one message each: for pipelines and other machine subscribers.
        self.topic = self.encrypted_topic("Events", "Personalize batch segment jobs")
        # What people read: the event types they want, and one digest in a storm.
        self.people_topic = self.encrypted_topic("People", "Personalize batch segment jobs")
        self.subscribe_emails(
            self.people_topic, emails, event_types=[*email_event_types, DIGEST_EVENT_TYPE]
        )
        if slack_workspace_id and slack_channel_id:
            self.slack_channel(slack_workspace_id, slack_channel_id)

    def slack_channel(
        self, workspace_id: str, channel_id: str
    ) -> chatbot.SlackChannelConfiguration:
        """Amazon Q Developer in chat applications (formerly AWS Chatbot; the CloudFormation
        type is still AWS::Chatbot) posts the people topic's messages (their `https` key) to
        Slack.

        The channel can do nothing in the account: its guardrail denies every action.
        """
        guardrail = iam.ManagedPolicy(
            self,
            "SlackGuardrail",
            description="Notifications only: nothing can be done in AWS from the channel",
            statements=[
                iam.PolicyStatement(effect=iam.Effect.DENY, actions=["*"], resources=["*"])
            ],
        )
        return chatbot.SlackChannelConfiguration(
            self,
            "Slack",
            slack_channel_configuration_name=chatbot_configuration_name(Stack.of(self)),
            slack_workspace_id=workspace_id,
            slack_channel_id=channel_id,
            notification_topics=[self.people_topic],
            guardrail_policies=[guardrail],
            logging_level=chatbot.LoggingLevel.ERROR,
        )

    def encrypted_topic(self, id: str, display_name: str) -> sns.Topic:
        return sns.Topic(self, id, display_name=display_name, master_key=self.key, enforce_ssl=True)

    def subscribe_emails(
        self, topic: sns.ITopic, emails: Sequence[str], event_types: Sequence[str] = ()
    ) -> None:
        """Each address gets the event types given (all messages if none): SNS filters."""
        policy = (
            {"eventType": sns.SubscriptionFilter.string_filter(allowlist=list(event_types))}
            if event_types
            else None
        )
        for email in emails:
            topic.add_subscription(
                subscriptions.EmailSubscription(
                    email, dead_letter_queue=self.failed_deliveries, filter_policy=policy
                )
            )


# A channel configuration's name is unique in the account, whatever the region it is
# created from, and cannot be changed (Amazon Q Developer in chat applications, "Tutorial:
# Get started with Slack"); CreateSlackChannelConfiguration takes 1 to 128 characters of
# A-Z, a-z, 0-9, "-" and "_". Stack names and region codes use only letters, digits and "-".
CHATBOT_NAME_MAX_LENGTH = 128
CHATBOT_NAME_SUFFIX = "-jobs"
LONGEST_REGION = 20  # room for a region code; the longest today (ap-southeast-7) has 14


def chatbot_configuration_name(stack: Stack) -> str:
    """`<stack name>-<region>-jobs`: one per stack and region, so the same stack deployed in
    a second region of the account does not fail with "already exists"."""
    room = CHATBOT_NAME_MAX_LENGTH - len(CHATBOT_NAME_SUFFIX) - LONGEST_REGION - 1
    return f"{stack.stack_name[:room]}-{Aws.REGION}{CHATBOT_NAME_SUFFIX}"


def dead_letter_queue(scope: Construct, id: str, role: str) -> sqs.Queue:
    """An encrypted, TLS-only queue that keeps what could not be delivered for 14 days."""
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    skip_checkov(
        queue,
        "CKV_AWS_27",
        "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
        "recognise. They need no key policy, so SNS and EventBridge can always write a dead "
        "letter here; a customer key would add a KMS permission that, if wrong, loses it.",
    )
    NagSuppressions.add_resource_suppressions(
        queue,
        [
            {"id": "AwsSolutions-SQS3", "reason": f"This queue is a dead-letter queue: {role}."},
            {
                "id": "Serverless-SQSRedrivePolicy",
                "reason": f"This queue is a dead-letter queue ({role}); it has no consumer "
                "to fail, and an alarm fires when it holds a message.",
            },
        ],
    )
    return queue
