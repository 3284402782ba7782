"""In-memory site workspaces: one ``FileTree`` per site, written by the simulated engine.

The service only reads them (shell commands, live logs, archiving a finished job); the engine
writes through the extra ``write``/``append``/``mkdir`` methods. Paths are relative POSIX paths
(``""`` is the root); a path that would leave the workspace (absolute, ``..``, backslash, NUL)
resolves to nothing, exactly like a missing file.
"""

from __future__ import annotations

import threading

from flare_core.shell import FileStat

__all__ = ["MemoryFileTree", "MemoryWorkspaces", "normalize_workspace_path"]

_DIR_SIZE = 4096  # what ``ls -l`` shows for a directory on common file systems


def normalize_workspace_path(path: str) -> str | None:
    """The canonical form of a workspace path, or None when it would leave the workspace."""
    if not isinstance(path, str) or path.startswith("/") or "\\" in path or "\x00" in path:
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts)


class MemoryFileTree:
    """A site's workspace held in dicts; thread-safe.

    Args:
        root: what ``pwd`` prints for this workspace.
        mtime: the modification time given to the root directory.
    """

    def __init__(self, root: str, mtime: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._root = root
        self._files: dict[str, tuple[bytes, float]] = {}
        self._dirs: dict[str, float] = {"": mtime}

    # --- the FileTree port ---------------------------------------------------------------

    def display_root(self) -> str:
        """The workspace's absolute path, as ``pwd`` prints it."""
        return self._root

    def stat(self, path: str) -> FileStat | None:
        """Kind, size and modification time of ``path``, or None when it does not exist."""
        norm = normalize_workspace_path(path)
        if norm is None:
            return None
        with self._lock:
            if norm in self._files:
                data, mtime = self._files[norm]
                return FileStat("file", len(data), mtime)
            if norm in self._dirs:
                return FileStat("dir", _DIR_SIZE, self._dirs[norm])
        return None

    def listdir(self, path: str) -> list[str]:
        """The names directly inside directory ``path``, sorted (``[]`` when not a directory)."""
        norm = normalize_workspace_path(path)
        if norm is None:
            return []
        prefix = f"{norm}/" if norm else ""
        with self._lock:
            if norm not in self._dirs:
                return []
            names = {
                key[len(prefix) :].split("/", 1)[0]
                for key in (*self._files, *self._dirs)
                if key and key.startswith(prefix) and key != norm
            }
        return sorted(names)

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative) of file ``path`` from ``offset``.

        Raises:
            FileNotFoundError: it is not a file.
        """
        norm = normalize_workspace_path(path)
        with self._lock:
            if norm is None or norm not in self._files:
                raise FileNotFoundError(path)
            data = self._files[norm][0]
        start = max(0, offset)
        return data[start:] if size < 0 else data[start : start + size]

    # --- writers (the engine's side) --------------------------------------------------------

    def mkdir(self, path: str, mtime: float) -> None:
        """Create directory ``path`` and its parents (existing ones keep their times)."""
        norm = self._checked(path)
        with self._lock:
            self._mkdirs(norm, mtime)

    def write(self, path: str, data: bytes, mtime: float) -> None:
        """Create or replace file ``path`` (parent directories are created)."""
        norm = self._checked(path)
        with self._lock:
            self._mkdirs(norm.rpartition("/")[0], mtime)
            self._files[norm] = (bytes(data), mtime)

    def append(self, path: str, data: bytes, mtime: float) -> None:
        """Append to file ``path``, creating it when missing."""
        norm = self._checked(path)
        with self._lock:
            self._mkdirs(norm.rpartition("/")[0], mtime)
            old = self._files.get(norm, (b"", mtime))[0]
            self._files[norm] = (old + bytes(data), mtime)

    def remove(self, path: str) -> None:
        """Remove file or directory ``path`` with everything under it (no error if absent)."""
        norm = self._checked(path)
        below = f"{norm}/"
        with self._lock:
            for table in (self._files, self._dirs):
                for key in [k for k in table if k == norm or k.startswith(below)]:
                    del table[key]

    def files(self, prefix: str = "") -> list[str]:
        """Every file path under directory ``prefix`` (``""``: all), sorted."""
        norm = self._checked(prefix) if prefix else ""
        start = f"{norm}/" if norm else ""
        with self._lock:
            return sorted(k for k in self._files if k.startswith(start))

    def _checked(self, path: str) -> str:
        norm = normalize_workspace_path(path)
        if norm is None or (not norm and path):
            raise ValueError(f"path {path!r} is not inside the workspace")
        return norm

    def _mkdirs(self, norm: str, mtime: float) -> None:
        if norm in self._files:
            raise ValueError(f"{norm!r} is a file")
        parts = norm.split("/") if norm else []
        for i in range(1, len(parts) + 1):
            self._dirs.setdefault("/".join(parts[:i]), mtime)


class MemoryWorkspaces:
    """Every site's workspace (the ``Workspaces`` port); trees are created on first use.

    Args:
        root: the parent path shown by ``pwd``; a site's tree displays ``<root>/<site>``.
    """

    def __init__(self, root: str = "/workspace") -> None:
        self._lock = threading.Lock()
        self._root = root.rstrip("/")
        self._trees: dict[str, MemoryFileTree] = {}

    def tree(self, site: str) -> MemoryFileTree:
        """The workspace of ``site`` (created empty when new; never None here)."""
        with self._lock:
            tree = self._trees.get(site)
            if tree is None:
                tree = self._trees[site] = MemoryFileTree(f"{self._root}/{site}")
            return tree

    def sites(self) -> list[str]:
        """The sites that have a workspace, sorted."""
        with self._lock:
            return sorted(self._trees)

    def remove_job(self, job_id: str) -> None:
        """Delete ``<job_id>/`` from every site's workspace."""
        with self._lock:
            trees = list(self._trees.values())
        for tree in trees:
            tree.remove(job_id)
