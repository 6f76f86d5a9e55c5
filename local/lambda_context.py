"""A Lambda-like context object, for invoking handlers the way Lambda does."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

# Set after the function's own environment when running a handler outside Lambda:
# there is no X-Ray daemon to send traces to.
LOCAL_RUNTIME_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}


@dataclass
class LocalLambdaContext:
    function_name: str = "personalize-segment-job-poller"
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 60.0
    region: str = "us-east-1"
    account_id: str = "123456789012"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/personalize-segment-job-poller"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))
