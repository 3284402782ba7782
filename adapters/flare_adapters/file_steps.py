"""The client side's file steps: how a session driver performs ``InspectPath``, ``ListDirs``,
``Upload`` and ``Download`` on the local file system - the only place a session touches disk.

- ``zip_folder``: stream a job folder as zip chunks, the folder's name as the single
  top-level directory, directory entries and dot-files included, symlinks skipped, never the
  whole archive in memory.
- ``extract_archive``: unpack a downloaded archive into a fresh ``<parent>/<name>[__N]``,
  which appears only once the archive was extracted whole.
- ``inspect_path`` / ``list_dirs``: what the ``InspectPath`` / ``ListDirs`` steps need.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Generator, Iterator
from typing import IO

from flare_adapters.zipsafe import (
    CHUNK_SIZE,
    UnsafeZipError,
    ZipArchiveView,
    ZipSink,
    choose_compression,
    open_zip,
)
from flare_core.errors import InternalError
from flare_core.steps import PathInfo

__all__ = [
    "MAX_SUFFIX",
    "extract_archive",
    "inspect_path",
    "list_dirs",
    "zip_folder",
]

MAX_SUFFIX = 1000
"""How many ``__N`` suffixes are tried for a download directory (the reference's limit)."""


def inspect_path(path: str) -> PathInfo:
    """Resolve ``path`` against the working directory and say whether it is a directory."""
    absolute = os.path.abspath(path)
    return PathInfo(path=absolute, is_dir=os.path.isdir(absolute))


def list_dirs(path: str) -> list[str]:
    """Return the names of the sub-directories of ``path`` in listing order (``[]`` when
    ``path`` is not a directory)."""
    try:
        names = os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [name for name in names if os.path.isdir(os.path.join(path, name))]


def _walk(folder: str) -> Iterator[tuple[str, str, bool]]:
    """Yield ``(absolute path, archive name suffix, is_dir)`` below ``folder``, sorted,
    skipping symlinks (to files and to directories alike)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        relative_root = os.path.relpath(root, folder)
        prefix = "" if relative_root == "." else relative_root.replace(os.sep, "/") + "/"
        for name in dirs:
            yield os.path.join(root, name), prefix + name + "/", True
        for name in sorted(files):
            path = os.path.join(root, name)
            if not os.path.islink(path):
                yield path, prefix + name, False


def zip_folder(folder: str, chunk_size: int = CHUNK_SIZE) -> Generator[bytes, None, None]:
    """Stream ``folder`` as a zip archive, chunk by chunk (each file deflated or stored, as
    ``zipsafe.choose_compression`` decides from its first bytes).

    Every member sits under ``<basename(folder)>/``; directory entries (empty ones too) and
    dot-files are included, symlinks are skipped. Memory use is bounded by about twice
    ``chunk_size`` (the block read, and what is held until a chunk's worth is written) plus
    the compressor's buffer, whatever the folder's size.

    Args:
        folder: an existing directory.
        chunk_size: bytes read from a file at a time, and the least a chunk holds (all but
            the last): a folder of small files goes out in few pieces, not one per entry.

    Yields:
        Non-empty chunks of the archive, in order.

    Raises:
        OSError: a file could not be read.
    """
    folder = os.path.abspath(folder)
    top = os.path.basename(folder.rstrip(os.sep)) + "/"
    sink = ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo.from_file(folder, top, strict_timestamps=False), b"")
        for path, suffix, is_dir in _walk(folder):
            info = zipfile.ZipInfo.from_file(path, top + suffix, strict_timestamps=False)
            if is_dir:
                archive.writestr(info, b"")
            else:
                with open(path, "rb") as source:
                    # The first block is the sample (all of it, at the default chunk size).
                    block = source.read(chunk_size)
                    choose_compression(info, block)
                    with archive.open(info, "w") as target:
                        while block:
                            target.write(block)
                            yield from _nonempty(sink.take(chunk_size))
                            block = source.read(chunk_size)
            yield from _nonempty(sink.take(chunk_size))
    yield from _nonempty(sink.take())


def _nonempty(data: bytes) -> Iterator[bytes]:
    if data:
        yield data


def _free_name(parent: str, name: str) -> str:
    candidate = os.path.join(parent, name)
    for suffix in range(1, MAX_SUFFIX + 1):
        if not os.path.lexists(candidate):
            return candidate
        candidate = os.path.join(parent, f"{name}__{suffix}")
    raise InternalError(f"no free directory name for {name!r} in {parent!r}")


def _extract_into(archive: ZipArchiveView, target: str) -> None:
    for name in archive.names():
        destination = os.path.join(target, *name.rstrip("/").split("/"))
        if name.endswith("/"):
            os.makedirs(destination, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with open(destination, "wb") as sink:
            for chunk in archive.open(name):
                sink.write(chunk)


def extract_archive(source: IO[bytes], parent: str, name: str) -> str:
    """Extract a zip archive into a fresh directory ``<parent>/<name>`` (or ``__1``, ...).

    The archive is unpacked into a hidden temporary directory beside the target and renamed
    into place, so the target appears only complete. It is read with ``zipsafe.open_zip``:
    unsafe names, symlinks and zip bombs are refused before anything is written.

    Args:
        source: the archive, readable and seekable.
        parent: the directory to create the new directory in (created if missing).
        name: the new directory's base name.

    Returns:
        The absolute path of the new directory.

    Raises:
        InternalError: the archive is not a zip or breaks a safety limit, or no free name.
        OSError: the file system refused.
    """
    parent = os.path.abspath(parent)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent)
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
        try:
            archive = open_zip(source)
            try:
                _extract_into(archive, staging)
            finally:
                archive.close()
        except UnsafeZipError as exc:
            raise InternalError(f"downloaded archive refused: {exc}") from exc
        target = _free_name(parent, name)
        os.rename(staging, target)
        return target
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
