"""The click plumbing shared by every session command: options, state, errors, aliases.

Connection options (``--url``, ``--user``, ``--api-key-file``, ``--study``, ``--profile``,
``--config``, TLS files) and ``--json`` are accepted before the command group and after the
command alike (the old short forms took them last), and the later one wins. A session command
is a function of ``(session, output, **its arguments)`` returning an exit code; ``run_session``
opens the session, runs it and turns every exception into its documented exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn, TypeVar

import click

from flare_adapters.console._exits import ExitCode, exit_code_for
from flare_adapters.console._output import Output
from flare_adapters.console._profile import ProfileError, resolve
from flare_adapters.network import TransferProgress
from flare_core import Problem
from flare_ports import SessionSpec, connect

__all__ = [
    "CliState",
    "DefaultGroup",
    "common_options",
    "run_session",
    "state",
]

F = TypeVar("F", bound=Callable[..., Any])

_NETWORK_SCHEMES: Final = ("http", "https", "ws", "wss")


@dataclass
class CliState:
    """What the options of one invocation set (on the root context's ``obj``)."""

    flags: dict[str, str | None] = field(default_factory=dict)
    json_mode: bool = False
    legacy: bool = False
    progress: bool | None = None  # None: when stdout is a terminal

    def output(self) -> Output:
        """The output of this invocation (short forms keep their JSON output)."""
        return Output(self.json_mode or self.legacy, sys.stdout, sys.stderr)

    def show_progress(self) -> bool:
        """Live progress goes to people only: on when stdout is a terminal, unless told."""
        return sys.stdout.isatty() if self.progress is None else self.progress


def state() -> CliState:
    """The state of the running invocation."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        if value is None:
            return
        current = state()
        if name == "json":
            current.json_mode = current.json_mode or bool(value)
        elif name == "progress":
            current.progress = bool(value)
        else:
            current.flags[name] = str(value)

    return callback


def common_options(function: F) -> F:
    """Add the connection and output options (stored in ``CliState``, not passed on)."""
    options = [
        click.option("--url", help="server URL: http(s)://, ws(s)://, memory://, nvflare://"),
        click.option("--user", help="user name"),
        click.option(
            "--api-key-file",
            type=click.Path(dir_okay=False),
            help="file holding the API key (or FLARE_CORE_API_KEY; never the key itself)",
        ),
        click.option("--study", help="study to bind the session to (default: default)"),
        click.option("--profile", help="profile of the config file to use"),
        click.option("--config", type=click.Path(dir_okay=False), help="the profile file"),
        click.option("--ca-file", type=click.Path(dir_okay=False), help="CA bundle (TLS)"),
        click.option("--cert-file", type=click.Path(dir_okay=False), help="client cert (TLS)"),
        click.option("--key-file", type=click.Path(dir_okay=False), help="client key (TLS)"),
    ]
    for option in reversed(options):  # decorators apply bottom-up: keep the listed order
        function = option(function)
    function = click.option(
        "--json", "json_flag", is_flag=True, default=None, help="print JSON (stable keys)"
    )(function)
    function = click.option(
        "--progress/--no-progress",
        default=None,
        help="live progress on stderr (default: when stdout is a terminal)",
    )(function)
    for param in getattr(function, "__click_params__", []):
        if isinstance(param, click.Option) and param.name is not None:
            key = "json" if param.name == "json_flag" else param.name
            param.expose_value = False
            param.callback = _remember(key)
    return function


def _problem(error: BaseException) -> dict[str, Any]:
    problem = Problem.from_exception(error)
    return {"error": problem.error, "message": problem.message, **problem.attrs}


@contextlib.contextmanager
def _session(current: CliState, output: Output) -> Iterator[SessionSpec]:
    settings = resolve(current.flags, os.environ)
    options: dict[str, Any] = {}
    if settings.url.split("://", 1)[0].lower() in _NETWORK_SCHEMES:
        context = settings.ssl_context()
        if context is not None:
            options["ssl"] = context
        if current.show_progress() and not output.json_mode:
            options["progress"] = _progress_printer(output)
    with connect(
        settings.url,
        user=settings.user,
        api_key=settings.api_key,
        study=settings.study,
        **options,
    ) as session:
        yield session


def _progress_printer(output: Output) -> Callable[[TransferProgress], None]:
    # Called on the transport's loop thread: print, never touch the session.
    step = 1024 * 1024
    last: dict[str, int] = {}

    def report(progress: TransferProgress) -> None:
        shown = last.get(progress.op, -step)
        if progress.done or progress.transferred - shown >= step:
            last[progress.op] = progress.transferred
            state_text = "done" if progress.done else "..."
            output.note(
                f"{progress.direction} {progress.op}: {progress.transferred:,} bytes {state_text}"
            )

    return report


def run_session(call: Callable[[SessionSpec, Output], int]) -> NoReturn:
    """Open the session the options describe, run ``call`` on it, exit with its code.

    Every failure is printed (one line, or a JSON document with ``--json``) and exits with
    the code of its error class (``flare_adapters.console._exits``).
    """
    current = state()
    output = current.output()
    try:
        with _session(current, output) as session:
            code = call(session, output)
    except ProfileError as exc:
        output.error({"error": "UsageError", "message": str(exc)})
        code = ExitCode.USAGE
    except KeyboardInterrupt:
        output.error({"error": "Interrupted", "message": "interrupted"})
        code = ExitCode.INTERRUPTED
    except Exception as exc:  # every failure is reported, typed by name, with its exit code
        output.error(_problem(exc))
        code = exit_code_for(exc)
    raise click.exceptions.Exit(int(code))


class DefaultGroup(click.Group):
    """A group that runs ``default`` when no sub-command is named (``flare-core jobs``)."""

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in ("--help", "-h")):
            args = [self.default, *args]
            state().legacy = True  # the old "jobs" command printed JSON
        return super().parse_args(ctx, args)
