"""The README's "Route by scope" subscription, run through SNS filter policies.

The people topic is a real topic in moto's server, which applies each subscription's filter
policy to the message attributes SnsPublisher sends, String.Array ones included: a storm of
dev jobs is a digest of dev's scope only, and prod's people get prod's failures whether
they come alone or inside a prod digest.

moto's filter policies are close to SNS's but not equal: its exact matching also splits a
*String* attribute whose value looks like a JSON array, so these tests also check that a
digest's eventType arrives as a String.Array; and its `anything-but` and `prefix` do not
follow SNS on String.Array attributes, so no test relies on them.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from job_events.vocabulary import DIGEST_EVENT_TYPE, EventType
from local.provision import create_queue
from poller.announcement import event_of
from poller.channels.sns import SnsPublisher
from poller.models import JobSummary, Transition
from tests.integration.conftest import Stack, events, observer_session

if TYPE_CHECKING:
    from job_events.event import JobEvent
    from local.local_aws import LocalAws

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
DEV = "444455556666"
REGION = "us-east-1"
DETECTED = datetime(2026, 11, 28, 21, 50, 2, tzinfo=UTC)
STATUS = {
    EventType.JOB_FAILED: "CREATE FAILED",
    EventType.JOB_SUCCEEDED: "ACTIVE",
    EventType.JOB_STUCK: "IN PROGRESS",
    EventType.JOB_STATUS_CHANGED: "IN PROGRESS",
}


def readme_filter_policy() -> dict[str, list[str]]:
    """The filter policy of the README's "Route by scope" example, as the CLI is given it."""
    section = README.split("**Route by scope**", 1)
    assert len(section) == 2, "README.md lost its 'Route by scope' example"
    attributes = re.search(r"--attributes '(\{.*?\})'", section[1], re.DOTALL)
    assert attributes, "the 'Route by scope' example lost its --attributes"
    policy: dict[str, list[str]] = json.loads(json.loads(attributes.group(1))["FilterPolicy"])
    return policy


POLICY = readme_filter_policy()
(PROD,) = POLICY["accountId"]


def job(account: str, name: str, event_type: EventType) -> JobEvent:
    arn = f"arn:aws:personalize:{REGION}:{account}:batch-segment-job/{name}"
    summary = JobSummary(
        arn=arn,
        name=name,
        status=STATUS[event_type],
        failure_reason="role lost s3 access" if event_type is EventType.JOB_FAILED else None,
    )
    return event_of(Transition(event_type, summary, "IN PROGRESS"), REGION, DETECTED)


class PeopleTopic:
    """A topic in moto, published to by the poller's own SnsPublisher."""

    def __init__(self) -> None:
        session = observer_session()
        self.arn = session.client("sns").create_topic(Name=f"people-{uuid.uuid4().hex[:8]}")[
            "TopicArn"
        ]
        self.publisher = SnsPublisher(self.arn, session.client("sns"))

    def queue(self, policy: dict[str, Any], scope: str | None = None) -> str:
        """An SQS queue subscribed with the filter policy (and its scope, when given)."""
        url, arn = create_queue(observer_session(), f"q-{uuid.uuid4().hex[:8]}")
        attributes = {"FilterPolicy": json.dumps(policy)}
        if scope is not None:
            attributes["FilterPolicyScope"] = scope
        observer_session().client("sns").subscribe(
            TopicArn=self.arn, Protocol="sqs", Endpoint=arn, Attributes=attributes
        )
        return url

    def publish_events(self, *sent: JobEvent) -> None:
        assert self.publisher.send([self.publisher.render(e) for e in sent]) == {}

    def publish_digest(self, *sent: JobEvent) -> None:
        assert self.publisher.send([self.publisher.render_digest(sent)]) == {}


@pytest.fixture
def topic(local_aws: LocalAws) -> PeopleTopic:
    """A new topic in the session's moto server (its endpoint is in the environment)."""
    assert local_aws.moto_endpoint
    return PeopleTopic()


def received(queue_url: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(subject, message attributes, event JSON) of each notification in the queue."""
    notifications = Stack.drain(queue_url)
    return [
        (n["Subject"], n["MessageAttributes"], body)
        for n, body in zip(notifications, events(notifications), strict=True)
    ]


def describe(body: dict[str, Any]) -> tuple[str, ...]:
    """An event as (type, account, job), a digest as (JOB_DIGEST, account, its jobs...)."""
    if body["eventType"] == DIGEST_EVENT_TYPE:
        return (DIGEST_EVENT_TYPE, body["accountId"], *sorted(j["jobName"] for j in body["jobs"]))
    return (body["eventType"], body["accountId"], body["jobName"])


def test_the_readme_example_is_the_policy_these_tests_use() -> None:
    assert POLICY == {"accountId": [PROD], "eventType": ["JOB_FAILED", "JOB_STUCK"]}
    assert PROD != DEV


@pytest.mark.parametrize("scope", [None, "MessageAttributes"])
def test_prod_people_get_every_prod_failure_alone_or_in_a_digest_and_never_dev_storms(
    topic: PeopleTopic, scope: str | None
) -> None:
    prod = topic.queue(POLICY, scope)
    dev = topic.queue({"accountId": [DEV]}, scope)
    digests = topic.queue({"eventType": [DIGEST_EVENT_TYPE]}, scope)  # a policy of before

    # One poll: a quiet prod and a storm of 40 dev successes, digested per scope.
    topic.publish_events(
        job(PROD, "prod-failed", EventType.JOB_FAILED),
        job(PROD, "prod-ok", EventType.JOB_SUCCEEDED),
        job(PROD, "prod-moving", EventType.JOB_STATUS_CHANGED),
    )
    topic.publish_digest(*(job(DEV, f"dev-{i:02d}", EventType.JOB_SUCCEEDED) for i in range(40)))
    # Another poll: a storm in prod itself, with one failure inside, and one without.
    topic.publish_digest(
        job(PROD, "prod-storm-failed", EventType.JOB_FAILED),
        *(job(PROD, f"prod-storm-{i:02d}", EventType.JOB_SUCCEEDED) for i in range(25)),
    )
    topic.publish_digest(
        *(job(PROD, f"prod-calm-{i:02d}", EventType.JOB_SUCCEEDED) for i in range(25))
    )

    got = received(prod)
    assert [describe(body) for _subject, _attributes, body in got] == [
        ("JOB_FAILED", PROD, "prod-failed"),
        (
            DIGEST_EVENT_TYPE,
            PROD,
            *(f"prod-storm-{i:02d}" for i in range(25)),
            "prod-storm-failed",
        ),
    ]
    (_, alone, _), (subject, in_digest, _) = got
    assert alone["eventType"] == {"Type": "String", "Value": "JOB_FAILED"}
    # The real thing, not moto splitting a String that looks like an array.
    assert in_digest["eventType"] == {
        "Type": "String.Array",
        "Value": '["JOB_DIGEST","JOB_FAILED","JOB_SUCCEEDED"]',
    }
    assert in_digest["accountId"] == {"Type": "String", "Value": PROD}
    assert in_digest["region"] == {"Type": "String", "Value": REGION}
    assert subject == f"26 batch segment job changes in {PROD}/{REGION}: 1 FAILED, 25 SUCCEEDED"

    dev_got = received(dev)
    assert [describe(body)[:2] for _s, _a, body in dev_got] == [(DIGEST_EVENT_TYPE, DEV)]
    ((dev_subject, dev_attributes, dev_body),) = dev_got
    assert dev_body["count"] == 40
    assert dev_body["region"] == REGION
    assert dev_attributes["eventType"] == {
        "Type": "String.Array",
        "Value": '["JOB_DIGEST","JOB_SUCCEEDED"]',
    }
    assert dev_subject == f"40 batch segment job changes in {DEV}/{REGION}: 40 SUCCEEDED"

    # A policy on JOB_DIGEST, as subscriptions had before, still gets every digest.
    assert [describe(body)[:2] for _s, _a, body in received(digests)] == [
        (DIGEST_EVENT_TYPE, DEV),
        (DIGEST_EVENT_TYPE, PROD),
        (DIGEST_EVENT_TYPE, PROD),
    ]


def test_a_policy_on_a_type_matches_a_digest_holding_it_and_no_other(
    topic: PeopleTopic,
) -> None:
    stuck = topic.queue({"eventType": ["JOB_STUCK"]})
    moving = topic.queue({"eventType": ["JOB_STATUS_CHANGED"]})
    topic.publish_digest(
        job(PROD, "waiting", EventType.JOB_STUCK),
        job(PROD, "ok", EventType.JOB_SUCCEEDED),
    )
    topic.publish_digest(job(PROD, "failed", EventType.JOB_FAILED))

    assert [describe(body) for _s, _a, body in received(stuck)] == [
        (DIGEST_EVENT_TYPE, PROD, "ok", "waiting")
    ]
    assert received(moving) == []
