"""The snapshot table's keys and I/O: one place that retries partial batches and turns
DynamoDB's errors into the poller's.

Layout: partition PARTITION_KEY = JOB_PARTITION; sort key SORT_KEY = the job ARN for a
job's record, SCOPE_PREFIX + scope key for a scope's marker, or WATCHED_KEY for the scopes
the last scheduled run watched.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from poller.codec import encode
from poller.errors import SnapshotError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

PARTITION_KEY = "pk"
SORT_KEY = "sk"
JOB_PARTITION = "batch-segment-job"
SCOPE_PREFIX = "#scope#"
WATCHED_KEY = "#watched"
UNPROCESSED_ATTEMPTS = 6
_CONDITION_FAILED = "ConditionalCheckFailedException"


class ConditionFailedError(SnapshotError):
    """A conditional write's condition did not hold; the caller says what that means."""


def key(sort_key: str) -> dict[str, AttributeValueTypeDef]:
    return encode({PARTITION_KEY: JOB_PARTITION, SORT_KEY: sort_key})


class Table:
    def __init__(self, name: str, client: DynamoDBClient) -> None:
        self.name = name
        self.client = client

    def call(self, action: str, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                raise ConditionFailedError(f"{action}: its condition did not hold") from err
            raise SnapshotError(f"{action} in {self.name} failed: {err}") from err
        except BotoCoreError as err:
            raise SnapshotError(f"{action} in {self.name} failed: {err}") from err

    def until_processed(
        self, action: str, pending: list[Any], send: Callable[[list[Any]], list[Any]]
    ) -> None:
        """Resend what a batch call left unprocessed (partial success), with backoff.

        botocore retries a throttled call as a whole; this retries the unprocessed part.
        """
        for attempt in range(UNPROCESSED_ATTEMPTS):
            if attempt:
                time.sleep(min(0.05 * 2**attempt, 2.0))
            pending = self.call(action, partial(send, pending))
            if not pending:
                return
        raise SnapshotError(f"{action}: {len(pending)} items stayed unprocessed in {self.name}")

    def update(self, action: str, **request: Any) -> None:
        self.call(action, lambda: self.client.update_item(TableName=self.name, **request))
