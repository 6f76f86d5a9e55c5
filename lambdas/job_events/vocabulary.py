"""Every name of the public contract and every shared default, defined once.

Subscribers' filter policies and pipelines depend on these values: never rename them.
infra/config.py imports the defaults from here, so the stack and the functions agree.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    JOB_SUCCEEDED = "JOB_SUCCEEDED"
    JOB_FAILED = "JOB_FAILED"
    JOB_STATUS_CHANGED = "JOB_STATUS_CHANGED"
    JOB_STUCK = "JOB_STUCK"


DIGEST_EVENT_TYPE = "JOB_DIGEST"  # one message for people instead of a storm
# An attribute's value for what is not known or not one value (SNS rejects empty values):
# a field the job summary lacks; a digest's account or region should its jobs span several.
ABSENT = "NONE"
SCHEMA_VERSION = "1"
FINISHED = frozenset({EventType.JOB_SUCCEEDED, EventType.JOB_FAILED})

# The word people read first, per event type (subjects, titles, Slack headers).
OUTCOME = {
    EventType.JOB_SUCCEEDED: "SUCCEEDED",
    EventType.JOB_FAILED: "FAILED",
    EventType.JOB_STUCK: "STUCK",
}
EMOJI = {
    EventType.JOB_SUCCEEDED: ":white_check_mark:",
    EventType.JOB_FAILED: ":x:",
    EventType.JOB_STUCK: ":hourglass_flowing_sand:",
    EventType.JOB_STATUS_CHANGED: ":arrows_counterclockwise:",
    DIGEST_EVENT_TYPE: ":rotating_light:",
}

DEFAULT_PEOPLE_EVENT_TYPES = (EventType.JOB_FAILED, EventType.JOB_STUCK, EventType.JOB_SUCCEEDED)
DEFAULT_STORM_THRESHOLD = 20
DEFAULT_STUCK_AFTER_MINUTES = 360
SOLUTION_VERSION_ARN_PATTERN = r"^arn:[a-z\d-]+:personalize:[^:]*:[^:]*:solution/.+$"
ACCOUNT_ID_PATTERN = r"^\d{12}$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d$"
ROLE_NAME_PATTERN = r"^[\w+=,.@-]{1,64}$"  # IAM's role-name characters and length
DEFAULT_MEMBER_ROLE_NAME = "PersonalizeBatchSegmentJobReader"
# The regions that have Amazon Personalize, as its documentation lists them ("Amazon
# Personalize endpoints and quotas"; botocore's endpoint data agrees). A watched region
# must be one of them: synth refuses others (infra/config.py), and so does the poller's
# check_scopes (poller/settings.py). A region Personalize launches in later is allowed by
# the `allowRegions` setting.
PERSONALIZE_REGIONS_URL = "https://docs.aws.amazon.com/general/latest/gr/personalize.html"
PERSONALIZE_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ap-northeast-1",
    "ap-south-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "cn-north-1",
    "ca-central-1",
    "eu-west-1",
    "eu-central-1",
)
