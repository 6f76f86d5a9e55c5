from __future__ import annotations

import pytest

from poller import wiring
from poller.errors import ConfigurationError
from poller.models import Scope
from poller.settings import Settings

TOPIC = "arn:aws:sns:us-east-1:123456789012:events"
BASE = {"SNAPSHOT_TABLE_NAME": "t", "TOPIC_ARN": TOPIC, "AWS_REGION": "us-east-1"}


def test_parses_environment() -> None:
    sv = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
    settings = Settings.from_env({**BASE, "SOLUTION_VERSION_ARNS": f" {sv} ,"})
    assert settings == Settings("t", TOPIC, "us-east-1", (sv,))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOPIC_ARN": TOPIC, "AWS_REGION": "r"}, "SNAPSHOT_TABLE_NAME is not set"),
        ({**BASE, "TOPIC_ARN": "events"}, "TOPIC_ARN is not an SNS topic ARN"),
        ({**BASE, "SOLUTION_VERSION_ARNS": "nope"}, "SOLUTION_VERSION_ARNS holds 'nope'"),
    ],
)
def test_rejects_bad_environment(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


OWN = "123456789012"


def test_by_default_the_poller_watches_its_own_account_and_region() -> None:
    (scope,) = Settings.from_env(BASE).scopes(OWN)
    assert scope == Scope(None, OWN, "us-east-1")


def test_every_account_and_region_pair_is_a_scope() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "WATCHED_ACCOUNTS": "111111111111, 222222222222",
            "WATCHED_REGIONS": "us-east-1,eu-west-1",
            "MEMBER_ROLE_NAME": "Reader",
        }
    )
    assert {(s.account_id, s.region) for s in settings.scopes(OWN)} == {
        ("111111111111", "us-east-1"),
        ("111111111111", "eu-west-1"),
        ("222222222222", "us-east-1"),
        ("222222222222", "eu-west-1"),
    }
    assert settings.member_role_name == "Reader"


def test_solution_versions_narrow_the_scope_they_live_in() -> None:
    east = "arn:aws:personalize:us-east-1:111111111111:solution/s/1"
    settings = Settings.from_env(
        {
            **BASE,
            "WATCHED_ACCOUNTS": "111111111111,222222222222",
            "SOLUTION_VERSION_ARNS": east,
        }
    )
    assert settings.scopes(OWN) == (Scope(east, "111111111111", "us-east-1"),)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WATCHED_ACCOUNTS": "1234"}, "WATCHED_ACCOUNTS holds '1234'"),
        ({"WATCHED_REGIONS": "mars"}, "WATCHED_REGIONS holds 'mars'"),
        ({"MEMBER_ROLE_NAME": "no spaces"}, "MEMBER_ROLE_NAME holds 'no spaces'"),
    ],
)
def test_rejects_bad_scopes(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({**BASE, **env})


def test_a_solution_version_listed_twice_is_one_scope() -> None:
    sv = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
    settings = Settings.from_env({**BASE, "SOLUTION_VERSION_ARNS": f"{sv},{sv}"})
    assert settings.scopes(OWN) == (Scope(sv, OWN, "us-east-1"),)


def test_a_stack_in_a_region_without_personalize_names_it_at_its_first_run() -> None:
    # Synth may not know the stack's own region; the poller then refuses within seconds.
    settings = Settings.from_env({**BASE, "AWS_REGION": "eu-west-2"})

    with pytest.raises(ConfigurationError, match="Amazon Personalize is not in eu-west-2"):
        wiring.poll_run(settings, OWN, "run", lambda: 240.0)

    allowed = Settings.from_env({**BASE, "AWS_REGION": "eu-west-2", "ALLOWED_REGIONS": "eu-west-2"})
    assert wiring.poll_run(allowed, OWN, "run", lambda: 240.0).scopes == (
        Scope(None, OWN, "eu-west-2"),
    )


def test_a_catch_up_of_scopes_no_longer_watched_polls_nothing() -> None:
    run = wiring.poll_run(Settings.from_env(BASE), OWN, "run", lambda: 900.0, frozenset({"x"}))
    assert run.scopes == ()
    assert run.catch_up
