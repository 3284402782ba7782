"""The whole contract suite, run (a), NVFlare's own Session, (see ``runs.py``)."""

from __future__ import annotations

from tests_nvflare.runs import ReferenceRun, contract_tests

globals().update(contract_tests(ReferenceRun, "Reference"))
