"""Site workspaces in real directories: the ``Workspaces``/``FileTree`` ports on disk.

The embedded server keeps each simulated site's workspace under ``state/workspaces/<site>``,
so logs and results survive a restart and cost no memory. Target shell commands read through
these trees, confined to the site's directory (DECISIONS §17): every path is resolved with
symlinks followed and must stay inside the workspace; anything that would leave it (``..``,
an absolute path, a symlink pointing outside) reads as absent.
"""

from __future__ import annotations

import os
import re
import shutil
import threading

from flare_adapters.memory.workspaces import normalize_workspace_path
from flare_core.shell import FileStat

__all__ = ["DiskFileTree", "DiskWorkspaces"]

_SITE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


class DiskFileTree:
    """One site's workspace directory, read by the shell and written by the engine.

    Args:
        root: the directory (created when missing).
        display: what ``pwd`` prints for it: a virtual path, so no user learns where the
            server keeps its state on disk (issue 10).
    """

    def __init__(self, root: str, display: str = "/workspace") -> None:
        os.makedirs(root, exist_ok=True)
        self._root = os.path.realpath(root)
        self._display = display
        self._lock = threading.Lock()  # appends from engine timers vs. reads from requests

    def __getstate__(self) -> dict[str, str]:
        # Pickled for the server's offload worker (server/offload.py), which only reads: the
        # copy gets a lock of its own, so its reads no longer wait for this process's writes
        # and may see a file mid-rewrite, as a shell's ``cat`` beside a writer would.
        return {"root": self._root, "display": self._display}

    def __setstate__(self, state: dict[str, str]) -> None:
        self._root = state["root"]
        self._display = state["display"]
        self._lock = threading.Lock()

    def display_root(self) -> str:
        """What ``pwd`` prints: the virtual ``/workspace/<site>``, never the real path."""
        return self._display

    def _inside(self, path: str) -> str | None:
        """The real path of workspace path ``path``, or None when it would leave the root."""
        norm = normalize_workspace_path(path)
        if norm is None:
            return None
        full = os.path.realpath(os.path.join(self._root, norm))
        if full == self._root or full.startswith(self._root + os.sep):
            return full
        return None

    def stat(self, path: str) -> FileStat | None:
        """Kind, size and modification time of ``path``, or None when absent or outside."""
        full = self._inside(path)
        if full is None:
            return None
        try:
            info = os.stat(full)
        except OSError:
            return None
        if os.path.isdir(full):
            return FileStat("dir", info.st_size, info.st_mtime)
        return FileStat("file", info.st_size, info.st_mtime)

    def listdir(self, path: str) -> list[str]:
        """The names inside directory ``path`` that stay inside the workspace, sorted."""
        full = self._inside(path)
        if full is None or not os.path.isdir(full):
            return []
        base = normalize_workspace_path(path) or ""
        names = []
        for name in os.listdir(full):
            if self._inside(f"{base}/{name}" if base else name) is not None:
                names.append(name)
        return sorted(names)

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative) of file ``path`` from ``offset``.

        Raises:
            FileNotFoundError: absent or outside the workspace.
        """
        full = self._inside(path)
        if full is None or not os.path.isfile(full):
            raise FileNotFoundError(path)
        with self._lock, open(full, "rb") as source:
            source.seek(max(0, offset))
            return source.read(size)

    # --- writers (the engine's side) --------------------------------------------------------

    def _writable(self, path: str) -> str:
        full = self._inside(path)
        if full is None or full == self._root:
            raise ValueError(f"path {path!r} is not inside the workspace")
        return full

    def mkdir(self, path: str, mtime: float) -> None:
        """Create directory ``path`` and its parents."""
        full = self._writable(path)
        os.makedirs(full, exist_ok=True)
        os.utime(full, (mtime, mtime))

    def write(self, path: str, data: bytes, mtime: float) -> None:
        """Create or replace file ``path`` (parent directories are created)."""
        full = self._writable(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with self._lock:
            with open(full, "wb") as target:
                target.write(data)
            os.utime(full, (mtime, mtime))

    def append(self, path: str, data: bytes, mtime: float) -> None:
        """Append to file ``path``, creating it when missing."""
        full = self._writable(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with self._lock:
            with open(full, "ab") as target:
                target.write(data)
            os.utime(full, (mtime, mtime))

    def remove(self, path: str) -> None:
        """Remove file or directory ``path`` with everything under it (no error if absent)."""
        full = self._writable(path)
        with self._lock:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            elif os.path.lexists(full):
                os.unlink(full)

    def files(self, prefix: str = "") -> list[str]:
        """Every file path under directory ``prefix`` (``""``: all), sorted, symlinks skipped."""
        start = self._inside(prefix) if prefix else self._root
        if start is None or not os.path.isdir(start):
            return []
        found = []
        for folder, dirs, names in os.walk(start):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in names:
                full = os.path.join(folder, name)
                if not os.path.islink(full):
                    found.append(os.path.relpath(full, self._root).replace(os.sep, "/"))
        return sorted(found)


class DiskWorkspaces:
    """Every site's workspace as ``<root>/<site>`` (the ``Workspaces`` port on disk).

    Args:
        root: the parent directory (created when missing).
    """

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self._root = os.path.realpath(root)
        self._lock = threading.Lock()
        self._trees: dict[str, DiskFileTree] = {}

    def tree(self, site: str) -> DiskFileTree:
        """The workspace of ``site`` (created empty when new).

        Raises:
            ValueError: ``site`` is not a plain site name (it would name another directory).
        """
        if not _SITE_NAME.fullmatch(site):
            raise ValueError(f"invalid site name {site!r}")
        with self._lock:
            tree = self._trees.get(site)
            if tree is None:
                tree = self._trees[site] = DiskFileTree(
                    os.path.join(self._root, site), display=f"/workspace/{site}"
                )
            return tree

    def sites(self) -> list[str]:
        """The sites that have a workspace, sorted."""
        return sorted(
            name
            for name in os.listdir(self._root)
            if _SITE_NAME.fullmatch(name) and os.path.isdir(os.path.join(self._root, name))
        )

    def remove_job(self, job_id: str) -> None:
        """Delete ``<job_id>/`` from every site's workspace."""
        if normalize_workspace_path(job_id) in (None, ""):
            return
        for site in self.sites():
            self.tree(site).remove(job_id)
