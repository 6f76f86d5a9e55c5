"""JobSource: every batch segment job, from ListBatchSegmentJobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG
from poller.errors import JobListingError
from poller.models import JobSummary

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from mypy_boto3_personalize import PersonalizeClient
    from mypy_boto3_personalize.type_defs import BatchSegmentJobSummaryTypeDef

PAGE_SIZE = 100  # the API's maximum


def to_job_summary(item: BatchSegmentJobSummaryTypeDef | dict[str, Any]) -> JobSummary:
    return JobSummary(
        arn=item.get("batchSegmentJobArn"),
        name=item.get("jobName"),
        status=item.get("status"),
        creation_time=item.get("creationDateTime"),
        last_updated_time=item.get("lastUpdatedDateTime"),
        failure_reason=item.get("failureReason"),
        solution_version_arn=item.get("solutionVersionArn"),
    )


class JobSource:
    """Lists jobs, all pages, optionally only for some solution versions."""

    def __init__(
        self,
        solution_version_arns: Sequence[str] = (),
        client: PersonalizeClient | None = None,
    ) -> None:
        self._client = client or boto3.client("personalize", config=RETRY_CONFIG)
        self._solution_version_arns = tuple(solution_version_arns)
        self.pages = 0

    def list_jobs(self) -> list[JobSummary]:
        """All jobs, or an error: a partial listing is never returned. Sets `pages`."""
        self.pages = 0
        scopes: Sequence[str | None] = self._solution_version_arns or (None,)
        return [job for scope in scopes for job in self._list_scope(scope)]

    def _list_scope(self, solution_version_arn: str | None) -> Iterator[JobSummary]:
        kwargs: dict[str, Any] = {"PaginationConfig": {"PageSize": PAGE_SIZE}}
        if solution_version_arn:
            kwargs["solutionVersionArn"] = solution_version_arn
        paginator = self._client.get_paginator("list_batch_segment_jobs")
        try:
            pages = list(paginator.paginate(**kwargs))
        except (ClientError, BotoCoreError) as err:
            raise JobListingError(f"ListBatchSegmentJobs failed: {err}") from err
        self.pages += len(pages)
        for page in pages:
            for item in page.get("batchSegmentJobs", []):
                yield to_job_summary(item)
