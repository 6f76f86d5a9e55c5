"""Catch-up runs: a scope whose listing cannot finish across scheduled runs (Personalize's
nextToken expired between them, and the listing stopped short again) is listed by a run
of its own, invoked asynchronously with the function's whole timeout."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from poller.aws import RETRY_CONFIG
from poller.errors import CatchUpError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_lambda import LambdaClient

    from poller.models import Scope

CATCH_UP_KEY = "catchUp"  # the event of a catch-up run: {"catchUp": [scope key, ...]}


def catch_up_keys(event: Any) -> frozenset[str] | None:
    """The scope keys a catch-up event names; None for any other event (a scheduled run,
    or a manual invoke with any payload)."""
    keys = event.get(CATCH_UP_KEY) if isinstance(event, dict) else None
    if not isinstance(keys, list):
        return None
    return frozenset(key for key in keys if isinstance(key, str))


class LambdaCatchUp:
    """Starts a catch-up run of this very function."""

    def __init__(self, function_arn: str, client: LambdaClient | None = None) -> None:
        self._function_arn = function_arn
        self._client = client or boto3.client("lambda", config=RETRY_CONFIG)

    def start(self, scopes: Sequence[Scope]) -> None:
        payload = json.dumps({CATCH_UP_KEY: [scope.key for scope in scopes]})
        try:
            self._client.invoke(
                FunctionName=self._function_arn, InvocationType="Event", Payload=payload
            )
        except (ClientError, BotoCoreError) as err:
            raise CatchUpError(f"could not start a catch-up run: {err}") from err
