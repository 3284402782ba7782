"""What a backend counts right now, for an operator's metrics (``/v1/metrics``)."""

from __future__ import annotations

import msgspec

__all__ = ["Gauges"]


class Gauges(msgspec.Struct, frozen=True, kw_only=True):
    """Point-in-time counts of one backend.

    Attributes:
        open_sessions: admin sessions that have not idled out or logged out.
        jobs_by_status: how many jobs are in each status, every study together; ``None`` when
            the backend cannot count them without asking the whole federation (the NVFlare
            gateway), so a scraper sees no number rather than a wrong one.
    """

    open_sessions: int
    jobs_by_status: dict[str, int] | None = None
