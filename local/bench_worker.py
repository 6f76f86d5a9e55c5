"""One measurement in a fresh interpreter, for `make bench` (local/bench.py).

    python -m local.bench_worker list   time a bare boto3 paginator over ListBatchSegmentJobs
    python -m local.bench_worker poll   time one invocation of the real handler (warm clients)
    python -m local.bench_worker steady N   one untimed invocation (clients, assumed-role
                                        credentials and connections made), then the median
                                        of N timed ones: a warm container's steady polls.
                                        Between them it prints "warm" and waits for a line

Each poll is timed on the wall clock and in CPU seconds of this process (every thread's).

The environment points boto3 at local AWS and holds the poller's variables. Which kind of
poll runs (steady, or the hourly full read) is set beforehand in the snapshot table's scope
markers by local/bench.py. Prints JSON.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

WARM = "warm"
# moto answers a Query of 50,000 records in seconds a page, where DynamoDB takes
# milliseconds: with the poller's 2 s read timeout the hourly full read would fail here,
# on moto's account. Only that timeout is longer; the requests are the poller's own.
LOCAL_READ_SECONDS = 60.0


def import_handler() -> Any:
    """The poller's handler module, its table, topic and bus clients patient with moto."""
    import dataclasses  # noqa: PLC0415 - in the worker only

    import poller.aws as limits  # noqa: PLC0415 - after the environment is set

    patient = dataclasses.replace(limits.DELIVERY_LIMITS, read_seconds=LOCAL_READ_SECONDS)
    limits.RETRY_CONFIG = patient.config  # before any module takes it by name
    return __import__("poller.handler", fromlist=["handler"])


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


def handler_poll() -> dict[str, Any]:
    from local.lambda_context import LocalLambdaContext  # noqa: PLC0415 - as above

    handler = import_handler()
    context = LocalLambdaContext(timeout_seconds=600)
    # A warm container: clients exist before the scheduled event arrives.
    handler.adapters(context.account_id, "aws")
    before_mib = peak_mib()
    started, cpu = time.perf_counter(), time.process_time()
    summary = handler.handler({"source": "aws.events"}, context)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
        "summary": summary,
        "peak_mib": peak_mib(),
        "before_mib": before_mib,
    }


def peak_mib() -> float:
    """The process's peak resident memory so far, as Lambda reports Max Memory Used.

    Linux's VmHWM: ru_maxrss would count the forking bench's own memory too (Linux carries a
    process's peak across fork and exec), and that process holds local AWS's every job.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def steady_polls(repeats: int) -> dict[str, Any]:
    """A warm container's steady polls: the first invocation makes every scope's client
    and credentials; the polls after it, which change nothing, are timed."""
    from local.lambda_context import LocalLambdaContext  # noqa: PLC0415 - as above

    handler = import_handler()
    handler.handler({"source": "aws.events"}, LocalLambdaContext(timeout_seconds=600))
    # Warm: local/bench.py counts requests from here on, and says when to go on.
    print(WARM, flush=True)
    sys.stdin.readline()
    times, cpu_times = [], []
    summary: dict[str, Any] = {}
    for _ in range(repeats):
        context = LocalLambdaContext(timeout_seconds=600)
        started, cpu = time.perf_counter(), time.process_time()
        summary = handler.handler({"source": "aws.events"}, context)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
    return {
        "seconds": statistics.median(times),
        "cpu_s": statistics.median(cpu_times),
        "runs": times,
        "summary": summary,
    }


def main() -> None:
    mode = sys.argv[1]
    if mode == "list":
        result = bare_listing()
    elif mode == "steady":
        result = steady_polls(int(sys.argv[2]))
    else:
        result = handler_poll()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
