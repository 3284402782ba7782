"""Job folders in and results out: the backend's bounded scratch area on local disk.

NVFlare's admin API submits a folder and downloads into a folder, while flare-core moves zip
streams. An upload is spooled to a temporary file (at most ``max_upload_bytes``), checked with
``zipsafe`` (entry count, sizes, ratio, unsafe names, symlinks), unpacked into its own
temporary folder, submitted and removed. A download lands in its own temporary folder, is
streamed back as a zip once, and is removed when the stream ends (or when the backend closes).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flare_adapters.zipsafe import CHUNK_SIZE, UnsafeZipError, ZipLimits, open_zip, stream_zip
from flare_core.archive import split_wrapper
from flare_core.errors import InvalidJobDefinition, JobNotFound

__all__ = ["TransferArea"]


@dataclass(frozen=True)
class _Download:
    owner: str
    folder: str
    scratch: str


class TransferArea:
    """A scratch directory for uploads and downloads, removed by ``close``.

    Args:
        parent: where the scratch directory is created (None: the system's temp dir).
        max_upload_bytes: the largest upload archive accepted.
        limits: the zip limits uploads are checked against.
    """

    def __init__(
        self,
        parent: str | None = None,
        *,
        max_upload_bytes: int = 1024**3,
        limits: ZipLimits | None = None,
    ) -> None:
        self.root = tempfile.mkdtemp(prefix="flare-nvflare-", dir=parent)
        self._max_upload = max_upload_bytes
        self._limits = limits or ZipLimits()
        self._lock = threading.Lock()
        self._downloads: dict[str, _Download] = {}

    def _scratch(self) -> str:
        return tempfile.mkdtemp(dir=self.root)

    @contextmanager
    def unpacked(self, chunks: Iterable[bytes], folder_name: str) -> Iterator[str]:
        """Unpack an uploaded job archive into ``<scratch>/<folder_name>``; removed after.

        Raises:
            InvalidJobDefinition: the upload is too large or not a safe zip.
        """
        scratch = self._scratch()
        try:
            spool = os.path.join(scratch, "upload.zip")
            size = 0
            with open(spool, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self._max_upload:
                        raise InvalidJobDefinition(
                            f"job archive is larger than {self._max_upload} bytes"
                        )
                    out.write(chunk)
            folder = os.path.join(scratch, "job", folder_name)
            os.makedirs(folder)
            try:
                view = open_zip(spool, self._limits)
            except UnsafeZipError as exc:
                raise InvalidJobDefinition(f"invalid job archive: {exc}") from exc
            try:
                wrapper, files = split_wrapper([n for n in view.names() if not n.endswith("/")])
                inner = f"{wrapper}/" if wrapper else ""
                for rel in files:
                    target = os.path.join(folder, *rel.split("/"))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as out:
                        for data in view.open(inner + rel):
                            out.write(data)
            finally:
                view.close()
            os.unlink(spool)
            yield folder
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def new_destination(self) -> str:
        """A fresh empty folder for NVFlare to download into (see ``add_download``)."""
        return self._scratch()

    def add_download(self, owner: str, folder: str, scratch: str) -> str:
        """Register a downloaded ``folder`` (inside ``scratch``) for one streaming by ``owner``.

        Returns:
            The single-use download id.
        """
        download_id = uuid.uuid4().hex
        with self._lock:
            self._downloads[download_id] = _Download(owner, folder, scratch)
        return download_id

    def discard(self, scratch: str) -> None:
        """Remove a scratch folder no download was registered for."""
        shutil.rmtree(scratch, ignore_errors=True)

    def open_download(self, owner: str, download_id: str) -> Iterator[bytes]:
        """Stream a registered download as a zip of its folder's content, then remove it.

        Raises:
            JobNotFound: unknown, consumed or foreign download id.
        """
        with self._lock:
            download = self._downloads.get(download_id)
            if download is None or download.owner != owner:
                raise JobNotFound(f"no such download: {download_id}")
            del self._downloads[download_id]
        return self._stream(download)

    def _stream(self, download: _Download) -> Iterator[bytes]:
        try:
            yield from stream_zip(_members(download.folder))
        finally:
            shutil.rmtree(download.scratch, ignore_errors=True)

    def close(self) -> None:
        """Remove the whole scratch area."""
        with self._lock:
            self._downloads.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _read(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while data := handle.read(CHUNK_SIZE):
            yield data


def _members(folder: str) -> Iterator[tuple[str, Iterable[bytes]]]:
    for base, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(base, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue  # only regular files leave the gateway
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            yield rel, _read(path)
