"""``flare-core shell ls|cat|head|tail|grep SITE ...``: read a site's workspace.

Each command is one ``SessionSpec`` target call (``ls_target``, ``cat_target``, ...), which
checks the options and confines the read to the site's workspace; this module only builds the
options string from click options and prints the text.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from flare_adapters.console._app import common_options, run_session
from flare_adapters.console._exits import ExitCode
from flare_adapters.console._output import Output
from flare_ports import SessionSpec

__all__ = ["shell"]


def _options(*flags: str | None) -> str | None:
    present = [flag for flag in flags if flag]
    return " ".join(present) or None


def _print_text(call: Callable[[SessionSpec], str]) -> None:
    def go(session: SessionSpec, output: Output) -> int:
        text = call(session)
        if output.json_mode:
            output.json({"text": text})
        else:
            output.out.write(text if text.endswith("\n") or not text else text + "\n")
            output.out.flush()
        return ExitCode.OK

    run_session(go)


@click.group()
def shell() -> None:
    """Read files in a site's workspace (site: server or a client name)."""


@shell.command("ls")
@click.argument("site")
@click.argument("path", required=False)
@click.option("-l", "long_", is_flag=True, help="long listing")
@click.option("-a", "all_", is_flag=True, help="include hidden entries")
@common_options
def ls(site: str, path: str | None, long_: bool, all_: bool) -> None:
    """List a directory."""
    options = _options("-l" if long_ else None, "-a" if all_ else None)
    _print_text(lambda s: s.ls_target(site, options, path))


@shell.command("cat")
@click.argument("site")
@click.argument("path")
@click.option("-n", "numbers", is_flag=True, help="number the lines")
@common_options
def cat(site: str, path: str, numbers: bool) -> None:
    """Print a file."""
    _print_text(lambda s: s.cat_target(site, "-n" if numbers else None, path))


@shell.command("head")
@click.argument("site")
@click.argument("path")
@click.option("-n", "lines", type=int, default=None, help="number of lines")
@common_options
def head(site: str, path: str, lines: int | None) -> None:
    """Print the first lines of a file."""
    options = None if lines is None else f"-n {lines}"
    _print_text(lambda s: s.head_target(site, options, path))


@shell.command("tail")
@click.argument("site")
@click.argument("path")
@click.option("-n", "lines", type=int, default=None, help="number of lines")
@common_options
def tail(site: str, path: str, lines: int | None) -> None:
    """Print the last lines of a file."""
    options = None if lines is None else f"-n {lines}"
    _print_text(lambda s: s.tail_target(site, options, path))


@shell.command("grep")
@click.argument("site")
@click.argument("pattern")
@click.argument("path")
@click.option("-i", "ignore_case", is_flag=True, help="ignore case")
@click.option("-n", "numbers", is_flag=True, help="print line numbers")
@common_options
def grep(site: str, pattern: str, path: str, ignore_case: bool, numbers: bool) -> None:
    """Print the lines of a file that contain PATTERN."""
    options = _options("-i" if ignore_case else None, "-n" if numbers else None)
    _print_text(lambda s: s.grep_target(site, options, pattern, path))
