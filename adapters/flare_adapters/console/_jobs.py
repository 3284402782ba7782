"""``flare-core jobs ...``: submit, list, show, wait, abort, delete, clone, download, logs.

``wait`` and ``submit --wait`` exit 0 only when the job ends ``FINISHED:COMPLETED``; any other
terminal status exits 1 and a timeout 3 (``_exits``), and the output names the status.
"""

from __future__ import annotations

import time
from typing import Any

import click

from flare_adapters.console._app import DefaultGroup, common_options, run_session, state
from flare_adapters.console._exits import ExitCode
from flare_adapters.console._output import Output
from flare_core.lifecycle import monitor_terminal
from flare_ports import SessionSpec

__all__ = ["COMPLETED", "jobs", "wait_outcome"]

COMPLETED = "FINISHED:COMPLETED"

_LIST_COLUMNS = (
    ("job_id", "JOB ID"),
    ("job_name", "NAME"),
    ("status", "STATUS"),
    ("submit_time", "SUBMITTED"),
    ("duration", "DURATION"),
)


def wait_outcome(status: str) -> ExitCode:
    """The exit code of a wait that saw the job end with ``status``."""
    return ExitCode.OK if status == COMPLETED else ExitCode.JOB_FAILED


@click.group(cls=DefaultGroup, default="list")
def jobs() -> None:
    """Submit, watch and manage jobs (no sub-command: list them)."""


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"


def _wait(session: SessionSpec, output: Output, job_id: str, timeout: float, poll: float) -> int:
    seen: list[str] = []
    rounds_seen = [0]
    started = time.monotonic()

    def show(_: SessionSpec, __: str, meta: dict[str, Any]) -> bool:
        # Progress for people: one line per status change and per finished round (the
        # nvflare engine's ``progress``), with the time since the wait began.
        status = str(meta.get("status"))
        progress = meta.get("progress")
        rounds = progress.get("rounds_finished") if isinstance(progress, dict) else None
        if isinstance(rounds, int) and rounds > rounds_seen[0] and isinstance(progress, dict):
            rounds_seen[0] = rounds
            total = progress.get("num_rounds") or "?"
            output.note(f"{job_id}: round {rounds}/{total} done (+{_since(started)})")
        if not seen or seen[-1] != status:
            seen.append(status)
            output.note(f"{job_id}: {status} (+{_since(started)})")
        return True

    callback = show if state().show_progress() and not output.json_mode else None
    _, meta = session.monitor_job_and_return_job_meta(job_id, timeout, poll, callback)
    if meta is None:  # the only other outcome without a callback that stops: TIMEOUT
        output.error(
            {
                "error": "JobTimeout",
                "message": f"job {job_id} did not finish within {timeout}s",
                "job_id": job_id,
                "status": seen[-1] if seen else None,
            }
        )
        return ExitCode.TIMEOUT
    status = str(meta.get("status"))
    if output.json_mode:
        output.json(meta)
    else:
        output.line(f"{job_id} {status}")
    return wait_outcome(status)


@jobs.command("submit")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--token", default=None, help="retry-safe submit token")
@click.option("--wait", "wait_", is_flag=True, help="wait for the job to end (exit code: status)")
@click.option("--timeout", type=float, default=0.0, help="--wait: seconds (0: forever)")
@click.option("--poll", type=float, default=2.0, help="--wait: seconds between polls")
@common_options
def submit(folder: str, token: str | None, wait_: bool, timeout: float, poll: float) -> None:
    """Submit a job folder; print its job id (with --wait: and how it ended)."""

    def call(session: SessionSpec, output: Output) -> int:
        job_id = session.submit_job(folder, token)
        if not wait_:
            if output.json_mode:
                output.json({"job_id": job_id})
            else:
                output.line(job_id)
            return ExitCode.OK
        if not output.json_mode:
            output.note(f"submitted {job_id}")
        return _wait(session, output, job_id, timeout, poll)

    run_session(call)


@jobs.command("list")
@click.option("--limit", type=int, default=None, help="newest N jobs only")
@click.option("--reverse", is_flag=True, help="newest first")
@click.option("--name", default=None, help="job name prefix")
@click.option("--id", "id_prefix", default=None, help="job id prefix")
@click.option("--detailed", is_flag=True, help="full job meta per job")
@common_options
def list_(
    limit: int | None, reverse: bool, name: str | None, id_prefix: str | None, detailed: bool
) -> None:
    """List the study's jobs, oldest first."""

    def call(session: SessionSpec, output: Output) -> int:
        rows = session.list_jobs(detailed, limit, id_prefix, name, reverse)
        if output.json_mode:
            output.json(rows)
        elif detailed:
            for row in rows:
                output.fields(row)
                output.line("")
        else:
            output.table(rows, _LIST_COLUMNS)
        return ExitCode.OK

    run_session(call)


@jobs.command("show")
@click.argument("job_id")
@common_options
def show(job_id: str) -> None:
    """Show a job's meta."""
    run_session(lambda session, output: _print(output, session.get_job_meta(job_id)))


def _print(output: Output, value: Any) -> int:
    output.result(value)
    return ExitCode.OK


@jobs.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=float, default=0.0, help="seconds (0: forever)")
@click.option("--poll", type=float, default=2.0, help="seconds between polls")
@common_options
def wait(job_id: str, timeout: float, poll: float) -> None:
    """Wait until a job ends; exit 0 only if it ended FINISHED:COMPLETED."""
    run_session(lambda session, output: _wait(session, output, job_id, timeout, poll))


@jobs.command("abort")
@click.argument("job_id")
@common_options
def abort(job_id: str) -> None:
    """Abort a running job."""

    def call(session: SessionSpec, output: Output) -> int:
        session.abort_job(job_id)
        if output.json_mode:
            output.json(None)
        else:
            output.line(f"aborted {job_id}")
        return ExitCode.OK

    run_session(call)


@jobs.command("delete")
@click.argument("job_id")
@common_options
def delete(job_id: str) -> None:
    """Delete a job and its files."""
    run_session(lambda session, output: _print(output, session.delete_job(job_id)))


@jobs.command("clone")
@click.argument("job_id")
@common_options
def clone(job_id: str) -> None:
    """Submit a copy of a job; print the new job id."""

    def call(session: SessionSpec, output: Output) -> int:
        new_id = session.clone_job(job_id)
        if output.json_mode:
            output.json({"job_id": new_id})
        else:
            output.line(new_id)
        return ExitCode.OK

    run_session(call)


@jobs.command("download")
@click.argument("job_id")
@click.option("--dest", default=None, help="parent directory for the result")
@common_options
def download(job_id: str, dest: str | None) -> None:
    """Download a finished job's result; print where it went."""

    def call(session: SessionSpec, output: Output) -> int:
        path = session.download_job_result(job_id, dest)
        if output.json_mode:
            output.json({"path": path})
        else:
            output.line(path)
        return ExitCode.OK

    run_session(call)


def _print_logs(output: Output, logs: dict[str, Any], prefix: bool) -> None:
    for site, text in logs.get("logs", {}).items():
        for line in str(text).splitlines():
            output.line(f"[{site}] {line}" if prefix else line)
    for site, reason in logs.get("unavailable", {}).items():
        output.note(f"[{site}] no log: {reason}")


def _follow(session: SessionSpec, output: Output, job_id: str, target: str, poll: float) -> int:
    # Print what each site's log gained since the last read, whole lines only, until the job
    # has ended and its last lines are out. The status is read before the logs, so the read
    # after the end holds everything. A log shorter than what was printed was cut: start over.
    printed: dict[str, int] = {}
    while True:
        done = monitor_terminal(str(session.get_job_meta(job_id).get("status")))
        logs = session.get_job_logs(job_id, target).get("logs", {})
        for site, text in logs.items():
            start = printed.get(site, 0)
            if start > len(text):
                start = 0
            end = len(text) if done else text.rfind("\n", start) + 1
            if end <= start:
                continue
            printed[site] = end
            for line in text[start:end].splitlines():
                if output.json_mode:
                    output.json_line({"site": site, "line": line})
                else:
                    output.line(f"[{site}] {line}" if len(logs) > 1 else line)
        if done:
            return ExitCode.OK
        time.sleep(poll)


@jobs.command("logs")
@click.argument("job_id")
@click.option("--target", default="server", help="server, all or a site name")
@click.option("--tail", type=int, default=None, help="last N lines per site")
@click.option("--grep", default=None, help="keep lines containing this text")
@click.option("--follow", "-f", is_flag=True, help="print new lines until the job ends")
@click.option("--poll", type=float, default=1.0, help="--follow: seconds between reads")
@common_options
def logs(
    job_id: str, target: str, tail: int | None, grep: str | None, follow: bool, poll: float
) -> None:
    """Show a job's logs (with --follow: as they grow, until the job ends)."""

    def call(session: SessionSpec, output: Output) -> int:
        if follow:
            return _follow(session, output, job_id, target, poll)
        value = session.get_job_logs(job_id, target, tail, grep)
        if output.json_mode:
            output.json(value)
        else:
            _print_logs(output, value, prefix=len(value.get("logs", {})) > 1)
        return ExitCode.OK

    run_session(call)
