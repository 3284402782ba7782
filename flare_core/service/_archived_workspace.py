"""An ended job's archived workspace: every participating site's job files, kept with the job.

When a job ends, the files under ``<job_id>/`` in each participating site's workspace are
copied into one zip blob beside the job's archive, ``jobs/<id>/workspace.zip``, one member
``<site>/<path>`` per file (a client's ``error_log.txt`` also becomes the job component
``ERRORLOG_<site>``). One blob is one file flush and one directory flush to make durable; a
blob per file cost a flush each, and one per directory it created, which was most of an
abort's time (issue 12).

Stores written before that layout keep a blob per file under ``jobs/<id>/workspace/<site>/
<path>``, and so does the server log that startup recovery writes for a job the crash left
live. Readers take both layouts; a per-file blob wins over the zip member of the same name,
being the later of the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from flare_core.archive import ArchiveView
from flare_core.service._core import ServiceCore, job_blob_prefix
from flare_core.shell import FileTree
from flare_core.site_names import SERVER_SITE

__all__ = ["WORKSPACE_ARCHIVE", "ArchivedWorkspace", "archive_workspace"]

WORKSPACE_ARCHIVE = "workspace.zip"
"""The blob (under ``job_blob_prefix``) holding an ended job's workspace files."""

_FILES = "workspace/"
"""The prefix (under ``job_blob_prefix``) of the older layout: a blob per file."""

_MAX_FILES = 10_000
_MAX_DEPTH = 32
_CHUNK = 1024 * 1024


def archive_workspace(core: ServiceCore, meta: dict[str, Any], sites: list[str]) -> None:
    """Copy a job's files from the ``sites``' workspaces into the job's blobs (bounded: at most
    10,000 files, 32 directories deep, read a piece at a time)."""
    job_id = str(meta["job_id"])
    prefix = job_blob_prefix(job_id)
    files: list[tuple[str, FileTree, str]] = []  # (member name, tree, path in the tree)
    for site in [SERVER_SITE, *sites]:
        tree = core.ports.workspaces.tree(site)
        if tree is not None:
            files.extend(_site_files(tree, job_id, site, _MAX_FILES - len(files)))
    if not files:
        return
    members = ((name, _chunks(tree, path)) for name, tree, path in files)
    core.ports.blobs.write(prefix + WORKSPACE_ARCHIVE, core.ports.packer.pack(members))
    for name, tree, path in files:
        site, rel = name.split("/", 1)
        if site != SERVER_SITE and rel == "error_log.txt":
            core.ports.blobs.write(f"{prefix}components/ERRORLOG_{site}", _chunks(tree, path))


def _site_files(
    tree: FileTree, job_id: str, site: str, budget: int
) -> Iterator[tuple[str, FileTree, str]]:
    stack: list[tuple[str, int]] = [(job_id, 0)]
    while stack and budget > 0:
        directory, depth = stack.pop()
        for name in sorted(tree.listdir(directory)):
            path = f"{directory}/{name}"
            stat = tree.stat(path)
            if stat is None:
                continue
            if stat.kind == "dir":
                if depth < _MAX_DEPTH:
                    stack.append((path, depth + 1))
                continue
            if budget <= 0:
                return
            budget -= 1
            yield f"{site}/{path[len(job_id) + 1 :]}", tree, path


def _chunks(tree: FileTree, path: str) -> Iterator[bytes]:
    # Results can be models of gigabytes: copy them a bounded piece at a time.
    offset = 0
    while chunk := tree.read(path, offset, _CHUNK):
        yield chunk
        offset += len(chunk)


class ArchivedWorkspace:
    """One job's archived files, in both layouts, for one request: the zip is opened at most
    once, and only when something asks for it (not for a log read from a live workspace)."""

    def __init__(self, core: ServiceCore, job_id: str) -> None:
        self._blobs = core.ports.blobs
        self._prefix = job_blob_prefix(job_id)
        self._view: ArchiveView | None = None
        self._opened = False

    def _zip(self) -> ArchiveView | None:
        if not self._opened:
            self._opened = True
            try:
                self._view = self._blobs.archive(self._prefix + WORKSPACE_ARCHIVE, trusted=True)
            except KeyError:
                self._view = None
        return self._view

    def files(self) -> list[tuple[str, Callable[[], Iterable[bytes]]]]:
        """Every archived file, sorted: ``(<site>/<path>, opener of its chunks)``."""
        files: dict[str, Callable[[], Iterable[bytes]]] = {}
        view = self._zip()
        if view is not None:
            for name in view.names():
                if not name.endswith("/"):
                    files[name] = partial(view.open, name)
        old = self._prefix + _FILES
        for key in self._blobs.keys(old):
            files[key[len(old) :]] = partial(self._blobs.read, key)
        return sorted(files.items())

    def read(self, name: str) -> Iterator[bytes] | None:
        """The chunks of one archived file (``<site>/<path>``), or None when it is not there."""
        try:
            return self._blobs.read(self._prefix + _FILES + name)
        except KeyError:
            pass
        view = self._zip()
        if view is None:
            return None
        try:
            return view.open(name)
        except KeyError:
            return None
