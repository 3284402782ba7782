"""The deploy plan (flare_core.deploy_plan) and its strict reading from a stored meta."""

from __future__ import annotations

import msgspec
import pytest

from flare_core.deploy_plan import DeployPlan, decode_plan, encode_plan
from flare_core.errors import InvalidJobDefinition
from flare_core.jobdef import plan_from_meta


def test_an_explicit_plan() -> None:
    plan = DeployPlan(apps={"a": ["server", "site-2"], "b": ["site-1", "site-2"]})
    assert plan.uses_all is False
    assert plan.client_sites == ["site-2", "site-1"]
    assert plan.app_for("server") == "a"
    assert plan.app_for("site-1") == "b"
    assert plan.app_for("site-2") == "a"  # the first app naming it
    assert plan.app_for("site-9") is None


@pytest.mark.parametrize("wildcard", ["@ALL", "@all", "@All"])
def test_all_reaches_every_site_in_any_case(wildcard: str) -> None:
    plan = DeployPlan(apps={"app": [wildcard]})
    assert plan.uses_all is True
    assert plan.client_sites == []
    assert plan.app_for("server") == "app"
    assert plan.app_for("anything") == "app"


def test_the_stored_form_round_trips() -> None:
    plan = DeployPlan(apps={"a": ["server"], "b": ["site-1"]})
    assert decode_plan(encode_plan(plan)) == plan
    with pytest.raises(msgspec.DecodeError):
        decode_plan(b'{"apps": 3}')


def test_plan_from_meta_reads_every_deploy_map_form() -> None:
    meta = {
        "deploy_map": {
            "a": "server",
            "b": {"targets": ["site-1"]},
            "c": ["site-2", {"sites": ["site-3"]}],
        }
    }
    assert plan_from_meta(meta) == DeployPlan(
        apps={"a": ["server"], "b": ["site-1"], "c": ["site-2", "site-3"]}
    )


def test_plan_from_meta_applies_the_submit_rules() -> None:
    with pytest.raises(InvalidJobDefinition, match="Missing server site in deploy_map for job x"):
        plan_from_meta({"job_folder_name": "x", "deploy_map": {"app": ["site-1"]}})
