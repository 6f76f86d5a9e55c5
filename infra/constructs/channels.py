"""Where events go: encrypted SNS topics, their email subscriptions, and a queue that keeps
whatever SNS could not deliver to a subscriber."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

if TYPE_CHECKING:
    from collections.abc import Sequence

DIGEST_EVENT_TYPE = "JOB_DIGEST"  # the poller's digest of a storm, for people
# Services that publish to the topics and so must be able to use their key.
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


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
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the Personalize batch segment job notifier's topics",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowPublishingServices",
                principals=[iam.ServicePrincipal(service) for service in PUBLISHING_SERVICES],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
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
            self.slack = self.slack_channel(slack_workspace_id, slack_channel_id)

    def slack_channel(
        self, workspace_id: str, channel_id: str
    ) -> chatbot.SlackChannelConfiguration:
        """AWS Chatbot posts the people topic's messages (their `https` key) to Slack.

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
            slack_channel_configuration_name=f"{Stack.of(self).stack_name}-jobs"[:128],
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


def dead_letter_queue(scope: Construct, id: str, role: str) -> sqs.Queue:
    """An encrypted, TLS-only queue that keeps what could not be delivered for 14 days."""
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
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
