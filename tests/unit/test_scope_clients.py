"""How many Personalize clients a container keeps: one listing client per scope, and only
the most recently used Describe clients, however many scopes announced a job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.loaders import create_loader

from poller.scope_clients import DETAILS_CLIENTS_KEPT, ScopeClients, assumed_role_session

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

REGION = "us-east-1"


def scope_clients() -> ScopeClients:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return ScopeClients("123456789012", "aws", "Reader", session)


def test_a_scope_keeps_its_listing_client() -> None:
    clients = scope_clients()
    member = clients.personalize("210987654321", REGION)
    assert clients.personalize("210987654321", REGION) is member
    assert clients.personalize(None, None) is clients.personalize("123456789012", REGION)
    assert clients.personalize("210987654321", "eu-west-1") is not member


def test_only_the_most_recently_used_describe_clients_are_kept() -> None:
    clients = scope_clients()
    accounts = [f"{300000000000 + i:012d}" for i in range(DETAILS_CLIENTS_KEPT + 1)]
    made = [clients.personalize(a, REGION, details=True) for a in accounts]

    # One more than are kept: the oldest was dropped, the others are kept.
    assert clients.personalize(accounts[-1], REGION, details=True) is made[-1]
    assert clients.personalize(accounts[1], REGION, details=True) is made[1]  # now the newest
    assert clients.personalize(accounts[0], REGION, details=True) is not made[0]  # drops [2]
    assert clients.personalize(accounts[1], REGION, details=True) is made[1]
    assert clients.personalize(accounts[2], REGION, details=True) is not made[2]


def test_a_member_session_reads_the_profile_the_poller_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI's --profile may set a CA bundle or proxies: member accounts are reached
    # through the same network. The profile's credentials are not theirs.
    config = tmp_path / "config"
    config.write_text("[profile corp]\nregion = eu-west-1\nca_bundle = /etc/corp-ca.pem\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)  # it would win over the profile's
    base = boto3.session.Session(
        profile_name="corp", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    role = "arn:aws:iam::210987654321:role/Reader"
    member = assumed_role_session(base, role, create_loader(), base.client)

    assert member.profile_name == "corp"
    settings: Any = member._session  # boto3 keeps botocore's session, with the profile's
    assert settings.get_config_variable("ca_bundle") == "/etc/corp-ca.pem"
    # Without a profile of that name (Lambda has no config file), none is asked for.
    bare = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    assert assumed_role_session(bare, role, create_loader(), bare.client).profile_name == "default"
