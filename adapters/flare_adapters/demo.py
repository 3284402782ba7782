"""``flare-core demo``: the embedded server, driven over HTTP and over WebSocket.

The scenario, run by ``main()`` (``make demo``):

1. create a server workspace in a temporary directory (an admin user with a fresh API key,
   two simulated sites) and start the embedded server on an ephemeral loopback port;
2. over ``http://`` and then over ``ws://``, through ``flare_core.connect``: show the system,
   submit the example job ``hello-numpy-sag`` with a submit token (upload progress shown),
   follow its progress until it finishes, print its server log, download its result
   (download progress shown), and submit it again with the same token: the server answers
   with the same job id instead of creating a second job (token replay);
3. stop the server and delete the workspace.

Everything it needs ships with the package, so it works on a fresh machine.
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

from flare_adapters._loop_thread import LoopThread
from flare_adapters._network import TransferProgress
from flare_adapters.http.client import http_transport
from flare_adapters.server.config import init_workspace
from flare_adapters.server.runtime import RunningServer, run_server
from flare_adapters.ws.client import ws_transport
from flare_core._connect import connect, register_transport
from flare_core._errors import InternalError
from flare_ports._session_spec import SessionSpec

__all__ = ["EXAMPLE_JOB", "configure", "main", "run", "run_demo", "write_example_job"]

JOB_NAME: Final = "hello-numpy-sag"

EXAMPLE_JOB: Final[dict[str, Any]] = {
    "meta.json": {
        "name": JOB_NAME,
        "resource_spec": {},
        "min_clients": 2,
        "deploy_map": {"app": ["@ALL"]},
    },
    "app/config/config_fed_server.json": {
        "format_version": 2,
        "server": {"heart_beat_timeout": 600},
        "task_data_filters": [],
        "task_result_filters": [],
        "components": [
            {
                "id": "persistor",
                "path": "nvflare.app_common.np.np_model_persistor.NPModelPersistor",
                "args": {},
            },
            {
                "id": "shareable_generator",
                "path": "nvflare.app_common.shareablegenerators."
                "full_model_shareable_generator.FullModelShareableGenerator",
                "args": {},
            },
            {
                "id": "aggregator",
                "path": "nvflare.app_common.aggregators."
                "intime_accumulate_model_aggregator.InTimeAccumulateWeightedAggregator",
                "args": {
                    "expected_data_kind": "WEIGHTS",
                    "aggregation_weights": {"site-1": 1.0, "site-2": 1.0},
                },
            },
        ],
        "workflows": [
            {
                "id": "scatter_and_gather",
                "path": "nvflare.app_common.workflows.scatter_and_gather.ScatterAndGather",
                "args": {
                    "min_clients": 2,
                    "num_rounds": 3,
                    "start_round": 0,
                    "wait_time_after_min_received": 0,
                    "aggregator_id": "aggregator",
                    "persistor_id": "persistor",
                    "shareable_generator_id": "shareable_generator",
                    "train_task_name": "train",
                    "train_timeout": 6000,
                },
            }
        ],
    },
    "app/config/config_fed_client.json": {
        "format_version": 2,
        "executors": [
            {
                "tasks": ["train"],
                "executor": {
                    "path": "nvflare.app_common.np.np_trainer.NPTrainer",
                    "args": {"sleep_time": 0},
                },
            }
        ],
        "task_result_filters": [],
        "task_data_filters": [],
        "components": [],
    },
}
"""The files of NVIDIA FLARE's ``hello-numpy-sag`` example job (numpy FedAvg, 3 rounds)."""


def write_example_job(parent: str) -> str:
    """Write the example job folder under ``parent``.

    Returns:
        The job folder's path (``<parent>/hello-numpy-sag``).
    """
    folder = os.path.join(parent, JOB_NAME)
    for relative, content in EXAMPLE_JOB.items():
        path = os.path.join(folder, *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2)
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
    """Prints the demo's progress lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._last_status: str | None = None

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def transfer(self, report: TransferProgress) -> None:
        if report.done:  # the example's archives are small: one line per transfer
            verb = "uploaded" if report.direction == "upload" else "downloaded"
            self.line(f"    {verb} {report.transferred} bytes ({report.op})")

    def status(self, session: SessionSpec, job_id: str, meta: dict[str, Any]) -> bool:
        status = str(meta.get("status"))
        if status != self._last_status:
            self._last_status = status
            self.line(f"    {time.strftime('%H:%M:%S')}  {job_id[:8]}  {status}")
        return True  # keep monitoring until the job ends


def _scenario(
    label: str,
    url: str,
    user: str,
    api_key: str,
    job_folder: str,
    downloads: str,
    printer: _Printer,
) -> None:
    printer.line(f"=== over {label}: {url}")
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
        printer.line(f"  job id {job_id}; progress:")
        session.monitor_job(job_id, timeout=120.0, poll_interval=0.5, cb=printer.status)
        meta = session.get_job_meta(job_id)
        printer.line(f"  finished: {meta['status']} after {meta.get('duration', '?')}")

        logs = session.get_job_logs(job_id, tail_lines=6)
        printer.line("  server log (last lines):")
        for log_line in str(logs.get("logs", {}).get("server", "")).splitlines():
            printer.line(f"    | {log_line}")

        result = session.download_job_result(job_id)
        files = sorted(
            os.path.relpath(os.path.join(root, name), result)
            for root, _, names in os.walk(result)
            for name in names
        )
        printer.line(f"  result downloaded to {result} ({len(files)} files)")
        for name in files[:8]:
            printer.line(f"    {name}")

        again = session.submit_job(job_folder, submit_token=token)
        verdict = "same job, nothing resubmitted" if again == job_id else "A NEW JOB (unexpected)"
        printer.line(f"  token replay: submitting again with {token!r} -> {again} ({verdict})")
        if again != job_id:
            raise InternalError("the submit token did not deduplicate the replayed submission")
    printer.line()


def run_demo(out: TextIO, job_duration: float = 2.0) -> None:
    """Run the whole scenario, printing to ``out``.

    Args:
        out: where the demo's lines go.
        job_duration: how long the simulated job runs, seconds.

    Raises:
        Exception: any step that failed (the server is stopped first).
    """
    printer = _Printer(out)
    for scheme, factory in (("http", http_transport), ("ws", ws_transport)):
        register_transport(scheme, factory)  # as the installed entry points would
    with tempfile.TemporaryDirectory(prefix="flare-demo-") as root:
        workspace = os.path.join(root, "workspace")
        config, api_key = init_workspace(workspace, port=0, job_duration=job_duration)
        user = config.users[0].name
        printer.line(f"workspace {workspace}: admin {user}, sites: site-1, site-2")
        job_folder = write_example_job(os.path.join(root, "jobs"))
        with _embedded_server(workspace) as server:
            printer.line(f"embedded server started on {server.http_url}")
            printer.line()
            for label, url in (("HTTP", server.http_url), ("WebSocket", server.ws_url)):
                downloads = os.path.join(root, "downloads", label.lower())
                _scenario(label, url, user, api_key, job_folder, downloads, printer)
        printer.line("embedded server stopped")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's arguments to ``parser`` (for the ``flare-core`` CLI's ``COMMANDS``)."""
    parser.add_argument(
        "--job-duration", type=float, default=2.0, help="seconds the example job runs"
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the demo with parsed ``args`` (the ``flare-core`` CLI's ``Run`` signature).

    Returns:
        0 on success, 1 when a step failed (the reason goes to stderr).
    """
    try:
        run_demo(out, job_duration=args.job_duration)
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
