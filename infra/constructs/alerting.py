"""Never silent: alarms on the poller, a heartbeat, and a dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import principals
from infra.constructs.notifier import SERVICE_NAME
from infra.constructs.powertools_function import METRICS_NAMESPACE
from infra.scopes import MEMBER_STACK_NAME
from poller.report import SCOPE_DIMENSION, SCOPE_ERRORS_METRIC

if TYPE_CHECKING:
    from collections.abc import Sequence

    from infra.constructs.channels import Channels
    from infra.constructs.notifier import Notifier
    from infra.constructs.slack_webhook import SlackWebhook
    from infra.scopes import WatchedScope

HEARTBEAT_PERIODS = 3
# A first run (the silent baseline) normally finishes in one run; still unfinished after this
# many, it is not catching up by itself.
BASELINE_RUNS_BEFORE_ALARM = 3


class Alerting(Construct):
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
        self.topic = channels.encrypted_topic("Alarms", "Personalize job notifier alarms")
        channels.subscribe_emails(self.topic, emails)

        period = notifier.period
        function = notifier.function
        queue_period = Duration.minutes(5)
        self.alarms = {
            "Errors": self.when_any(
                function.metric_errors(period=period, statistic="Sum"),
                "Errors",
                "A poll failed: a listing, publish or record error. Nothing is lost; see the "
                "poller's logs.",
            ),
            "Throttles": self.when_any(
                function.metric_throttles(period=period, statistic="Sum"),
                "Throttles",
                "Lambda refused to start the poller: its reserved concurrency "
                "(reservedConcurrency) is taken by a run still going, or the account's Lambda "
                "concurrency is exhausted.",
            ),
            "FailedRuns": self.when_any(
                notifier.dead_letters.metric_approximate_number_of_messages_visible(
                    period=queue_period, statistic="Maximum"
                ),
                "FailedRuns",
                "A scheduled run failed or could not start; its event is kept in the "
                "failed-runs queue.",
            ),
            "FailedDeliveries": self.when_any(
                channels.failed_deliveries.metric_approximate_number_of_messages_visible(
                    period=queue_period, statistic="Maximum"
                ),
                "FailedDeliveries",
                "SNS could not deliver a notification to a subscriber; it is kept in the "
                "failed-deliveries queue.",
            ),
            "Deferred": self.when_any(
                self.metric("TransitionsDeferred", period, "Sum"),
                "Deferred",
                "A poll ran out of time and left transitions for the next run: they are sent "
                "late, not lost. If it repeats, polls cannot keep up: raise scheduleMinutes (the "
                "timeout grows with it) or narrow solutionVersionArns.",
            ),
            "ListingIncomplete": self.when_any(
                self.metric("ListingIncomplete", period, "Sum"),
                "ListingIncomplete",
                "A poll did not list every batch segment job (deadline or error), so changes "
                "on the pages it did not read wait for a later run. If it repeats, raise "
                "scheduleMinutes and check the Errors alarm.",
            ),
            "BaselineUnfinished": self.metric("BaselinePolls", period, "Maximum").create_alarm(
                self,
                "BaselineUnfinished",
                alarm_description="A first run (the silent record of existing jobs) is still "
                f"unfinished after {BASELINE_RUNS_BEFORE_ALARM} runs, and until it finishes no "
                "transition of those jobs is announced. Check PollDuration and the Errors "
                "alarm; raise scheduleMinutes so that a run can list every job.",
                threshold=BASELINE_RUNS_BEFORE_ALARM,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "Heartbeat": self.metric("PollSucceeded", period, "Sum").create_alarm(
                self,
                "Heartbeat",
                alarm_description=f"No poll finished all its work for {HEARTBEAT_PERIODS} "
                "schedule periods: the notifier is not watching your jobs.",
                threshold=1,
                evaluation_periods=HEARTBEAT_PERIODS,
                datapoints_to_alarm=HEARTBEAT_PERIODS,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
        }
        if slack_webhook is not None:
            self.alarms["SlackErrors"] = self.when_any(
                slack_webhook.function.metric_errors(period=queue_period, statistic="Sum"),
                "SlackErrors",
                "The Slack forwarder failed: a 4xx means the webhook URL in the secret is "
                "wrong or revoked; timeouts and 5xx are retried.",
            )
            self.alarms["SlackUndelivered"] = self.when_any(
                slack_webhook.dead_letters.metric_approximate_number_of_messages_visible(
                    period=queue_period, statistic="Maximum"
                ),
                "SlackUndelivered",
                "A notification could not be posted to Slack after retries; it is kept in "
                "the forwarder's undelivered queue.",
            )
        # One per watched (account, region): its name and message say which scope it is.
        self.scope_alarms = [self.scope_alarm(scope, period, member_role_name) for scope in scopes]
        self.alarms.update({alarm.node.id: alarm for alarm in self.scope_alarms})
        for alarm in self.alarms.values():
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        # The topic's policy (it denies publishing without TLS) replaces SNS's default one, so
        # CloudWatch may publish only because this says so, and only for these alarms.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarmsToPublish",
                principals=[iam.ServicePrincipal(principals.CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnEquals": {
                        "aws:SourceArn": [alarm.alarm_arn for alarm in self.alarms.values()]
                    }
                },
            )
        )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            widgets=[
                [
                    self.graph("Jobs and pages", ["JobsSeen", "Pages"], period, "Maximum"),
                    self.graph(
                        "Transitions",
                        ["Transitions", "Published", "StuckJobs"],
                        period,
                        "Sum",
                    ),
                    self.graph("Failures", ["PublishFailures", "RecordFailures"], period, "Sum"),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Falling behind",
                        left=[
                            self.metric("TransitionsDeferred", period, "Sum"),
                            self.metric("ListingIncomplete", period, "Sum"),
                        ],
                        right=[self.metric("BaselinePolls", period, "Maximum")],
                    ),
                ],
                [
                    self.graph("Poll duration (ms)", ["PollDuration"], period, "Maximum"),
                    cloudwatch.GraphWidget(
                        title="Lambda errors and throttles",
                        left=[
                            function.metric_errors(period=period),
                            function.metric_throttles(period=period),
                        ],
                    ),
                    cloudwatch.AlarmStatusWidget(
                        title="Alarms",
                        alarms=[a for a in self.alarms.values() if a not in self.scope_alarms],
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
                    cloudwatch.AlarmStatusWidget(title="Scopes", alarms=self.scope_alarms),
                ],
            ],
        )

    def scope_alarm(
        self, scope: WatchedScope, period: Duration, member_role_name: str
    ) -> cloudwatch.Alarm:
        """ScopeErrors of one (account, region): a run could not read its jobs."""
        where = f"account {scope.account}, region {scope.region}"
        if scope.own_account:
            causes = "this stack's poller role is denied Personalize there"
        else:
            causes = (
                f"the {member_role_name} role is missing in account {scope.account} (deploy "
                f"{MEMBER_STACK_NAME} there, or add its OU to memberOrganizationalUnits) or "
                "does not trust this stack's poller, or an SCP denies it"
            )
        return self.when_any(
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=SCOPE_ERRORS_METRIC,
                dimensions_map={"service": SERVICE_NAME, SCOPE_DIMENSION: scope.dimension},
                period=period,
                statistic="Sum",
            ),
            f"ScopeErrors{scope.id}",
            f"The poller could not read the batch segment jobs of {where}: their "
            f"transitions are not announced until it can; other scopes are. Likely: {causes}; "
            f"or {scope.region} is not enabled in that account; or Amazon Personalize is not "
            f"offered in {scope.region}. The poller's logs name the error.",
            alarm_name=f"{Stack.of(self).stack_name}-ScopeErrors-{scope.account}-{scope.region}",
        )

    def when_any(
        self,
        metric: cloudwatch.Metric,
        id: str,
        description: str,
        alarm_name: str | None = None,
    ) -> cloudwatch.Alarm:
        """Alarm as soon as one period counts one; no data means nothing happened."""
        return metric.create_alarm(
            self,
            id,
            alarm_name=alarm_name,
            alarm_description=description,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    @staticmethod
    def metric(name: str, period: Duration, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": SERVICE_NAME},
            period=period,
            statistic=statistic,
        )

    def graph(
        self, title: str, names: Sequence[str], period: Duration, statistic: str
    ) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title, left=[self.metric(name, period, statistic) for name in names]
        )
