"""What a simulator run's logs and exit say: its rounds as they happen, and how it ended.

Pure functions over log text (no files, no processes), so the rules are tested on their own:

* ``RoundTracker`` follows the server's ``log.txt`` as it grows and reports the workflow's
  rounds (NVFlare's ``ScatterAndGather`` and its kin log ``Round N started.`` and
  ``Round N finished.``), with each round's duration read from the log's own timestamps;
* ``outcome`` maps a finished run to the job lifecycle as an NVFlare server would. The
  simulator exits 0 even when a site could not build its app (measured on 2.9: a component
  off the allow-list raises ``ComponentNotAuthorized`` on the site, is logged to its
  ``error_log.txt``, and the run ends early with exit code 0), so the exit code alone does not
  tell success: the sites' error logs decide too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ABNORMAL_MARKERS", "Outcome", "RoundTracker", "first_error", "outcome"]

_ROUND = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (?P<source>\w+) - INFO - .*?"
    r"Round (?P<round>\d+) (?P<what>started|finished)\.\s*$"
)
_MAX_LINE = 64 * 1024  # a longer "line" is not one of the workflow's round lines

ABNORMAL_MARKERS = ("ComponentNotAuthorized", "ConfigError", "Failed to start the app")
"""Errors that mean a site never ran its app: NVFlare ends such a job ``FINISHED:ABNORMAL``."""


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class RoundTracker:
    """Reads the server log incrementally and keeps the workflow's round progress.

    Args:
        num_rounds: the rounds the job's workflow is configured for (0 when unknown).
    """

    num_rounds: int = 0
    workflow: str = ""
    current_round: int | None = None
    rounds_finished: int = 0
    round_seconds: list[float] = field(default_factory=list)
    _started_at: dict[int, float] = field(default_factory=dict)
    _partial: str = ""

    def feed(self, text: str) -> bool:
        """Take the log's next bytes (decoded); True when the progress changed."""
        data = self._partial + text
        lines = data.split("\n")
        self._partial = lines.pop()
        if len(self._partial) > _MAX_LINE:
            self._partial = ""
        changed = False
        for line in lines:
            match = _ROUND.match(line) if len(line) <= _MAX_LINE else None
            if match is None:
                continue
            number = int(match["round"])
            moment = _epoch(match["ts"])
            self.workflow = self.workflow or match["source"]
            if match["what"] == "started":
                self._started_at[number] = moment
                self.current_round = number
            else:
                began = self._started_at.pop(number, moment)
                self.round_seconds.append(round(moment - began, 3))
                self.rounds_finished += 1
            changed = True
        return changed

    def progress(self) -> dict[str, Any]:
        """The job meta's ``progress`` value (JSON-able)."""
        return {
            "workflow": self.workflow,
            "current_round": self.current_round,
            "num_rounds": self.num_rounds,
            "rounds_finished": self.rounds_finished,
            "round_seconds": list(self.round_seconds),
        }

    def stats(self) -> dict[str, Any]:
        """The workflow's entry in the server's ``show_stats`` (NVFlare's shape)."""
        return {
            "phase": "train" if self.current_round is not None else "init",
            "current_round": self.current_round,
            "num_rounds": self.num_rounds,
        }


@dataclass(frozen=True)
class Outcome:
    """How a run ended: a ``FINISHED:*`` status and, for a failure, why."""

    status: str
    reason: str = ""


def first_error(text: str) -> str:
    """The most telling line of an error log: its last exception line, else its first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "exception: " in line:  # NVFlare's config errors wrap the real one: keep that
            line = line.rsplit("exception: ", 1)[1]
        head = line.split(":", 1)[0]
        if (
            head.endswith(("Error", "Exception", "Unauthorized", "NotAuthorized"))
            and " " not in head
        ):
            return line[:500]
    return lines[0][:500] if lines else ""


def outcome(returncode: int | None, aborted: bool, error_logs: dict[str, str]) -> Outcome:
    """The terminal status of a finished simulator run.

    Args:
        returncode: the simulator's exit code (negative: killed by that signal; None: unknown).
        aborted: the engine stopped it because an admin aborted the job.
        error_logs: each site's ``error_log.txt`` content (``"server"`` included).

    Returns:
        ``FINISHED:ABORTED`` for an abort; ``FINISHED:ABNORMAL`` when a site could not build
        its app (``ABNORMAL_MARKERS``); ``FINISHED:EXECUTION_EXCEPTION`` for a non-zero exit or
        any other logged error; else ``FINISHED:COMPLETED``.
    """
    if aborted:
        return Outcome("FINISHED:ABORTED", "aborted by admin")
    failing = {site: text for site, text in sorted(error_logs.items()) if text.strip()}
    for site, text in failing.items():
        if any(marker in text for marker in ABNORMAL_MARKERS):
            return Outcome("FINISHED:ABNORMAL", f"{site}: {first_error(text)}")
    if returncode != 0:
        detail = next((f"{s}: {first_error(t)}" for s, t in failing.items()), "")
        how = "was killed" if returncode is None or returncode < 0 else "exited"
        code = "" if returncode is None else f" ({returncode})"
        reason = f"the simulator {how}{code}" + (f"; {detail}" if detail else "")
        return Outcome("FINISHED:EXECUTION_EXCEPTION", reason)
    for site, text in failing.items():
        return Outcome("FINISHED:EXECUTION_EXCEPTION", f"{site}: {first_error(text)}")
    return Outcome("FINISHED:COMPLETED")
