"""Every ``SessionSpec`` method on a real job, in each certification run (``walkthrough.py``).

Run first, while the POC is fresh: NVFlare 2.9 was seen to stop scheduling new jobs once the
contract runs had submitted and deleted some hundreds of unschedulable ones (docs/nvflare.md).
"""

from __future__ import annotations

from tests_nvflare.runs import GatewayRun, NVFlareRun, ReferenceRun
from tests_nvflare.walkthrough import EveryMethod


class TestReferenceEveryMethod(ReferenceRun, EveryMethod):
    pass


class TestNVFlareEveryMethod(NVFlareRun, EveryMethod):
    pass


class TestGatewayEveryMethod(GatewayRun, EveryMethod):
    pass
