"""The POC keeps what NVFlare writes inside its own root.

NVFlare 2.9's server spools each uploaded job to a uuid-named file in the temp directory and
never removes it: a ``make test-nvflare`` left some two thousand zips in ``/tmp``. The POC's
processes get a ``TMPDIR`` inside the POC root, which goes with it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from flare_testing.nvflare_poc import Poc, poc_pids
from tests_nvflare.harness import FastJobs, PocHarness


def _environ(pid: int) -> dict[str, str]:
    raw = (Path("/proc") / str(pid) / "environ").read_bytes()
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def test_every_poc_process_has_its_temp_dir_inside_the_poc(poc: Poc) -> None:
    tmp = poc.workspace.parent / "tmp"
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
    spool = poc_harness.poc.workspace.parent / "tmp"
    spooled_before = set(os.listdir(spool))
    with poc_harness.isolated():
        # A job NVFlare rejects: the server's error path is the one that keeps the spool.
        folder = FastJobs(tmp_path, poc_harness.sites).invalid("no_meta")
        with pytest.raises(Exception, match=r"(?i)meta"):
            poc_harness.admin.session().submit_job(str(folder))
    new = {name for name in set(os.listdir(ours)) - before if _is_zip(Path(ours) / name)}
    assert not new
    # The server did keep the upload's spool: in the POC's own temp dir.
    assert set(os.listdir(spool)) - spooled_before


def _is_zip(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False
