"""Local AWS on loopback: moto's server (DynamoDB, SNS, SQS, ...) and the Personalize emulator.

boto3 reaches both through the standard AWS_ENDPOINT_URL_<SERVICE> variables, exactly as
the deployed code reaches AWS; nothing in the poller knows it is running locally.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import TYPE_CHECKING

from moto.server import ThreadedMotoServer

from local.personalize_emulator import PersonalizeEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

MOTO_SERVICES = ("DYNAMODB", "SNS", "SQS", "EVENTS", "STS", "CLOUDFORMATION")
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class LocalAws:
    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012") -> None:
        self.region = region
        self.personalize = PersonalizeEmulator(region=region, account_id=account_id)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto_endpoint = ""

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        self.personalize.start()
        return self

    def stop(self) -> None:
        self.personalize.stop()
        self._moto.stop()

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (and the AWS CLI) at the local endpoints."""
        env = {f"AWS_ENDPOINT_URL_{service}": self.moto_endpoint for service in MOTO_SERVICES}
        env["AWS_ENDPOINT_URL_PERSONALIZE"] = self.personalize.endpoint
        env.update(FAKE_CREDENTIALS)
        env["AWS_DEFAULT_REGION"] = self.region
        env["AWS_REGION"] = self.region
        return env

    def reset(self) -> None:
        """Forget every resource and job, as a fresh account would have none."""
        request = urllib.request.Request(f"{self.moto_endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        self.personalize.reset()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def drain_queue(sqs: object, queue_url: str) -> Iterator[dict[str, object]]:
    """Every SNS notification waiting in an SQS queue, deleted as read."""
    while True:
        response = sqs.receive_message(  # type: ignore[attr-defined]
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        for message in messages:
            yield json.loads(message["Body"])
        sqs.delete_message_batch(  # type: ignore[attr-defined]
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
