"""PersonalizeJobSource: a scope's batch segment jobs, from ListBatchSegmentJobs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from job_events.arns import arn_part
from poller.errors import JobListingError
from poller.models import JobSummary
from poller.ports import Listing

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_personalize.type_defs import (
        BatchSegmentJobSummaryTypeDef,
        BatchSegmentJobTypeDef,
    )

    from poller.models import Scope
    from poller.scope_clients import ScopeClients

logger = Logger(child=True)

PAGE_SIZE = 100  # the API's maximum
EXPIRED_LISTING_ERROR = "InvalidNextTokenException"


def _utc(value: datetime | None) -> datetime | None:
    # botocore gives each timestamp its own tzlocal() object; converting to the shared UTC
    # zone lets those go, which is most of a large listing's memory.
    return value.astimezone(UTC) if value is not None else None


def clean_text(value: object) -> str | None:
    """Text as it can be sent anywhere: lone surrogates and other invalid Unicode become
    U+FFFD, so one hostile field cannot break rendering or publishing."""
    if not isinstance(value, str):
        return None
    if value.isascii():  # nearly every field: kept as it is, no copy (a listing is large)
        return value
    # Through UTF-16, each lone surrogate becomes one U+FFFD; valid pairs stay as they are.
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def to_job_summary(item: BatchSegmentJobSummaryTypeDef | dict[str, Any]) -> JobSummary:
    return JobSummary(
        arn=clean_text(item.get("batchSegmentJobArn")),
        name=clean_text(item.get("jobName")),
        status=clean_text(item.get("status")),
        creation_time=_utc(item.get("creationDateTime")),
        last_updated_time=_utc(item.get("lastUpdatedDateTime")),
        failure_reason=clean_text(item.get("failureReason")),
        solution_version_arn=clean_text(item.get("solutionVersionArn")),
    )


def with_details(job: JobSummary, details: BatchSegmentJobTypeDef | dict[str, Any]) -> JobSummary:
    """The job as listed, plus what only DescribeBatchSegmentJob tells."""
    return replace(
        job,
        failure_reason=clean_text(details.get("failureReason")) or job.failure_reason,
        input_path=clean_text(details.get("jobInput", {}).get("s3DataSource", {}).get("path")),
        output_path=clean_text(
            details.get("jobOutput", {}).get("s3DataDestination", {}).get("path")
        ),
        filter_arn=clean_text(details.get("filterArn")),
        num_results=details.get("numResults"),
        role_arn=clean_text(details.get("roleArn")),
    )


class PersonalizeJobSource:
    """Lists a scope's jobs page by page, and describes jobs that finished."""

    def __init__(self, clients: ScopeClients) -> None:
        self._clients = clients

    def list_jobs(
        self, scope: Scope, resume_from: str | None, should_stop: Callable[[], bool]
    ) -> Listing:
        """The scope's jobs from `resume_from` (or the first page); errors raise.

        `should_stop` is asked before each further page: a listing cut short for time
        carries the token to continue from, and what it holds is still exact. A token that
        has expired (a checkpoint, or one that lapsed mid-listing) restarts the listing
        from the first page, once.
        """
        try:
            return self._list(scope, resume_from, should_stop)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != EXPIRED_LISTING_ERROR:
                raise JobListingError(f"ListBatchSegmentJobs failed: {err}") from err
            logger.warning("nextToken rejected; restarting the listing", extra={"scope": scope.key})
        except BotoCoreError as err:
            raise JobListingError(f"ListBatchSegmentJobs failed: {err}") from err
        try:
            return replace(self._list(scope, None, should_stop), restarted=True)
        except (ClientError, BotoCoreError) as err:
            raise JobListingError(f"ListBatchSegmentJobs failed: {err}") from err

    def describe(self, job: JobSummary) -> JobSummary:
        """The job with its details; as listed if DescribeBatchSegmentJob fails."""
        if job.arn is None:
            return job
        client = self._clients.personalize(arn_part(job.arn, 4), arn_part(job.arn, 3), details=True)
        try:
            details = client.describe_batch_segment_job(batchSegmentJobArn=job.arn)
        except (ClientError, BotoCoreError) as err:
            logger.warning(
                "DescribeBatchSegmentJob failed; the event goes out without details",
                extra={"batch_segment_job_arn": job.arn, "error": str(err)},
            )
            return job
        return with_details(job, details.get("batchSegmentJob", {}))

    def _list(
        self, scope: Scope, resume_from: str | None, should_stop: Callable[[], bool]
    ) -> Listing:
        # Called page by page rather than through a paginator: a paginator's StartingToken
        # is its own encoding, and a checkpoint is the service's nextToken as it came.
        request: dict[str, Any] = {"maxResults": PAGE_SIZE}
        if scope.solution_version_arn:
            request["solutionVersionArn"] = scope.solution_version_arn
        client = self._clients.personalize(scope.account_id, scope.region)
        token = resume_from
        jobs: list[JobSummary] = []
        pages = 0
        while True:
            if token:
                request["nextToken"] = token
            page = client.list_batch_segment_jobs(**request)
            pages += 1
            jobs += [to_job_summary(item) for item in page.get("batchSegmentJobs", [])]
            token = page.get("nextToken")
            if not token:
                return Listing(jobs, pages, resumed=resume_from is not None)
            if should_stop():
                return Listing(jobs, pages, next_token=token, resumed=resume_from is not None)
