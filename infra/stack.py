"""The notifier stack: channels (topic, subscriptions) and notifier (schedule, poller, table)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Stack

from infra.constructs.alerting import Alerting
from infra.constructs.channels import Channels
from infra.constructs.member_stack_set import MemberStackSet
from infra.constructs.notifier import Notifier
from infra.constructs.slack_webhook import SlackWebhook

if TYPE_CHECKING:
    from constructs import Construct

    from infra.config import NotifierConfig


class NotifierStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: NotifierConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            id,
            description="Notifications for Amazon Personalize batch segment jobs",
            **kwargs,
        )
        self.channels = Channels(
            self,
            "Channels",
            emails=config.notify_emails,
            email_event_types=config.email_event_types,
            slack_workspace_id=config.slack_workspace_id,
            slack_channel_id=config.slack_channel_id,
        )
        self.notifier = Notifier(
            self,
            "Notifier",
            config=config,
            topic=self.channels.topic,
            people_topic=self.channels.people_topic,
            log_key=self.channels.key,
        )
        self.slack_webhook = (
            SlackWebhook(
                self,
                "SlackWebhook",
                config=config,
                secret_name=config.slack_webhook_secret_name,
                topic=self.channels.people_topic,
                event_types=config.slack_event_types,
                log_key=self.channels.key,
            )
            if config.slack_webhook_secret_name
            else None
        )
        self.member_stack_set = (
            MemberStackSet(
                self,
                "Members",
                role_name=config.member_role_name,
                organizational_units=config.member_organizational_units,
                call_as=config.stack_set_call_as,
            )
            if config.member_organizational_units
            else None
        )
        self.alerting = Alerting(
            self,
            "Alerting",
            notifier=self.notifier,
            channels=self.channels,
            emails=config.alarm_emails,
            member_role_name=config.member_role_name,
            slack_webhook=self.slack_webhook,
        )

        CfnOutput(
            self,
            "TopicArn",
            value=self.channels.topic.topic_arn,
            description="Every event, one message each: subscribe pipelines here",
        )
        CfnOutput(
            self,
            "PeopleTopicArn",
            value=self.channels.people_topic.topic_arn,
            description="What people read: chosen event types, a digest in a storm",
        )
        CfnOutput(self, "SnapshotTableName", value=self.notifier.table.table_name)
        CfnOutput(self, "PollerFunctionName", value=self.notifier.function.function_name)
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.alerting.topic.topic_arn,
            description="Alarms about the notifier itself",
        )
