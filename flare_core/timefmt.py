"""Time formatting on given epoch floats: the string shapes job meta and token records use.

Nothing here reads a clock; callers pass ``now`` from their ``Clock`` port. Local-time
renderings follow the process's time zone, as the reference's do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["format_duration", "iso_local", "iso_utc", "parse_iso"]


def iso_local(epoch: float) -> str:
    """Render an epoch as local-time ISO-8601 with its UTC offset.

    Args:
        epoch: seconds since the Unix epoch.

    Returns:
        e.g. ``"2023-11-14T23:13:20.500000+01:00"`` (microseconds only when non-zero).
    """
    return datetime.fromtimestamp(epoch).astimezone().isoformat()


def iso_utc(epoch: float) -> str:
    """Render an epoch as UTC ISO-8601 with an explicit ``+00:00`` offset.

    Args:
        epoch: seconds since the Unix epoch.

    Returns:
        e.g. ``"2023-11-14T22:13:20+00:00"``.
    """
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def parse_iso(text: object) -> float | None:
    """Read an ISO-8601 timestamp back into an epoch.

    Accepts what ``iso_local``/``iso_utc`` produce, a trailing ``Z``, and the reference's
    naive ``str(datetime)`` form (``"2023-11-14 23:13:20.500000"``), which counts as local time.

    Args:
        text: the timestamp; anything that is not a non-empty str is unparsable.

    Returns:
        Seconds since the Unix epoch, or None when ``text`` is empty or unparsable.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def format_duration(seconds: float) -> str:
    """Render an elapsed time the way ``str(timedelta)`` does (``"0:01:02.345678"``).

    Negative spans (a clock that stepped back) render as ``"0:00:00"`` rather than
    ``"-1 day, 23:59:59"``, which no reader expects of a job's run time.

    Args:
        seconds: the elapsed time.

    Returns:
        The ``str(timedelta)`` rendering.
    """
    return str(timedelta(seconds=max(0.0, seconds)))
