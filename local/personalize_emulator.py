"""A local Amazon Personalize endpoint for batch segment jobs.

moto does not emulate batch segment jobs, so this speaks the real AWS JSON 1.1 protocol
(POST /, X-Amz-Target: AmazonPersonalize.<Operation>) that botocore uses, over HTTP on
loopback. Point boto3 at it with AWS_ENDPOINT_URL_PERSONALIZE. Jobs and faults are set
from Python; every request is counted per operation.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from local.serving import serve_in_background

if TYPE_CHECKING:
    from collections.abc import Callable

TARGET_PREFIX = "AmazonPersonalize."
# SigV4: "Credential=<access key>/<date>/<region>/<service>/aws4_request"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/[^/]+/aws4_request")
SUMMARY_FIELDS = (
    "batchSegmentJobArn",
    "jobName",
    "status",
    "creationDateTime",
    "lastUpdatedDateTime",
    "failureReason",
    "solutionVersionArn",
)


@dataclass
class Fault:
    code: str
    http_status: int
    message: str


class ApiError(Exception):
    def __init__(self, code: str, http_status: int, message: str) -> None:
        super().__init__(message)
        self.fault = Fault(code, http_status, message)


class _Server(ThreadingHTTPServer):
    # A poller lists up to 100 scopes at once: socketserver's backlog of 5 would reset
    # connections that AWS would accept.
    request_queue_size = 128


class PersonalizeEmulator:
    """Holds the jobs and serves them. Thread-safe: the server answers on its own threads."""

    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012") -> None:
        self.region = region
        self.account_id = account_id
        self.calls: Counter[str] = Counter()
        # Requests per (account, region) the caller was in, as a member account would see.
        self.calls_by_scope: Counter[tuple[str, str]] = Counter()
        self.connections = 0  # TCP connections accepted: clients that share a pool reuse them
        # The account of a caller's access key (LocalAws asks moto's STS, which issued the
        # keys of an assumed role); without it, every caller is in `account_id`.
        self.identify: Callable[[str], str] | None = None
        # Seconds each call of an operation takes before it is answered, as a slow service
        # would: e.g. delay["DescribeBatchSegmentJob"] = 0.5.
        self.delay: dict[str, float] = {}
        # Regions whose endpoint accepts each request and never answers, until release().
        self.hung_regions: set[str] = set()
        self._release = threading.Event()
        self._jobs: dict[str, dict[str, Any]] = {}
        # Listing order per solution-version scope, rebuilt only when jobs are added, so a
        # page costs its own size rather than a sort of every job.
        self._ordered: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- state -------------------------------------------------------------------------
    def job_arn(self, name: str, account: str | None = None, region: str | None = None) -> str:
        place = f"{region or self.region}:{account or self.account_id}"
        return f"arn:aws:personalize:{place}:batch-segment-job/{name}"

    def solution_version_arn(
        self,
        solution: str = "segments",
        version: str = "1",
        account: str | None = None,
        region: str | None = None,
    ) -> str:
        place = f"{region or self.region}:{account or self.account_id}"
        return f"arn:aws:personalize:{place}:solution/{solution}/{version}"

    def add_job(
        self,
        name: str,
        status: str = "PENDING",
        *,
        solution_version_arn: str | None = None,
        failure_reason: str | None = None,
        at: float | None = None,
        account: str | None = None,
        region: str | None = None,
        **extra: Any,
    ) -> str:
        """Create a job in an account and region (by default the emulator's own); returns
        its ARN. `extra` holds DescribeBatchSegmentJob-only fields."""
        now = time.time() if at is None else at
        arn = self.job_arn(name, account, region)
        job = {
            "batchSegmentJobArn": arn,
            "jobName": name,
            "status": status,
            "creationDateTime": now,
            "lastUpdatedDateTime": now,
            "solutionVersionArn": solution_version_arn
            or self.solution_version_arn(account=account, region=region),
            "failureReason": failure_reason,
            **extra,
        }
        with self._lock:
            self._jobs[arn] = job
            self._ordered.clear()
        return arn

    def put_raw_job(self, summary: dict[str, Any]) -> None:
        """Store a summary exactly as given, e.g. with fields missing."""
        key = summary.get("batchSegmentJobArn") or f"raw-{len(self._jobs)}"
        with self._lock:
            self._jobs[key] = dict(summary)
            self._ordered.clear()

    def set_status(
        self, arn: str, status: str, *, failure_reason: str | None = None, at: float | None = None
    ) -> None:
        with self._lock:
            job = self._jobs[arn]
            job["status"] = status
            job["lastUpdatedDateTime"] = time.time() if at is None else at
            if failure_reason is not None:
                job["failureReason"] = failure_reason

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(job) for job in self._jobs.values()]

    def inject_fault(
        self,
        operation: str,
        code: str = "ThrottlingException",
        http_status: int = 400,
        *,
        times: int = 1,
        message: str = "Rate exceeded",
    ) -> None:
        """Make the next `times` calls of `operation` fail with this error."""
        with self._lock:
            queue = self._faults.setdefault(operation, deque())
            queue.extend(Fault(code, http_status, message) for _ in range(times))

    def hang(self, region: str) -> None:
        """Requests signed for `region` are read and never answered, as a hung endpoint."""
        with self._lock:
            self.hung_regions.add(region)
            self._release.clear()

    def release(self) -> None:
        """Every hung region answers again, the requests still waiting included."""
        with self._lock:
            self.hung_regions.clear()
            self._release.set()

    def reset(self) -> None:
        self.release()
        with self._lock:
            self._jobs.clear()
            self._ordered.clear()
            self._faults.clear()
            self.calls.clear()
            self.connections = 0
            self.calls_by_scope.clear()
            self.delay.clear()

    # --- operations --------------------------------------------------------------------
    def handle(
        self, operation: str, body: dict[str, Any], caller: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Answer one call from `caller` (account, region): each sees only its own jobs."""
        caller = caller or (self.account_id, self.region)
        with self._lock:
            self.calls[operation] += 1
            self.calls_by_scope[caller] += 1
            queue = self._faults.get(operation)
            if queue:
                fault = queue.popleft()
                raise ApiError(fault.code, fault.http_status, fault.message)
            delay = self.delay.get(operation, 0.0)
            hung = caller[1] in self.hung_regions
        if hung:
            self._release.wait()  # outside the lock: other regions are answered meanwhile
        if delay:
            time.sleep(delay)  # outside the lock: other calls are answered meanwhile
        if operation == "ListBatchSegmentJobs":
            return self._list(body, caller)
        if operation == "DescribeBatchSegmentJob":
            return self._describe(body, caller)
        raise ApiError("UnknownOperationException", 400, f"{operation} is not emulated")

    def _list(self, body: dict[str, Any], caller: tuple[str, str]) -> dict[str, Any]:
        max_results = body.get("maxResults", 100)
        if not isinstance(max_results, int) or not 1 <= max_results <= 100:
            raise ApiError("InvalidInputException", 400, "maxResults must be 1-100")
        scope = (*caller, body.get("solutionVersionArn"))
        offset = self._decode_token(body.get("nextToken"), "/".join(map(str, scope)))
        with self._lock:
            jobs = self._listing_order(scope)
            page = [
                {k: job[k] for k in SUMMARY_FIELDS if job.get(k) is not None}
                for job in jobs[offset : offset + max_results]
            ]
            more = offset + max_results < len(jobs)
        response: dict[str, Any] = {"batchSegmentJobs": page}
        if more:
            response["nextToken"] = self._encode_token(
                offset + max_results, "/".join(map(str, scope))
            )
        return response

    def _belongs(self, job: dict[str, Any], account: str, region: str) -> bool:
        parts = str(job.get("batchSegmentJobArn") or "").split(":")
        if len(parts) < 6:  # a raw summary without an ARN: the emulator's own
            return (account, region) == (self.account_id, self.region)
        return (parts[4], parts[3]) == (account, region)

    def _listing_order(self, scope: tuple[str, str, str | None]) -> list[dict[str, Any]]:
        account, region, version = scope
        if scope not in self._ordered:
            jobs = [
                job
                for job in self._jobs.values()
                if self._belongs(job, account, region)
                and (version is None or job.get("solutionVersionArn") == version)
            ]
            # Newest first, as the console shows them; ties broken by ARN for a stable order.
            jobs.sort(
                key=lambda j: (-(j.get("creationDateTime") or 0), j.get("batchSegmentJobArn", ""))
            )
            self._ordered[scope] = jobs
        return self._ordered[scope]

    def _describe(self, body: dict[str, Any], caller: tuple[str, str]) -> dict[str, Any]:
        arn = body.get("batchSegmentJobArn")
        with self._lock:
            job = self._jobs.get(arn) if isinstance(arn, str) else None
            if job is None or not self._belongs(job, *caller):
                raise ApiError("ResourceNotFoundException", 400, f"{arn} not found")
            return {"batchSegmentJob": {k: v for k, v in job.items() if v is not None}}

    @staticmethod
    def _encode_token(offset: int, scope: str | None) -> str:
        raw = json.dumps({"offset": offset, "scope": scope}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def _decode_token(token: str | None, scope: str | None) -> int:
        if token is None:
            return 0
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            if decoded["scope"] != scope:
                raise ValueError("token belongs to another listing")
            return int(decoded["offset"])
        except (ValueError, KeyError, TypeError) as err:
            raise ApiError("InvalidNextTokenException", 400, "The token is not valid") from err

    def caller(self, authorization: str) -> tuple[str, str]:
        """(account, region) of a signed request: the region from its SigV4 credential
        scope, the account from whoever its access key belongs to."""
        match = _CREDENTIAL.search(authorization)
        if match is None:
            return self.account_id, self.region
        access_key, region = match.group(1), match.group(2)
        account = self.identify(access_key) if self.identify else self.account_id
        return account, region

    # --- server ------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms ACK wait

            def setup(self) -> None:
                super().setup()
                with emulator._lock:
                    emulator.connections += 1

            def do_POST(self) -> None:
                target = self.headers.get("X-Amz-Target", "")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    if not target.startswith(TARGET_PREFIX):
                        raise ApiError("UnknownOperationException", 400, f"bad target {target!r}")
                    body = json.loads(raw or b"{}")
                    caller = emulator.caller(self.headers.get("Authorization", ""))
                    operation = target.removeprefix(TARGET_PREFIX)
                    self._send(200, emulator.handle(operation, body, caller))
                except ApiError as err:
                    self._send(
                        err.fault.http_status,
                        {"__type": err.fault.code, "message": err.fault.message},
                        error_type=err.fault.code,
                    )
                except json.JSONDecodeError:
                    self._send(400, {"__type": "SerializationException", "message": "bad JSON"})

            def _send(self, status: int, payload: dict[str, Any], error_type: str = "") -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", "emulated")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the runner reports calls itself."""

        self._server = _Server((host, port), Handler)
        self._server.daemon_threads = True
        serve_in_background(self._server)
        return self.endpoint

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
