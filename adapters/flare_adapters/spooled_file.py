"""A finished temporary file offered as chunks, which a blob store may take whole.

An upload is received into a file in the blob area's ``tmp/`` (``server.uploads.Spool``), then
stored as a blob. Read back chunk by chunk and written again, a 128 MiB upload cost a full copy
and a second fsync of every byte (issue 12); ``BlobDirectory.write`` renames a ``SpooledFile``
into place instead. Every other reader just iterates it.
"""

from __future__ import annotations

from collections.abc import Iterator

from flare_adapters.zipsafe import CHUNK_SIZE

__all__ = ["SpooledFile"]


class SpooledFile:
    """The chunks of the complete file at ``path`` (read lazily, from a worker thread).

    Args:
        path: the file; whoever takes it (``take``) becomes its owner.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.taken = False

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    def take(self) -> None:
        """Record that the file was moved away: its old owner must not delete the path."""
        self.taken = True
