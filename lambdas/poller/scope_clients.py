"""Personalize clients for every watched scope: the poller's own credentials in its own
account, and cached, refreshing assumed-role credentials in each member account.

An organization has hundreds of accounts, so a member costs as little as it can: every
member's session reads botocore's data files (endpoints, service models) through one
loader, and a region's scopes send through one pool of connections. A botocore session of
its own per member parsed those files again: 8.5 s of CPU for 50 accounts x 3 regions here,
against 1 s shared (`make bench`), and a 512 MB function has a third of this machine's vCPU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast

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
# Describe clients kept at once: a storm announces jobs in many scopes, one client each.
DETAILS_CLIENTS_KEPT = 32


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
    # The profile's settings (a CA bundle, proxies) apply to members too; its credentials
    # do not: the credential provider below replaces them.
    profile = base.profile_name if base.profile_name in base.available_profiles else None
    assumed = botocore.session.Session(profile=profile)
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
        self._listing: dict[tuple[str, str], PersonalizeClient] = {}
        # Describe clients only fetch an announced job's details: the most recently used
        # are kept, so their memory stays the same however many scopes announced a job.
        self._details: OrderedDict[tuple[str, str], PersonalizeClient] = OrderedDict()
        self._loader = create_loader()
        # The HTTP session of the first client per (region, Describe or not, own account).
        self._pools: dict[tuple[str, bool, bool], Any] = {}
        # Sessions are not thread-safe: every client is made under this lock.
        self._lock = threading.Lock()

    def personalize(
        self, account: str | None, region: str | None, *, details: bool = False
    ) -> PersonalizeClient:
        """The listing client of a scope, or with `details` the one for Describe calls."""
        key = (account or self._own_account, region or self._session.region_name)
        with self._lock:
            if details:
                return self._details_client(key)
            client = self._listing.get(key)
            if client is None:
                client = self._listing[key] = self._made(key, details=False)
            return client

    def _details_client(self, key: tuple[str, str]) -> PersonalizeClient:
        client = self._details.pop(key, None) or self._made(key, details=True)
        self._details[key] = client  # the most recently used last
        if len(self._details) > DETAILS_CLIENTS_KEPT:
            self._details.popitem(last=False)
        return client

    def _made(self, key: tuple[str, str], details: bool) -> PersonalizeClient:
        account, region = key
        client = self._session_for(account).client(
            "personalize",
            region_name=region,
            config=DESCRIBE_CONFIG if details else LISTING_CONFIG,
        )
        return self._pooled(client, (region, details, account == self._own_account))

    def _pooled(self, client: PersonalizeClient, pool: tuple[str, bool, bool]) -> PersonalizeClient:
        """The client, sending through the connections of the first client of its pool: of
        its region and kind, and the poller's own account or the members.

        Each client's own pool would hold a TLS context with the CA bundle loaded (0.65 MiB
        each: 390 MiB for 600 scopes, more than the function has) and open connections of
        its own to the same regional endpoint. Requests are signed per client, so a
        connection may carry any member's. One pool per region, not one for all: a pool
        keeps 10 endpoints before it drops one, and a region's connections stay its own.
        The own account keeps its pool, made from its own session's settings. botocore has
        no public way to give clients one pool: the endpoint's HTTP session is replaced.
        The kind's config, the same for every scope, sized that pool for every listing
        thread (poller.aws).
        """
        first: Any = self._pools.setdefault(pool, cast("Any", client)._endpoint.http_session)
        joining: Any = client  # botocore's stubs have no endpoint
        joining._endpoint.http_session = first
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
        """A client for one AssumeRole (botocore asks for "sts"), new each time, as botocore
        makes one: each member keeps a retry budget of its own. One client shared by all
        would spend its budget on a few members' throttling, then retry nobody's. Called
        from the listing threads; made under the lock, since the session is shared."""
        with self._lock:
            # STS gets bounded timeouts too: a hung AssumeRole must not outlast the run.
            client: BaseClient = self._session.client(
                service,  # type: ignore[call-overload]  # always "sts"
                config=STS_CONFIG,
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
            )
            return client
