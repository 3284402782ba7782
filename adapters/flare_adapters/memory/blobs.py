"""An in-memory blob store (the ``BlobStore`` port), with zip blobs opened through zipsafe."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator

from flare_adapters.zipsafe import (
    CHUNK_SIZE,
    DEFAULT_LIMITS,
    TRUSTED_LIMITS,
    UnsafeZipError,
    ZipLimits,
    open_zip,
)
from flare_core.archive import ArchiveView
from flare_core.errors import InvalidJobDefinition

__all__ = ["MemoryBlobStore", "zip_view"]


def zip_view(data: bytes, limits: ZipLimits = DEFAULT_LIMITS) -> ArchiveView:
    """Open zip bytes as a checked ``ArchiveView``.

    Args:
        data: the archive.
        limits: the zipsafe bounds.

    Returns:
        The view.

    Raises:
        InvalidJobDefinition: not a zip, or a safety check failed.
    """
    try:
        return open_zip(io.BytesIO(data), limits)
    except UnsafeZipError as exc:
        raise InvalidJobDefinition(f"invalid job definition: {exc}") from exc


class MemoryBlobStore:
    """Blobs in a dict of immutable ``bytes``; reads stream copies in chunks."""

    def __init__(self, limits: ZipLimits = DEFAULT_LIMITS) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}
        self._limits = limits

    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the concatenated chunks under ``key``; nothing is stored if ``chunks`` raises."""
        data = b"".join(chunks)
        with self._lock:
            self._blobs[key] = data
        return len(data)

    def read(self, key: str) -> Iterator[bytes]:
        """Stream a blob. Raises KeyError (at the call) when it does not exist."""
        with self._lock:
            data = self._blobs[key]
        return self._chunks(data)

    @staticmethod
    def _chunks(data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(data), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])

    def exists(self, key: str) -> bool:
        """True when ``key`` holds a blob."""
        with self._lock:
            return key in self._blobs

    def move(self, src: str, dst: str) -> None:
        """Rename a blob (replacing ``dst``). Raises KeyError when ``src`` does not exist."""
        with self._lock:
            self._blobs[dst] = self._blobs.pop(src)

    def copy(self, src: str, dst: str) -> None:
        """Store ``src``'s bytes under ``dst`` too (shared: ``bytes`` are immutable)."""
        with self._lock:
            self._blobs[dst] = self._blobs[src]

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix``; the count."""
        with self._lock:
            doomed = [k for k in self._blobs if k.startswith(prefix)]
            for key in doomed:
                del self._blobs[key]
            return len(doomed)

    def keys(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix``, sorted."""
        with self._lock:
            return sorted(k for k in self._blobs if k.startswith(prefix))

    def archive(self, key: str, *, trusted: bool = False) -> ArchiveView:
        """Open a zip blob as a checked ``ArchiveView`` (``trusted``: without the size bounds).

        Raises:
            KeyError: no such blob.
            InvalidJobDefinition: not a zip, or a zipsafe check failed.
        """
        with self._lock:
            data = self._blobs[key]
        return zip_view(data, TRUSTED_LIMITS if trusted else self._limits)
