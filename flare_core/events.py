"""Job events a backend publishes so that waiting sessions wake without polling."""

from __future__ import annotations

import msgspec

__all__ = ["JobEvent"]


class JobEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A job changed status (or was deleted: ``status == "DELETED"``)."""

    job_id: str
    study: str
    status: str
