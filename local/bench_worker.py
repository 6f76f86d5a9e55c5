"""One measurement in a fresh interpreter, for `make bench` (local/bench.py).

    python -m local.bench_worker list   time a bare boto3 paginator over ListBatchSegmentJobs
    python -m local.bench_worker poll   time one invocation of the real handler (warm clients)
    python -m local.bench_worker full   the same, as the hourly poll that reads every record

The environment points boto3 at local AWS and holds the poller's variables. Prints JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any


def bare_listing() -> dict[str, Any]:
    import boto3  # noqa: PLC0415 - after the environment is set, in a fresh process

    client = boto3.client("personalize")
    started = time.perf_counter()
    jobs = 0
    for page in client.get_paginator("list_batch_segment_jobs").paginate(
        PaginationConfig={"PageSize": 100}
    ):
        jobs += len(page["batchSegmentJobs"])
    return {"seconds": time.perf_counter() - started, "jobs": jobs}


def handler_poll(full_reconcile: bool) -> dict[str, Any]:
    from local.lambda_context import LocalLambdaContext  # noqa: PLC0415 - as above

    handler = __import__("poller.handler", fromlist=["handler"])
    # Which kind of poll is measured is chosen here, not left to the wall clock's minute.
    setattr(handler, "reconcile_due", lambda *_args: full_reconcile)  # noqa: B010
    handler.adapters()  # a warm container: clients exist before the scheduled event arrives
    started = time.perf_counter()
    summary = handler.handler({"source": "aws.events"}, LocalLambdaContext(timeout_seconds=600))
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "summary": summary, "peak_mib": peak_kib / 1024}


def main() -> None:
    mode = sys.argv[1]
    result = bare_listing() if mode == "list" else handler_poll(full_reconcile=mode == "full")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
