"""How the CLI prints: plain text and tables for people, JSON with stable keys for programs.

Human output turns times into ISO 8601 local time; JSON prints values exactly as the session
returned them (epoch floats stay floats). Errors go to stderr: one line for people, a JSON
document ``{"error": <exception name>, "message": ..., <its attributes>}`` with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

__all__ = ["Output", "local_time"]


def local_time(value: object) -> str:
    """An epoch float or an ISO 8601 string as ISO 8601 local time (other values as text)."""
    moment: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        moment = datetime.fromtimestamp(float(value))
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if moment is None:
        return "" if value is None else str(value)
    return moment.astimezone().isoformat(timespec="seconds")


def _is_time_key(key: str) -> bool:
    return key.endswith(("_time", "time_iso")) or key == "time"


def _text(key: str, value: object) -> str:
    if _is_time_key(key):
        return local_time(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else str(value)


class Output:
    """Where and how one command invocation prints.

    Args:
        json_mode: print JSON instead of text.
        out: standard output.
        err: standard error.
    """

    def __init__(self, json_mode: bool, out: TextIO, err: TextIO) -> None:
        self.json_mode = json_mode
        self.out = out
        self.err = err
        # A terminal's width for people; piped, rows stay whole lines (grep, awk, cut).
        width = None if out.isatty() else 100_000
        self.console = Console(file=out, highlight=False, soft_wrap=True, width=width)
        self.errors = Console(file=err, highlight=False, soft_wrap=True)

    def json(self, value: Any) -> None:
        """Print ``value`` as indented JSON with sorted keys."""
        print(json.dumps(value, indent=2, sort_keys=True, default=str), file=self.out)

    def json_line(self, value: Any) -> None:
        """Print ``value`` as one line of compact JSON, flushed (streams: NDJSON)."""
        print(json.dumps(value, sort_keys=True, default=str), file=self.out, flush=True)

    def line(self, text: str) -> None:
        """Print one line of plain text (no markup)."""
        self.console.print(text, markup=False)

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
        """Print ``rows`` as a table of ``(key, header)`` columns."""
        table = Table(box=None, pad_edge=False, header_style="bold")
        for _, header in columns:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*(_text(key, row.get(key)) for key, _ in columns))
        table.columns[-1].overflow = "fold"
        self.console.print(table)

    def fields(self, value: Mapping[str, Any]) -> None:
        """Print a mapping as ``key  value`` lines (nested values as compact JSON)."""
        self.table(
            [{"key": key, "value": _text(key, item)} for key, item in value.items()],
            (("key", "field"), ("value", "value")),
        )

    def result(self, value: Any) -> None:
        """Print any command result: JSON, or a readable rendering of it."""
        if self.json_mode:
            self.json(value)
        elif isinstance(value, Mapping):
            self.fields(value)
        elif isinstance(value, list) and all(isinstance(row, Mapping) for row in value):
            keys = list(dict.fromkeys(key for row in value for key in row))
            self.table(value, [(key, key) for key in keys])
        elif value is not None:
            self.line(str(value).rstrip("\n"))

    def error(self, document: Mapping[str, Any]) -> None:
        """Report a failure on stderr."""
        if self.json_mode:
            print(json.dumps(dict(document), sort_keys=True, default=str), file=self.err)
        else:
            self.errors.print(
                f"flare-core: {document['error']}: {document['message']}", markup=False
            )

    def note(self, text: str) -> None:
        """A progress or status line for people (stderr; never part of the result)."""
        self.errors.print(text, markup=False)
