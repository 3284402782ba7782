"""What an operator sees of a running server: one log line per request, health and metrics.

``observe_middleware`` (outermost, so it sees the final status of every request, problems
included) logs one structured line per request on the ``flare_adapters.server.access``
logger at INFO, ``key=value`` pairs an aggregator can split: ``method``, ``path``,
``command`` (the route's operation, e.g. ``submit_job``), ``user``, ``study``, ``status`` and
``duration_ms``; and it counts the request in the app's metrics. Nothing secret is logged:
no token, no key, no body.

``GET /v1/health`` answers ``{"status": "ok"}`` while the app serves, and ``GET /v1/metrics``
the Prometheus text exposition (prometheus-client) of the app's own registry:
``flare_requests_total{command,status}``, ``flare_request_duration_seconds{command}``,
``flare_open_websockets`` and, from a backend that reports them (``flare_ports.ReportsGauges``),
``flare_open_sessions`` and ``flare_jobs{status}``, counted at scrape time in the app's
executor (the stores' own reads, never the service lock). Both routes are public, as
scrapers and load balancers carry no bearer token; they reveal counts, never content.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from flare_adapters.server.context import BACKEND, EXECUTOR, WEBSOCKETS, caller_of
from flare_core import Gauges
from flare_ports import ReportsGauges

__all__ = [
    "HEALTH_PATH",
    "METRICS",
    "METRICS_PATH",
    "PUBLIC_ROUTES",
    "Metrics",
    "install_observability",
    "observe_middleware",
]

HEALTH_PATH: Final = "/v1/health"
METRICS_PATH: Final = "/v1/metrics"
PUBLIC_ROUTES: Final = frozenset({("GET", HEALTH_PATH), ("GET", METRICS_PATH)})
"""Routes served without a bearer token."""

access_log = logging.getLogger("flare_adapters.server.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """The metrics of one app, in a registry of its own (two servers in one process, as in
    tests, never share counters)."""

    def __init__(self, open_websockets: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "flare_requests",
            "Requests handled, by command and HTTP status.",
            ("command", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "flare_request_duration_seconds",
            "Time to answer a request, by command (streams: until the response ended).",
            ("command",),
            registry=self.registry,
        )
        websockets = Gauge(
            "flare_open_websockets", "WebSocket connections open now.", registry=self.registry
        )
        websockets.set_function(lambda: float(open_websockets()))
        self.sessions = Gauge(
            "flare_open_sessions",
            "Admin sessions that have not idled out or logged out.",
            registry=self.registry,
        )
        self.jobs = Gauge(
            "flare_jobs", "Jobs in each status, every study.", ("status",), registry=self.registry
        )
        # ``labels()`` takes a lock and validates its values on every call, ~3% of a read's
        # server CPU (py-spy); the children of a command never change, so each is looked up once.
        self._counted: dict[tuple[str, int], Counter] = {}
        self._timed: dict[str, Histogram] = {}

    def record(self, command: str, status: int, elapsed: float) -> None:
        """Count one answered request and its latency."""
        counter = self._counted.get((command, status))
        if counter is None:
            counter = self._counted[command, status] = self.requests.labels(command, str(status))
        counter.inc()
        histogram = self._timed.get(command)
        if histogram is None:
            histogram = self._timed[command] = self.latency.labels(command)
        histogram.observe(elapsed)

    def show(self, gauges: Gauges) -> None:
        """Set the backend's gauges from one reading (a status no job has left is dropped)."""
        self.sessions.set(gauges.open_sessions)
        self.jobs.clear()
        for status, count in sorted((gauges.jobs_by_status or {}).items()):
            self.jobs.labels(status).set(count)


METRICS: Final = web.AppKey("metrics", Metrics)


def _command(request: web.Request) -> str:
    # The command handlers are named after their operation (handle_<op>).
    route = request.match_info.route
    name = getattr(route.handler, "__name__", "") if route is not None else ""
    if name.startswith("handle_"):
        return name.removeprefix("handle_")
    return name.removesuffix("_handler") or "unknown"


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log and count every request (see the module docstring)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        command = _command(request)
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.record(command, status, elapsed)
        caller = caller_of(request)
        access_log.info(
            "method=%s path=%s command=%s user=%s study=%s status=%d duration_ms=%.1f",
            request.method,
            request.path,
            command,
            caller.principal.name if caller is not None else "-",
            caller.principal.study if caller is not None else "-",
            status,
            elapsed * 1000,
        )


async def health_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/health``: the app is serving."""
    return web.json_response({"status": "ok"})


async def metrics_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/metrics``: the Prometheus text exposition of the app's registry."""
    metrics = request.app[METRICS]
    backend = request.app[BACKEND]
    if isinstance(backend, ReportsGauges):
        loop = asyncio.get_running_loop()
        metrics.show(await loop.run_in_executor(request.app[EXECUTOR], backend.gauges))
    body = generate_latest(metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def install_observability(app: web.Application) -> None:
    """Add the metrics registry and the health and metrics routes to ``app`` (the middleware
    is passed to ``web.Application`` by the app builder, first)."""
    sockets = app[WEBSOCKETS]
    app[METRICS] = Metrics(lambda: len(sockets.sockets))
    app.router.add_get(HEALTH_PATH, health_handler)
    app.router.add_get(METRICS_PATH, metrics_handler)
