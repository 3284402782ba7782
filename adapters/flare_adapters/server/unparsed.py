"""Requests aiohttp cannot parse get problem+json too, like every other client mistake.

aiohttp answers a request it cannot parse (a request line or header over its limits, a bad
method, broken framing) in its protocol layer, before any middleware runs, with a plain-text
body. It has no public hook for that answer, so ``ProblemAppRunner`` gives each connection a
request handler whose ``handle_error`` writes a problem document for 4xx statuses (5xx keep
aiohttp's own answer, which has no traceback outside debug mode). It relies on aiohttp's
``AppRunner._make_server`` and ``Server``'s stored arguments; ``tests/server`` sends an
over-long request line and fails if an aiohttp upgrade changes them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from flare_adapters.http.problems import PROBLEM_CONTENT_TYPE, encode_problem, protocol_problem

__all__ = ["ProblemAppRunner"]

_MAX_MESSAGE = 200


class _ProblemRequestHandler(web.RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not 400 <= status < 500:
            return super().handle_error(request, status, exc, message)
        text = (message or HTTPStatus(status).phrase).strip()[:_MAX_MESSAGE]
        code = "payload_too_large" if status == 413 else "bad_request"
        _, body = encode_problem(protocol_problem(code, f"unreadable request: {text}"), status)
        response = web.Response(status=status, body=body, content_type=PROBLEM_CONTENT_TYPE)
        response.force_close()  # the connection's framing is lost: close it, as aiohttp does
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparsable requests with problem+json."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        kwargs: dict[str, Any] = dict(server._kwargs)
        return _ProblemServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **kwargs,
        )
