"""Item 7 (and 5, for uploads) of issue 10: corrupt or lying archives are refused at submit,
with ``invalid_job_definition``, on the server and in the in-memory system alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_core import SubmitJob
from tests.hostile.zips import CORPUS
from tests.server.server_kit import hosted, job_files, make_zip
from tests.service.helpers import Harness


@pytest.mark.parametrize("case", sorted(CORPUS))
@pytest.mark.asyncio
async def test_the_server_refuses_every_hostile_archive(tmp_path: Path, case: str) -> None:
    async with hosted(str(tmp_path)) as host:
        api = await host.api()
        problem = await api.problem(
            "POST",
            "/v1/jobs",
            422,
            params={"folder_name": "hello"},
            data=CORPUS[case](),
            headers={"Content-Type": "application/zip"},
        )
        assert problem["code"] == "invalid_job_definition", problem
        assert await api.ok("GET", "/v1/jobs") == []


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_the_service_refuses_every_hostile_archive(case: str) -> None:
    h = Harness()
    problem = h.problem(h.login(), SubmitJob(folder_name="hello"), [CORPUS[case]()])
    assert problem.code == "invalid_job_definition", problem


@pytest.mark.asyncio
async def test_an_honest_archive_still_passes(tmp_path: Path) -> None:
    async with hosted(str(tmp_path)) as host:
        api = await host.api()
        assert await api.submit(make_zip(job_files()))
