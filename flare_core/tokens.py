"""Submit tokens: validation, the content hash, token records and the replay decision.

A submit token makes ``submit_job`` retry-safe (reference §2.4). Its record lives in a
*scope* - study, submitter identity and token (plus the token's kind, so the session's
private tokens of DECISIONS §8 never meet user tokens). The functions here are pure: the
service reads the record from its store, asks ``decide`` what to do, and writes back what
``new_record`` / ``mark_created`` / ``tombstone`` return.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping
from typing import Literal, NoReturn

import msgspec

from flare_core.archive import (
    ArchiveView,
    MemberDigest,
    is_safe_member,
    member_digest,
    split_wrapper,
)
from flare_core.errors import (
    InvalidArgumentError,
    InvalidJobDefinition,
    SubmitTokenConflict,
    SubmitTokenJobDeleted,
)
from flare_core.principal import Principal

__all__ = [
    "SIGNATURE_FILES",
    "SUBMIT_TOKEN_PATTERN",
    "Conflict",
    "Create",
    "Decision",
    "Deleted",
    "Recover",
    "Replay",
    "TokenRecord",
    "TokenScope",
    "content_hash",
    "decide",
    "mark_created",
    "new_record",
    "raise_for",
    "resolve_for_listing",
    "tombstone",
    "validate_submit_token",
]

SUBMIT_TOKEN_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_TOKEN_RE = re.compile(SUBMIT_TOKEN_PATTERN)
_TOKEN_MESSAGE = (
    "submit_token must be non-empty, at most 128 characters, and match " + SUBMIT_TOKEN_PATTERN
)

SIGNATURE_FILES = frozenset({".__nvfl_sig.json", ".__nvfl_submitter.crt"})
"""Basenames of the signing artifacts; re-signing a folder must not change its identity."""

# Domain-separation prefix of the content hash, so a future framing change cannot collide.
_HASH_DOMAIN = b"flare-core job content v1\x00"


def validate_submit_token(token: object) -> str | None:
    """Check a submit token (reference §2.2).

    Args:
        token: None (no token) or the caller's token.

    Returns:
        The token unchanged (None passes through).

    Raises:
        InvalidArgumentError: not a str of 1-128 characters from ``[A-Za-z0-9._:-]``; the
            empty string is invalid, not "no token".
    """
    if token is None:
        return None
    # fullmatch, not match: "$" would also accept a trailing newline.
    if not isinstance(token, str) or _TOKEN_RE.fullmatch(token) is None:
        raise InvalidArgumentError(_TOKEN_MESSAGE)
    return token


def content_hash(archive: ArchiveView, digests: Mapping[str, MemberDigest] | None = None) -> str:
    """The identity of a job folder's content: ``"sha256:<hex>"`` (reference §2.4).

    Only file members count (directory entries, hence empty directories, do not); members
    whose basename is a signature file are left out; when every remaining file sits under one
    top-level directory, that wrapper is stripped, so the folder name does not matter. The
    hash covers the sorted relative POSIX paths and the exact bytes; member order, times,
    modes and compression do not matter. Content is streamed, with no size limit
    (DECISIONS §9).

    Framing: an outer SHA-256 over, per file in path order, the 8-byte length of the UTF-8
    path, the path, the 8-byte byte count and the SHA-256 of the bytes - unambiguous, and
    independent of what ``ArchiveView.size`` claims.

    Args:
        archive: the uploaded archive.
        digests: members' digests already taken (``archive.verify_members``); a member not
            in it is read here.

    Returns:
        ``"sha256:"`` followed by 64 lowercase hex digits.

    Raises:
        InvalidJobDefinition: a member name is unsafe (``..``/``.`` segment, absolute, ...).
    """
    files: list[str] = []
    for name in archive.names():
        if not is_safe_member(name):
            raise InvalidJobDefinition(f"invalid job definition: unsafe archive member {name!r}")
        if name.endswith("/") or posixpath.basename(name) in SIGNATURE_FILES:
            continue
        files.append(name)
    # Strip the wrapper over the counted files only, so that a top-level signature file or
    # an empty top-level directory cannot hide it.
    _wrapper, relative = split_wrapper(files)
    outer = hashlib.sha256(_HASH_DOMAIN)
    for rel_path, member in sorted(zip(relative, files, strict=True)):
        known = digests.get(member) if digests is not None else None
        count, inner = known if known is not None else member_digest(archive, member)
        encoded = rel_path.encode("utf-8")
        outer.update(len(encoded).to_bytes(8, "big"))
        outer.update(encoded)
        outer.update(count.to_bytes(8, "big"))
        outer.update(inner)
    return "sha256:" + outer.hexdigest()


class TokenScope(msgspec.Struct, frozen=True, kw_only=True):
    """The scope a submit token is unique in.

    Attributes:
        study: the session's study.
        submitter_name: the caller's name.
        submitter_org: the caller's organisation.
        submitter_role: the caller's role.
        token: the submit token.
        kind: ``"user"`` for a caller's token, ``"session"`` for a session's private token.
    """

    study: str
    submitter_name: str
    submitter_org: str
    submitter_role: str
    token: str
    kind: Literal["user", "session"] = "user"

    def key(self) -> str:
        """A stable hex digest naming this scope (a store key; no field can leak through)."""
        parts = [
            self.kind,
            self.study,
            self.submitter_name,
            self.submitter_org,
            self.submitter_role,
            self.token,
        ]
        return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()

    @classmethod
    def for_principal(
        cls, principal: Principal, token: str, kind: Literal["user", "session"] = "user"
    ) -> TokenScope:
        """The scope of ``token`` used by ``principal`` in its session's study.

        Args:
            principal: the authenticated caller.
            token: the submit token.
            kind: ``"user"`` or ``"session"``.

        Returns:
            The scope.
        """
        return cls(
            study=principal.study,
            submitter_name=principal.name,
            submitter_org=principal.org,
            submitter_role=principal.role,
            token=token,
            kind=kind,
        )


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a submit token refers to; kept for audit even after its job is deleted.

    Attributes:
        scope: the token's scope.
        state: ``"creating"`` (job id reserved, job maybe not created yet), ``"created"``, or
            ``"job_deleted"`` (the token can never be used again in this scope).
        job_id: the reserved / created job's id.
        job_name: meta ``name``, else the folder name.
        job_folder_name: the uploaded folder's name.
        job_content_hash: ``content_hash`` of the upload.
        submit_time: local ISO-8601 time of the first submit.
        deleted_time: UTC ISO-8601 time of the deletion, for ``"job_deleted"``.
        deleted_by: ``{"name", "org", "role"}`` of whoever deleted the job.
        schema_version: record format version.
    """

    scope: TokenScope
    state: Literal["creating", "created", "job_deleted"]
    job_id: str
    job_name: str
    job_folder_name: str
    job_content_hash: str
    submit_time: str
    deleted_time: str | None = None
    deleted_by: dict[str, str] | None = None
    schema_version: int = 1


class Replay(msgspec.Struct, frozen=True):
    """Same content, job exists: return ``job_id``; create nothing.

    When the record is still ``"creating"`` the caller also stores ``mark_created(record)``.
    """

    job_id: str


class Conflict(msgspec.Struct, frozen=True):
    """The token was used for different content: refuse (``raise_for``)."""

    existing_job_id: str | None


class Deleted(msgspec.Struct, frozen=True):
    """The token's job was deleted: refuse (``raise_for``), whatever the content."""

    job_id: str
    deleted_time: str | None


class Create(msgspec.Struct, frozen=True):
    """No record yet: reserve a job id with ``new_record`` (no-overwrite), then create."""


class Recover(msgspec.Struct, frozen=True):
    """Same content but the job is missing (an earlier attempt crashed): create the job
    with the reserved ``job_id``, then store ``mark_created(record)``."""

    job_id: str


Decision = Replay | Conflict | Deleted | Create | Recover


def decide(record: TokenRecord | None, content_hash: str, job_exists: bool) -> Decision:
    """The submit-token record algorithm (reference §2.4), deleted checked before content.

    Args:
        record: the scope's record, or None.
        content_hash: ``content_hash`` of this upload.
        job_exists: whether ``record.job_id`` names a stored job (ignored without a record).

    Returns:
        ``Create`` without a record; ``Deleted`` for a tombstoned record (even for identical
        content); ``Conflict`` for different content; ``Replay`` when the job exists;
        ``Recover`` when it does not.
    """
    if record is None:
        return Create()
    if record.state == "job_deleted":
        return Deleted(job_id=record.job_id, deleted_time=record.deleted_time)
    if record.job_content_hash != content_hash:
        return Conflict(existing_job_id=record.job_id or None)
    if job_exists:
        return Replay(job_id=record.job_id)
    return Recover(job_id=record.job_id)


def new_record(
    scope: TokenScope,
    *,
    job_id: str,
    job_name: str,
    job_folder_name: str,
    content_hash: str,
    submit_time: str,
) -> TokenRecord:
    """A fresh record in state ``"creating"``, reserving ``job_id`` before the job exists.

    Args:
        scope: the token's scope.
        job_id: the server-generated id the job will get.
        job_name: meta ``name``, else the folder name.
        job_folder_name: the uploaded folder's name.
        content_hash: ``content_hash`` of the upload.
        submit_time: local ISO-8601 time (``iso_local(now)``).

    Returns:
        The record to store with no-overwrite semantics.
    """
    return TokenRecord(
        scope=scope,
        state="creating",
        job_id=job_id,
        job_name=job_name,
        job_folder_name=job_folder_name,
        job_content_hash=content_hash,
        submit_time=submit_time,
    )


def mark_created(record: TokenRecord) -> TokenRecord:
    """The record once its job exists (state ``"created"``); a tombstone stays a tombstone.

    Args:
        record: the stored record.

    Returns:
        The updated record.
    """
    if record.state == "job_deleted":
        return record
    return msgspec.structs.replace(record, state="created")


def tombstone(record: TokenRecord, *, deleted_time: str, deleted_by: Principal) -> TokenRecord:
    """The record once its job is deleted: kept for audit, refusing every later use.

    Args:
        record: the stored record.
        deleted_time: UTC ISO-8601 time of the deletion (``iso_utc(now)``).
        deleted_by: who deleted the job (may differ from the submitter).

    Returns:
        The record in state ``"job_deleted"``.
    """
    return msgspec.structs.replace(
        record,
        state="job_deleted",
        deleted_time=deleted_time,
        deleted_by={"name": deleted_by.name, "org": deleted_by.org, "role": deleted_by.role},
    )


def raise_for(decision: Conflict | Deleted) -> NoReturn:
    """Raise the exception a refusing decision stands for (reference §2.5).

    Args:
        decision: a ``Conflict`` or ``Deleted`` decision.

    Raises:
        SubmitTokenConflict: for ``Conflict``, with ``existing_job_id``.
        SubmitTokenJobDeleted: for ``Deleted``, with ``job_id``, ``state="job_deleted"`` and
            ``deleted_time``.
    """
    if isinstance(decision, Conflict):
        raise SubmitTokenConflict(
            "submit token was already used for different job content",
            existing_job_id=decision.existing_job_id,
        )
    raise SubmitTokenJobDeleted(
        "submit token refers to a deleted job",
        job_id=decision.job_id,
        state="job_deleted",
        deleted_time=decision.deleted_time,
    )


def resolve_for_listing(record: TokenRecord | None, job_exists: bool) -> str | None:
    """Which job ``list_jobs(submit_token=...)`` starts from (reference §2.6).

    Args:
        record: the record in the caller's own scope, or None.
        job_exists: whether ``record.job_id`` names a stored job.

    Returns:
        The job id to list (the normal filters still apply), or None for an empty list (no
        record, no job id, or the job is missing).

    Raises:
        SubmitTokenJobDeleted: the record is tombstoned (``list_jobs`` does not return ``[]``).
    """
    if record is None:
        return None
    if record.state == "job_deleted":
        raise_for(Deleted(job_id=record.job_id, deleted_time=record.deleted_time))
    if not record.job_id or not job_exists:
        return None
    return record.job_id
