"""Studies: what a study user's read costs as the study registry grows.

Every request of a study's user checks that the user is still a member of the study (issue
10's revocation). The figure is server time, in process, on the server's own runtime (SQLite,
as in ``listing``): ``authenticate`` then ``handle(GetJobMeta)`` of a job of the study, with
a registry of 1, 10 and 100 studies of 50 users each. The baseline is the same read by the
same user in the ``default`` study, which needs no registry, measured interleaved with it.

The bound is ours, not issue 12's: a study user's read stays within 1.5x of a default-study
user's at every registry size (when the registry was decoded on every request, 100 studies
made it about 6x).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable

from bench.context import Bench
from bench.results import Figure, at_most
from bench.stats import interleaved, sample_sync
from flare_adapters.server.config import init_workspace, load_config
from flare_adapters.server.runtime import ServerRuntime
from flare_core import GetJobMeta, Ok

__all__ = ["measure_studies"]

_USERS = 50
_SITES = 10
_MEASURED = "study-0"


def _add_job(runtime: ServerRuntime, study: str, submitter: str) -> str:
    job_id = str(uuid.uuid4())
    runtime.jobs.add(
        {
            "job_id": job_id,
            "name": "hello-numpy-sag",
            "study": study,
            "status": "RUNNING",
            "submit_time": 1_700_000_000.0,
            "submit_time_iso": "",
            "duration": "N/A",
            "submitter_name": submitter,
            "submitter_org": "nvidia",
            "submitter_role": "project_admin",
        }
    )
    return job_id


def measure_studies(bench: Bench) -> list[Figure]:
    root = os.path.join(bench.tmp, "studies")
    config, api_key = init_workspace(root, engine="simulated")
    loop = asyncio.new_event_loop()  # the runtime's clock needs one; no timer fires here
    runtime = ServerRuntime(root, load_config(root), loop)
    service = runtime.service
    admin = config.users[0].name
    figures: list[Figure] = []
    try:
        default_job = _add_job(runtime, "default", admin)
        study_job = _add_job(runtime, _MEASURED, admin)
        made = 0
        for count in bench.plan.study_counts:
            for index in range(made, count):
                service.add_study(
                    f"study-{index}",
                    {"nvidia": [f"site-{index}-{n}" for n in range(_SITES)]},
                    [admin, *(f"user-{n}@nvidia.com" for n in range(_USERS))],
                )
            made = max(made, count)

            def read(study: str, job_id: str) -> Callable[[], object]:
                token = service.login(admin, api_key, study).token
                command = GetJobMeta(job_id=job_id)

                def call() -> object:
                    reply = service.handle(service.authenticate(token), command)
                    assert isinstance(reply, Ok), reply
                    return reply

                return call

            got = interleaved(
                {
                    "default": sample_sync(read("default", default_job)),
                    "study": sample_sync(read(_MEASURED, study_job)),
                },
                rounds=bench.plan.rounds,
                number=bench.plan.number,
            )
            mine, base = got["study"], got["default"]
            figures.append(
                Figure(
                    group="studies",
                    name=f"study user's get_job_meta, {count} studies of {_USERS} users",
                    value=mine.median * 1e3,
                    p99=mine.p99 * 1e3,
                    unit="ms",
                    baseline="default-study user",
                    baseline_value=base.median * 1e3,
                    ratio=mine.median / base.median,
                    goal=at_most(1.5, "<= 1.5x default"),
                    extra={"studies": count, "users_per_study": _USERS},
                )
            )
    finally:
        runtime.close()
        loop.close()
    return figures
