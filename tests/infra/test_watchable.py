"""What synth accepts, the poller can watch: the regions of Amazon Personalize are one list
for both, and the poller's own check (`check_scopes`, at its first run) refuses what synth
cannot see: its own region, when synth does not know it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from job_events.vocabulary import PERSONALIZE_REGIONS, PERSONALIZE_REGIONS_URL
from poller.errors import ConfigurationError
from poller.models import Scope
from poller.settings import Settings, check_scopes
from tests.infra.conftest import synth
from tests.infra.test_stack import poller

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

OWN = "111122223333"
TOPIC = "arn:aws:sns:us-east-1:111122223333:topic"
VERSION = "arn:aws:personalize:us-east-1:111122223333:solution/segments/1"


def test_the_regions_are_the_ones_botocore_knows() -> None:
    """The list is the documentation's; botocore's endpoint data (pinned with boto3) agrees.
    Should a boto3 upgrade add a region, check the documentation and add it here."""
    session = boto3.session.Session()
    known = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("personalize", partition_name=partition)
    }
    assert set(PERSONALIZE_REGIONS) == known
    assert len(set(PERSONALIZE_REGIONS)) == len(PERSONALIZE_REGIONS)
    assert "eu-west-2" not in PERSONALIZE_REGIONS  # the example


def environment(template: Template, region: str) -> dict[str, str]:
    """The poller's environment once deployed in `region` (references filled in)."""
    variables: dict[str, Any] = poller(template)["Environment"]["Variables"]
    env = {name: value if isinstance(value, str) else "x" for name, value in variables.items()}
    return {**env, "TOPIC_ARN": TOPIC, "PEOPLE_TOPIC_ARN": TOPIC, "AWS_REGION": region}


def test_what_synth_accepts_the_poller_accepts(each_configuration: Template) -> None:
    settings = Settings.from_env(environment(each_configuration, "us-east-1"))
    assert check_scopes(settings.scopes(OWN)) == settings.scopes(OWN)


def test_the_poller_names_its_own_region_without_personalize_at_its_first_run() -> None:
    settings = Settings.from_env(environment(synth(), "eu-west-2"))
    with pytest.raises(ConfigurationError) as refused:
        check_scopes(settings.scopes(OWN))
    assert str(refused.value) == (
        f"Amazon Personalize is not in eu-west-2 (its regions: {PERSONALIZE_REGIONS_URL}); "
        "if it has launched there since, add it to the stack's allowRegions"
    )
    assert check_scopes(settings.scopes(OWN), extra_regions={"eu-west-2"})


def test_the_poller_refuses_no_scope_at_all() -> None:
    settings = Settings("table", TOPIC, "us-east-1", solution_version_arns=(VERSION,))
    with pytest.raises(ConfigurationError) as refused:
        check_scopes(settings.scopes("444455556666"))
    assert str(refused.value) == (
        "no scope to poll: every solution version in SOLUTION_VERSION_ARNS is outside the "
        "watched accounts and regions"
    )


def test_the_poller_refuses_a_scope_twice() -> None:
    scope = Scope(VERSION, OWN, "us-east-1")
    with pytest.raises(ConfigurationError) as refused:
        check_scopes([scope, Scope(None, OWN, "eu-west-1"), scope])
    assert str(refused.value) == f"scopes listed more than once: {scope.key}"
