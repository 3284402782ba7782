"""The deploy plan is validated once, at submit, and stored beside the job.

The scheduler, ``check_status`` and the log reader read the stored plan, never the meta's
``deploy_map`` again. Jobs stored before plans were kept (an older server's store on disk)
have no plan blob: theirs is derived once from the meta with the submit-time rules.
"""

from __future__ import annotations

from typing import Any

from flare_core import CheckStatus, CloneJob, GetJobMeta
from flare_core.deploy_plan import DeployPlan, decode_plan
from flare_core.service._core import DEPLOY_PLAN, job_blob_prefix
from tests.service.helpers import DEFAULT_META, Harness, job_files, make_zip

EXPLICIT = {**DEFAULT_META, "deploy_map": {"a": ["server", "site-1"], "b": ["site-2"]}}


def _two_apps(**meta: Any) -> bytes:
    files = job_files(meta={**EXPLICIT, **meta})
    files["a/config/config_fed_server.json"] = files["app/config/config_fed_server.json"]
    files["a/config/config_fed_client.json"] = files["app/config/config_fed_client.json"]
    files["b/config/config_fed_client.json"] = files["app/config/config_fed_client.json"]
    return make_zip(files)


def _plan_key(job_id: str) -> str:
    return job_blob_prefix(job_id) + DEPLOY_PLAN


def _stored_plan(h: Harness, job_id: str) -> DeployPlan:
    return decode_plan(b"".join(h.system.blobs.read(_plan_key(job_id))))


def test_submit_stores_the_validated_plan_and_leaves_the_meta_alone() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin, _two_apps())
    assert _stored_plan(h, job_id) == DeployPlan(apps={"a": ["server", "site-1"], "b": ["site-2"]})
    meta = h.ok(admin, GetJobMeta(job_id=job_id))
    assert "deploy_plan" not in meta
    assert meta["deploy_map"] == EXPLICIT["deploy_map"]


def test_a_clone_stores_its_sources_plan() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin)
    h.advance(1.0)
    clone_id = h.ok(admin, CloneJob(job_id=job_id))
    assert _stored_plan(h, clone_id) == DeployPlan(apps={"app": ["@ALL"]})


def test_a_clone_of_a_job_stored_without_a_plan_stores_the_derived_one() -> None:
    h = Harness()
    admin = h.login()
    job_id = h.submit(admin, _two_apps())
    h.advance(1.0)
    h.system.blobs.delete_prefix(_plan_key(job_id))  # as an older server left it
    h.service._core.forget_plan(job_id)
    clone_id = h.ok(admin, CloneJob(job_id=job_id))
    assert _stored_plan(h, clone_id) == DeployPlan(
        apps={"a": ["server", "site-1"], "b": ["site-2"]}
    )


def test_a_job_stored_without_a_plan_derives_it_from_its_meta() -> None:
    h = Harness(sites=("site-1",))
    admin = h.login()
    job_id = h.submit(admin, _two_apps(min_clients=2))
    h.advance(1.0)
    assert h.status(job_id) == "SUBMITTED"  # waits for site-2
    # As an older server left it: the meta only, no plan blob, nothing cached.
    h.system.blobs.delete_prefix(_plan_key(job_id))
    h.service._core.forget_plan(job_id)
    h.service.connect_site("site-2", "nvidia")
    h.advance(1.0)
    assert h.status(job_id) == "RUNNING"
    value = h.ok(admin, CheckStatus(target_type="all"))
    assert value["jobs"] == [{"job_id": job_id, "app_name": "a"}]
    assert value["site-2"]["jobs"] == [{"job_id": job_id, "app_name": "b", "status": "started"}]


def test_a_stored_map_that_no_longer_parses_deploys_nowhere() -> None:
    h = Harness()
    core = h.service._core
    assert core.deploy_plan({"job_id": "x", "deploy_map": {"app": [7]}}) == DeployPlan()
    assert core.deploy_plan({"job_id": "y"}) == DeployPlan()
