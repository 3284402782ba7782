"""A real NVIDIA FLARE 2.9 POC (one server, N client sites, admin kits) for tests.

The POC runs on loopback only, in a scratch directory, with ports chosen at run time::

    with running_poc(tmp_path) as poc:
        session = new_secure_session("admin@nvidia.com", str(poc.admin_kit()))
        ...
        stop(poc)      # graceful, then by PID; nothing of ours remains
        start(poc)     # same workspace, same ports: a restart

Everything NVFlare writes stays under ``root``: ``HOME`` (``~/.nvflare/config.conf``) and
``NVFLARE_POC_WORKSPACE`` point there, and every command's output goes to ``root/logs``.
Each process of a POC carries the environment variable ``FLARE_TESTING_POC`` (its workspace
path); ``poc_pids()`` finds the processes by it, by the pid files NVFlare writes, and by
parentage, so job processes (which NVFlare starts in their own sessions) are found too.
Processes are only ever signalled by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

from flare_adapters.nvflare.kits import KitUser
from flare_adapters.nvflare.pool import open_nvflare_session

__all__ = [
    "ADMIN_USERS",
    "MARKER_ENV",
    "PROJECT_NAME",
    "Poc",
    "poc_pids",
    "prepare",
    "project_config",
    "running_poc",
    "start",
    "stop",
]

PROJECT_NAME = "example_project"
"""The project name; the kits live in ``<workspace>/<PROJECT_NAME>/prod_00``."""

ADMIN_USERS: tuple[tuple[str, str, str], ...] = (
    ("admin@nvidia.com", "nvidia", "project_admin"),
    ("org-admin@nvidia.com", "nvidia", "org_admin"),
    ("lead@nvidia.com", "nvidia", "lead"),
    ("member@nvidia.com", "nvidia", "member"),
    ("lead@other.org", "other", "lead"),
    ("org-admin@other.org", "other", "org_admin"),
)
"""``(name, org, role)`` of the POC's admin users: NVFlare's default POC project's three, plus
a member and a second org's lead and org admin (the roles the contract suite plays); the first
is the project admin."""

MARKER_ENV = "FLARE_TESTING_POC"
"""Environment variable set (to the workspace path) in every process a POC starts."""

_SERVER = "server"
_HOST = "localhost"
_PID_FILES = ("daemon_pid.fl", "pid.fl")  # the restart loop's PID, the NVFlare process's PID
_FLAG_FILES = ("shutdown.fl", "restart.fl")
_ACTIVE_JOB_STATES = ("DISPATCHED", "RUNNING")
_ABORT_TIMEOUT = 30.0  # an abort takes about 7 s
_STOP_TIMEOUT = 60.0  # `nvflare poc stop` waits up to 30 s itself
_LOOPS_TIMEOUT = 8.0  # restart loops poll every 5 s
_FLAG_TIMEOUT = 15.0  # a loop seeing shutdown.fl waits 5 s, then kills its process
_KILL_GRACE = 3.0
_TAIL_LINES = 40


@dataclass(frozen=True)
class Poc:
    """A prepared POC workspace; ``start`` and ``stop`` run it.

    Attributes:
        workspace: the POC workspace root (``NVFLARE_POC_WORKSPACE``).
        project_dir: ``<workspace>/example_project/prod_00``, holding one kit per participant.
        sites: the client sites, e.g. ``("site-1", "site-2")``.
        users: the admin users with a kit in ``project_dir``; the first is the project admin.
        fl_port: the server's FL port (127.0.0.1 only).
        admin_port: the server's admin port (127.0.0.1 only).
        logs: the directory the output of every ``nvflare`` command goes to.
        nvflare: the ``nvflare`` executable.
        env: the complete environment the POC's commands run with.
    """

    workspace: Path
    project_dir: Path
    sites: tuple[str, ...]
    users: tuple[str, ...]
    fl_port: int
    admin_port: int
    logs: Path
    nvflare: str
    env: Mapping[str, str] = field(repr=False, compare=False)

    @property
    def participants(self) -> tuple[str, ...]:
        """The server and the sites: the kits that run as services."""
        return (_SERVER, *self.sites)

    def admin_kit(self, user: str | None = None) -> Path:
        """The admin startup kit of a user (pass it to ``new_secure_session``).

        Args:
            user: an entry of ``users``; the project admin if omitted.

        Returns:
            The kit directory (it holds ``startup/fed_admin.json``).

        Raises:
            KeyError: ``user`` has no kit.
        """
        name = self.users[0] if user is None else user
        if name not in self.users:
            raise KeyError(f"no admin kit for {name!r}; available: {', '.join(self.users)}")
        return self.project_dir / name


def project_config(sites: Sequence[str], *, fl_port: int, admin_port: int) -> dict[str, Any]:
    """The ``project.yml`` content (JSON is YAML) of NVFlare 2.9's default POC, on given ports.

    Args:
        sites: the client site names.
        fl_port: the server's FL port.
        admin_port: the server's admin port.

    Returns:
        The project definition for ``nvflare poc prepare -i``.
    """
    server = {
        "name": _SERVER,
        "type": "server",
        "org": "nvidia",
        "default_host": _HOST,
        "fed_learn_port": fl_port,
        "admin_port": admin_port,
    }
    admins = [{"name": n, "type": "admin", "org": o, "role": r} for n, o, r in ADMIN_USERS]
    clients = [{"name": s, "type": "client", "org": "nvidia"} for s in sites]
    templates = ["master_template.yml", "aws_template.yml", "azure_template.yml"]
    return {
        "api_version": 3,
        "name": PROJECT_NAME,
        "description": "flare_testing POC (loopback only)",
        "participants": [server, *admins, *clients],
        "builders": [
            {
                "path": "nvflare.lighter.impl.workspace.WorkspaceBuilder",
                "args": {"template_file": templates},
            },
            {
                "path": "nvflare.lighter.impl.static_file.StaticFileBuilder",
                "args": {"config_folder": "config"},
            },
            {"path": "nvflare.lighter.impl.cert.CertBuilder"},
            {"path": "nvflare.lighter.impl.signature.SignatureBuilder"},
        ],
    }


def prepare(root: Path, *, n_sites: int = 2, nvflare: str | None = None) -> Poc:
    """Provision a POC under ``root`` (``nvflare poc prepare``) on two free loopback ports.

    Args:
        root: a scratch directory (created if missing) owned by the caller.
        n_sites: how many client sites (``site-1`` ...).
        nvflare: the ``nvflare`` executable; by default the one next to ``sys.executable``.

    Returns:
        The prepared, not yet started, POC.

    Raises:
        RuntimeError: ``nvflare`` is missing, provisioning failed, or the kits disagree on
            the server's address.
        ValueError: ``n_sites`` is below 1.
    """
    if n_sites < 1:
        raise ValueError(f"n_sites must be at least 1, not {n_sites}")
    root = root.absolute()
    logs = root / "logs"
    home = root / "home"
    workspace = root / "poc"
    tmp = root / "tmp"
    for directory in (logs, home, tmp):
        directory.mkdir(parents=True, exist_ok=True)
    executable = _find_nvflare(nvflare)
    env = _environment(home=home, workspace=workspace, tmp=tmp, bin_dir=Path(executable).parent)
    sites = tuple(f"site-{i}" for i in range(1, n_sites + 1))
    fl_port, admin_port = _free_ports(2)
    project_file = root / "project.yml"  # outside the workspace, which prepare deletes
    config = project_config(sites, fl_port=fl_port, admin_port=admin_port)
    project_file.write_text(json.dumps(config, indent=2) + "\n")
    log = logs / "prepare.log"
    argv = [executable, "poc", "prepare", "-i", str(project_file), "--force"]
    code = _run_logged(argv, env=env, cwd=root, log=log, timeout=120.0)
    project_dir = workspace / PROJECT_NAME / "prod_00"
    if code != 0 or not project_dir.is_dir():
        raise RuntimeError(f"nvflare poc prepare failed (exit {code}):\n{_tail(log)}")
    _bind_server_to_loopback(project_dir / _SERVER / "startup" / "fed_server.json", fl_port)
    users = tuple(n for n, _, _ in ADMIN_USERS if (project_dir / n / "startup").is_dir())
    poc = Poc(
        workspace=workspace,
        project_dir=project_dir,
        sites=sites,
        users=users,
        fl_port=fl_port,
        admin_port=admin_port,
        logs=logs,
        nvflare=executable,
        env=MappingProxyType(env),
    )
    _check_kits(poc)
    return poc


def start(poc: Poc, *, timeout: float = 150.0) -> None:
    """Start the server and the sites (``nvflare poc start``); return once all registered.

    Registration is confirmed independently of NVFlare's own wait: the project admin logs in
    and lists the clients until every site is there.

    Args:
        poc: a prepared POC that is not running.
        timeout: seconds for the start and the registration together.

    Raises:
        RuntimeError: the POC is already running, a port is taken, or it did not come up in
            time (after which it has been stopped again); the message has the log tails.
    """
    if poc_pids(poc):
        raise RuntimeError(f"the POC in {poc.workspace} is already running")
    for port in (poc.fl_port, poc.admin_port):
        if not _port_free(port):
            raise RuntimeError(f"port 127.0.0.1:{port} of the POC in {poc.workspace} is taken")
    _clear_state_files(poc)
    deadline = time.monotonic() + timeout
    log = poc.logs / "start.log"
    # --no-wait: the registration below is the readiness check. NVFlare's own (an admin
    # login polled for ``--timeout``) was seen to hang past its timeout with two POCs starting
    # side by side on a loaded machine, though both sites had registered within 45 s.
    argv = [poc.nvflare, "poc", "start", "--no-wait"]
    try:
        # A session of its own: the POC outlives this command and ignores the test's Ctrl-C.
        code = _run_logged(
            argv, env=poc.env, cwd=poc.logs, log=log, timeout=timeout, new_session=True
        )
        if code != 0:
            raise RuntimeError(f"nvflare poc start failed (exit {code})")
        _wait_registered(poc, deadline=deadline, log=log)
    except BaseException as error:  # Ctrl-C included: never leave a half-started POC
        report = _failure_report(poc, log)
        stop(poc)
        if isinstance(error, RuntimeError | subprocess.TimeoutExpired):
            raise RuntimeError(f"{error}\n{report}") from error
        raise


def stop(poc: Poc, *, abort_jobs: bool = True) -> bool:
    """Stop the POC: gracefully if possible, then by PID; clear its pid and flag files.

    First the project admin aborts the dispatched and running jobs and waits for them to
    finish (``nvflare poc stop`` alone leaves them ``RUNNING`` in the job store for good),
    then ``nvflare poc stop`` shuts the system down through the admin API. Sites that still
    run after that (e.g. never registered, or their server is gone) get the restart loops' own
    ``shutdown.fl``; whatever remains gets SIGTERM, then SIGKILL, by PID. Stopping a stopped
    POC is a no-op.

    Args:
        poc: the POC.
        abort_jobs: abort active jobs first (``False``: leave them to ``nvflare poc stop``).

    Returns:
        Whether everything ended without this module signalling a process.

    Raises:
        RuntimeError: processes survived SIGKILL.
    """
    if not poc_pids(poc):
        _clear_state_files(poc)
        return True
    log = poc.logs / "stop.log"
    if abort_jobs:
        _abort_active_jobs(poc, log=log, timeout=_ABORT_TIMEOUT)
    argv = [poc.nvflare, "poc", "stop"]
    with contextlib.suppress(subprocess.TimeoutExpired):  # the log has the outcome
        _run_logged(argv, env=poc.env, cwd=poc.logs, log=log, timeout=_STOP_TIMEOUT)
    graceful = _wait_gone(poc, _LOOPS_TIMEOUT)
    if not graceful:
        for participant in poc.participants:
            with contextlib.suppress(OSError):
                (poc.project_dir / participant / "shutdown.fl").touch()
        graceful = _wait_gone(poc, _FLAG_TIMEOUT)
    if not graceful:
        _kill(poc)
    _clear_state_files(poc)
    return graceful


@contextlib.contextmanager
def running_poc(
    root: Path, *, n_sites: int = 2, start_timeout: float = 150.0, nvflare: str | None = None
) -> Iterator[Poc]:
    """Prepare and start a POC under ``root``; stop it on exit, leaving no process behind.

    Args:
        root: a scratch directory owned by the caller (e.g. pytest's ``tmp_path``).
        n_sites: how many client sites.
        start_timeout: seconds for the start and the registration of every site.
        nvflare: the ``nvflare`` executable; by default the one next to ``sys.executable``.

    Yields:
        The running POC, every site registered.

    Raises:
        RuntimeError: it could not be prepared or started (see ``prepare`` and ``start``).
    """
    poc = prepare(root, n_sites=n_sites, nvflare=nvflare)
    start(poc, timeout=start_timeout)
    try:
        yield poc
    finally:
        stop(poc)


def poc_pids(poc: Poc) -> frozenset[int]:
    """The live processes of a POC: restart loops, server, clients and job processes.

    Found by the ``MARKER_ENV`` environment variable, by the pid files in each participant's
    folder (those that still carry the marker, so a recycled PID is never taken), and by
    parentage. This process and zombies are excluded.

    Args:
        poc: the POC.

    Returns:
        The PIDs.
    """
    marker = f"{MARKER_ENV}={poc.workspace}".encode()
    table = _process_table()
    ours = {pid for pid in table if _has_env(pid, marker)}
    for participant in poc.participants:
        for name in _PID_FILES:
            pid = _read_pid(poc.project_dir / participant / name)
            if pid in table and _has_env(pid, marker):
                ours.add(pid)
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    pending = list(ours)
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in ours:
                ours.add(child)
                pending.append(child)
    ours.discard(os.getpid())
    return frozenset(ours)


def _find_nvflare(nvflare: str | None) -> str:
    candidate = nvflare or str(Path(sys.executable).parent / "nvflare")
    found = shutil.which(candidate)
    if found is None:
        raise RuntimeError(f"nvflare executable not found: {candidate}")
    return found


def _environment(*, home: Path, workspace: Path, tmp: Path, bin_dir: Path) -> dict[str, str]:
    # Drop variables that would redirect NVFlare (NVFLARE_HOME links examples into the admin
    # kit, NVFL_WORKSPACE moves a kit's workspace); the kits call a bare `python3`.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("NVFLARE_", "NVFL_", MARKER_ENV))
    }
    path = [str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", os.defpath)]
    env["PATH"] = os.pathsep.join(dict.fromkeys(path))
    env["HOME"] = str(home)
    # NVFlare 2.9's server spools every uploaded job to a uuid-named file in the temp
    # directory and leaves it there when it rejects the job; keep those in the POC's root.
    env["TMPDIR"] = str(tmp)
    env["NVFLARE_POC_WORKSPACE"] = str(workspace)
    env[MARKER_ENV] = str(workspace)
    return env


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _bind_server_to_loopback(fed_server: Path, fl_port: int) -> None:
    # As provisioned the target is "server:<port>", and the server listens on 0.0.0.0; with a
    # loopback host it binds 127.0.0.1, its admin and internal listeners included.
    doc = json.loads(fed_server.read_text())
    for server in doc["servers"]:
        server["service"]["target"] = f"{_HOST}:{fl_port}"
    fed_server.write_text(json.dumps(doc, indent=4) + "\n")


def _check_kits(poc: Poc) -> None:
    expected = f"{_HOST}:{poc.fl_port}"
    server = _load(poc.project_dir / _SERVER / "startup" / "fed_server.json")["servers"][0]
    problems = []
    if server["service"]["target"] != expected or server.get("admin_port") != poc.admin_port:
        problems.append(f"server: {server['service']['target']}, admin {server.get('admin_port')}")
    for site in poc.sites:
        client = _load(poc.project_dir / site / "startup" / "fed_client.json")["servers"][0]
        if client["service"]["target"] != expected:
            problems.append(f"{site}: {client['service']['target']}")
    for user in poc.users:
        admin = _load(poc.project_dir / user / "startup" / "fed_admin.json")["admin"]
        if (admin["host"], admin["port"]) != (_HOST, poc.admin_port):
            problems.append(f"{user}: {admin['host']}:{admin['port']}")
    if problems or poc.users[:1] != (ADMIN_USERS[0][0],):
        wanted = f"fl {expected}, admin {_HOST}:{poc.admin_port}, users {poc.users}"
        raise RuntimeError(f"POC kits disagree ({wanted}): {'; '.join(problems)}")


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _run_logged(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    timeout: float,
    new_session: bool = False,
) -> int:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(argv)}\n")
        out.flush()
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()  # our own child, by PID
            process.wait()
            out.write(f"--- timed out after {timeout:.0f} s\n")
            raise
        out.write(f"--- exit {code} after {time.monotonic() - started:.1f} s\n")
        return code


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[TextIO]:
    """Append this process's stdout and stderr (NVFlare's API prints and logs) to ``log``."""
    with (
        log.open("a", encoding="utf-8") as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        yield out


@contextlib.contextmanager
def _admin_session(poc: Poc, *, timeout: float) -> Iterator[Any]:
    """A project-admin session, closed on exit (NVFlare's Python API, through the adapter)."""
    admin = KitUser(name=poc.users[0], kit=str(poc.admin_kit()))
    session = open_nvflare_session(admin, "default", timeout)
    try:
        yield session
    finally:
        session.close()


def _wait_registered(poc: Poc, *, deadline: float, log: Path) -> None:
    seen: list[str] = []
    last_error: Exception | None = None
    with _output_to(log) as out:
        out.write(f"--- {time.strftime('%H:%M:%S')} checking registration as {poc.users[0]}\n")
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                with _admin_session(poc, timeout=min(max(remaining, 1.0), 15.0)) as session:
                    while time.monotonic() < deadline:
                        seen = sorted(c.name for c in session.get_system_info().client_info)
                        if set(poc.sites) <= set(seen):
                            out.write(f"--- registered: {', '.join(seen)}\n")
                            return
                        time.sleep(1.0)
            except Exception as error:  # NVFlare raises many kinds: log in again
                last_error = error
                time.sleep(1.0)
    raise RuntimeError(
        f"sites not registered in time: expected {', '.join(poc.sites)}, "
        f"listed {', '.join(seen) or 'none'} (last error: {last_error!r})"
    )


def _abort_active_jobs(poc: Poc, *, log: Path, timeout: float) -> None:
    # Best effort: if the server cannot be reached, `nvflare poc stop` and the PIDs remain.
    deadline = time.monotonic() + timeout
    with _output_to(log) as out:
        try:
            with _admin_session(poc, timeout=5.0) as session:
                jobs = session.list_jobs()
                active = [j["job_id"] for j in jobs if j.get("status") in _ACTIVE_JOB_STATES]
                for job_id in active:
                    out.write(f"--- {time.strftime('%H:%M:%S')} aborting job {job_id}\n")
                    with contextlib.suppress(Exception):  # it may have finished meanwhile
                        session.abort_job(job_id)
                while active and time.monotonic() < deadline:
                    time.sleep(0.5)
                    active = [j for j in active if _job_active(session.get_job_meta(j))]
                if active:
                    out.write(f"--- jobs still active after {timeout:.0f} s: {active}\n")
        except Exception as error:  # NVFlare raises many kinds
            out.write(f"--- could not abort the active jobs: {error!r}\n")


def _job_active(meta: Mapping[str, Any]) -> bool:
    return not str(meta.get("status", "")).startswith("FINISHED")


def _failure_report(poc: Poc, log: Path) -> str:
    parts = [f"{log}:\n{_tail(log)}"]
    for participant in poc.participants:
        for name in ("poc_console.log", "log.txt"):
            path = poc.project_dir / participant / name
            if path.is_file():
                parts.append(f"{path}:\n{_tail(path, 15)}")
    return "\n".join(parts)


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"(cannot read {path}: {error})"
    return "\n".join(text.splitlines()[-lines:])


def _wait_gone(poc: Poc, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while poc_pids(poc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True


def _kill(poc: Poc) -> None:
    # SIGTERM then SIGKILL, by PID, rescanning each round: a restart loop may have started
    # a new process in between.
    for sig, wait in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, _KILL_GRACE)):
        for pid in poc_pids(poc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if _wait_gone(poc, wait):
            return
    for _ in range(3):
        for pid in poc_pids(poc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if _wait_gone(poc, _KILL_GRACE):
            return
    raise RuntimeError(f"POC processes survived SIGKILL: {sorted(poc_pids(poc))}")


def _clear_state_files(poc: Poc) -> None:
    # Stale files would stop a later start: a leftover shutdown.fl ends a new restart loop at
    # once, and a recycled PID in daemon_pid.fl makes sub_start.sh refuse to run.
    for participant in poc.participants:
        for name in (*_PID_FILES, *_FLAG_FILES):
            (poc.project_dir / participant / name).unlink(missing_ok=True)


def _process_table() -> dict[int, int]:
    """Live (non-zombie) processes: PID -> parent PID, from ``/proc``."""
    table: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # the name may contain spaces
        if fields and fields[0] not in ("Z", "X"):
            table[int(entry.name)] = int(fields[1])
    return table


def _has_env(pid: int, entry: bytes) -> bool:
    try:
        return entry in (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
