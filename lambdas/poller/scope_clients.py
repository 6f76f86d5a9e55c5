"""Personalize clients for every watched scope: the poller's own credentials in its own
account, and cached, refreshing assumed-role credentials in each member account.

An organization has hundreds of accounts, so a member costs as little as it can: every
member's session reads botocore's data files (endpoints, service models) through one
loader, and every AssumeRole goes through one STS client. A botocore session of its own
per member parsed those files again: 8.5 s of CPU for 50 accounts x 3 regions here, against
1 s shared (`make bench`), and a 512 MB function has a third of this machine's vCPU.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.loaders import Loader, create_loader

from poller.aws import DESCRIBE_CONFIG, LISTING_CONFIG, STS_CONFIG

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.client import BaseClient
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


def assumed_role_session(
    base: boto3.session.Session,
    role_arn: str,
    loader: Loader,
    sts_client: Callable[..., Any],
) -> boto3.session.Session:
    """A session whose credentials come from AssumeRole on first use and are refreshed
    before they expire, as botocore does for a profile with role_arn. `sts_client` is
    botocore's client creator: called with the source credentials, it returns the client
    AssumeRole is called with."""
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=base.get_credentials(),
        role_arn=role_arn,
        extra_args={"RoleSessionName": ROLE_SESSION_NAME},
    )
    assumed = botocore.session.Session()
    assumed.register_component("data_loader", loader)
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
        self._loader = create_loader()
        self._first_of_kind: dict[tuple[str, bool], PersonalizeClient] = {}
        self._sts: tuple[tuple[str, str, str | None], BaseClient] | None = None
        # Sessions are not thread-safe: every client is made under this lock.
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
                self._clients[key] = self._pooled(client, key[1], details)
            return client

    def _pooled(self, client: PersonalizeClient, region: str, details: bool) -> PersonalizeClient:
        """The client, sending through the connections of the first client of its kind in
        its region.

        Each client's own pool would hold a TLS context with the CA bundle loaded (0.65 MiB
        each: 390 MiB for 600 scopes, more than the function has) and open connections of
        its own to the same regional endpoint. Requests are signed per client, so a
        connection may carry any account's. One pool per region, not one for all: a pool
        keeps 10 endpoints before it drops one, and a region's connections stay its own.
        botocore has no public way to give clients one pool: its endpoint's HTTP session is
        replaced. The kind's config, the same for every scope, sized that pool for every
        listing thread (poller.aws).
        """
        first: Any = self._first_of_kind.setdefault((region, details), client)
        joining: Any = client  # botocore's stubs have no endpoint
        joining._endpoint.http_session = first._endpoint.http_session
        return client

    def _session_for(self, account: str) -> boto3.session.Session:
        session = self._sessions.get(account)
        if session is None:
            role_arn = member_role_arn(self._partition, account, self._role_name)
            session = assumed_role_session(self._session, role_arn, self._loader, self._sts_client)
            self._sessions[account] = session
        return session

    def _sts_client(
        self,
        service: str,
        *,
        aws_access_key_id: str,
        aws_secret_access_key: str,
        aws_session_token: str | None,
    ) -> BaseClient:
        """The one STS client every member's AssumeRole uses (botocore asks for "sts"),
        made again only when the source credentials change. Called from the listing
        threads, when a member's credentials are first needed or refreshed."""
        assert service == "sts", service
        key = (aws_access_key_id, aws_secret_access_key, aws_session_token)
        with self._lock:
            if self._sts is None or self._sts[0] != key:
                # STS gets bounded timeouts too: a hung AssumeRole must not outlast the run.
                client = self._session.client(
                    "sts",
                    config=STS_CONFIG,
                    aws_access_key_id=aws_access_key_id,
                    aws_secret_access_key=aws_secret_access_key,
                    aws_session_token=aws_session_token,
                )
                self._sts = (key, client)
            return self._sts[1]
