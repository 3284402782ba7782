"""The whole contract suite, run (b), nvflare:// sessions, (see ``runs.py``)."""

from __future__ import annotations

from tests_nvflare.runs import NVFlareContractRun, contract_tests

globals().update(contract_tests(NVFlareContractRun, "NVFlare"))
