"""A blob directory (the ``BlobStore`` port): one file per blob, written atomically.

Layout under the root directory::

    data/<segment>/.../<last segment>.blob    one file per key
    tmp/                                      writes in progress (emptied at startup)

The ``.blob`` suffix keeps the key ``a`` (file ``a.blob``) and the key ``a/b`` (directory ``a``)
from colliding. A write goes to a temporary file in ``tmp/``, is fsynced, renamed into place,
and the directory is fsynced: once ``write`` returned, the blob survives a crash, and a crash
during ``write`` leaves no partial blob. A ``SpooledFile`` (an upload received into ``tmp/``)
is flushed and renamed into place instead of copied. Callers store the row that points at a
blob only after ``write`` returned, so a committed row never points at a missing blob; the
opposite (a blob no row points at) is collected at startup (``flare_adapters.sqlite.recovery``).

Keys under ``SCRATCH_PREFIX`` (an upload staged while the service checks it) are written
and flushed as any other, but their names are not made durable: no directory flush follows
creating, renaming into or pruning a scratch directory. Nothing depends on a scratch blob
after a crash (recovery deletes them all), and moving one to a kept key flushes the kept
directory as ``write`` would. A submit so makes four directory flushes fewer (of eight fsyncs).

Inside ``grouped_sync()`` (the service lock holds it for a whole locked section, see
``flare_adapters.sqlite.service_lock``) a thread's directory flushes wait until the outermost
block ends and each directory is flushed once. Every ``fsync`` costs a flush of the disk's
cache (about 0.12 ms here, however little changed), and one section touches the same
directories again and again: archiving a job's workspace touches five directories, and
``workspace/`` was flushed once for each site directory made in it. Files
are still flushed before they are renamed, so a blob is never seen under its key half written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, Final

from flare_adapters.spooled_file import SpooledFile
from flare_adapters.zipsafe import (
    CHUNK_SIZE,
    DEFAULT_LIMITS,
    TRUSTED_LIMITS,
    UnsafeZipError,
    ZipLimits,
    open_zip,
)
from flare_core.archive import ArchiveView, is_safe_member
from flare_core.errors import InvalidJobDefinition
from flare_core.service.ports import SCRATCH_PREFIX

__all__ = ["BlobDirectory", "fsync_dir"]

_SUFFIX: Final = ".blob"


def fsync_dir(path: str) -> None:
    """Flush a directory's entries (a rename or create inside it) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobDirectory:
    """Blobs as files under ``root`` (see the module docstring for the layout).

    Args:
        root: the blob directory (created if missing).
        limits: the zipsafe bounds ``archive`` enforces.
    """

    def __init__(self, root: str, limits: ZipLimits = DEFAULT_LIMITS) -> None:
        self.root = os.path.abspath(root)
        self._data = os.path.join(self.root, "data")
        self._tmp = os.path.join(self.root, "tmp")
        self._scratch = os.path.join(self._data, *SCRATCH_PREFIX.rstrip("/").split("/"))
        self._limits = limits
        # Guards the directory tree: a writer creating a parent must not race a pruner
        # removing it. File contents are written outside it.
        self._tree = threading.RLock()
        # Per thread: the directories to flush when its outermost ``grouped_sync`` ends
        # (None outside one).
        self._grouped = threading.local()
        os.makedirs(self._data, exist_ok=True)
        os.makedirs(self._tmp, exist_ok=True)

    # --- directory flushes ------------------------------------------------------------------

    @contextmanager
    def grouped_sync(self) -> Iterator[None]:
        """Flush the directories this thread's writes, moves and deletes change once each,
        when the outermost block ends (also when it raises), instead of after each.

        Nothing is durable before the block ends, so a caller that acknowledges a change
        (the service, replying to a command) must do so after. Nested use joins the outer
        block. Raises ``OSError`` from a failed flush.
        """
        outermost = self.begin_group()
        try:
            yield
        finally:
            self.end_group(outermost)

    def begin_group(self) -> bool:
        """Enter a ``grouped_sync()`` without a generator (the service lock enters one per
        section): True when this call began it; pass that to ``end_group``."""
        if getattr(self._grouped, "dirs", None) is not None:
            return False
        self._grouped.dirs = {}
        return True

    def end_group(self, outermost: bool) -> None:
        """Leave the ``grouped_sync()`` ``begin_group`` entered; the outermost flushes."""
        if not outermost:
            return
        dirs: dict[str, None] = self._grouped.dirs
        self._grouped.dirs = None
        for directory in dirs:
            # A directory pruned later in the block is gone: its parent's flush (also
            # recorded) makes the removal durable.
            with contextlib.suppress(FileNotFoundError):
                fsync_dir(directory)

    def _sync_dir(self, directory: str) -> None:
        dirs: dict[str, None] | None = getattr(self._grouped, "dirs", None)
        if dirs is None:
            fsync_dir(directory)
        else:
            dirs[directory] = None

    # --- paths -----------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        if not is_safe_member(key) or key.endswith("/"):
            raise KeyError(key)
        return os.path.join(self._data, *key.split("/")) + _SUFFIX

    def _key(self, path: str) -> str:
        rel = os.path.relpath(path, self._data)
        return rel[: -len(_SUFFIX)].replace(os.sep, "/")

    def _is_scratch(self, path: str) -> bool:
        return path == self._scratch or path.startswith(self._scratch + os.sep)

    def _makedirs(self, directory: str) -> None:
        # Create missing parents one by one, fsyncing each new entry's parent directory.
        missing: list[str] = []
        while not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(new)
            if not self._is_scratch(new):
                self._sync_dir(os.path.dirname(new))

    # --- the port ---------------------------------------------------------------------------

    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the concatenated chunks under ``key`` atomically; the size written.

        Nothing is stored if ``chunks`` raises (the error propagates).

        Raises:
            KeyError: ``key`` is not a safe relative path.
        """
        final = self._path(key)
        if isinstance(chunks, SpooledFile):
            taken = self._take(final, chunks)
            if taken is not None:
                return taken
        fd, temp = tempfile.mkstemp(dir=self._tmp, suffix=".part")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            self._place(temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return size

    def _take(self, final: str, spooled: SpooledFile) -> int | None:
        # The same guarantees as a copy (the content flushed, then renamed into place and the
        # directory flushed), without reading or writing the bytes again. None: the file is
        # on another filesystem, so it is copied after all.
        fd = os.open(spooled.path, os.O_RDONLY)
        try:
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        try:
            self._place(spooled.path, final)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return None
            raise
        spooled.take()
        return size

    def _place(self, flushed: str, final: str) -> None:
        # Rename a flushed file into place (creating the parents) and flush its directory.
        with self._tree:
            self._makedirs(os.path.dirname(final))
            os.replace(flushed, final)
            if not self._is_scratch(final):
                self._sync_dir(os.path.dirname(final))

    def read(self, key: str) -> Iterator[bytes]:
        """Stream a blob. Raises KeyError (at the call) when it does not exist."""
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115  # closed by the generator
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None
        return self._chunks(handle)

    @staticmethod
    def _chunks(handle: BinaryIO) -> Iterator[bytes]:
        try:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk
        finally:
            handle.close()

    def exists(self, key: str) -> bool:
        """True when ``key`` holds a blob."""
        try:
            return os.path.isfile(self._path(key))
        except KeyError:
            return False

    def move(self, src: str, dst: str) -> None:
        """Rename a blob (replacing ``dst``). Raises KeyError when ``src`` does not exist."""
        source, target = self._path(src), self._path(dst)
        with self._tree:
            if not os.path.isfile(source):
                raise KeyError(src)
            self._place(source, target)
            if os.path.dirname(source) != os.path.dirname(target):
                self._prune(os.path.dirname(source))  # also flushes the source directory

    def copy(self, src: str, dst: str) -> None:
        """Store ``src`` under ``dst`` too: a hard link, as blob files are only ever replaced
        whole, never changed in place (no bytes copied, no file fsync: a clone's archive).
        Where links are refused (another filesystem, a link limit) the bytes are copied.

        Raises:
            KeyError: ``src`` does not exist, or a key is not a safe relative path.
        """
        source, target = self._path(src), self._path(dst)
        # Linked under a fresh name, then renamed over ``dst``: replacing is atomic, as in
        # ``write``.
        temp = os.path.join(self._tmp, f"link-{secrets.token_hex(8)}.part")
        try:
            os.link(source, temp)
        except FileNotFoundError:
            raise KeyError(src) from None
        except OSError:  # links refused: another filesystem, a link limit, a directory
            self.write(dst, self.read(src))
            return
        try:
            self._place(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def _walk(self, prefix: str) -> Iterator[str]:
        # Start at the deepest directory the prefix names completely.
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = os.path.join(self._data, *head.split("/")) if head else self._data
        if not os.path.isdir(start):
            return
        for directory, _dirs, files in os.walk(start):
            for name in files:
                if name.endswith(_SUFFIX):
                    key = self._key(os.path.join(directory, name))
                    if key.startswith(prefix):
                        yield key

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix``; the count."""
        with self._tree:
            doomed = list(self._walk(prefix))
            touched: set[str] = set()
            for key in doomed:
                path = self._path(key)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                touched.add(os.path.dirname(path))
            for directory in sorted(touched, key=len, reverse=True):
                self._prune(directory)
        return len(doomed)

    def _prune(self, directory: str) -> None:
        # Remove directories left empty, up to (not including) the data root.
        scratch = self._is_scratch(directory)  # what leaves scratch need not be durable
        while directory != self._data and directory.startswith(self._data):
            try:
                os.rmdir(directory)
            except OSError:
                break  # not empty (or already gone)
            directory = os.path.dirname(directory)
        if not scratch:
            self._sync_dir(directory if os.path.isdir(directory) else self._data)

    def children(self, prefix: str) -> list[str]:
        """The names directly under the key directory ``prefix`` (ending with ``/``), sorted.

        Cheap at any size: one directory listing, not a walk (orphan collection).
        """
        head = prefix.rstrip("/")
        directory = os.path.join(self._data, *head.split("/")) if head else self._data
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(name.removesuffix(_SUFFIX) for name in names)

    def keys(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix``, sorted."""
        return sorted(self._walk(prefix))

    def archive(self, key: str, *, trusted: bool = False) -> ArchiveView:
        """Open a zip blob as a checked ``ArchiveView`` (``trusted``: without the size bounds).

        Raises:
            KeyError: no such blob.
            InvalidJobDefinition: not a zip, or a zipsafe check failed.
        """
        path = self._path(key)
        if not os.path.isfile(path):
            raise KeyError(key)
        try:
            return open_zip(path, TRUSTED_LIMITS if trusted else self._limits)
        except UnsafeZipError as exc:
            raise InvalidJobDefinition(f"invalid job definition: {exc}") from exc

    # --- maintenance ------------------------------------------------------------------------

    def clear_incomplete(self) -> int:
        """Delete the temporary files of writes a crash interrupted; the count."""
        names = os.listdir(self._tmp)
        for name in names:
            path = os.path.join(self._tmp, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return len(names)

    def remove_empty_dirs(self) -> int:
        """Delete directories left empty (a crash between creating a blob's directory and
        renaming the blob into it); the count."""
        removed = 0
        with self._tree:
            for directory, _dirs, _files in os.walk(self._data, topdown=False):
                if directory == self._data:
                    continue
                try:
                    os.rmdir(directory)
                except OSError:
                    continue  # not empty
                removed += 1
            if removed:
                fsync_dir(self._data)
        return removed

    def spool_dir(self) -> str:
        """A directory on the blob file system for uploads being received (``tmp/``)."""
        return self._tmp
