"""Where events go: the SNS topic and its email subscriptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

if TYPE_CHECKING:
    from collections.abc import Sequence


class Channels(Construct):
    def __init__(self, scope: Construct, id: str, *, emails: Sequence[str]) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self,
            "Events",
            display_name="Personalize batch segment jobs",
            enforce_ssl=True,
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
