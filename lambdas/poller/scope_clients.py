"""Personalize clients for every watched scope: the poller's own credentials in its own
account, and cached, refreshing assumed-role credentials in each member account."""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)

from poller.aws import DESCRIBE_CONFIG, LISTING_CONFIG, STS_CONFIG

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_personalize import PersonalizeClient

ROLE_SESSION_NAME = "personalize-segment-job-notifier"


def default_session() -> boto3.session.Session:
    """boto3's default session: the one boto3.client() uses for the poller's other clients."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    return boto3.DEFAULT_SESSION


def member_role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def assumed_role_session(base: boto3.session.Session, role_arn: str) -> boto3.session.Session:
    """A session whose credentials come from AssumeRole on first use and are refreshed
    before they expire, as botocore does for a profile with role_arn."""
    fetcher = AssumeRoleCredentialFetcher(
        # STS gets bounded timeouts too: a hung AssumeRole must not outlast the run.
        client_creator=partial(base.client, config=STS_CONFIG),
        source_credentials=base.get_credentials(),
        role_arn=role_arn,
        extra_args={"RoleSessionName": ROLE_SESSION_NAME},
    )
    assumed = botocore.session.Session()
    assumed.register_component(
        "credential_provider", CredentialResolver([_AssumedRole(fetcher.fetch_credentials)])
    )
    return boto3.session.Session(botocore_session=assumed, region_name=base.region_name)


class _AssumedRole(CredentialProvider):
    METHOD = "assume-role"

    def __init__(self, fetch: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._fetch = fetch

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(method=self.METHOD, refresh_using=self._fetch)


class ScopeClients:
    """Personalize clients per (account, region), made once and shared by threads: one for
    listing and one for details, each with its own limits (poller.aws)."""

    def __init__(
        self,
        own_account: str,
        partition: str,
        member_role_name: str,
        session: boto3.session.Session | None = None,
    ) -> None:
        self._own_account = own_account
        self._partition = partition
        self._role_name = member_role_name
        self._session = session or default_session()
        self._sessions: dict[str, boto3.session.Session] = {own_account: self._session}
        self._clients: dict[tuple[str, str, bool], PersonalizeClient] = {}
        self._lock = threading.Lock()

    def personalize(
        self, account: str | None, region: str | None, *, details: bool = False
    ) -> PersonalizeClient:
        """The listing client of a scope, or with `details` the one for Describe calls."""
        key = (account or self._own_account, region or self._session.region_name, details)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._session_for(key[0]).client(
                    "personalize",
                    region_name=key[1],
                    config=DESCRIBE_CONFIG if details else LISTING_CONFIG,
                )
                self._clients[key] = client
            return client

    def _session_for(self, account: str) -> boto3.session.Session:
        session = self._sessions.get(account)
        if session is None:
            role_arn = member_role_arn(self._partition, account, self._role_name)
            session = assumed_role_session(self._session, role_arn)
            self._sessions[account] = session
        return session
