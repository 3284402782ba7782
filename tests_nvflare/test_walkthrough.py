"""Every ``SessionSpec`` method on a real job, in each certification run (``walkthrough.py``)."""

from __future__ import annotations

from tests_nvflare.runs import GatewayRun, NVFlareRun, ReferenceRun
from tests_nvflare.walkthrough import EveryMethod


class TestReferenceEveryMethod(ReferenceRun, EveryMethod):
    pass


class TestNVFlareEveryMethod(NVFlareRun, EveryMethod):
    pass


class TestGatewayEveryMethod(GatewayRun, EveryMethod):
    pass
