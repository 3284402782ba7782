"""Client flows of ``show_stats`` / ``show_errors`` / ``reset_errors`` (reference §8)."""

from __future__ import annotations

from typing import Any

from flare_core.commands import ResetErrors, ShowErrors, ShowStats
from flare_core.flows._calls import call
from flare_core.flows._context import ClientFlow, FlowContext
from flare_core.validation import check_stats_job_id, check_target_type, check_targets

__all__ = ["reset_errors", "show_errors", "show_stats"]


def show_stats(
    ctx: FlowContext, job_id: str, target_type: str, targets: list[str] | None = None
) -> ClientFlow[dict[str, Any]]:
    """Return a running job's processing stats keyed by target name (``{}`` when none)."""
    job_id = check_stats_job_id(job_id)
    kind = check_target_type("show_stats", target_type)
    names = check_targets(kind, targets)
    result = yield from call(ctx, ShowStats(job_id=job_id, target_type=kind, targets=names))
    return result if isinstance(result, dict) else {}


def show_errors(
    ctx: FlowContext, job_id: str, target_type: str, targets: list[str] | None = None
) -> ClientFlow[dict[str, Any]]:
    """Return a running job's processing errors keyed by target name (``{}`` when none)."""
    job_id = check_stats_job_id(job_id)
    kind = check_target_type("show_errors", target_type)
    names = check_targets(kind, targets)
    result = yield from call(ctx, ShowErrors(job_id=job_id, target_type=kind, targets=names))
    return result if isinstance(result, dict) else {}


def reset_errors(ctx: FlowContext, job_id: str) -> ClientFlow[None]:
    """Clear a running job's error stats on every target. Returns None."""
    job_id = check_stats_job_id(job_id)
    yield from call(ctx, ResetErrors(job_id=job_id, target_type="all"))
    return None
