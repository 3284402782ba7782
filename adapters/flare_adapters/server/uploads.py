"""Receive an uploaded job-folder archive without holding it in memory, and check it.

The server streams a request body (or the chunk frames of a WebSocket upload) into a temporary
file in the blob area, refusing more than ``max_bytes``; then it checks the zip's central
directory with ``flare_adapters.zipsafe`` (entry count, sizes, compression ratio, unsafe names,
symlinks) before the backend sees a byte; the backend finally reads the file back as an
iterator of chunks, or its blob store takes the file whole (``SpooledFile``). File I/O runs in
the server's executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterable, Callable
from concurrent.futures import Executor
from typing import BinaryIO

from aiohttp import web

import flare_core as fc
from flare_adapters.server.context import BACKEND, SETTINGS, run_sync
from flare_adapters.spooled_file import SpooledFile
from flare_adapters.zipsafe import UnsafeZipError, ZipLimits, open_zip
from flare_core.errors import InvalidJobDefinition
from flare_ports import Backend

__all__ = [
    "Spool",
    "UploadTooLarge",
    "check_archive",
    "serve_upload",
    "spool_stream",
    "upload_reply",
]


# Network chunks arrive at 64-256 KiB; one executor hop per chunk cost more than the write
# itself (a 128 MiB upload spent ~0.5 s in ~1,800 hops). Coalescing to 1 MiB keeps the file I/O
# off the loop at a bounded 1 MiB of memory per upload.
SPOOL_WRITE_BYTES = 1 << 20


class UploadTooLarge(InvalidJobDefinition):
    """The upload is larger than the server accepts (served as 413)."""


class Spool:
    """An upload being received into a temporary file.

    Nothing touches the disk until the first block is written (in the executor): opening an
    upload costs no thread hop, and a small upload's only file work is in ``serve_upload``'s
    one worker job, with the checks and the command.

    Args:
        directory: where the temporary file is created (the blob area's ``tmp/``).
        max_bytes: the largest upload accepted.
        executor: where blocking file I/O runs.
    """

    def __init__(self, directory: str, max_bytes: int, executor: Executor | None) -> None:
        self.path = ""
        self._directory = directory
        self._file: BinaryIO | None = None
        self._closed = False
        self._max = max_bytes
        self._executor = executor
        self._pending = bytearray()
        self._spooled: SpooledFile | None = None
        self.size = 0

    async def write(self, data: bytes) -> None:
        """Append ``data`` (a block at a time goes to the file, from the executor).

        Raises:
            UploadTooLarge: the upload now exceeds ``max_bytes`` (the spool is discarded).
        """
        if self._closed:
            raise RuntimeError("spool is closed")
        self.size += len(data)
        if self.size > self._max:
            self.discard()
            raise UploadTooLarge(f"invalid job definition: upload exceeds {self._max} bytes")
        self._pending += data
        if len(self._pending) >= SPOOL_WRITE_BYTES:
            block, self._pending = self._pending, bytearray()
            await asyncio.get_running_loop().run_in_executor(self._executor, self._append, block)

    def _append(self, block: bytes | bytearray) -> None:
        if self._file is None:
            fd, self.path = tempfile.mkstemp(dir=self._directory, prefix="upload-", suffix=".zip")
            self._file = os.fdopen(fd, "wb")
        self._file.write(block)

    def close(self) -> None:
        """Write what is left and close the file: the content is complete (call from a
        worker thread; idempotent)."""
        if self._closed:
            return
        block, self._pending = self._pending, bytearray()
        self._append(block)  # also creates the file of an empty upload
        self._closed = True
        assert self._file is not None
        self._file.close()

    def chunks(self) -> SpooledFile:
        """The finished upload: chunks read from a worker thread, or the file itself for a blob
        store that takes it (then ``discard`` leaves the path alone)."""
        self._spooled = SpooledFile(self.path)
        return self._spooled

    def discard(self) -> None:
        """Close and delete the temporary file (idempotent)."""
        self._closed = True
        if self._file is not None:
            self._file.close()
        self._pending = bytearray()
        if not self.path or (self._spooled is not None and self._spooled.taken):
            return  # never written, or the blob store owns the file now
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


async def spool_stream(
    stream: AsyncIterable[bytes], directory: str, max_bytes: int, executor: Executor | None
) -> Spool:
    """Receive a whole stream into a new ``Spool``.

    Raises:
        UploadTooLarge: more than ``max_bytes`` arrived (nothing is kept).
    """
    spool = Spool(directory, max_bytes, executor)
    try:
        async for chunk in stream:
            if chunk:
                await spool.write(chunk)
    except BaseException:
        spool.discard()
        raise
    return spool


def check_archive(path: str, limits: ZipLimits) -> None:
    """Check an uploaded zip's structure (call from a worker thread).

    Raises:
        InvalidJobDefinition: not a zip, or a zipsafe bound or rule is violated.
    """
    try:
        view = open_zip(path, limits)
    except UnsafeZipError as exc:
        raise InvalidJobDefinition(f"invalid job definition: {exc}") from None
    view.close()


def serve_upload(
    backend: Backend,
    limits: ZipLimits,
    principal: Callable[[], fc.Principal],
    command: fc.Command,
    spool: Spool,
) -> tuple[fc.Principal, fc.Reply]:
    """The end of an upload, as one worker job: close the spool, authenticate the caller
    (``principal`` raises when it cannot), check the archive, then serve the command; the
    spool is discarded whatever happens. One job instead of one each: each job is two thread
    wake-ups, and a small submit over WebSocket once took eight jobs in all.

    Returns:
        The caller and the backend's reply, or the ``InvalidJobDefinition`` problem of a
        rejected archive.
    """
    try:
        spool.close()
        caller = principal()
        try:
            check_archive(spool.path, limits)
        except InvalidJobDefinition as exc:
            return caller, fc.Problem.from_exception(exc)
        return caller, backend.handle(caller, command, spool.chunks())
    finally:
        spool.discard()


async def upload_reply(
    app: web.Application,
    principal: Callable[[], fc.Principal],
    command: fc.Command,
    spool: Spool,
) -> tuple[fc.Principal, fc.Reply]:
    """``serve_upload`` in the app's executor (HTTP and WebSocket)."""
    settings = app[SETTINGS]
    return await run_sync(
        app, serve_upload, app[BACKEND], settings.zip_limits(), principal, command, spool
    )
