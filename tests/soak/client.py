"""A tiny synchronous raw client for the campaign: one HTTP request or WebSocket exchange at a
time, with the status, the problem code and the time it took (stdlib ``http.client`` and
``websockets.sync``, so hostile bytes go out exactly as built)."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import msgspec

__all__ = ["Raw", "login"]


class Raw:
    """Raw HTTP against one server."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, float]:
        """Send one request on a fresh connection; ``(status, body, seconds)``."""
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, data, time.perf_counter() - started
        finally:
            conn.close()

    def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any, float]:
        """An authenticated JSON request; ``(status, decoded body, seconds)``."""
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        status, raw, seconds = self.request(method, path, data, headers)
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw
        return status, decoded, seconds


def login(raw: Raw, user: str, key: str, study: str = "default") -> str:
    """Log in over HTTP; the bearer token."""
    body = msgspec.json.encode({"user": user, "api_key": key, "study": study})
    status, data, _ = raw.request(
        "POST", "/v1/sessions", body, {"Content-Type": "application/json"}
    )
    assert status == 201, (status, data)
    return str(json.loads(data)["token"])
