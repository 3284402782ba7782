"""The raw baselines' servers, each run as its own process: ``python -m bench.raw_servers``.

- ``http``: a minimal aiohttp app. ``GET /r/<name>`` returns the bytes the flare-core server
  returned for the same read (captured once, stored as ``<bodies>/<name>``), with the same
  content type; ``GET /file`` streams a file in 256 KiB chunks; ``POST /upload`` reads a body
  and drops it. Nothing else: no auth, no routing table, no codec.
- ``ws``: a minimal websockets echo server.

Each prints ``listening on <port>`` once bound (port 0: any free port on 127.0.0.1), and
exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from aiohttp import web

__all__ = ["main"]

_CHUNK = 256 * 1024  # the flare-core server's default chunk_bytes


def _http_app(bodies: str, file: str | None) -> web.Application:
    cache: dict[str, bytes] = {}

    async def read(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = cache.get(name)
        if body is None:  # written after this server started; read once, then from memory
            with open(os.path.join(bodies, os.path.basename(name)), "rb") as handle:
                body = cache[name] = handle.read()
        return web.Response(body=body, content_type="application/json")

    async def download(request: web.Request) -> web.StreamResponse:
        assert file is not None
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = os.path.getsize(file)
        await response.prepare(request)
        with open(file, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.Response:
        size = 0
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
        return web.json_response({"size": size})

    app = web.Application(client_max_size=1 << 40)
    app.router.add_get("/r/{name}", read)
    app.router.add_get("/file", download)
    app.router.add_post("/upload", upload)
    return app


async def _serve_http(bodies: str, file: str | None) -> None:
    runner = web.AppRunner(_http_app(bodies, file), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on {port}", flush=True)
    await _until_terminated()
    await runner.cleanup()


async def _serve_ws() -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(echo, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on {port}", flush=True)
        await _until_terminated()


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_servers")
    parser.add_argument("kind", choices=("http", "ws"))
    parser.add_argument("--bodies", default="", help="directory of captured response bodies")
    parser.add_argument("--file", default=None, help="the file GET /file streams")
    args = parser.parse_args()
    asyncio.run(_serve_http(args.bodies, args.file) if args.kind == "http" else _serve_ws())


if __name__ == "__main__":
    main()
