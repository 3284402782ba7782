"""Figures, the goals they are judged against, the printed table and the JSON report.

A figure is one measured quantity next to the baseline measured in the same run. Its goal is
either a bound on the ratio to that baseline or an absolute bound (issue 12 states both kinds);
a figure with no goal is reported only (for example how listing grows with the job count).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Figure", "Goal", "Report"]

Kind = Literal["ratio_at_most", "ratio_at_least", "value_at_most"]


@dataclass(frozen=True)
class Goal:
    """A bound: ``ratio <= limit``, ``ratio >= limit`` or ``value <= limit`` (in ``unit``)."""

    kind: Kind
    limit: float
    text: str

    def met(self, value: float, ratio: float | None) -> bool | None:
        if self.kind == "value_at_most":
            return value <= self.limit
        if ratio is None:
            return None  # the baseline could not be measured in this run
        return ratio <= self.limit if self.kind == "ratio_at_most" else ratio >= self.limit


def at_most(limit: float, text: str) -> Goal:
    return Goal("ratio_at_most", limit, text)


def at_least(limit: float, text: str) -> Goal:
    return Goal("ratio_at_least", limit, text)


def under(limit: float, text: str) -> Goal:
    return Goal("value_at_most", limit, text)


@dataclass
class Figure:
    """One line of the table.

    Attributes:
        group: the issue's heading (``reads``, ``writes``, ...).
        name: what was measured, e.g. ``get_job_meta http sync``.
        value: the median, in ``unit`` (ms, MiB/s, round trips, KiB/session, ...).
        unit: the unit of ``value``, ``p99`` and ``baseline_value``.
        p99: the 99th percentile, when the figure is a latency.
        baseline: what ``baseline_value`` is (``raw aiohttp GET``...).
        baseline_value: its median in the same run, same unit.
        ratio: how ``value`` compares with the baseline, as the goal states it (``value /
            baseline`` for latencies, ``value / baseline`` for throughputs, ``baseline /
            value`` for "N x faster than NVFlare").
        goal: the bound, when the issue sets one.
        passed: whether the goal is met (None: no goal, or its baseline is missing).
        extra: anything else worth keeping in the JSON (samples, sizes).
    """

    group: str
    name: str
    value: float
    unit: str
    p99: float | None = None
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    goal: Goal | None = None
    passed: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def judge(self) -> Figure:
        self.passed = None if self.goal is None else self.goal.met(self.value, self.ratio)
        return self


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) >= 1000 or abs(value) < 0.01):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.2f}"


class Report:
    """Collects figures; prints the table; writes the JSON."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.figures: list[Figure] = []
        self.skipped: list[str] = []

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure.judge())
        return figure

    def extend(self, figures: Sequence[Figure]) -> None:
        for figure in figures:
            self.add(figure)

    def skip(self, what: str) -> None:
        """Record a part that did not run (and why), so the table says so."""
        self.skipped.append(what)

    @property
    def missed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.passed is False]

    def table(self) -> str:
        head = ("group", "figure", "median", "p99", "unit", "baseline", "base", "ratio", "goal", "")
        rows = [head]
        for f in self.figures:
            verdict = {True: "ok", False: "MISSED", None: ""}[f.passed]
            rows.append(
                (
                    f.group,
                    f.name,
                    _num(f.value),
                    _num(f.p99),
                    f.unit,
                    f.baseline or "-",
                    _num(f.baseline_value),
                    "-" if f.ratio is None else f"{f.ratio:.2f}x",
                    "-" if f.goal is None else f.goal.text,
                    verdict,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for what in self.skipped:
            lines.append(f"skipped: {what}")
        judged = [f for f in self.figures if f.passed is not None]
        lines.append(f"goals: {len(judged) - len(self.missed)}/{len(judged)} met")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The table as Markdown (docs/performance.md is pasted from it)."""
        lines = [
            "| group | figure | median | p99 | unit | baseline | base median | ratio | goal | |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in self.figures:
            verdict = {True: "ok", False: "**missed**", None: ""}[f.passed]
            ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
            goal = "-" if f.goal is None else f.goal.text
            lines.append(
                f"| {f.group} | {f.name} | {_num(f.value)} | {_num(f.p99)} | {f.unit} "
                f"| {f.baseline or '-'} | {_num(f.baseline_value)} | {ratio} | {goal} | {verdict} |"
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        figures = []
        for f in self.figures:
            entry = asdict(f)
            entry["goal"] = None if f.goal is None else asdict(f.goal)
            figures.append(entry)
        return {"meta": self.meta, "figures": figures, "skipped": self.skipped}

    def write(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.as_json(), out, indent=2)
            out.write("\n")
