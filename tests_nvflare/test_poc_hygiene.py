"""The POC keeps what NVFlare writes inside its own root.

NVFlare 2.9's server spools each uploaded job to a uuid-named file in the temp directory and
leaves it there when it rejects the job: a ``make test-nvflare`` left some two thousand zips in
``/tmp``. The POC's processes get a ``TMPDIR`` inside the POC root, which goes with it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import zipfile
from pathlib import Path

import pytest

from flare_testing.nvflare_poc import Poc, poc_pids
from tests_nvflare.harness import FastJobs, PocHarness


def _environ(pid: int) -> dict[str, str]:
    raw = (Path("/proc") / str(pid) / "environ").read_bytes()
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def test_every_poc_process_has_its_temp_dir_inside_the_poc(poc: Poc) -> None:
    tmp = Path(poc.env["TMPDIR"])
    assert tmp.is_dir()
    assert tmp.is_relative_to(poc.workspace.parent)  # the POC's root, removed with it
    pids = poc_pids(poc)
    assert pids
    seen = {pid: _environ(pid).get("TMPDIR") for pid in pids if Path(f"/proc/{pid}").exists()}
    assert seen
    assert set(seen.values()) == {str(tmp)}, seen


def test_a_rejected_submit_leaves_nothing_in_the_system_temp_dir(
    poc_harness: PocHarness, tmp_path: Path
) -> None:
    ours = tempfile.gettempdir()
    before = set(os.listdir(ours))
    spool = Path(poc_harness.poc.env["TMPDIR"])
    spooled_before = set(os.listdir(spool))
    # A job NVFlare rejects (the server's error path keeps the spool), named uniquely: the run
    # beside submits through NVFlare's client too, whose own zips pass through this temp dir.
    name = f"hygiene-{uuid.uuid4().hex}"
    folder = FastJobs(tmp_path, poc_harness.sites).invalid("no_meta")
    folder = folder.rename(folder.with_name(name))
    with poc_harness.isolated(), pytest.raises(Exception, match=r"(?i)meta"):
        poc_harness.admin.session().submit_job(str(folder))
    new = set(os.listdir(ours)) - before
    assert not [entry for entry in new if _zip_of(Path(ours) / entry, name)]
    # The server did keep the upload's spool: in the POC's own temp dir.
    assert set(os.listdir(spool)) - spooled_before


def _zip_of(path: Path, folder: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(member.startswith(f"{folder}/") for member in archive.namelist())
    except (OSError, zipfile.BadZipFile):  # not a zip, or gone already
        return False
