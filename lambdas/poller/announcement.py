"""From a transition the poll found to the typed event every channel renders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from job_events.arns import arn_part, console_url
from job_events.event import JobEvent
from job_events.vocabulary import SCHEMA_VERSION

if TYPE_CHECKING:
    from datetime import datetime

    from poller.models import Transition


def event_of(transition: Transition, region: str, detected_at: datetime) -> JobEvent:
    """The event of a transition. Its region and account are the job's own (from its ARN),
    whichever scope the poll found it in; `region` is for a job without an ARN."""
    job = transition.job
    region = arn_part(job.arn, 3) or region
    return JobEvent(
        schema_version=SCHEMA_VERSION,
        event_type=transition.event_type,
        batch_segment_job_arn=job.arn,
        job_name=job.name,
        solution_version_arn=job.solution_version_arn,
        previous_status=transition.previous_status,
        status=job.status,
        failure_reason=job.failure_reason,
        creation_date_time=job.creation_time,
        last_updated_date_time=job.last_updated_time,
        region=region,
        account_id=arn_part(job.arn, 4),
        console_url=console_url(region, arn_part(job.arn, 1)),
        detected_at=detected_at,
        job_input=job.input_path,
        job_output=job.output_path,
        filter_arn=job.filter_arn,
        num_results=job.num_results,
        role_arn=job.role_arn,
    )
