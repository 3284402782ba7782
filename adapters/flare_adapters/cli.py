"""The ``flare-core`` command line; this module holds its server side: create a server
workspace, serve it, run the demo.

    flare-core init DIR [--user NAME] [--org ORG] [--site NAME ...] [--port N]
                    [--engine auto|simulated|nvflare]
        writes DIR/flare-core.json with one project admin and a few sites, and prints the
        admin's API key once (only its scrypt hash is stored); the engine runs the jobs
        (auto: NVIDIA FLARE's simulator when flare-core[nvflare] is installed, else simulated);
    flare-core init DIR --backend nvflare --kit USER=KIT [--kit ...]
        writes a gateway workspace: each user gets an API key and acts through its NVFlare
        admin startup kit;
    flare-core serve DIR [--host 127.0.0.1] [--port N] [--backend embedded|nvflare]
                     [--engine auto|simulated|nvflare]
                   [--log-level DEBUG|INFO|WARNING|ERROR]
        runs the server until SIGINT/SIGTERM or an admin's ``shutdown("server"|"all")``,
        printing the engine it runs jobs with, then ``serving on http://HOST:PORT`` once the
        socket is bound (``--port 0`` picks a free port); ``--engine`` overrides the config's;
        ``--backend nvflare`` serves the gateway to the configured federation (which an
        NVFlare shutdown does not end);
    flare-core example NAME DIR
        copies a shipped example job folder (``hello-numpy-sag``) into DIR;

The session commands (``jobs``, ``system``, ``sites``, ``studies``, ``shell`` and the short
forms) are the click application in ``flare_adapters.console``; ``main`` runs it with the
commands registered here in ``COMMANDS`` (name -> (help, configure parser, run)), which keep
their own argparse parsers and are handed their arguments untouched. Exit codes of these
commands: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Final, TextIO

import msgspec

from flare_adapters import console, demo
from flare_adapters.examples import EXAMPLES, copy_example
from flare_adapters.server.config import (
    DEFAULT_PORT,
    ConfigError,
    init_gateway,
    init_workspace,
    load_config,
)
from flare_adapters.server.gateway import run_gateway
from flare_adapters.server.runtime import RunningServer, run_server

__all__ = ["COMMANDS", "build_parser", "main"]

Run = Callable[[argparse.Namespace, TextIO], int]

BACKENDS: Final = ("embedded", "nvflare")
ENGINES: Final = ("auto", "simulated", "nvflare")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

_SHUTDOWN_POLL: Final = 0.5
"""Seconds between checks of whether an admin shut the server down."""


def _configure_init(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the workspace directory to create")
    parser.add_argument("--user", default="admin@nvidia.com", help="the admin user's name")
    parser.add_argument("--org", default="nvidia", help="the server's and the admin's org")
    parser.add_argument(
        "--site",
        dest="sites",
        action="append",
        help="a simulated client site (repeatable; default: site-1 and site-2)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port to serve on")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="embedded",
        help="embedded: flare-core's own system; nvflare: a gateway to an NVFlare federation",
    )
    _add_engine(parser, "auto")
    parser.add_argument(
        "--kit",
        dest="kits",
        action="append",
        metavar="USER=KIT",
        help="(nvflare) a user and the NVFlare admin startup kit it acts through (repeatable)",
    )


def _run_init(args: argparse.Namespace, out: TextIO) -> int:
    if args.backend == "nvflare":
        return _run_init_gateway(args, out)
    try:
        config, api_key = init_workspace(
            args.dir,
            admin_user=args.user,
            org=args.org,
            sites=args.sites or ("site-1", "site-2"),
            port=args.port,
            engine=args.engine,
        )
    except (FileExistsError, ConfigError) as exc:
        print(f"flare-core init: {exc}", file=sys.stderr)
        return 2
    print(f"created workspace {args.dir}", file=out)
    print(f"admin user: {config.users[0].name}", file=out)
    print(f"admin API key (shown once, store it safely): {api_key}", file=out)
    print(f"sites: {', '.join(site.name for site in config.sites)}", file=out)
    kind = config.engine.kind
    here: str
    try:
        here = config.engine.resolved()
    except ConfigError as exc:
        here = f"unavailable here: {exc}"
    print(f"engine: {kind}" + ("" if here == kind else f" ({here} on this machine)"), file=out)
    print(f"next: flare-core serve {args.dir}", file=out)
    return 0


def _run_init_gateway(args: argparse.Namespace, out: TextIO) -> int:
    try:
        kits = [_kit_arg(text) for text in args.kits or ()]
        config, api_keys = init_gateway(args.dir, kits, port=args.port)
    except (FileExistsError, ConfigError) as exc:
        print(f"flare-core init: {exc}", file=sys.stderr)
        return 2
    print(f"created gateway workspace {args.dir}", file=out)
    for user in config.users:
        key = api_keys[user.name]
        print(f"API key of {user.name} (shown once, store it safely): {key}", file=out)
    print(f"next: flare-core serve {args.dir} --backend nvflare", file=out)
    return 0


def _kit_arg(text: str) -> tuple[str, str]:
    user, sep, kit = text.partition("=")
    if not sep or not user or not kit:
        raise ConfigError(f"--kit wants USER=KIT, got {text!r}")
    return user, os.path.abspath(kit)


def _add_engine(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=default,
        help="what runs the jobs: nvflare (NVIDIA FLARE's simulator, the flare-core[nvflare] "
        "extra), simulated (pretends), auto (nvflare when installed)"
        + ("" if default else "; default: the workspace config's"),
    )


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the workspace directory (see 'flare-core init')")
    parser.add_argument("--host", default=None, help="address to listen on (default: config)")
    parser.add_argument("--port", type=int, default=None, help="port (0: any free port)")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="embedded",
        help="embedded: serve flare-core's own system; nvflare: be a gateway to the NVFlare "
        "federation the config's 'nvflare' section names",
    )
    _add_engine(parser, None)
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="WARNING",
        help="log to stderr from this level on (INFO: one line per request)",
    )


SERVE_SWITCH_INTERVAL = 0.0005
"""The GIL switch interval of a serving process, seconds (Python's default is 0.005). The event
loop shares the GIL with worker threads running shell commands and archive work; a shorter
interval hands it back to the loop sooner, so one user's CPU-heavy request costs other users
less latency (issue 10, fairness)."""


async def _serve(args: argparse.Namespace, out: TextIO) -> None:
    sys.setswitchinterval(SERVE_SWITCH_INTERVAL)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if args.backend == "nvflare":
        async with run_gateway(args.dir, host=args.host, port=args.port) as gateway:
            print(f"serving on {gateway.http_url} (gateway to NVFlare)", file=out, flush=True)
            await stop.wait()
    else:
        config = load_config(args.dir)
        if args.engine is not None:
            engine = msgspec.structs.replace(config.engine, kind=args.engine)
            config = msgspec.structs.replace(config, engine=engine)
        async with run_server(args.dir, host=args.host, port=args.port, config=config) as server:
            print(server.runtime.engine_summary(), file=out, flush=True)
            print(f"serving on {server.http_url}", file=out, flush=True)
            watcher = asyncio.create_task(_until_shut_down(server, stop))
            try:
                await stop.wait()
            finally:
                watcher.cancel()
    print("stopped", file=out, flush=True)


async def _until_shut_down(server: RunningServer, stop: asyncio.Event) -> None:
    # An admin's shutdown("server"/"all") stops the service; the process then exits too, as
    # an NVFlare server does. Polling keeps the service free of any process-level hook.
    while server.runtime.service.running:
        await asyncio.sleep(_SHUTDOWN_POLL)
    stop.set()


def _configure_logging(level: str) -> None:
    # The server process owns its logging; the library itself only has a NullHandler.
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def _run_serve(args: argparse.Namespace, out: TextIO) -> int:
    _configure_logging(getattr(args, "log_level", "WARNING"))
    try:
        load_config(args.dir)  # fail early, with a clear message, before binding anything
        asyncio.run(_serve(args, out))
    except ConfigError as exc:
        print(f"flare-core serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"flare-core serve: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _configure_example(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=EXAMPLES, help="the example job")
    parser.add_argument("dir", help="the directory to copy it into (created when missing)")


def _run_example(args: argparse.Namespace, out: TextIO) -> int:
    try:
        folder = copy_example(args.name, args.dir)
    except FileExistsError as exc:
        print(f"flare-core example: {exc}", file=sys.stderr)
        return 2
    print(folder, file=out)
    return 0


COMMANDS: Final[dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Run]]] = {
    "init": ("create a server workspace", _configure_init, _run_init),
    "serve": ("run the server of a workspace", _configure_serve, _run_serve),
    "demo": (
        "train the example job on the embedded server, over HTTP and WebSocket",
        demo.configure,
        demo.run,
    ),
    "example": ("copy a shipped example job folder", _configure_example, _run_example),
}
"""Subcommand name -> (help, add its arguments, run it)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every server-side subcommand in ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="flare-core", description="Serve and drive a federated-learning admin system."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        out: where normal output goes (default: stdout).

    Returns:
        The process exit code.
    """
    stream = out or sys.stdout

    def runner(name: str) -> Callable[[list[str]], int]:
        def run(rest: list[str]) -> int:
            args = build_parser().parse_args([name, *rest])
            return COMMANDS[args.command][2](args, stream)

        return run

    server = {name: (entry[0], runner(name)) for name, entry in COMMANDS.items()}
    return console.run(sys.argv[1:] if argv is None else argv, server)


if __name__ == "__main__":
    sys.exit(main())
