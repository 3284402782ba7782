"""``list_jobs``: the client's argument handling and the server's filter, order and shape.

Client half (reference §4.1): ``build_list_jobs`` maps the legacy keyword aliases, checks
types and the submit token, and builds the ``ListJobs`` command. Server half (§4.2, §1.5):
``select_jobs`` filters stored metas to the caller's study and prefixes, sorts them by submit
time, keeps the newest N and renders summary or detailed rows; ``shape_rows`` does the same
one row at a time for a listing read from the store in pages, already in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flare_core.commands import MAX_LIST_LIMIT, ListJobs
from flare_core.errors import InvalidArgumentError
from flare_core.lifecycle import JobStatus, running_duration
from flare_core.nesting import copy_json
from flare_core.timefmt import parse_iso
from flare_core.tokens import validate_submit_token

__all__ = [
    "DEFAULT_STUDY",
    "LEGACY_ALIASES",
    "SUMMARY_KEYS",
    "build_list_jobs",
    "check_limit",
    "detailed_row",
    "job_name",
    "normalize_study",
    "select_jobs",
    "shape_rows",
    "summary_row",
]

DEFAULT_STUDY = "default"

LEGACY_ALIASES: tuple[tuple[str, str], ...] = (
    ("max_num", "limit"),
    ("job_id_prefix", "id_prefix"),
    ("job_name_prefix", "name_prefix"),
    ("id", "id_prefix"),
    ("name", "name_prefix"),
)
"""(legacy keyword, canonical argument), in the order they are applied (§4.1)."""

SUMMARY_KEYS = ("job_id", "job_name", "status", "submit_time", "duration", "study")
"""The exact keys of a non-detailed ``list_jobs`` row."""


def check_limit(limit: object) -> int | None:
    """Check a ``list_jobs`` limit (client flow and server both: never trust the wire).

    Raises:
        InvalidArgumentError: not None nor an int, negative, or above ``MAX_LIST_LIMIT``.
    """
    # bool is an int subclass; the reference lets True through and then fails on the server.
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidArgumentError(f"limit must be None or int but got {type(limit)}")
    if limit < 0:
        raise InvalidArgumentError(f"limit must be >= 0 but got {limit}")
    if limit > MAX_LIST_LIMIT:
        raise InvalidArgumentError(f"limit must be <= {MAX_LIST_LIMIT} but got {limit}")
    return limit


def build_list_jobs(
    detailed: bool = False,
    limit: int | None = None,
    id_prefix: str | None = None,
    name_prefix: str | None = None,
    reverse: bool = False,
    submit_token: str | None = None,
    **kwargs: object,
) -> ListJobs:
    """Validate ``list_jobs`` arguments and build the command (reference §4.1).

    Legacy aliases (``LEGACY_ALIASES``) apply only while the canonical argument is still None,
    so an explicit canonical argument wins and the earlier alias beats a later one.

    Args:
        detailed: full meta rows instead of summaries.
        limit: keep the newest N jobs; 0 or None means all.
        id_prefix: case-insensitive job-id prefix; ``""`` means none.
        name_prefix: case-insensitive prefix of meta ``name``; ``""`` means none.
        reverse: newest first instead of oldest first.
        submit_token: list only the job this token (in the caller's scope) refers to.
        **kwargs: the legacy aliases ``max_num``, ``job_id_prefix``, ``job_name_prefix``,
            ``id``, ``name``.

    Returns:
        The ``ListJobs`` command (empty prefixes and ``limit=0`` normalised to None).

    Raises:
        TypeError: an unsupported keyword argument.
        InvalidArgumentError: a non-bool ``detailed``/``reverse``, a non-int (or bool) or
            negative ``limit``, a non-str prefix, or an invalid submit token.
    """
    canonical: dict[str, object] = {
        "limit": limit,
        "id_prefix": id_prefix,
        "name_prefix": name_prefix,
    }
    for legacy, target in LEGACY_ALIASES:
        if legacy in kwargs:
            value = kwargs.pop(legacy)
            if canonical[target] is None:
                canonical[target] = value
    if kwargs:
        raise TypeError(f"unsupported list_jobs kwargs: {sorted(kwargs)}")

    if not isinstance(detailed, bool):
        raise InvalidArgumentError(f"detailed must be bool but got {type(detailed)}")
    if not isinstance(reverse, bool):
        raise InvalidArgumentError(f"reverse must be bool but got {type(reverse)}")
    checked_limit = check_limit(canonical["limit"])
    prefixes: dict[str, str | None] = {}
    for key in ("id_prefix", "name_prefix"):
        value = canonical[key]
        if value is not None and not isinstance(value, str):
            raise InvalidArgumentError(f"{key} must be None or str but got {type(value)}")
        prefixes[key] = value or None
    token = validate_submit_token(submit_token)

    return ListJobs(
        detailed=detailed,
        limit=checked_limit or None,
        id_prefix=prefixes["id_prefix"],
        name_prefix=prefixes["name_prefix"],
        reverse=reverse,
        submit_token=token,
    )


def normalize_study(value: object) -> str:
    """A job's study as the server compares it: missing, empty or non-str means ``default``."""
    if isinstance(value, str) and value:
        return value
    return DEFAULT_STUDY


def job_name(meta: Mapping[str, Any]) -> str:
    """The name a job is shown under: meta ``name``, else ``job_folder_name``, else ``No name``."""
    for key in ("name", "job_folder_name"):
        value = meta.get(key)
        if value:
            return str(value)
    return "No name"


def _submit_epoch(meta: Mapping[str, Any]) -> float:
    value = meta.get("submit_time")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _has_prefix(value: object, prefix: str | None) -> bool:
    if not prefix:
        return True
    return isinstance(value, str) and value.lower().startswith(prefix.lower())


def _matches(meta: Mapping[str, Any], command: ListJobs, study: str, caller_name: str) -> bool:
    return (
        normalize_study(meta.get("study")) == study
        and _has_prefix(meta.get("job_id") or "", command.id_prefix)
        # The name filter reads meta "name" only - no folder-name fallback (reference §4.2).
        and _has_prefix(meta.get("name") or "", command.name_prefix)
        and (not command.mine_only or meta.get("submitter_name") == caller_name)
    )


def summary_row(meta: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A non-detailed ``list_jobs`` row (reference §1.5): exactly ``SUMMARY_KEYS``.

    Args:
        meta: the stored job meta.
        now: the listing time, for a RUNNING job's duration.

    Returns:
        ``job_id``, ``job_name``, ``status``, ``submit_time`` (the ISO string),
        ``duration`` (str) and ``study`` (normalised).
    """
    return {
        "job_id": meta.get("job_id", ""),
        "job_name": job_name(meta),
        "status": meta.get("status", ""),
        "submit_time": meta.get("submit_time_iso", ""),
        "duration": running_duration(meta, now),
        "study": normalize_study(meta.get("study")),
    }


def detailed_row(meta: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A detailed ``list_jobs`` row: a deep copy of the meta, study normalised, and a RUNNING
    job's duration recomputed (an unparsable start time leaves it alone).

    Args:
        meta: the stored job meta (not modified).
        now: the listing time.

    Returns:
        The row.
    """
    row = copy_json(dict(meta))
    row["study"] = normalize_study(meta.get("study"))
    if (
        meta.get("status") == JobStatus.RUNNING.value
        and parse_iso(meta.get("start_time")) is not None
    ):
        row["duration"] = running_duration(meta, now)
    return row


def select_jobs(
    metas: Iterable[Mapping[str, Any]],
    command: ListJobs,
    *,
    study: str,
    caller_name: str,
    now: float,
) -> list[dict[str, Any]]:
    """The server half of ``list_jobs`` (reference §4.2).

    The caller resolves ``command.submit_token`` first (``resolve_for_listing``) and passes
    just that job's meta; the filters below still apply to it.

    Args:
        metas: candidate job metas (read, not modified).
        command: the listing command.
        study: the session's study.
        caller_name: the caller's name, for ``mine_only``.
        now: the listing time, for RUNNING durations.

    Returns:
        Rows of the caller's study matching both prefixes (case-insensitive), sorted by
        ``submit_time`` (missing counts as 0.0; ties in the store's submission order;
        ascending, or the exact reverse with ``reverse``),
        cut to the newest ``limit`` in either order, in summary or detailed shape.

    Raises:
        InvalidArgumentError: a negative ``limit`` (the client never sends one).
    """
    if command.limit is not None and command.limit < 0:
        raise InvalidArgumentError(f"limit must be >= 0 but got {command.limit}")
    kept = [m for m in metas if _matches(m, command, study, caller_name)]
    # A total order: submit time, ties in the store's (submission) order; ``reverse`` is its
    # exact reverse (sort(reverse=True) would keep ties in submission order both ways).
    kept.sort(key=_submit_epoch)
    if command.reverse:
        kept.reverse()
    if command.limit:
        kept = kept[: command.limit] if command.reverse else kept[-command.limit :]
    render = detailed_row if command.detailed else summary_row
    return [render(m, now) for m in kept]


def shape_rows(
    metas: Iterable[Mapping[str, Any]],
    command: ListJobs,
    *,
    study: str,
    caller_name: str,
    now: float,
) -> Iterator[dict[str, Any]]:
    """``select_jobs`` one row at a time, for metas already in the listing's order.

    A store's pages (``JobStore.page``) come in that order, oldest submit first or, for
    ``reverse`` (or to keep the newest of a limit), its exact reverse, so a listing of any
    length is filtered and shaped without holding it: nothing is sorted or cut here.

    Args:
        metas: candidate job metas, in the order the rows are to be listed (read only).
        command: the listing command (its ``limit`` is the caller's to apply).
        study: the session's study.
        caller_name: the caller's name, for ``mine_only``.
        now: the listing time, for RUNNING durations.

    Yields:
        The rows of the metas that match, in summary or detailed shape.
    """
    render = detailed_row if command.detailed else summary_row
    for meta in metas:
        if _matches(meta, command, study, caller_name):
            yield render(meta, now)
