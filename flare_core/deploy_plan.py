"""A job's validated deploy plan: which app goes to which sites, and the questions asked of it.

``jobdef`` builds the plan while it validates a job folder (the only parser of the meta
``deploy_map``); the service stores it beside the job at submit and the scheduler, the
system reports and the log reader ask it where a job runs. A plan is plain data, encoded as
JSON, so a stored one reads back the same on every store.
"""

from __future__ import annotations

import msgspec

from flare_core.site_names import SERVER_SITE, is_all_sites

__all__ = ["DeployPlan", "decode_plan", "encode_plan"]


class DeployPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Where a job's apps are deployed.

    Attributes:
        apps: app name -> the sites it is deployed to, as written in the deploy map
            (``server``, client names, or the one ``@ALL`` in any case), in map order.
    """

    apps: dict[str, list[str]] = msgspec.field(default_factory=dict)

    @property
    def sites(self) -> list[str]:
        """Every site the map names, app after app (duplicates kept)."""
        return [site for sites in self.apps.values() for site in sites]

    @property
    def uses_all(self) -> bool:
        """The map deploys to ``@ALL``: every site, server included."""
        return any(is_all_sites(site) for site in self.sites)

    @property
    def client_sites(self) -> list[str]:
        """The client sites named explicitly, in first-appearance order, once each."""
        return [
            site
            for site in dict.fromkeys(self.sites)
            if site != SERVER_SITE and not is_all_sites(site)
        ]

    def app_for(self, site: str) -> str | None:
        """The first app deployed to ``site`` (``@ALL`` reaches every site); None if none."""
        for app, sites in self.apps.items():
            if any(s == site or is_all_sites(s) for s in sites):
                return app
        return None


def encode_plan(plan: DeployPlan) -> bytes:
    """The stored form of a plan (JSON)."""
    return msgspec.json.encode(plan)


def decode_plan(data: bytes) -> DeployPlan:
    """Read a plan ``encode_plan`` wrote.

    Raises:
        msgspec.DecodeError: not JSON, or not a plan's shape (``ValidationError`` is one).
    """
    return msgspec.json.decode(data, type=DeployPlan)
