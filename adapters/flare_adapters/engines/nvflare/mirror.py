"""A simulator site's folder mirrored into that site's workspace, while it runs and after.

The simulator writes ``WS/<site>/log.txt``, ``error_log.txt`` and, under ``simulate_job/``, the
site's app, models and meta. Our sites' workspaces keep a job's files under ``<job_id>/`` (what
the shell commands, live logs and the result archive read), so a ``SiteMirror`` copies:

* while the job runs, the new bytes of ``log.txt`` and ``error_log.txt`` on every pump (in
  bounded chunks, so a runaway log costs neither memory nor a stalled pump); ``log.txt`` also
  goes on the site's own ``log.txt`` (what ``tail_target_log`` reads), as an NVFlare site's
  log shows the jobs it runs;
* when it has ended, every other file of the site's folder, ``simulate_job/`` flattened into
  ``<job_id>/`` (``startup/`` and ``local/`` are the simulator's own set-up and stay out).

Copies are bounded in files and bytes; what is cut off is said in the mirrored log.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable

from flare_adapters.engines.simulated import WritableTree

__all__ = ["LIVE_FILES", "SiteMirror"]

LIVE_FILES = ("log.txt", "error_log.txt")
_SKIPPED_DIRS = {"startup", "local"}
_JOB_DIR = "simulate_job"
_CHUNK = 1024 * 1024
_PUMP_BUDGET = 4 * _CHUNK  # per file and pump: the rest follows on the next pump


class SiteMirror:
    """Mirrors one simulator site folder into a workspace tree under ``<job_id>/``.

    Args:
        source: the simulator's folder for the site (``WS/server``, ``WS/site-1``...).
        tree: the site's workspace.
        job_id: the job (the folder its files go under).
        now: the clock (modification times of the mirrored files).
        max_log_bytes: the most bytes of each live file mirrored.
        max_files: the most result files copied at the end.
        max_bytes: the most result bytes copied at the end.
    """

    def __init__(
        self,
        source: str,
        tree: WritableTree,
        job_id: str,
        now: Callable[[], float],
        *,
        max_log_bytes: int = 256 * 1024 * 1024,
        max_files: int = 10_000,
        max_bytes: int = 2 * 1024 * 1024 * 1024,
    ) -> None:
        self._source = source
        self._tree = tree
        self._job_id = job_id
        self._now = now
        self._max_log_bytes = max_log_bytes
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._offsets = dict.fromkeys(LIVE_FILES, 0)
        self._decoders = {
            name: codecs.getincrementaldecoder("utf-8")("replace") for name in LIVE_FILES
        }
        self._texts: dict[str, list[str]] = {name: [] for name in LIVE_FILES}
        self._capped: set[str] = set()

    def pump(self) -> str:
        """Copy what the live files gained since the last pump; returns ``log.txt``'s new text."""
        fresh = ""
        for name in LIVE_FILES:
            data = self._read_new(name)
            if not data:
                continue
            self._tree.append(f"{self._job_id}/{name}", data, self._now())
            text = self._decoders[name].decode(data)
            if name == "log.txt":
                self._tree.append(name, data, self._now())
                fresh += text
            else:
                self._texts[name].append(text)
        return fresh

    def error_text(self) -> str:
        """Everything mirrored of the site's ``error_log.txt`` so far."""
        return "".join(self._texts["error_log.txt"])

    def _read_new(self, name: str) -> bytes:
        path = os.path.join(self._source, name)
        offset = self._offsets[name]
        if name in self._capped:
            return b""
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                budget = min(_PUMP_BUDGET, self._max_log_bytes - offset)
                data = handle.read(max(0, budget))
        except OSError:
            return b""
        self._offsets[name] = offset + len(data)
        if self._offsets[name] >= self._max_log_bytes:
            self._capped.add(name)
            data += f"\n[flare-core: {name} mirrored up to {self._max_log_bytes} bytes]\n".encode()
        return data

    def collect(self) -> None:
        """Copy the site's result files (everything but the live files and the set-up)."""
        copied = 0
        for files, rel in enumerate(self._result_files()):
            if files >= self._max_files:
                self._note(f"result files cut off after {self._max_files}")
                return
            copied += self._copy(os.path.join(self._source, rel), self._target(rel))
            if copied >= self._max_bytes:
                self._note(f"result files cut off after {self._max_bytes} bytes")
                return

    def _result_files(self) -> list[str]:
        found: list[str] = []
        for folder, dirs, names in os.walk(self._source):
            rel_dir = os.path.relpath(folder, self._source)
            if rel_dir == ".":
                dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(folder, d)))
            for name in sorted(names):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                full = os.path.join(folder, name)
                if rel not in LIVE_FILES and os.path.isfile(full) and not os.path.islink(full):
                    found.append(rel)
        return found

    def _target(self, rel: str) -> str:
        if rel.startswith(f"{_JOB_DIR}/"):
            rel = rel[len(_JOB_DIR) + 1 :]
        return f"{self._job_id}/{rel}"

    def _copy(self, source: str, target: str) -> int:
        size = 0
        try:
            with open(source, "rb") as handle:
                self._tree.write(target, b"", self._now())
                while chunk := handle.read(_CHUNK):
                    self._tree.append(target, chunk, self._now())
                    size += len(chunk)
        except OSError:
            return size
        return size

    def _note(self, message: str) -> None:
        self._tree.append(
            f"{self._job_id}/log.txt", f"[flare-core: {message}]\n".encode(), self._now()
        )
