"""The upload spool: its writes are coalesced, and a file its blob store took stays taken."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from flare_adapters.server.uploads import SPOOL_WRITE_BYTES, Spool, UploadTooLarge
from flare_adapters.sqlite.blobs import BlobDirectory

pytestmark = pytest.mark.asyncio


class CountingExecutor(ThreadPoolExecutor):
    """Counts the file operations the spool hands off."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


async def test_network_chunks_are_written_in_blocks_of_a_mebibyte(tmp_path: Path) -> None:
    executor = CountingExecutor()
    spool = Spool(str(tmp_path), 64 << 20, executor)
    chunks = [bytes([i % 251]) * (64 << 10) for i in range(40)]  # 2.5 MiB in 64 KiB pieces
    for chunk in chunks:
        await spool.write(chunk)
    spool.close()  # the rest, in the worker job that serves the upload
    executor.shutdown()
    # Two full blocks: not one hop per chunk.
    assert executor.calls == (len(chunks) * (64 << 10)) // SPOOL_WRITE_BYTES
    assert b"".join(spool.chunks()) == b"".join(chunks)
    spool.discard()
    assert not os.path.exists(spool.path)


async def test_a_small_upload_touches_the_disk_only_when_closed(tmp_path: Path) -> None:
    executor = CountingExecutor()
    spool = Spool(str(tmp_path), 1 << 20, executor)
    await spool.write(b"a small job folder")
    assert os.listdir(tmp_path) == []
    assert executor.calls == 0
    spool.close()
    spool.close()  # idempotent
    assert os.listdir(tmp_path) == [os.path.basename(spool.path)]
    assert b"".join(spool.chunks()) == b"a small job folder"
    spool.discard()
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError, match="closed"):
        await spool.write(b"late")
    empty = Spool(str(tmp_path), 1 << 20, executor)
    empty.close()  # an empty upload is an empty file (the archive check refuses it)
    assert os.path.getsize(empty.path) == 0
    empty.discard()
    Spool(str(tmp_path), 1 << 20, executor).discard()  # never written: nothing to delete
    executor.shutdown()


async def test_the_limit_counts_bytes_not_yet_written(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 100, None)
    await spool.write(b"x" * 100)
    with pytest.raises(UploadTooLarge):
        await spool.write(b"x")
    assert os.listdir(tmp_path) == []


async def test_discard_leaves_a_file_the_blob_store_took(tmp_path: Path) -> None:
    blobs = BlobDirectory(str(tmp_path / "blobs"))
    spool = Spool(blobs.spool_dir(), 1 << 20, None)
    await spool.write(b"job archive")
    spool.close()
    blobs.write("uploads/u/job.zip", spool.chunks())
    with open(spool.path, "wb") as reused:  # a later upload that got the same name
        reused.write(b"someone else's")
    spool.discard()
    assert Path(spool.path).read_bytes() == b"someone else's"
    assert b"".join(blobs.read("uploads/u/job.zip")) == b"job archive"
