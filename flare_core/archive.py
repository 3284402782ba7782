"""A read-only view of an uploaded job-folder archive, and the path rules every member obeys.

The core never opens files: adapters hand it an ``ArchiveView`` (over a zip in memory or on
disk) whose members it lists and streams. The same view feeds the job-definition rules and
the submit-token content hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

from flare_core.errors import InvalidJobDefinition

__all__ = [
    "ArchiveView",
    "MemberDigest",
    "is_safe_member",
    "member_digest",
    "split_wrapper",
    "verify_members",
]


class ArchiveView(Protocol):
    """The members of a job-folder archive.

    Member names are POSIX paths as stored; directory entries end with ``/``. Adapters only
    build views of archives whose member names passed ``is_safe_member``.
    """

    def names(self) -> Sequence[str]:
        """Every member name, in archive order."""
        ...

    def open(self, name: str) -> Iterator[bytes]:
        """Stream a file member's bytes in chunks.

        Raises:
            KeyError: (at the call) an unknown name.
            ValueError: (while iterating) a corrupt member: bad checksum, or more or fewer
                bytes than its declared size.
        """
        ...

    def size(self, name: str) -> int:
        """The uncompressed size of a file member. Raises KeyError for an unknown name."""
        ...


def is_safe_member(name: str) -> bool:
    """True when ``name`` is a relative POSIX path with no ``..``/``.`` segment, no
    backslash, no NUL and no drive or absolute prefix."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    if len(name) > 1 and name[1] == ":":
        return False
    parts = name.rstrip("/").split("/")
    return all(part not in ("", ".", "..") for part in parts)


def split_wrapper(names: Sequence[str]) -> tuple[str, list[str]]:
    """Split off the single top-level directory every member sits under, if there is one.

    Returns ``(wrapper, relative_file_names)``: ``wrapper`` is ``""`` when members do not share
    one top-level directory; the relative names cover file members only (directory entries
    are dropped), in the given order.
    """
    files = [n for n in names if not n.endswith("/")]
    tops = {n.split("/", 1)[0] for n in names if n}
    if len(tops) == 1 and all("/" in n for n in files):
        wrapper = next(iter(tops))
        prefix = wrapper + "/"
        return wrapper, [n[len(prefix) :] for n in files]
    return "", files


class MemberDigest(NamedTuple):
    """A file member's byte count and SHA-256: the content hash's per-file part."""

    size: int
    sha256: bytes


def member_digest(archive: ArchiveView, name: str) -> MemberDigest:
    """Read a file member once: its byte count and SHA-256.

    Raises:
        KeyError: an unknown name. ValueError: a corrupt member (see ``ArchiveView.open``).
    """
    inner = hashlib.sha256()
    size = 0
    for chunk in archive.open(name):
        inner.update(chunk)
        size += len(chunk)
    return MemberDigest(size, inner.digest())


def verify_members(archive: ArchiveView, *, digests: bool = False) -> dict[str, MemberDigest]:
    """Read every file member once, so a corrupt one is refused at submit, not found when a
    download breaks mid-stream (issue 10: the adapter's streams check CRCs and sizes).

    Args:
        archive: the uploaded archive.
        digests: also digest each member in the same pass, for ``tokens.content_hash``: a
            submit with a token then reads a large archive once, not twice (issue 12).

    Returns:
        Each file member's ``MemberDigest`` when ``digests``, else an empty dict.

    Raises:
        InvalidJobDefinition: a member is corrupt.
    """
    found: dict[str, MemberDigest] = {}
    for name in archive.names():
        if name.endswith("/"):
            continue
        try:
            if digests:
                found[name] = member_digest(archive, name)
            else:
                for _ in archive.open(name):
                    pass
        except ValueError as exc:
            raise InvalidJobDefinition(f"invalid job definition: {exc}") from None
    return found
