"""Optional Slack incoming-webhook forwarder, for teams without Amazon Q Developer in chat
applications (formerly AWS Chatbot)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from infra.constructs.channels import dead_letter_queue
from infra.constructs.powertools_function import PowertoolsFunction
from job_events.vocabulary import DIGEST_EVENT_TYPE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import aws_kms as kms

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
        log_key: kms.IKey,
    ) -> None:
        super().__init__(scope, id)
        # The webhook URL stays in Secrets Manager; only the secret's name is configured.
        secret = secretsmanager.Secret.from_secret_name_v2(self, "WebhookUrl", secret_name)
        self.dead_letters = dead_letter_queue(
            self, "Undelivered", "the Slack forwarder's on-failure destination"
        )
        forwarder = PowertoolsFunction(
            self,
            "Forwarder",
            config=config,
            handler="slack_forwarder.handler.handler",
            service_name="segment-job-slack-forwarder",
            description="Posts batch segment job notifications to a Slack incoming webhook",
            memory_size=256,
            timeout=Duration.seconds(60),
            environment={"WEBHOOK_SECRET_NAME": secret_name},
            log_key=log_key,
        )
        secret.grant_read(forwarder.role)
        self.function, role = forwarder.function, forwarder.role
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
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="X-Ray's PutTraceSegments/PutTelemetryRecords accept only '*'.",
                    applies_to=["Resource::*"],
                ),
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="A secret imported by name has a random six-character suffix in its "
                    "ARN; the '-??????' wildcard matches that suffix only.",
                    applies_to=[RegexAppliesTo(regex=SECRET_SUFFIX_WILDCARD)],
                ),
            ],
            apply_to_children=True,
        )
