"""Local AWS on loopback: moto's server (DynamoDB, SNS, SQS, ...) and the Personalize emulator.

boto3 reaches both through the standard AWS_ENDPOINT_URL_<SERVICE> variables, exactly as
the deployed code reaches AWS; nothing in the poller knows it is running locally. Both
endpoints count requests per "service:Operation" and can be told to fail the next calls
of an operation, the way AWS does (throttling, KMS denials, server errors).
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import urllib.parse
import urllib.request
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from local.personalize_emulator import Fault, PersonalizeEmulator
from local.serving import serve_in_background

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from werkzeug.serving import BaseWSGIServer

    StartResponse = Callable[[str, list[tuple[str, str]]], Any]

# Named by service ID, as boto3 reads AWS_ENDPOINT_URL_<SERVICE_ID>.
MOTO_SERVICES = (
    "DYNAMODB",
    "SNS",
    "SQS",
    "EVENTBRIDGE",
    "STS",
    "IAM",
    "LAMBDA",
    "CLOUDFORMATION",
    "SECRETS_MANAGER",
)
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
# In the user agent of local AWS's own requests (whose account a key is): never counted.
OWN_REQUESTS = "local-aws-bookkeeping"


class CountingFaultyApp:
    """WSGI middleware around moto: counts operations and fails them on request."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._faults: dict[str, deque[Fault]] = {}
        # Roles that do not exist (or do not trust the caller): AssumeRole is denied.
        self.missing_roles: set[str] = set()
        # Asynchronous Lambda invocations (function, payload), accepted and not run: moto
        # would run the function in Docker, which local AWS does not have.
        self.invocations: list[tuple[str, dict[str, Any]]] = []

    def inject_fault(self, operation: str, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults.setdefault(operation, deque()).extend([fault] * times)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._faults.clear()
            self.missing_roles.clear()
            self.invocations.clear()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        operation, json_protocol = self._operation(environ)
        if operation is None:
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        with self._lock:
            self.calls[operation] += 1
            queue = self._faults.get(operation)
            fault = queue.popleft() if queue else None
            if fault is None and operation == "sts:AssumeRole":
                fault = self._denied(environ)
        if fault is None and operation == "lambda:Invoke":
            return self._accept_invocation(environ, start_response)
        if fault is None:
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        if json_protocol:
            body = json.dumps({"__type": fault.code, "message": fault.message}).encode()
            content_type = "application/x-amz-json-1.0"
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code>"
                f"<Message>{fault.message}</Message></Error>"
                "<RequestId>local</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        start_response(
            f"{fault.http_status} Injected",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _accept_invocation(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        function = urllib.parse.unquote(environ.get("PATH_INFO", "").split("/")[-2])
        with self._lock:
            self.invocations.append((function, payload))
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    def _denied(self, environ: dict[str, Any]) -> Fault | None:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        role = urllib.parse.parse_qs(raw.decode(errors="replace")).get("RoleArn", [""])[0]
        if role not in self.missing_roles:
            return None
        return Fault("AccessDenied", 403, f"not authorized to perform: sts:AssumeRole on {role}")

    @staticmethod
    def _operation(environ: dict[str, Any]) -> tuple[str | None, bool]:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None or OWN_REQUESTS in environ.get("HTTP_USER_AGENT", ""):
            return None, False
        service = scope.group(1)
        path = environ.get("PATH_INFO", "")
        if service == "lambda" and path.endswith("/invocations"):
            if environ.get("HTTP_X_AMZ_INVOCATION_TYPE") == "Event":
                return "lambda:Invoke", False
            return None, False  # a synchronous invoke: moto answers, as before
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return f"{service}:{target.rsplit('.', 1)[-1]}", True
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)  # moto reads the body again
        action = urllib.parse.parse_qs(raw.decode(errors="replace")).get("Action", [None])[0]
        return (f"{service}:{action}" if action else None), False


class LocalAws:
    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012") -> None:
        self.region = region
        self.personalize = PersonalizeEmulator(region=region, account_id=account_id)
        self.moto = CountingFaultyApp(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer | None = None
        self.moto_endpoint = ""
        self._accounts: dict[str, str] = {}
        self._identity_session = boto3.session.Session()
        self._identity_lock = threading.Lock()
        self.personalize.identify = self.account_of

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = make_server(
            "127.0.0.1", 0, self.moto, threaded=True, request_handler=MotoRequestHandler
        )
        serve_in_background(self._server)
        self.moto_endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self.personalize.start()
        return self

    def stop(self) -> None:
        self.personalize.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (and the AWS CLI) at the local endpoints."""
        env = {f"AWS_ENDPOINT_URL_{service}": self.moto_endpoint for service in MOTO_SERVICES}
        env["AWS_ENDPOINT_URL_PERSONALIZE"] = self.personalize.endpoint
        env.update(FAKE_CREDENTIALS)
        env["AWS_DEFAULT_REGION"] = self.region
        env["AWS_REGION"] = self.region
        return env

    def inject_fault(
        self,
        operation: str,
        code: str,
        http_status: int = 400,
        *,
        times: int = 1,
        message: str = "injected fault",
    ) -> None:
        """Fail the next `times` calls of a moto operation, e.g. "dynamodb:UpdateItem"."""
        self.moto.inject_fault(operation, Fault(code, http_status, message), times)

    def account_of(self, access_key: str) -> str:
        """The account an access key belongs to, as moto's STS issued it (an assumed role's
        keys belong to the role's account; the local default keys to the default one)."""
        with self._identity_lock:  # one question per key, however many requests wait
            account = self._accounts.get(access_key)
            if account is None:
                # One session for every key: a session per key parsed botocore's data files
                # each time, which an organization's hundreds of member keys would repeat.
                sts = self._identity_session.client(
                    "sts",
                    endpoint_url=self.moto_endpoint,
                    region_name=self.region,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    config=Config(user_agent_extra=OWN_REQUESTS),
                )
                account = str(sts.get_caller_identity()["Account"])
                self._accounts[access_key] = account
        return account

    def calls(self) -> Counter[str]:
        """Requests received per "service:Operation", at both endpoints."""
        personalize = Counter({f"personalize:{op}": n for op, n in self.personalize.calls.items()})
        return self.moto.calls + personalize

    def clear_calls(self) -> None:
        """Start counting requests afresh (per operation, and per scope at the emulator)."""
        self.moto.calls.clear()
        self.personalize.calls.clear()
        self.personalize.calls_by_scope.clear()

    def reset(self) -> None:
        """Forget every resource, job, fault and count, as a fresh account would have none."""
        request = urllib.request.Request(f"{self.moto_endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        self.moto.reset()
        self.personalize.reset()
        self._accounts.clear()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def drain_queue(sqs: Any, queue_url: str) -> Iterator[dict[str, object]]:
    """Every SNS notification waiting in an SQS queue, deleted as read."""
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        for message in messages:
            yield json.loads(message["Body"])
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
