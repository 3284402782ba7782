"""``flare-core demo``: the embedded server trains a model, driven over HTTP and WebSocket.

The scenario, run by ``main()`` (``make demo``, which installs the ``flare-core[nvflare]``
extra first):

1. create a server workspace in a temporary directory (an admin user with a fresh API key,
   two sites) and start the embedded server on an ephemeral loopback port; it says which
   engine runs the jobs (``nvflare``: each job runs for real on NVIDIA FLARE's simulator);
2. over ``http://`` and then over ``ws://``, through ``flare_ports.connect``:
   * submit the shipped example job ``hello-numpy-sag`` (numpy FedAvg, 2 sites, 3 rounds)
     with a submit token, and follow it live: each status change and each round, with how
     long that round took (the server's job events wake the monitor: pushed over WebSocket,
     streamed from ``GET /v1/events`` over HTTP);
   * print its server log, download its result, load the final global model with numpy and
     print its shape and values;
   * submit it again with the same token: the server answers with the same job id;
   * submit a failing variant (a client executor off NVFlare's allow-list) and show how it
     ended, with the site's error;
3. stop the server and delete the workspace.

Everything it needs ships with the package, so it works on a fresh machine. Without the
extra it runs the same scenario on the simulated engine, and says that no model is computed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Final, TextIO

from flare_adapters.examples import copy_example
from flare_adapters.http.client import http_transport
from flare_adapters.loop_thread import LoopThread
from flare_adapters.network import TransferProgress
from flare_adapters.server.config import EngineKind, init_workspace
from flare_adapters.server.runtime import RunningServer, run_server
from flare_adapters.ws.client import ws_transport
from flare_core import register_transport
from flare_core.errors import InternalError
from flare_ports import connect
from flare_ports.session_spec import SessionSpec

__all__ = ["configure", "main", "run", "run_demo", "write_example_job", "write_failing_job"]

JOB_NAME: Final = "hello-numpy-sag"
BAD_EXECUTOR: Final = "demo.not_allowed.Trainer"
"""A client executor off NVFlare's component allow-list: the failing job's site refuses it."""
_CLIENT_CONFIG: Final = ("app", "config", "config_fed_client.json")
_MODEL: Final = ("workspace", "server", "models", "server.npy")


def write_example_job(parent: str) -> str:
    """Copy the shipped example job under ``parent``; returns its folder."""
    return copy_example(JOB_NAME, parent)


def write_failing_job(parent: str) -> str:
    """The example with a client executor NVFlare refuses (``ComponentNotAuthorized``)."""
    folder = copy_example(JOB_NAME, parent)
    path = os.path.join(folder, *_CLIENT_CONFIG)
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["executors"][0]["executor"]["path"] = BAD_EXECUTOR
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
        handle.write("\n")
    return folder


@contextmanager
def _embedded_server(workspace: str) -> Iterator[RunningServer]:
    """Run the workspace's server on a private event-loop thread for the block."""
    runner = LoopThread("flare-demo-server")
    server_cm: AbstractAsyncContextManager[RunningServer] = run_server(
        workspace, host="127.0.0.1", port=0
    )
    try:
        server = runner.run(server_cm.__aenter__())
        try:
            yield server
        finally:
            runner.run(server_cm.__aexit__(None, None, None))
    finally:
        runner.close()


class _Printer:
    """Prints the demo's progress lines (status changes and rounds, as they happen)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._seen: tuple[str, int] | None = None

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def transfer(self, report: TransferProgress) -> None:
        if report.done:  # the example's archives are small: one line per transfer
            verb = "uploaded" if report.direction == "upload" else "downloaded"
            self.line(f"    {verb} {report.transferred} bytes ({report.op})")

    def status(self, session: SessionSpec, job_id: str, meta: dict[str, Any]) -> bool:
        """``monitor_job``'s callback, woken by the server's job events."""
        status = str(meta.get("status"))
        progress = meta.get("progress") if isinstance(meta.get("progress"), dict) else {}
        assert isinstance(progress, dict)
        seconds = [float(s) for s in progress.get("round_seconds") or []]
        if (status, len(seconds)) == self._seen:
            return True
        if self._seen is None or self._seen[0] != status:
            self.line(f"    {time.strftime('%H:%M:%S')}  {job_id[:8]}  {status}")
        done_before = 0 if self._seen is None else self._seen[1]
        total = progress.get("num_rounds") or "?"
        for number in range(done_before, len(seconds)):
            self.line(
                f"    {time.strftime('%H:%M:%S')}  {job_id[:8]}  round {number + 1}/{total}"
                f" finished in {seconds[number]:.2f} s"
            )
        self._seen = (status, len(seconds))
        return True  # keep monitoring until the job ends

    def reset(self) -> None:
        self._seen = None


def _follow(session: SessionSpec, job_id: str, printer: _Printer) -> dict[str, Any]:
    printer.reset()
    session.monitor_job(job_id, timeout=_JOB_TIMEOUT, poll_interval=0.5, cb=printer.status)
    meta = session.get_job_meta(job_id)
    printer.status(session, job_id, meta)
    return meta


def _show_model(result: str, printer: _Printer, real: bool) -> None:
    path = os.path.join(result, *_MODEL)
    if not os.path.exists(path):
        if real:
            raise InternalError(f"the result has no global model ({'/'.join(_MODEL)})")
        printer.line("  no model: the simulated engine computes nothing (flare-core[nvflare])")
        return
    import numpy  # NVFlare's dependency: there whenever the nvflare engine is

    model = numpy.load(path)
    printer.line(f"  final global model ({'/'.join(_MODEL)}): shape {model.shape}")
    for row in numpy.atleast_2d(model):
        printer.line("    [" + "  ".join(f"{value:7.3f}" for value in row) + "]")


def _scenario(
    label: str,
    url: str,
    user: str,
    api_key: str,
    jobs: tuple[str, str],
    downloads: str,
    printer: _Printer,
    real: bool,
) -> None:
    job_folder, failing_folder = jobs
    printer.line(f"=== over {label}: {url}")
    wake = "pushed job events" if label == "WebSocket" else "the server's event stream"
    with connect(
        url,
        user=user,
        api_key=api_key,
        download_dir=downloads,
        progress=printer.transfer,
        timeout=30.0,
    ) as session:
        info = session.get_system_info()
        clients = ", ".join(client.name for client in info.client_info) or "none"
        printer.line(f"  server {info.server_info.status}; connected clients: {clients}")

        token = f"demo-{label.lower()}-{os.getpid()}"
        printer.line(f"  submitting {JOB_NAME} with submit token {token!r}")
        job_id = session.submit_job(job_folder, submit_token=token)
        printer.line(f"  job id {job_id}; progress ({wake}):")
        meta = _follow(session, job_id, printer)
        printer.line(f"  finished: {meta['status']} after {meta.get('duration', '?')}")
        if meta["status"] != "FINISHED:COMPLETED":
            raise InternalError(f"the example job ended {meta['status']}")

        logs = session.get_job_logs(job_id, tail_lines=4)
        printer.line("  server log (last lines):")
        for log_line in str(logs.get("logs", {}).get("server", "")).splitlines():
            printer.line(f"    | {log_line[:160]}")

        result = session.download_job_result(job_id)
        count = sum(len(names) for _, _, names in os.walk(result))
        printer.line(f"  result downloaded to {result} ({count} files)")
        _show_model(result, printer, real)

        again = session.submit_job(job_folder, submit_token=token)
        verdict = "same job, nothing resubmitted" if again == job_id else "A NEW JOB (unexpected)"
        printer.line(f"  token replay: submitting again with {token!r} -> {again} ({verdict})")
        if again != job_id:
            raise InternalError("the submit token did not deduplicate the replayed submission")

        printer.line(f"  submitting a failing job (client executor {BAD_EXECUTOR!r}):")
        failing = session.submit_job(failing_folder)
        meta = _follow(session, failing, printer)
        printer.line(f"  ended {meta['status']}: {meta.get('finish_reason', '')}"[:400])
        if meta["status"] == "FINISHED:COMPLETED":
            raise InternalError("the failing job completed")
    printer.line()


_JOB_TIMEOUT: Final = 300.0


def run_demo(out: TextIO, job_duration: float = 2.0, engine: EngineKind = "auto") -> None:
    """Run the whole scenario, printing to ``out``.

    Args:
        out: where the demo's lines go.
        job_duration: how long a job runs on the simulated engine, seconds.
        engine: the engine (``auto``: nvflare when the extra is installed).

    Raises:
        Exception: any step that failed (the server is stopped first).
    """
    printer = _Printer(out)
    for scheme, factory in (("http", http_transport), ("ws", ws_transport)):
        register_transport(scheme, factory)  # as the installed entry points would
    with tempfile.TemporaryDirectory(prefix="flare-demo-") as root:
        workspace = os.path.join(root, "workspace")
        config, api_key = init_workspace(
            workspace, port=0, job_duration=job_duration, engine=engine
        )
        user = config.users[0].name
        printer.line(f"workspace {workspace}: admin {user}, sites: site-1, site-2")
        jobs = (
            write_example_job(os.path.join(root, "jobs")),
            write_failing_job(os.path.join(root, "failing")),
        )
        with _embedded_server(workspace) as server:
            printer.line(f"embedded server started on {server.http_url}")
            printer.line(server.runtime.engine_summary())
            printer.line()
            real = server.runtime.engine_kind == "nvflare"
            for label, url in (("HTTP", server.http_url), ("WebSocket", server.ws_url)):
                downloads = os.path.join(root, "downloads", label.lower())
                _scenario(label, url, user, api_key, jobs, downloads, printer, real)
        printer.line("embedded server stopped")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's arguments to ``parser`` (for the ``flare-core`` CLI's ``COMMANDS``)."""
    parser.add_argument(
        "--engine",
        choices=("auto", "simulated", "nvflare"),
        default="auto",
        help="the engine that runs the jobs (auto: nvflare when flare-core[nvflare] is installed)",
    )
    parser.add_argument(
        "--job-duration",
        type=float,
        default=2.0,
        help="seconds a job runs on the simulated engine",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the demo with parsed ``args`` (the ``flare-core`` CLI's ``Run`` signature).

    Returns:
        0 on success, 1 when a step failed (the reason goes to stderr).
    """
    try:
        run_demo(out, job_duration=args.job_duration, engine=args.engine)
    except Exception as exc:
        print(f"flare-core demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of ``flare-core demo``.

    Args:
        argv: command-line arguments (``--job-duration SECONDS``).
        out: where output goes (default: stdout).

    Returns:
        0 on success, 1 when a step failed (the reason goes to stderr).
    """
    parser = argparse.ArgumentParser(
        prog="flare-core demo",
        description="Start the embedded server and drive it over HTTP and WebSocket.",
    )
    configure(parser)
    return run(parser.parse_args(argv), out or sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
