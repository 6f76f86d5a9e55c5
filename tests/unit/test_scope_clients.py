"""How many Personalize clients a container keeps: one listing client per scope, and only
the most recently used Describe clients, however many scopes announced a job."""

from __future__ import annotations

import boto3

from poller.scope_clients import DETAILS_CLIENTS_KEPT, ScopeClients

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
