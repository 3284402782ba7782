"""NVFlare's replies reshaped to flare-core's contract (DECISIONS §13-§14), as pure functions.

* ``check_status``: NVFlare returns its raw command meta (``server_status``,
  ``server_start_time``, ``jobs``, ``clients`` and/or ``client_status`` rows); ours is keyed by
  site (``"server"``, ``"site-1"``, ...) and keeps the reference keys beside them. A server
  that answers is up, so its status is ``"started"`` even when no job runs (NVFlare says
  ``"stopped"``).
* ``report_resources``: NVFlare's values are the ``str()`` of a dict; ours are the dicts.
* ``list_job_components``: NVFlare's file store writes a component as ``<name>_<uuid4>`` and
  renames it, and its listing hides only the final system names; a listing taken while the
  scheduler rewrites a queued job's meta shows ``meta_<uuid4>``. Ours drops those half-written
  system files.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["job_components", "meta_with_study", "resources_by_site", "status_by_site"]

_DEFAULT_STUDY = "default"
# NVFlare's system components (job_cmds.list_job_components) and its store's temporary suffix.
_HALF_WRITTEN = re.compile(
    r"(?:workspace|meta|scheduled|data)_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def _rows(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [row for row in value if isinstance(row, Mapping)]


def status_by_site(raw: Mapping[str, Any], target_type: str) -> dict[str, Any]:
    """NVFlare's ``check_status`` meta keyed by site, reference keys kept.

    Args:
        raw: the meta NVFlare's ``Session.check_status`` returned.
        target_type: ``server``, ``client`` or ``all``.
    """
    value: dict[str, Any] = {key: item for key, item in raw.items() if key != "status"}
    connect_times = {
        str(row.get("client_name")): row.get("client_last_conn_time")
        for row in _rows(raw.get("clients"))
    }
    if target_type in ("client", "all"):
        sites: dict[str, dict[str, Any]] = {}
        for row in _rows(raw.get("client_status")):
            name = str(row.get("client_name", ""))
            entry = sites.setdefault(
                name,
                {"status": "started", "last_connect_time": connect_times.get(name), "jobs": []},
            )
            if row.get("job_id"):
                entry["jobs"].append(
                    {
                        "job_id": str(row["job_id"]),
                        "app_name": str(row.get("app_name") or "?"),
                        "status": str(row.get("status", "")),
                    }
                )
        value.update(sites)
    if target_type in ("server", "all"):
        jobs = [
            {"job_id": str(row.get("job_id", "")), "app_name": str(row.get("app_name") or "?")}
            for row in _rows(raw.get("jobs"))
        ]
        value["server"] = {
            "status": "started",
            "start_time": raw.get("server_start_time"),
            "jobs": jobs,
        }
        value["server_status"] = "started"
    return value


def _as_dict(text: object) -> Any:
    if isinstance(text, Mapping):
        return dict(text)
    if not isinstance(text, str):
        return text
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return {"report": text}
    return parsed if isinstance(parsed, dict) else {"report": text}


def resources_by_site(raw: Mapping[str, Any]) -> dict[str, Any]:
    """NVFlare's ``report_resources`` with each site's ``str(dict)`` parsed back to a dict.

    Parsing uses ``ast.literal_eval`` (literals only, never code); a value that is not a
    dict literal is kept as ``{"report": text}``.
    """
    return {str(site): _as_dict(text) for site, text in raw.items()}


def meta_with_study(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A job meta with ``study`` always present (legacy NVFlare jobs have none)."""
    value = dict(meta)
    if not value.get("study"):
        value["study"] = _DEFAULT_STUDY
    return value


def job_components(names: Iterable[object] | None) -> list[str]:
    """NVFlare's component listing without the system files its store is still writing.

    Args:
        names: what NVFlare's ``Session.list_job_components`` returned.
    """
    listed = [str(name) for name in names or []]
    return [name for name in listed if not _HALF_WRITTEN.fullmatch(name)]
