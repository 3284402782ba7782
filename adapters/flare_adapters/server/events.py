"""``GET /v1/events``: the job events of the caller's study as a stream of JSON lines.

HTTP clients have no socket to push to, so they hold this response open: the first line is
``{"subscribed": true}`` (from then on no event is missed), then one line per event,
``{"event": {"job_id", "study", "status"}}``, and an empty line every ``_KEEPALIVE`` seconds
so idle connections are not cut. ``?job_id=ID`` keeps only that job's events. Events are
hints to look again, as on the WebSocket: when a slow reader lets the backlog grow past
``ws_event_backlog``, the oldest are dropped. The stream ends when the client goes away or
the server shuts down. One session holds at most ``http_max_event_streams`` streams at once
(each is a connection and a subscription); another is refused with 429.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Final

import msgspec
from aiohttp import web

import flare_core as fc
from flare_adapters.http.routes import EVENTS_PATH
from flare_adapters.server.context import BACKEND, SETTINGS, caller_of
from flare_adapters.server.event_hub import EVENT_HUB, EventHub

__all__ = ["EVENT_STREAMS", "EventStreams", "events_handler", "install_event_stream"]

_KEEPALIVE: Final = 15.0
_NDJSON: Final = "application/x-ndjson"
_encode = msgspec.json.Encoder().encode


class EventStreams:
    """The open event streams: counted per session, ended together when the server shuts
    down."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.open: Counter[str] = Counter()  # bearer token -> streams open (no zero entries)


EVENT_STREAMS: Final = web.AppKey("event_streams", EventStreams)


async def events_handler(request: web.Request) -> web.StreamResponse:
    """Stream the caller's study's job events (see the module docstring)."""
    caller = caller_of(request)
    assert caller is not None  # the auth middleware guards this route
    study = caller.principal.study
    only = request.query.get("job_id") or None
    app = request.app
    streams = app[EVENT_STREAMS]
    limit = app[SETTINGS].http_max_event_streams
    if streams.open[caller.token] >= limit:  # problems_middleware renders it
        raise web.HTTPTooManyRequests(reason=f"at most {limit} event streams per session")
    queue: asyncio.Queue[fc.JobEvent] = asyncio.Queue()
    backlog = app[SETTINGS].ws_event_backlog

    def offer(event: fc.JobEvent) -> None:  # on the loop, from the server's event hub
        if event.study != study:
            return
        if queue.qsize() >= backlog:
            queue.get_nowait()  # drop the oldest: events are wake-up hints
        queue.put_nowait(event)

    unsubscribe = app[EVENT_HUB].subscribe(only, offer)
    streams.open[caller.token] += 1
    response = web.StreamResponse(headers={"Content-Type": _NDJSON, "Cache-Control": "no-store"})
    try:
        await _stream(request, response, queue, streams.stopping)
    except ConnectionResetError:  # the client went away (a wait that ended): nothing to say
        return response
    finally:
        unsubscribe()
        streams.open[caller.token] -= 1
        if not streams.open[caller.token]:
            del streams.open[caller.token]
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    queue: asyncio.Queue[fc.JobEvent],
    stopping: asyncio.Event,
) -> None:
    """Send the stream until the server stops (``ConnectionResetError``: the client left)."""
    await response.prepare(request)
    await response.write(b'{"subscribed":true}\n')
    while not stopping.is_set():
        next_event = asyncio.ensure_future(queue.get())
        stop = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait(
            {next_event, stop}, timeout=_KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
        )
        stop.cancel()
        if next_event not in done:
            next_event.cancel()
            if not done:
                await response.write(b"\n")
            continue
        event = next_event.result()
        await response.write(_encode({"event": event}) + b"\n")


async def _end_streams(app: web.Application) -> None:
    app[EVENT_STREAMS].stopping.set()


def install_event_stream(app: web.Application) -> None:
    """Add ``GET /v1/events`` to ``app`` (and end its streams when the app shuts down), and
    the event hub that it and the WebSocket connections take their job events from."""
    app[EVENT_HUB] = EventHub(app[BACKEND])
    app[EVENT_STREAMS] = EventStreams()
    app.router.add_get(EVENTS_PATH, events_handler)
    app.on_shutdown.append(_end_streams)
