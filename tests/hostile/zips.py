"""Hostile zip archives for the upload tests and the soak campaign's corpus.

Each builder returns the bytes of an archive that a careless reader would accept; every one
of them must be refused with ``invalid_job_definition`` (never a 500, never stored).
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable, Mapping

from tests.server.server_kit import job_files, make_zip

__all__ = ["CORPUS", "raw_zip"]


def raw_zip(members: Mapping[str, tuple[bytes, int, int]]) -> bytes:
    """A deflated zip written by hand, so headers can lie.

    Args:
        members: name -> (the member's data, the size to declare, the CRC-32 to declare).
    """
    out = bytearray()
    central = bytearray()
    for name, (data, size, crc) in members.items():
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = packer.compress(data) + packer.flush()
        encoded = name.encode()
        offset = len(out)
        fields = (20, 0, 8, 0, 0, crc, len(packed), size, len(encoded), 0)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + encoded + packed
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                *fields,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + end)


def _honest(files: Mapping[str, bytes]) -> dict[str, tuple[bytes, int, int]]:
    return {f"hello/{k}": (v, len(v), zlib.crc32(v)) for k, v in files.items()}


def bad_crc_member() -> bytes:
    members = _honest({**job_files(), "app/custom/data.txt": b"payload\n" * 100})
    data, size, crc = members["hello/app/custom/data.txt"]
    members["hello/app/custom/data.txt"] = (data, size, crc ^ 0xFFFF)
    return raw_zip(members)


def bad_crc_meta() -> bytes:
    members = _honest(job_files())
    data, size, crc = members["hello/meta.json"]
    members["hello/meta.json"] = (data, size, crc ^ 1)
    return raw_zip(members)


def lying_size() -> bytes:
    # Declares 100 bytes (with the CRC of the first 100) but inflates to 20 MiB.
    big = b"\0" * (20 * 1024 * 1024)
    members = _honest(job_files())
    members["hello/app/custom/big.txt"] = (big, 100, zlib.crc32(big[:100]))
    return raw_zip(members)


def short_member() -> bytes:
    data = b"x" * 1000
    members = _honest(job_files())
    members["hello/app/custom/short.txt"] = (data, 5000, zlib.crc32(data))
    return raw_zip(members)


@functools.cache  # compressing 400 MiB takes a second or two: once per process
def many_small_zeros() -> bytes:
    # 400 members of 1 MiB of zeros each: every one under the per-member ratio floor, the
    # whole archive a ~450 KiB upload that expands to 400 MiB.
    zero = b"\0" * (1024 * 1024)
    files = {**job_files(), **{f"app/custom/z{i}.txt": zero for i in range(400)}}
    return make_zip(files)


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def nested_meta() -> bytes:
    files = job_files()
    files["meta.json"] = files["meta.json"][:-1] + b', "x": ' + _deep(100_000) + b"}"
    return make_zip(files)


def moderately_nested_meta() -> bytes:
    # Deep enough to break an encoder later, shallow enough that a decoder accepts it.
    files = job_files()
    files["meta.json"] = files["meta.json"][:-1] + b', "x": ' + _deep(500) + b"}"
    return make_zip(files)


def nested_server_config() -> bytes:
    files = job_files()
    files["app/config/config_fed_server.json"] = (
        b'{"format_version": 2, "x": ' + _deep(100_000) + b"}"
    )
    return make_zip(files)


CORPUS: dict[str, Callable[[], bytes]] = {
    "bad CRC on a member": bad_crc_member,
    "bad CRC on meta.json": bad_crc_meta,
    "header declares 100 bytes, inflates to 20 MiB": lying_size,
    "member shorter than declared": short_member,
    "400 x 1 MiB of zeros": many_small_zeros,
    "meta.json nested 100,000 deep": nested_meta,
    "meta.json nested 500 deep": moderately_nested_meta,
    "server config nested 100,000 deep": nested_server_config,
}
