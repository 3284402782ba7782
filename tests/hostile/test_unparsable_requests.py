"""Requests aiohttp cannot parse get problem+json from the real server, not plain text."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from flare_testing.server import ServedSystem, serve


@pytest.fixture(scope="module")
def served() -> Iterator[ServedSystem]:
    with serve() as system:
        yield system


def _exchange(served: ServedSystem, request: bytes) -> tuple[int, dict[str, str], bytes]:
    port = urlsplit(served.http_url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):  # the server closes the connection after the answer
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # request line too long
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
    ],
    ids=["long_request_line", "long_header", "malformed_header"],
)
def test_an_unparsable_request_is_a_problem_document(
    served: ServedSystem, request_bytes: bytes
) -> None:
    status, headers, body = _exchange(served, request_bytes)
    assert status == 400
    assert headers["content-type"].startswith("application/problem+json")
    document = json.loads(body)
    assert document["code"] == "bad_request"
    assert document["message"].startswith("unreadable request: ")
    assert "Traceback" not in body.decode()


def test_the_server_still_answers_afterwards(served: ServedSystem) -> None:
    status, _, body = _exchange(
        served, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200, body
