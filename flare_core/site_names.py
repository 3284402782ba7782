"""The names every layer gives to sites and targets: the server's site name and ``@ALL``.

One spelling, one test: the deploy map, the scheduler, log and workspace reads and target
resolution all ask these, so ``"server"`` and the wildcard check are not retyped.
"""

from __future__ import annotations

__all__ = ["ALL_SITES", "SERVER_SITE", "is_all_sites"]

SERVER_SITE = "server"
"""The site name of the server: in deploy maps (matched exactly), workspaces, logs, targets."""

ALL_SITES = "@ALL"
"""The deploy-map site meaning "every site, server included" (matched case-insensitively)."""


def is_all_sites(site: str) -> bool:
    """True for the deploy-map wildcard ``@ALL``, in any case (``@all`` too), as NVFlare reads it.

    Args:
        site: a deploy-map site name.
    """
    return site.casefold() == ALL_SITES.casefold()
