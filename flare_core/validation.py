"""Client-side argument rules: every check a session runs before it sends anything.

Each function takes the caller's raw argument (typed ``object``: callers may pass anything),
returns the normalised value, or raises before any command is built. The messages are the
reference's; the exception types follow DECISIONS §4 (``InvalidArgumentError``, a
``ValueError``, where the reference used ``ValueError``/``TypeError``/``SyntaxError``), except
job-id checks, which raise ``JobNotFound`` as the reference does (§1.3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from flare_core.errors import InvalidArgumentError, JobNotFound
from flare_core.info import TargetType
from flare_core.site_names import SERVER_SITE

__all__ = [
    "LOG_LEVELS",
    "LOG_MODES",
    "TARGET_NAME_PATTERN",
    "TARGET_TYPES",
    "check_client_name",
    "check_command_timeout",
    "check_job_id",
    "check_log_target",
    "check_monitor_args",
    "check_site_log_config",
    "check_site_name",
    "check_stats_job_id",
    "check_tail_lines",
    "check_target_type",
    "check_targets",
    "check_wait_timeout",
    "encode_job_log_config",
    "filter_logs",
]

TARGET_TYPES: tuple[str, ...] = (TargetType.ALL, TargetType.SERVER, TargetType.CLIENT)
"""The values ``target_type`` may take, in the reference's order."""

TARGET_NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
"""What a client name in a ``targets`` list may look like (§6.1)."""

LOG_MODES: frozenset[str] = frozenset({"reload", "full", "concise", "msg_only", "verbose"})
"""The built-in log modes ``configure_site_log`` accepts besides log levels (§6.14)."""

LOG_LEVELS: Mapping[str, int] = {
    "NOTSET": 0,
    "DEBUG": 10,
    "INFO": 20,
    "WARN": 30,
    "WARNING": 30,
    "ERROR": 40,
    "FATAL": 50,
    "CRITICAL": 50,
}
"""Log-level names (matched case-insensitively) and their numbers (the ``logging`` module's)."""

_TARGET_RE = re.compile(TARGET_NAME_PATTERN)
_WAIT_TIMEOUT_MESSAGE = (
    "timeout must be a positive number when wait=True; use wait=False for no-wait"
)
_SITE_LOG_MESSAGE = "configure_site_log only supports log levels and built-in log modes"


def check_job_id(job_id: object) -> str:
    """Check a job id before a job-addressed call (§1.3, client side).

    Args:
        job_id: the caller's job id.

    Returns:
        The job id, unchanged.

    Raises:
        JobNotFound: ``job_id`` is not a str, or is empty (nothing is sent, as in the reference).
    """
    if not isinstance(job_id, str):
        raise JobNotFound(f"invalid job_id {job_id}")
    if not job_id:
        raise JobNotFound("job_id is required but not specified.")
    return job_id


def check_stats_job_id(job_id: object) -> str:
    """Check the job id of ``show_stats``/``show_errors``/``reset_errors`` (§8).

    Args:
        job_id: the caller's job id.

    Returns:
        The job id, unchanged.

    Raises:
        InvalidArgumentError: ``job_id`` is not a str, or is empty (the reference raises the
            built-ins ``TypeError``/``ValueError`` here; DECISIONS §4).
    """
    if not isinstance(job_id, str):
        raise InvalidArgumentError(f"job_id must be str but got {type(job_id)}.")
    if not job_id:
        raise InvalidArgumentError("job_id is required but not specified.")
    return job_id


def check_target_type(command: str, target_type: object) -> str:
    """Check a ``target_type`` argument (§6.1).

    Args:
        command: the calling method's name, used in the message (e.g. ``"restart"``).
        target_type: the caller's value.

    Returns:
        ``"all"``, ``"server"`` or ``"client"``.

    Raises:
        InvalidArgumentError: any other value (nothing is sent).
    """
    if not isinstance(target_type, str) or target_type not in TARGET_TYPES:
        raise InvalidArgumentError(
            f"{command} target_type must be one of {list(TARGET_TYPES)} but got {target_type!r}"
        )
    return str(target_type)


def check_targets(target_type: str, targets: object) -> list[str]:
    """Check the client names that go with a target type (§6.1).

    As in the reference, names are only used (and so only validated) when ``target_type`` is
    ``"client"`` and the list is non-empty; in every other case they are ignored and ``[]`` is
    returned. A bare non-empty string is always refused: it is a common slip (``"site-1"``
    for ``["site-1"]``) that would otherwise be silently ignored.

    Args:
        target_type: the already checked target type.
        targets: the caller's list of client names, or None.

    Returns:
        The names to send, each as its own argument (``[]`` = all clients, or not applicable).

    Raises:
        InvalidArgumentError: ``targets`` is not a list, holds a non-str, or a name outside
            ``[A-Za-z0-9._-]`` (the reference raises ``SyntaxError``; DECISIONS §4).
    """
    if isinstance(targets, str) and targets:
        raise InvalidArgumentError("targets is not a list.")
    if target_type != "client" or not targets:
        return []
    if not isinstance(targets, list):
        raise InvalidArgumentError("targets is not a list.")
    if not all(isinstance(t, str) for t in targets):
        raise InvalidArgumentError("all targets in the list of targets must be strings.")
    names: list[str] = targets
    for name in names:
        if not _TARGET_RE.fullmatch(name):
            raise InvalidArgumentError(f"invalid target {name}")
    return list(names)


def check_client_name(name: object) -> str:
    """Check the client name of ``remove_client``/``disable_client``/``enable_client`` (§6.11).

    Names with spaces are allowed (the reference quotes them rather than refusing them).

    Args:
        name: the caller's client name.

    Returns:
        The name, unchanged.

    Raises:
        InvalidArgumentError: ``name`` is not a str, or is empty.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("client_name must be a non-empty str")
    return name


def check_site_name(name: object) -> str:
    """Check the name of a client site that connects (what a command target may name).

    Args:
        name: the site's name.

    Returns:
        The name, unchanged.

    Raises:
        InvalidArgumentError: not a str, not ``^[A-Za-z0-9._-]+$``, or ``server``.
    """
    if not isinstance(name, str) or not _TARGET_RE.fullmatch(name) or name == SERVER_SITE:
        raise InvalidArgumentError(
            f"invalid site name {name!r}: use letters, digits, '.', '_' and '-' (and not 'server')"
        )
    return name


def check_wait_timeout(wait: bool, timeout: object) -> float:
    """Check the ``timeout`` of ``restart``/``shutdown`` (§6.7), before anything is sent.

    Args:
        wait: whether the caller waits for the restart/shutdown to complete.
        timeout: the caller's timeout in seconds (anything ``float()`` accepts).

    Returns:
        The timeout as a float; ``0.0`` when ``wait`` is false (the timeout is then unused
        and, as in the reference, not validated).

    Raises:
        InvalidArgumentError: ``wait`` is true and the timeout is not a number > 0.
    """
    if not wait:
        return 0.0
    try:
        raw: Any = timeout  # any value float() accepts is accepted, as in the reference
        value = float(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(_WAIT_TIMEOUT_MESSAGE) from exc
    if not value > 0:  # also refuses NaN
        raise InvalidArgumentError(_WAIT_TIMEOUT_MESSAGE)
    return value


def _real(value: object, name: str) -> float:
    # bool is an int subclass, but True/False as a duration is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{name} must be a number but got {type(value)}")
    return float(value)


def check_monitor_args(timeout: object, poll_interval: object) -> tuple[float, float]:
    """Check the polling options of ``monitor_job``/``wait_for_job`` (§5.2, §5.3 step 1).

    Args:
        timeout: seconds to wait in total; ``0`` means no limit.
        poll_interval: seconds between polls.

    Returns:
        ``(timeout, poll_interval)`` as floats.

    Raises:
        InvalidArgumentError: a value is not a number, ``timeout < 0`` or
            ``poll_interval <= 0`` (NaN fails both checks).
    """
    timeout_value = _real(timeout, "timeout")
    if not timeout_value >= 0:
        raise InvalidArgumentError("timeout must be >= 0")
    interval = _real(poll_interval, "poll_interval")
    if not interval > 0:
        raise InvalidArgumentError("poll_interval must be > 0")
    return timeout_value, interval


def check_command_timeout(value: object) -> float:
    """Check the value of ``set_timeout`` (§6.10).

    Args:
        value: the per-command timeout in seconds.

    Returns:
        The timeout as a float.

    Raises:
        InvalidArgumentError: not an int/float (the reference raises ``TypeError``), or not
            > 0 (NaN included).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"timeout must be a number but got {type(value)}")
    timeout = float(value)
    if not timeout > 0:
        raise InvalidArgumentError(f"invalid timeout value {timeout} - must be > 0.0")
    return timeout


def check_log_target(target: object) -> str:
    """Check the ``target`` of ``get_job_logs`` (§5.1).

    Args:
        target: ``"server"``, ``"all"``/``"@all"`` or a client site name.

    Returns:
        The target, unchanged.

    Raises:
        InvalidArgumentError: ``target`` is not a str, or is empty.
    """
    if not isinstance(target, str) or not target:
        raise InvalidArgumentError("target must be a non-empty str")
    return target


def check_tail_lines(value: object) -> int | None:
    """Check the client-side ``tail_lines`` filter of ``get_job_logs`` (§5.1).

    Args:
        value: None (no tail), or anything ``int()`` accepts.

    Returns:
        None, or the line count as an int.

    Raises:
        InvalidArgumentError: not convertible to int, or negative.
    """
    if value is None:
        return None
    try:
        raw: Any = value  # any value int() accepts is accepted, as in the reference
        count = int(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError("tail_lines must be an integer") from exc
    if count < 0:
        raise InvalidArgumentError("tail_lines must be greater than or equal to 0")
    return count


def _filter_text(text: str, tail_lines: int | None, grep_pattern: str | None) -> str:
    lines = text.splitlines(keepends=True)
    if tail_lines is not None:
        lines = lines[-tail_lines:] if tail_lines else []
    if grep_pattern:
        lines = [line for line in lines if grep_pattern in line]
    return "".join(lines)


def filter_logs(
    payload: Mapping[str, Any], tail_lines: int | None, grep_pattern: str | None
) -> dict[str, Any]:
    """Apply the client-side ``tail_lines``/``grep_pattern`` filters to a logs payload (§5.1).

    Each site's text is split keeping line endings; the last ``tail_lines`` lines are kept
    (``0`` keeps none), then the lines containing ``grep_pattern`` as a plain, case-sensitive
    substring. Non-string values and every other key (``unavailable``) pass through untouched.

    Args:
        payload: ``{"logs": {site: text}, ...}``; not modified.
        tail_lines: None (no tail), or a line count >= 0.
        grep_pattern: None or ``""`` (no grep), or the substring to keep lines by.

    Returns:
        A new dict with the filtered ``logs``; an unchanged copy when there is nothing to do.

    Raises:
        InvalidArgumentError: ``tail_lines`` is negative or not an integer.
    """
    result = dict(payload)
    if tail_lines is None and not grep_pattern:
        return result
    logs = result.get("logs")
    if not isinstance(logs, dict):
        return result
    count = check_tail_lines(tail_lines)
    pattern = str(grep_pattern) if grep_pattern else None
    result["logs"] = {
        site: _filter_text(text, count, pattern) if isinstance(text, str) else text
        for site, text in logs.items()
    }
    return result


def check_site_log_config(config: object) -> str:
    """Check the ``config`` of ``configure_site_log`` (§6.14).

    Only log-level names (any case), level numbers 0-50 and the built-in log modes are
    accepted; dicts, file paths and anything else are refused before sending.

    Args:
        config: the caller's log configuration.

    Returns:
        The configuration with surrounding whitespace removed.

    Raises:
        InvalidArgumentError: anything else.
    """
    if not isinstance(config, str) or not config.strip():
        raise InvalidArgumentError(_SITE_LOG_MESSAGE)
    text = config.strip()
    if text in LOG_MODES:
        return text
    level = int(text) if text.isdecimal() else LOG_LEVELS.get(text.upper())
    if level is None or not 0 <= level <= 50:
        raise InvalidArgumentError(_SITE_LOG_MESSAGE)
    return text


def encode_job_log_config(config: object) -> str:
    """Encode the ``config`` of ``configure_job_log`` as the text sent to the server (§6.14).

    Args:
        config: a dict (a logging dictConfig), a level name or a log mode.

    Returns:
        A dict as JSON text (the reference's ``json.dumps`` layout), anything else as ``str()``.

    Raises:
        InvalidArgumentError: a dict that is not JSON-serialisable.
    """
    if isinstance(config, dict):
        try:
            return json.dumps(config)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"config must be JSON-serializable: {exc}") from exc
    return str(config)
