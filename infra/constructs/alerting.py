"""Never silent: alarms on the poller, a heartbeat, and a dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import principals
from infra.constructs.powertools_function import METRICS_NAMESPACE
from infra.scopes import MEMBER_STACK_NAME
from poller.report import SCOPE_DIMENSION, SCOPE_ERRORS_METRIC

# Every unreachable scope of a run in one number (poller.report): one alarm for all of them.
UNREACHABLE_SCOPES_METRIC = "UnreachableScopes"

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from aws_cdk import aws_sns as sns

    from infra.constructs.channels import Channels
    from infra.constructs.notifier import Notifier
    from infra.constructs.slack_webhook import SlackWebhook

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
    """Alarms on the poller, its queues and (if any) the Slack forwarder, one for every
    unreachable scope included; the topic they publish to, and a dashboard."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        notifier: Notifier,
        channels: Channels,
        emails: Sequence[str],
        member_role_name: str,
        slack_webhook: SlackWebhook | None = None,
    ) -> None:
        """One ScopeErrors alarm covers every scope, whatever their number (in an
        organization the poller finds the accounts at run time)."""
        super().__init__(scope, id)
        self.topic = self._build_topic(channels, emails)
        self.alarms = self._build_poller_alarms(notifier, channels)
        if slack_webhook is not None:
            self.alarms.update(self._build_slack_alarms(slack_webhook))
        # One for every scope, however many accounts: the per-scope metric says which.
        self.alarms["ScopeErrors"] = self._alarm_on_any(
            notifier.metric(UNREACHABLE_SCOPES_METRIC, "Maximum"),
            "ScopeErrors",
            scope_errors_description(member_role_name),
        )
        self._publish_alarms_to(self.topic)
        self.dashboard = poller_dashboard(
            self, "Dashboard", notifier=notifier, alarms=self.alarms.values()
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

    def _alarm_on_any(
        self,
        metric: cloudwatch.Metric,
        id: str,
        description: str | None = None,
    ) -> cloudwatch.Alarm:
        """Alarm as soon as one period counts one; no data means nothing happened."""
        return metric.create_alarm(
            self,
            id,
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


def scope_errors_description(member_role_name: str) -> str:
    """What the ScopeErrors alarm means, where to see which scopes, and the likely causes."""
    return (
        "The poller could not read the batch segment jobs of one or more scopes (account, "
        "region): their transitions are not announced until it can; other scopes are. Which "
        f"ones: the {SCOPE_ERRORS_METRIC} metric by its {SCOPE_DIMENSION} dimension "
        "(<account>/<region>), graphed on the dashboard's Unreachable scopes widget, and the "
        "poller's logs, which name the error. Likely: in another account, the "
        f"{member_role_name} role is missing (deploy {MEMBER_STACK_NAME} there, or add its OU "
        "to memberOrganizationalUnits; in an organization, the StackSet's instance there "
        "failed, or the account left the OUs), does not trust this stack's poller, or an SCP "
        "denies it; in this stack's own account, its poller role is denied Personalize; in "
        "any account, the region is not enabled, or Amazon Personalize is not offered there."
    )


def scope_errors_search(period: Duration) -> cloudwatch.MathExpression:
    """Every scope's ScopeErrors series: SEARCH('{namespace,dimensions} MetricName="..."',
    statistic, period), the CloudWatch metric math search syntax."""
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{METRICS_NAMESPACE},{SCOPE_DIMENSION},service}} "
        f"MetricName=\"{SCOPE_ERRORS_METRIC}\"', 'Sum', {int(period.to_seconds())})",
        label="",
        period=period,
    )


def poller_dashboard(
    scope: Construct,
    id: str,
    *,
    notifier: Notifier,
    alarms: Iterable[cloudwatch.Alarm],
) -> cloudwatch.Dashboard:
    """What the poller did each period, the state of the alarms, and which scopes failed."""
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
                cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms)),
            ],
            [
                # What the ScopeErrors alarm counts, one line per failing scope: a search
                # finds every scope's series, however many accounts there are.
                cloudwatch.GraphWidget(
                    title="Unreachable scopes (account/region)",
                    left=[scope_errors_search(period)],
                    right=[notifier.metric(UNREACHABLE_SCOPES_METRIC, "Maximum")],
                    width=24,
                ),
            ],
        ],
    )
