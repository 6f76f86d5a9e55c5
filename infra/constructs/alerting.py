"""Never silent: alarms on the poller, a heartbeat, and a dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import principals
from infra.constructs.powertools_function import METRICS_NAMESPACE
from infra.scopes import MEMBER_STACK_NAME
from poller.report import SCOPE_DIMENSION, SCOPE_ERRORS_METRIC

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from aws_cdk import aws_sns as sns

    from infra.constructs.channels import Channels
    from infra.constructs.notifier import Notifier
    from infra.constructs.slack_webhook import SlackWebhook
    from infra.scopes import WatchedScope

HEARTBEAT_PERIODS = 3
# A first run (the silent baseline) normally finishes in one run; still unfinished after this
# many, it is not catching up by itself.
BASELINE_RUNS_BEFORE_ALARM = 3
# The queues and the Slack forwarder (which SNS invokes) keep no schedule: looked at every 5
# minutes, whatever the poller's period.
QUEUE_PERIOD = Duration.minutes(5)
# What each alarm means and what to do about it, by its construct ID (which starts its
# logical ID, the key of the README's Operations table).
ALARM_DESCRIPTIONS = {
    "Errors": "A poll failed: a listing, publish or record error. Nothing is lost; see the "
    "poller's logs.",
    "Throttles": "Lambda refused to start the poller: its reserved concurrency "
    "(reservedConcurrency) is taken by a run still going, or the account's Lambda "
    "concurrency is exhausted.",
    "FailedRuns": "A scheduled run failed or could not start; its event is kept in the "
    "failed-runs queue.",
    "FailedDeliveries": "SNS could not deliver a notification to a subscriber; it is kept in "
    "the failed-deliveries queue.",
    "Deferred": "A poll ran out of time and left transitions for the next run: they are sent "
    "late, not lost. If it repeats, polls cannot keep up: raise scheduleMinutes (the timeout "
    "grows with it) or narrow solutionVersionArns.",
    "ListingIncomplete": "A poll did not list every batch segment job (deadline or error), so "
    "changes on the pages it did not read wait for a later run. If it repeats, raise "
    "scheduleMinutes and check the Errors alarm.",
    "BaselineUnfinished": "A first run (the silent record of existing jobs) is still "
    f"unfinished after {BASELINE_RUNS_BEFORE_ALARM} runs, and until it finishes no "
    "transition of those jobs is announced. Check PollDuration and the Errors alarm; raise "
    "scheduleMinutes so that a run can list every job.",
    "Heartbeat": f"No poll finished all its work for {HEARTBEAT_PERIODS} schedule periods: "
    "the notifier is not watching your jobs.",
    "SlackErrors": "The Slack forwarder failed: a 4xx means the webhook URL in the secret is "
    "wrong or revoked; timeouts and 5xx are retried.",
    "SlackUndelivered": "A notification could not be posted to Slack after retries; it is "
    "kept in the forwarder's undelivered queue.",
}


class Alerting(Construct):
    """Alarms on the poller, its queues and (if any) the Slack forwarder, each watched scope
    included; the topic they publish to, and a dashboard."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        notifier: Notifier,
        channels: Channels,
        emails: Sequence[str],
        scopes: Sequence[WatchedScope],
        member_role_name: str,
        slack_webhook: SlackWebhook | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.topic = self._build_topic(channels, emails)
        self.alarms = self._build_poller_alarms(notifier, channels)
        if slack_webhook is not None:
            self.alarms.update(self._build_slack_alarms(slack_webhook))
        # One per watched (account, region): its name and message say which scope it is.
        self.scope_alarms = [
            self._build_scope_alarm(notifier, watched, member_role_name) for watched in scopes
        ]
        self.alarms.update({alarm.node.id: alarm for alarm in self.scope_alarms})
        self._publish_alarms_to(self.topic)
        self.dashboard = poller_dashboard(
            self,
            "Dashboard",
            notifier=notifier,
            alarms=self.alarms.values(),
            scope_alarms=self.scope_alarms,
        )

    @staticmethod
    def _build_topic(channels: Channels, emails: Sequence[str]) -> sns.Topic:
        topic = channels.encrypted_topic("Alarms", "Personalize job notifier alarms")
        channels.subscribe_emails(topic, emails)
        return topic

    def _build_poller_alarms(
        self, notifier: Notifier, channels: Channels
    ) -> dict[str, cloudwatch.Alarm]:
        """Any failure or falling behind, a first run that does not finish, and silence."""
        period, function = notifier.period, notifier.function
        counts = {
            "Errors": function.metric_errors(period=period, statistic="Sum"),
            "Throttles": function.metric_throttles(period=period, statistic="Sum"),
            "FailedRuns": notifier.dead_letters.metric_approximate_number_of_messages_visible(
                period=QUEUE_PERIOD, statistic="Maximum"
            ),
            "FailedDeliveries": (
                channels.failed_deliveries.metric_approximate_number_of_messages_visible(
                    period=QUEUE_PERIOD, statistic="Maximum"
                )
            ),
            "Deferred": notifier.metric("TransitionsDeferred", "Sum"),
            "ListingIncomplete": notifier.metric("ListingIncomplete", "Sum"),
        }
        alarms = {id: self._alarm_on_any(metric, id) for id, metric in counts.items()}
        alarms["BaselineUnfinished"] = notifier.metric("BaselinePolls", "Maximum").create_alarm(
            self,
            "BaselineUnfinished",
            alarm_description=ALARM_DESCRIPTIONS["BaselineUnfinished"],
            threshold=BASELINE_RUNS_BEFORE_ALARM,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarms["Heartbeat"] = notifier.metric("PollSucceeded", "Sum").create_alarm(
            self,
            "Heartbeat",
            alarm_description=ALARM_DESCRIPTIONS["Heartbeat"],
            threshold=1,
            evaluation_periods=HEARTBEAT_PERIODS,
            datapoints_to_alarm=HEARTBEAT_PERIODS,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        return alarms

    def _build_slack_alarms(self, slack_webhook: SlackWebhook) -> dict[str, cloudwatch.Alarm]:
        counts = {
            "SlackErrors": slack_webhook.function.metric_errors(
                period=QUEUE_PERIOD, statistic="Sum"
            ),
            "SlackUndelivered": (
                slack_webhook.dead_letters.metric_approximate_number_of_messages_visible(
                    period=QUEUE_PERIOD, statistic="Maximum"
                )
            ),
        }
        return {id: self._alarm_on_any(metric, id) for id, metric in counts.items()}

    def _build_scope_alarm(
        self, notifier: Notifier, watched: WatchedScope, member_role_name: str
    ) -> cloudwatch.Alarm:
        """ScopeErrors of one (account, region): a run could not read its jobs."""
        name = f"{Stack.of(self).stack_name}-ScopeErrors-{watched.account}-{watched.region}"
        return self._alarm_on_any(
            notifier.metric(SCOPE_ERRORS_METRIC, "Sum", {SCOPE_DIMENSION: watched.dimension}),
            f"ScopeErrors{watched.id}",
            scope_alarm_description(watched, member_role_name),
            alarm_name=name,
        )

    def _alarm_on_any(
        self,
        metric: cloudwatch.Metric,
        id: str,
        description: str | None = None,
        alarm_name: str | None = None,
    ) -> cloudwatch.Alarm:
        """Alarm as soon as one period counts one; no data means nothing happened."""
        return metric.create_alarm(
            self,
            id,
            alarm_name=alarm_name,
            alarm_description=description or ALARM_DESCRIPTIONS[id],
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _publish_alarms_to(self, topic: sns.Topic) -> None:
        for alarm in self.alarms.values():
            alarm.add_alarm_action(actions.SnsAction(topic))
        # The topic's policy (it denies publishing without TLS) replaces SNS's default one, so
        # CloudWatch may publish only because this says so, and only for these alarms.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarmsToPublish",
                principals=[iam.ServicePrincipal(principals.CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnEquals": {
                        "aws:SourceArn": [alarm.alarm_arn for alarm in self.alarms.values()]
                    }
                },
            )
        )


def scope_alarm_description(watched: WatchedScope, member_role_name: str) -> str:
    """What a scope's alarm means, with the likely causes for its account."""
    where = f"account {watched.account}, region {watched.region}"
    if watched.own_account:
        causes = "this stack's poller role is denied Personalize there"
    else:
        causes = (
            f"the {member_role_name} role is missing in account {watched.account} (deploy "
            f"{MEMBER_STACK_NAME} there, or add its OU to memberOrganizationalUnits) or "
            "does not trust this stack's poller, or an SCP denies it"
        )
    return (
        f"The poller could not read the batch segment jobs of {where}: their "
        f"transitions are not announced until it can; other scopes are. Likely: {causes}; "
        f"or {watched.region} is not enabled in that account; or Amazon Personalize is not "
        f"offered in {watched.region}. The poller's logs name the error."
    )


def poller_dashboard(
    scope: Construct,
    id: str,
    *,
    notifier: Notifier,
    alarms: Iterable[cloudwatch.Alarm],
    scope_alarms: Sequence[cloudwatch.Alarm],
) -> cloudwatch.Dashboard:
    """What the poller did each period, and the state of the alarms: the scopes' apart."""
    period, function = notifier.period, notifier.function

    def graph(title: str, names: Sequence[str], statistic: str) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title, left=[notifier.metric(name, statistic) for name in names]
        )

    return cloudwatch.Dashboard(
        scope,
        id,
        widgets=[
            [
                graph("Jobs and pages", ["JobsSeen", "Pages"], "Maximum"),
                graph("Transitions", ["Transitions", "Published", "StuckJobs"], "Sum"),
                graph("Failures", ["PublishFailures", "RecordFailures"], "Sum"),
            ],
            [
                cloudwatch.GraphWidget(
                    title="Falling behind",
                    left=[
                        notifier.metric("TransitionsDeferred", "Sum"),
                        notifier.metric("ListingIncomplete", "Sum"),
                    ],
                    right=[notifier.metric("BaselinePolls", "Maximum")],
                ),
            ],
            [
                graph("Poll duration (ms)", ["PollDuration"], "Maximum"),
                cloudwatch.GraphWidget(
                    title="Lambda errors and throttles",
                    left=[
                        function.metric_errors(period=period),
                        function.metric_throttles(period=period),
                    ],
                ),
                cloudwatch.AlarmStatusWidget(
                    title="Alarms", alarms=[a for a in alarms if a not in scope_alarms]
                ),
            ],
            [
                cloudwatch.GraphWidget(
                    title="Unreachable scopes (account/region)",
                    left=[
                        cloudwatch.MathExpression(
                            expression=f"SEARCH('{{{METRICS_NAMESPACE},{SCOPE_DIMENSION},"
                            f"service}} MetricName=\"{SCOPE_ERRORS_METRIC}\"', 'Sum', "
                            f"{int(period.to_seconds())})",
                            label="",
                            period=period,
                        )
                    ],
                ),
                cloudwatch.AlarmStatusWidget(title="Scopes", alarms=scope_alarms),
            ],
        ],
    )
