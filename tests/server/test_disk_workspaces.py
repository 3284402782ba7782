"""Site workspaces on disk: same semantics as the memory trees, confined to the workspace."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from flare_adapters.disk_workspaces import DiskFileTree, DiskWorkspaces
from flare_adapters.memory.workspaces import MemoryFileTree
from flare_adapters.sqlite.blobs import BlobDirectory
from flare_adapters.sqlite.recovery import collect_orphans
from flare_adapters.zipsafe import DEFAULT_LIMITS
from flare_core import ShellCommand
from flare_core.shell import run_shell

Tree = DiskFileTree | MemoryFileTree


@pytest.fixture(params=["memory", "disk"])
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> Tree:
    if request.param == "memory":
        return MemoryFileTree("/workspace/site-1")
    return DiskFileTree(str(tmp_path / "site-1"))


def test_write_append_read_stat_list(tree: Tree) -> None:
    tree.write("job/log.txt", b"one\n", 100.0)
    tree.append("job/log.txt", b"two\n", 200.0)
    assert tree.read("job/log.txt") == b"one\ntwo\n"
    stat = tree.stat("job/log.txt")
    assert stat is not None
    assert (stat.kind, stat.size, stat.mtime) == ("file", 8, 200.0)
    assert tree.listdir("") == ["job"]
    assert tree.listdir("job") == ["log.txt"]
    assert tree.files() == ["job/log.txt"]


def test_remove_deletes_a_folder_with_its_contents(tree: Tree) -> None:
    tree.write("a/x.txt", b"x", 1.0)
    tree.write("a/b/y.txt", b"y", 1.0)
    tree.write("keep/z.txt", b"z", 1.0)
    tree.remove("a")
    tree.remove("missing")
    assert tree.files() == ["keep/z.txt"]
    assert tree.stat("a") is None


@pytest.mark.parametrize("path", ["../x.txt", "/etc/passwd", "a/../../x.txt", "a\\b"])
def test_paths_leaving_the_workspace_are_absent_and_unwritable(tree: Tree, path: str) -> None:
    assert tree.stat(path) is None
    with pytest.raises(FileNotFoundError):
        tree.read(path)
    with pytest.raises(ValueError, match="not inside the workspace"):
        tree.write(path, b"x", 1.0)


def test_a_symlink_out_of_the_workspace_is_invisible(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak\n")
    tree = DiskFileTree(str(tmp_path / "site-1"))
    tree.write("job/log.txt", b"ok\n", 1.0)
    os.symlink(secret, tmp_path / "site-1" / "job" / "leak.txt")
    os.symlink(tmp_path / "site-1" / "job" / "log.txt", tmp_path / "site-1" / "job" / "alias.txt")
    assert tree.stat("job/leak.txt") is None
    with pytest.raises(FileNotFoundError):
        tree.read("job/leak.txt")
    assert tree.listdir("job") == ["alias.txt", "log.txt"]  # the inside link stays usable
    assert tree.read("job/alias.txt") == b"ok\n"
    output = run_shell(ShellCommand(verb="cat", target="site-1", path="job/leak.txt"), tree)
    assert "do not leak" not in output
    assert "No such file" in output


def test_workspaces_refuse_site_names_that_are_paths(tmp_path: Path) -> None:
    workspaces = DiskWorkspaces(str(tmp_path))
    for bad in ("..", "a/b", "", "../etc", ".hidden"):
        with pytest.raises(ValueError, match="invalid site name"):
            workspaces.tree(bad)
    # pwd never tells a user where the server keeps its state (issue 10, item 8).
    assert workspaces.tree("site-1").display_root() == "/workspace/site-1"
    assert str(tmp_path) not in workspaces.tree("site-1").display_root()


def test_remove_job_clears_every_site(tmp_path: Path) -> None:
    workspaces = DiskWorkspaces(str(tmp_path))
    job = str(uuid.uuid4())
    for site in ("server", "site-1", "site-2"):
        workspaces.tree(site).write(f"{job}/log.txt", b"x", 1.0)
    workspaces.tree("site-1").write("other/log.txt", b"y", 1.0)
    workspaces.remove_job(job)
    assert workspaces.sites() == ["server", "site-1", "site-2"]
    assert workspaces.tree("site-1").files() == ["other/log.txt"]
    assert workspaces.tree("server").files() == []
    workspaces.remove_job("")  # never the whole workspace
    assert workspaces.tree("site-1").files() == ["other/log.txt"]


def test_orphan_job_folders_are_collected_at_start(tmp_path: Path) -> None:
    workspaces = DiskWorkspaces(str(tmp_path / "ws"))
    kept, orphan = str(uuid.uuid4()), str(uuid.uuid4())
    for job in (kept, orphan):
        workspaces.tree("site-1").write(f"{job}/log.txt", b"x", 1.0)
    workspaces.tree("site-1").write("notes/readme.txt", b"not a job folder", 1.0)
    blobs = BlobDirectory(str(tmp_path / "blobs"), DEFAULT_LIMITS)
    assert collect_orphans({kept}, blobs, workspaces) == 1
    assert workspaces.tree("site-1").listdir("") == sorted([kept, "notes"])
