"""Where events go: encrypted SNS topics, their email subscriptions, and a queue that keeps
whatever SNS could not deliver to a subscriber."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

if TYPE_CHECKING:
    from collections.abc import Sequence

# Services that publish to the topics and so must be able to use their key.
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


class Channels(Construct):
    def __init__(self, scope: Construct, id: str, *, emails: Sequence[str]) -> None:
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
        self.topic = self.encrypted_topic("Events", "Personalize batch segment jobs")
        self.subscribe_emails(self.topic, emails)

    def encrypted_topic(self, id: str, display_name: str) -> sns.Topic:
        return sns.Topic(self, id, display_name=display_name, master_key=self.key, enforce_ssl=True)

    def subscribe_emails(self, topic: sns.ITopic, emails: Sequence[str]) -> None:
        for email in emails:
            topic.add_subscription(
                subscriptions.EmailSubscription(email, dead_letter_queue=self.failed_deliveries)
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
