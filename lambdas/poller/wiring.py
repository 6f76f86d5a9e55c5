"""Builds the channels a poll announces on, from settings and (optionally) a session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poller.aws import RETRY_CONFIG
from poller.channels.eventbridge import EventBridgePublisher
from poller.channels.sns import SnsPublisher
from poller.poll import Channel

if TYPE_CHECKING:
    import boto3

    from poller.settings import Settings


def channels(config: Settings, session: boto3.session.Session | None = None) -> list[Channel]:
    """The events topic and the bus get everything; the people topic what people want."""
    sns = session.client("sns", config=RETRY_CONFIG) if session else None
    events = session.client("events", config=RETRY_CONFIG) if session else None
    every = [
        Channel("sns", SnsPublisher(config.topic_arn, client=sns)),
        Channel("events", EventBridgePublisher(config.event_bus_name, client=events)),
    ]
    if config.people_topic_arn is None:
        return every
    people_topic = SnsPublisher(config.people_topic_arn, client=sns)
    people = Channel(
        "people",
        people_topic,
        event_types=config.people_event_types,
        digest=people_topic.render_digest,
    )
    return [*every, people]
