"""The whole contract suite, run (c), the gateway over HTTP and WebSocket, (see ``runs.py``)."""

from __future__ import annotations

from tests_nvflare.runs import GatewayRun, contract_tests

globals().update(contract_tests(GatewayRun, "Gateway"))
