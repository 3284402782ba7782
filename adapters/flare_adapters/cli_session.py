"""The everyday session commands of the ``flare-core`` CLI, printing JSON.

    flare-core submit FOLDER [--token T]        -> {"job_id": ...}
    flare-core jobs [--limit N] [--reverse] [--name PREFIX] [--id PREFIX] [--detailed]
    flare-core job JOB_ID                       -> the job's meta
    flare-core wait JOB_ID [--timeout S] [--poll S]
    flare-core abort JOB_ID | delete JOB_ID | clone JOB_ID
    flare-core logs JOB_ID [--target T] [--tail N] [--grep TEXT]
    flare-core download JOB_ID [--dest DIR]    -> {"path": ...}
    flare-core status [--target-type T] [--target NAME ...]

Every command takes ``--url``, ``--user``, ``--api-key`` and ``--study`` (or the environment
variables ``FLARE_CORE_URL``, ``FLARE_CORE_USER``, ``FLARE_CORE_API_KEY``,
``FLARE_CORE_STUDY``; the key is better kept out of the shell history). Results go to stdout
as JSON; a failure prints ``{"error": <exception name>, "message": ..., <attributes>}`` to
stderr and exits 1 (2 for usage errors), so scripts can branch on the exception name.
Each command is one ``SessionSpec`` call: the CLI adds no behaviour of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, Final, TextIO

from flare_core import Problem
from flare_ports import SessionSpec, connect

__all__ = ["SESSION_COMMANDS"]

Call = Callable[[SessionSpec, argparse.Namespace], Any]


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--url", default=env("FLARE_CORE_URL"), help="http(s):// or ws(s)://")
    parser.add_argument("--user", default=env("FLARE_CORE_USER"), help="user name")
    parser.add_argument("--api-key", default=env("FLARE_CORE_API_KEY"), help="API key")
    parser.add_argument("--study", default=env("FLARE_CORE_STUDY", "default"), help="study")


def _job_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", help="the job's id")


def _submit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="the job folder to submit")
    parser.add_argument("--token", default=None, help="retry-safe submit token")


def _jobs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=None, help="newest N jobs only")
    parser.add_argument("--reverse", action="store_true", help="newest first")
    parser.add_argument("--name", default=None, help="job name prefix")
    parser.add_argument("--id", dest="id_prefix", default=None, help="job id prefix")
    parser.add_argument("--detailed", action="store_true", help="full job meta per job")


def _wait_arguments(parser: argparse.ArgumentParser) -> None:
    _job_argument(parser)
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds (0: forever)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between polls")


def _logs_arguments(parser: argparse.ArgumentParser) -> None:
    _job_argument(parser)
    parser.add_argument("--target", default="server", help="server, all or a site name")
    parser.add_argument("--tail", type=int, default=None, help="last N lines per site")
    parser.add_argument("--grep", default=None, help="keep lines containing this text")


def _download_arguments(parser: argparse.ArgumentParser) -> None:
    _job_argument(parser)
    parser.add_argument("--dest", default=None, help="parent directory for the result")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target-type", default="all", choices=("all", "server", "client"))
    parser.add_argument("--target", dest="targets", action="append", help="client name")


SESSION_COMMANDS: Final[dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Call]]] = {
    "submit": (
        "submit a job folder",
        _submit_arguments,
        lambda s, a: {"job_id": s.submit_job(a.folder, a.token)},
    ),
    "jobs": (
        "list jobs",
        _jobs_arguments,
        lambda s, a: s.list_jobs(a.detailed, a.limit, a.id_prefix, a.name, a.reverse),
    ),
    "job": ("show a job's meta", _job_argument, lambda s, a: s.get_job_meta(a.job_id)),
    "wait": (
        "wait until a job is done",
        _wait_arguments,
        lambda s, a: s.wait_for_job(a.job_id, a.timeout, a.poll),
    ),
    "abort": ("abort a job", _job_argument, lambda s, a: s.abort_job(a.job_id)),
    "delete": ("delete a job", _job_argument, lambda s, a: s.delete_job(a.job_id)),
    "clone": ("clone a job", _job_argument, lambda s, a: {"job_id": s.clone_job(a.job_id)}),
    "logs": (
        "show a job's logs",
        _logs_arguments,
        lambda s, a: s.get_job_logs(a.job_id, a.target, a.tail, a.grep),
    ),
    "download": (
        "download a finished job's result",
        _download_arguments,
        lambda s, a: {"path": s.download_job_result(a.job_id, a.dest)},
    ),
    "status": (
        "check the server's and clients' status",
        _status_arguments,
        lambda s, a: s.check_status(a.target_type, a.targets),
    ),
}
"""Subcommand name -> (help, add its arguments, the SessionSpec call)."""


def configure(
    add_arguments: Callable[[argparse.ArgumentParser], None],
) -> Callable[[argparse.ArgumentParser], None]:
    """Wrap a command's argument setup with the shared connection arguments."""

    def setup(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser)
        _connection_arguments(parser)

    return setup


def runner(call: Call) -> Callable[[argparse.Namespace, TextIO], int]:
    """Build the CLI runner of one session command: connect, call, print JSON."""

    def run(args: argparse.Namespace, out: TextIO) -> int:
        if not args.url or not args.user:
            _fail({"error": "UsageError", "message": "--url and --user are required"})
            return 2
        try:
            with connect(args.url, user=args.user, api_key=args.api_key, study=args.study) as s:
                result = call(s, args)
        except Exception as exc:  # every failure is reported as JSON, typed by name
            problem = Problem.from_exception(exc)
            _fail({"error": problem.error, "message": problem.message, **problem.attrs})
            return 1
        print(json.dumps(result, indent=2, sort_keys=True, default=str), file=out)
        return 0

    return run


def _fail(document: dict[str, Any]) -> None:
    print(json.dumps(document, sort_keys=True), file=sys.stderr)
