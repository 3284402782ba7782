"""The ``flare-core`` command line for people and CI (click; rich tables and progress).

    flare-core jobs submit|list|show|wait|abort|delete|clone|download|logs ...
    flare-core system status|info|version
    flare-core sites list|enable|disable|remove
    flare-core studies list|show|register|add-site|remove-site|add-user|remove-user|remove
    flare-core shell ls|cat|head|tail|grep SITE ...
    flare-core init|serve|demo ...        (the server side: ``flare_adapters.cli``)

The short forms of earlier releases stay as aliases with their JSON output: ``submit``,
``job`` (``jobs show``), ``wait``, ``abort``, ``delete``, ``clone``, ``logs``, ``download``,
``status`` (``system status``) and ``jobs`` without a sub-command (``jobs list``).

The server-side commands are not defined here: ``build_app`` receives them as a table of
``name -> (help, run(argv) -> exit code)`` and hands their arguments over untouched, so they
keep their own parser and options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from typing import Any

import click

from flare_adapters.console._admin import sites, studies, system
from flare_adapters.console._app import common_options, state
from flare_adapters.console._exits import ExitCode, exit_code_help
from flare_adapters.console._jobs import jobs
from flare_adapters.console._shell import shell

__all__ = ["ALIASES", "ExitCode", "ServerCommands", "build_app", "run"]

ServerCommands = Mapping[str, tuple[str, Callable[[list[str]], int]]]
"""The server-side commands: name -> (one-line help, run with the remaining arguments)."""

ALIASES: Mapping[str, tuple[str, str]] = {
    "submit": ("jobs", "submit"),
    "job": ("jobs", "show"),
    "wait": ("jobs", "wait"),
    "abort": ("jobs", "abort"),
    "delete": ("jobs", "delete"),
    "clone": ("jobs", "clone"),
    "logs": ("jobs", "logs"),
    "download": ("jobs", "download"),
    "status": ("system", "status"),
}
"""The short forms: alias -> (group, command)."""


def _version() -> str:
    try:
        return distribution_version("flare-core")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


class _Root(click.Group):
    """The top-level group: aliases resolve to their command, marked to print JSON."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = ALIASES.get(cmd_name)
        if target is not None:
            group = super().get_command(ctx, target[0])
            if isinstance(group, click.Group):
                state().legacy = True
                return group.get_command(ctx, target[1])
        return super().get_command(ctx, cmd_name)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        aliases = ", ".join(f"{a} ({' '.join(t)})" for a, t in ALIASES.items())
        with formatter.section("Short forms (print JSON, as before)"):
            formatter.write_text(aliases)
        with formatter.section("Exit codes"):
            formatter.write_text("\b\n" + exit_code_help())


def _server_command(name: str, help_text: str, run: Callable[[list[str]], int]) -> click.Command:
    @click.pass_context
    def invoke(ctx: click.Context, args: tuple[str, ...]) -> None:
        ctx.exit(run(list(args)))

    return click.Command(
        name,
        callback=invoke,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=f"{help_text} (flare-core {name} --help for its options)",
        short_help=help_text,
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
        add_help_option=False,
    )


def build_app(server_commands: ServerCommands) -> click.Group:
    """The ``flare-core`` click group: the session commands plus ``server_commands``."""

    @click.group(
        cls=_Root,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.version_option(_version(), "--version", prog_name="flare-core")
    @common_options
    def app() -> None:
        """Serve and drive a federated-learning admin system (NVIDIA FLARE's SessionSpec).

        Connection settings come from the options, the environment (FLARE_CORE_URL,
        FLARE_CORE_USER, FLARE_CORE_API_KEY_FILE or FLARE_CORE_API_KEY, FLARE_CORE_STUDY)
        or a profile in ~/.config/flare-core/config.toml (--profile, --config).
        """

    for group in (jobs, system, sites, studies, shell):
        app.add_command(group)
    for name, (help_text, run) in server_commands.items():
        app.add_command(_server_command(name, help_text, run))
    return app


def run(argv: Sequence[str], server_commands: ServerCommands) -> int:
    """Run the CLI on ``argv``; returns the exit code (never raises ``SystemExit``)."""
    app = build_app(server_commands)
    try:
        result: Any = app.main(list(argv), prog_name="flare-core", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except click.exceptions.Abort:
        return ExitCode.INTERRUPTED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.SERVER_ERROR
    return int(result) if isinstance(result, int) else ExitCode.OK
