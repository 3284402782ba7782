"""Bounded, safe zip handling: read untrusted archives, and write zip streams.

Reading (``open_zip``) checks the central directory before anything is extracted or hashed:
entry count, per-entry and total uncompressed size, compression ratio (zip bombs), member names
(``flare_core.archive.is_safe_member``: no absolute paths, ``..``, backslashes, drive letters),
symlink entries, encrypted entries, duplicate names, compression methods other than stored and
deflate, and the whole archive's expansion ratio (400 members of 1 MiB of zeros each pass any
per-member floor). The result is a ``flare_core.archive.ArchiveView`` whose member streams
inflate the raw data themselves and check it as they go: a member that inflates past its
declared size, ends short of it, or fails its CRC raises ``UnsafeZipError`` (a ``ValueError``)
- ``zipfile`` alone would stop at the declared size and accept whatever CRC matches that
prefix, so a lying header could smuggle data another unzip tool would expand.

Writing (``stream_zip``) produces an archive incrementally from lazily read members, so a
download is never whole in memory.
"""

from __future__ import annotations

import copy
import io
import stat
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from typing_extensions import Buffer

from flare_core.archive import is_safe_member

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_LIMITS",
    "DEFLATE_LEVEL",
    "SAMPLE_SIZE",
    "UnsafeZipError",
    "ZipArchiveView",
    "ZipLimits",
    "ZipPacker",
    "ZipSink",
    "choose_compression",
    "open_zip",
    "stream_zip",
]

CHUNK_SIZE = 1024 * 1024
"""Bytes read at a time when zipping a folder and when streaming members and blobs.

Each such chunk crosses threads once (a worker reads it, the event loop sends it), and the
crossing, not the bytes, was the cost of a large transfer: 64 KiB chunks made the hops
dominate, and at 256 KiB streaming a 128 MiB member through a worker took 225-395 ms in
process against 105-150 ms without the hops (115-176 ms at 1 MiB).
A client's upload goes out in pieces of its ``chunk_size`` on either transport, the server's
WebSocket download in frames of ``chunk_bytes``; its HTTP download sends them as they come.
"""

# A fixed timestamp keeps produced archives byte-for-byte reproducible.
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)

# Writing archives: deflate at level 1, and store members whose first bytes do not shrink.
# Level 6 (zipfile's default) ran at ~30 MiB/s, a few percent of raw streaming, and spent it
# mostly on incompressible payloads (models, checkpoints, already-compressed data); level 1 is
# several times faster for a few percent more bytes on text. The sample is compressed once
# more than needed; a 64 KiB sample is sub-millisecond at level 1.
DEFLATE_LEVEL = 1
SAMPLE_SIZE = 64 * 1024
_STORE_RATIO = 0.9  # store unless the sample deflates to under 90% of its size
# ZipInfo's per-member level: ``compress_level`` from Python 3.13, ``_compresslevel`` before.
_LEVEL_ATTR = "compress_level" if sys.version_info >= (3, 13) else "_compresslevel"


def choose_compression(info: zipfile.ZipInfo, sample: bytes) -> None:
    """Set ``info`` to deflate (level ``DEFLATE_LEVEL``) or, when ``sample`` (the member's
    first bytes, up to ``SAMPLE_SIZE``) barely compresses, to store.

    Either way the archive is an ordinary zip that ``open_zip`` reads under the same limits
    (a stored member's ratio is 1); the member's content, hence a job's content hash, is the
    same whatever is chosen.
    """
    sample = sample[:SAMPLE_SIZE]
    packer = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
    packed = len(packer.compress(sample)) + len(packer.flush())
    if sample and packed < len(sample) * _STORE_RATIO:
        info.compress_type = zipfile.ZIP_DEFLATED
        setattr(info, _LEVEL_ATTR, DEFLATE_LEVEL)
    else:
        info.compress_type = zipfile.ZIP_STORED


def _head(chunks: Iterable[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first ``SAMPLE_SIZE`` bytes (or fewer, at the end) of ``chunks``, and an iterator
    over every chunk from the start (the head included), reading no further than needed."""
    rest = iter(chunks)
    taken: list[bytes] = []
    size = 0
    while size < SAMPLE_SIZE:
        chunk = next(rest, None)
        if chunk is None:
            break
        taken.append(chunk)
        size += len(chunk)

    def replay() -> Iterator[bytes]:
        yield from taken
        yield from rest

    return b"".join(taken), replay()


class UnsafeZipError(ValueError):
    """The archive is not a readable zip, or breaks a safety limit; the message says which."""


@dataclass(frozen=True, kw_only=True)
class ZipLimits:
    """The bounds ``open_zip`` enforces.

    Attributes:
        max_entries: most members (files and directories) allowed.
        max_entry_size: largest uncompressed size of one member, bytes.
        max_total_size: largest sum of uncompressed sizes, bytes.
        max_ratio: largest uncompressed/compressed ratio of a member; only checked for members
            bigger than ``ratio_floor`` (tiny members compress arbitrarily well legitimately).
        ratio_floor: members up to this many uncompressed bytes skip the ratio check; the
            whole archive's ratio (total uncompressed over total compressed) is checked once
            it expands past this many bytes.
    """

    max_entries: int = 10_000
    max_entry_size: int = 1024**3
    max_total_size: int = 4 * 1024**3
    max_ratio: float = 200.0
    ratio_floor: int = 1024 * 1024


DEFAULT_LIMITS = ZipLimits()

TRUSTED_LIMITS = ZipLimits(
    max_entries=sys.maxsize,
    max_entry_size=sys.maxsize,
    max_total_size=sys.maxsize,
    max_ratio=float("inf"),
)
"""The bounds of an archive the server wrote itself (an ended job's workspace): its size is
the job's, not an upload's. Names, methods and CRCs are still checked."""


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix mode bits live in the high 16 bits of external_attr when the creator was Unix.
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
"""The compression methods members may use (what job folders are zipped with)."""

_INFLATE_STEP = CHUNK_SIZE
"""The most bytes one inflate step produces: a bomb's chunk cannot balloon in memory."""


def _check(infos: Sequence[zipfile.ZipInfo], limits: ZipLimits) -> None:
    if len(infos) > limits.max_entries:
        raise UnsafeZipError(f"archive has {len(infos)} entries; at most {limits.max_entries}")
    seen: set[str] = set()
    total = 0
    compressed = 0
    for info in infos:
        name = info.filename
        if not is_safe_member(name):
            raise UnsafeZipError(f"unsafe member name {name!r}")
        if name in seen:
            raise UnsafeZipError(f"duplicate member name {name!r}")
        seen.add(name)
        if _is_symlink(info):
            raise UnsafeZipError(f"symbolic link member {name!r} is not allowed")
        if info.flag_bits & 0x1:
            raise UnsafeZipError(f"encrypted member {name!r} is not allowed")
        if info.compress_type not in _METHODS:
            raise UnsafeZipError(
                f"member {name!r} uses compression method {info.compress_type}; "
                "only stored and deflate are allowed"
            )
        if info.file_size > limits.max_entry_size:
            raise UnsafeZipError(
                f"member {name!r} is {info.file_size} bytes; at most {limits.max_entry_size}"
            )
        if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise UnsafeZipError(f"member {name!r} has a suspicious compression ratio")
        total += info.file_size
        compressed += info.compress_size
        if total > limits.max_total_size:
            raise UnsafeZipError(f"archive expands to more than {limits.max_total_size} bytes")
    if total > limits.ratio_floor and total > limits.max_ratio * max(compressed, 1):
        raise UnsafeZipError(
            f"archive expands {total // max(compressed, 1)} times its compressed size; "
            f"at most {limits.max_ratio:g}"
        )


def _raw(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A copy of ``info`` that makes ``zipfile`` hand out the member's raw bytes unchecked (the
    CRC is of the inflated bytes: ``_stream`` checks it)."""
    raw = copy.copy(info)
    raw.compress_type = zipfile.ZIP_STORED
    raw.file_size = info.compress_size
    del raw.CRC
    return raw


class ZipArchiveView:
    """An ``ArchiveView`` over a checked zip file object (see ``open_zip``)."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self._zf = zf
        self._infos = {info.filename: info for info in zf.infolist()}
        self._names = [info.filename for info in zf.infolist()]

    def names(self) -> Sequence[str]:
        """Every member name, in archive order (directory entries end with ``/``)."""
        return list(self._names)

    def size(self, name: str) -> int:
        """The uncompressed size of a member. Raises KeyError for an unknown name."""
        return self._infos[name].file_size

    def open(self, name: str) -> Iterator[bytes]:
        """Stream a member's bytes. Raises KeyError (at the call) for an unknown name."""
        info = self._infos[name]
        return self._stream(info)

    def _stream(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        name, declared = info.filename, info.file_size
        inflate = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        produced = 0
        crc = 0
        try:
            with self._zf.open(_raw(info)) as member:
                while chunk := member.read(CHUNK_SIZE):
                    data = chunk
                    while data:
                        if inflate is None:
                            out, data = data, b""
                        else:
                            step = min(_INFLATE_STEP, declared - produced + 1)
                            out = inflate.decompress(data, step)
                            data = inflate.unconsumed_tail
                        produced += len(out)
                        if produced > declared:
                            raise UnsafeZipError(
                                f"member {name!r} inflates past its declared {declared} bytes"
                            )
                        crc = zlib.crc32(out, crc)
                        if out:
                            yield out
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise UnsafeZipError(f"corrupt member {name!r}: {exc}") from exc
        if (inflate is not None and not inflate.eof) or produced != declared:
            raise UnsafeZipError(f"corrupt member {name!r}: shorter than its declared size")
        if crc != info.CRC:
            raise UnsafeZipError(f"corrupt member {name!r}: bad CRC-32")

    def close(self) -> None:
        """Release the underlying file object."""
        self._zf.close()


def open_zip(source: IO[bytes] | str, limits: ZipLimits = DEFAULT_LIMITS) -> ZipArchiveView:
    """Open and check an untrusted zip archive.

    Args:
        source: a seekable binary file object, or a file path.
        limits: the bounds to enforce.

    Returns:
        A view of the archive's members.

    Raises:
        UnsafeZipError: not a zip archive, or any check failed.
    """
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise UnsafeZipError(f"not a valid zip archive: {exc}") from exc
    try:
        _check(zf.infolist(), limits)
    except UnsafeZipError:
        zf.close()
        raise
    return ZipArchiveView(zf)


class ZipSink(io.RawIOBase):
    """An unseekable write-only buffer a ``zipfile.ZipFile`` writes into while a generator
    hands out what was written since the last ``take`` (both archive writers stream so).

    Unseekable, so zipfile writes data descriptors instead of seeking back. Written pieces are
    kept as they come and joined only on ``take``: a member's chunk (stored members pass it
    through as is) comes out as the same object, not a copy.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._pos = 0
        self._pending = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        chunk = bytes(data)  # no copy for bytes; a memoryview's buffer may be reused
        self._parts.append(chunk)
        self._pos += len(chunk)
        self._pending += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        # zipfile records offsets via tell(); an unseekable sink still knows its position.
        return self._pos

    def take(self, at_least: int = 0) -> bytes:
        """Everything written since the last take, once that is at least ``at_least`` bytes
        (else ``b""``, and it stays for a later take).

        The writers take at least a chunk while an archive grows: every piece they hand out
        crosses a thread and becomes a frame or a write, so a small folder's dozen headers
        and directory entries go out as one piece, not one each.
        """
        if self._pending < at_least or not self._parts:
            return b""
        data = b"".join(self._parts)  # one part: the part itself
        self._parts.clear()
        self._pending = 0
        return data


def stream_zip(members: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
    """Encode members as a zip archive, yielding it in pieces as it is produced (each member
    deflated or stored as ``choose_compression`` decides from its first bytes).

    Args:
        members: ``(archive name, content chunks)`` pairs; each content iterable is consumed
            lazily, when its member is written. Names must be safe relative POSIX paths.

    Yields:
        Consecutive pieces of the archive (never empty), each at least ``CHUNK_SIZE`` bytes
        but the last: a result of many small logs goes out in few pieces.

    Raises:
        UnsafeZipError: a member name is unsafe.
    """
    sink = ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, chunks in members:
            if not is_safe_member(name) or name.endswith("/"):
                raise UnsafeZipError(f"unsafe member name {name!r}")
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            sample, content = _head(chunks)
            choose_compression(info, sample)
            # force_zip64: the size is unknown up front and may exceed 4 GiB.
            with zf.open(info, "w", force_zip64=True) as out:
                for chunk in content:
                    out.write(chunk)
                    if data := sink.take(CHUNK_SIZE):
                        yield data
            if data := sink.take(CHUNK_SIZE):
                yield data
    if data := sink.take():
        yield data


class ZipPacker:
    """The service's ``Packer`` port: downloads are streamed zip archives (``stream_zip``)."""

    def pack(self, members: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
        """Stream a zip archive of ``(archive name, content chunks)`` members, in order."""
        return stream_zip(members)
