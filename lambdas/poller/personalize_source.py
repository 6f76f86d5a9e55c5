"""JobSource: every batch segment job, from ListBatchSegmentJobs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG
from poller.errors import JobListingError
from poller.models import JobSummary

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_personalize import PersonalizeClient
    from mypy_boto3_personalize.type_defs import (
        BatchSegmentJobSummaryTypeDef,
        BatchSegmentJobTypeDef,
    )

logger = Logger(child=True)

PAGE_SIZE = 100  # the API's maximum
EXPIRED_LISTING_ERROR = "InvalidNextTokenException"


@dataclass(frozen=True, slots=True)
class Listing:
    jobs: list[JobSummary]
    pages: int
    complete: bool  # False when the listing stopped early to meet the deadline


def _utc(value: datetime | None) -> datetime | None:
    # botocore gives each timestamp its own tzlocal() object; converting to the shared UTC
    # zone lets those go, which is most of a large listing's memory.
    return value.astimezone(UTC) if value is not None else None


def to_job_summary(item: BatchSegmentJobSummaryTypeDef | dict[str, Any]) -> JobSummary:
    return JobSummary(
        arn=item.get("batchSegmentJobArn"),
        name=item.get("jobName"),
        status=item.get("status"),
        creation_time=_utc(item.get("creationDateTime")),
        last_updated_time=_utc(item.get("lastUpdatedDateTime")),
        failure_reason=item.get("failureReason"),
        solution_version_arn=item.get("solutionVersionArn"),
    )


def with_details(job: JobSummary, details: BatchSegmentJobTypeDef | dict[str, Any]) -> JobSummary:
    """The job as listed, plus what only DescribeBatchSegmentJob tells."""
    return replace(
        job,
        failure_reason=details.get("failureReason") or job.failure_reason,
        input_path=details.get("jobInput", {}).get("s3DataSource", {}).get("path"),
        output_path=details.get("jobOutput", {}).get("s3DataDestination", {}).get("path"),
        filter_arn=details.get("filterArn"),
        num_results=details.get("numResults"),
        role_arn=details.get("roleArn"),
    )


def _never() -> bool:
    return False


class JobSource:
    """Lists jobs, all pages, optionally only for some solution versions."""

    def __init__(
        self,
        solution_version_arns: Sequence[str] = (),
        client: PersonalizeClient | None = None,
    ) -> None:
        self._client = client or boto3.client("personalize", config=RETRY_CONFIG)
        self._solution_version_arns = tuple(solution_version_arns)

    def list_jobs(self, should_stop: Callable[[], bool] = _never) -> Listing:
        """Every job, page by page; an error raises rather than return a partial listing.

        `should_stop` is asked before each further page: a listing cut short for time is
        returned with complete=False, and what it holds is still exact.
        """
        jobs: list[JobSummary] = []
        pages = 0
        for scope in self._solution_version_arns or (None,):
            try:
                scope_jobs, scope_pages, complete = self._list_scope(scope, should_stop)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != EXPIRED_LISTING_ERROR:
                    raise JobListingError(f"ListBatchSegmentJobs failed: {err}") from err
                # A token can expire while a long listing is paged: start this scope over, once.
                logger.warning("nextToken rejected; restarting the listing", extra={"scope": scope})
                try:
                    scope_jobs, scope_pages, complete = self._list_scope(scope, should_stop)
                except (ClientError, BotoCoreError) as retry_err:
                    raise JobListingError(
                        f"ListBatchSegmentJobs failed: {retry_err}"
                    ) from retry_err
            except BotoCoreError as err:
                raise JobListingError(f"ListBatchSegmentJobs failed: {err}") from err
            jobs += scope_jobs
            pages += scope_pages
            if not complete:
                return Listing(jobs, pages, complete=False)
        return Listing(jobs, pages, complete=True)

    def describe(self, job: JobSummary) -> JobSummary:
        """The job with its details; as listed if DescribeBatchSegmentJob fails."""
        if job.arn is None:
            return job
        try:
            details = self._client.describe_batch_segment_job(batchSegmentJobArn=job.arn)
        except (ClientError, BotoCoreError) as err:
            logger.warning(
                "DescribeBatchSegmentJob failed; the event goes out without details",
                extra={"batch_segment_job_arn": job.arn, "error": str(err)},
            )
            return job
        return with_details(job, details.get("batchSegmentJob", {}))

    def _list_scope(
        self, solution_version_arn: str | None, should_stop: Callable[[], bool]
    ) -> tuple[list[JobSummary], int, bool]:
        kwargs: dict[str, Any] = {"PaginationConfig": {"PageSize": PAGE_SIZE}}
        if solution_version_arn:
            kwargs["solutionVersionArn"] = solution_version_arn
        jobs: list[JobSummary] = []
        pages = 0
        for page in self._client.get_paginator("list_batch_segment_jobs").paginate(**kwargs):
            pages += 1
            jobs += [to_job_summary(item) for item in page.get("batchSegmentJobs", [])]
            if page.get("nextToken") and should_stop():
                return jobs, pages, False
        return jobs, pages, True
