"""The session drivers: ``Session`` (sync) and ``AsyncSession`` (async).

Both are thin: every method hands a core flow (``flare_core.flows``) to ``_run``, which
performs the steps the flow yields - commands through the transport, waits on the
transport's clock, local files through ``_file_steps`` - and sends each outcome back. A
transport's ``NoConnection`` (and any other failure of a step) is thrown into the flow, so
retries and error mapping happen in the flow, once for both drivers.

Session state lives here: a closed session raises ``SessionClosed("session closed")`` before
anything is sent; once the server answered ``SessionExpired``, the session closes itself and
every later method raises ``SessionExpired`` with the server's reason, without sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import secrets
import tempfile
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from flare_adapters.chunks import ChunkPull
from flare_adapters.file_steps import extract_archive, inspect_path, list_dirs, zip_folder
from flare_core.commands import Logout
from flare_core.errors import InternalError, SessionClosed, SessionExpired
from flare_core.flows import (
    ClientFlow,
    FlowContext,
    FlowStep,
    MonitorCallback,
    Notify,
    RetryPolicy,
    jobs,
    monitor,
    shell,
    stats,
    studies,
    system,
    watch,
)
from flare_core.flows.watch import JobChange
from flare_core.info import ClientInfo, MonitorReturnCode, SystemInfo
from flare_core.replies import Ok, Problem, Reply
from flare_core.steps import (
    Call,
    CloseSession,
    Download,
    Emit,
    InspectPath,
    ListDirs,
    Now,
    Sleep,
    Upload,
    WallClock,
)
from flare_ports.session_spec import AsyncSessionSpec, SessionSpec
from flare_ports.transport import AsyncTransport, Transport

__all__ = ["AsyncSession", "Session", "mint_session_token"]

T = TypeVar("T")
P = ParamSpec("P")

_EXPIRED = "session_expired"
_DEFAULT_EXPIRY_REASON = "Your session is closed due to inactivity or cert expiry."


def mint_session_token() -> str:
    """Return a fresh private submit token (DECISIONS §8): 128 random bits, token-safe."""
    return "session." + secrets.token_hex(16)


class _State:
    """What both drivers share: the flow context and the open/closed/expired state."""

    def __init__(
        self,
        upload_dir: str | None,
        download_dir: str | None,
        retry: RetryPolicy | None,
        mint_token: Callable[[], str] | None,
    ) -> None:
        cwd = os.getcwd()
        self.ctx = FlowContext(
            upload_dir=os.path.abspath(upload_dir or cwd),
            download_dir=os.path.abspath(download_dir or os.path.join(cwd, "downloads")),
            mint_token=mint_token or mint_session_token,
            retry=retry or RetryPolicy(),
        )
        self.closed = False
        self.expired_reason: str | None = None

    def ensure_open(self) -> None:
        if self.expired_reason is not None:
            raise SessionExpired(self.expired_reason)
        if self.closed:
            raise SessionClosed("session closed")

    def observe(self, reply: Reply) -> bool:
        """Record a server-side expiry; True when the session just expired."""
        if isinstance(reply, Problem) and reply.code == _EXPIRED and self.expired_reason is None:
            self.expired_reason = reply.message or _DEFAULT_EXPIRY_REASON
            self.closed = True
            return True
        return False


def _local_step(step: FlowStep) -> Any:
    """Perform a step that needs neither the transport nor the session state."""
    if isinstance(step, InspectPath):
        return inspect_path(step.path)
    if isinstance(step, ListDirs):
        return list_dirs(step.path)
    if isinstance(step, WallClock):
        return time.time()
    raise InternalError(f"unsupported flow step {type(step).__name__}")


TransportT = TypeVar("TransportT", Transport, AsyncTransport)


class _Driver(Generic[TransportT]):
    """What both drivers hold: the transport they own and the shared session state."""

    def __init__(
        self,
        transport: TransportT,
        *,
        upload_dir: str | None = None,
        download_dir: str | None = None,
        retry: RetryPolicy | None = None,
        mint_token: Callable[[], str] | None = None,
    ) -> None:
        self._transport: TransportT = transport
        self._state = _State(upload_dir, download_dir, retry, mint_token)
        self._ctx = self._state.ctx

    @property
    def upload_dir(self) -> str:
        """The absolute directory relative job folders are looked up in."""
        return self._ctx.upload_dir

    @property
    def download_dir(self) -> str:
        """The absolute directory downloads land in by default."""
        return self._ctx.download_dir

    @property
    def closed(self) -> bool:
        """True once the session was closed (by ``close()``/``aclose()``, shutdown/restart
        or expiry)."""
        return self._state.closed


class Session(_Driver[Transport], SessionSpec):
    """A synchronous session over a ``Transport`` (see ``flare_ports.SessionSpec``).

    Args:
        transport: an open, logged-in transport; the session owns it and closes it.
        upload_dir: where relative job folders are looked up (default: working directory).
        download_dir: where downloads land (default: ``<working directory>/downloads``,
            created on first download).
        retry: retry policy of idempotent commands (default ``RetryPolicy()``).
        mint_token: source of private submit tokens (default ``mint_session_token``).
    """

    # --- the driver -------------------------------------------------------------------------

    def _run(self, flow: ClientFlow[T]) -> T:
        try:
            self._state.ensure_open()
            outcome: Any = None
            error: Exception | None = None
            while True:
                try:
                    step = flow.send(outcome) if error is None else flow.throw(error)
                except StopIteration as stop:
                    return cast(T, stop.value)
                outcome, error = None, None
                try:
                    outcome = self._perform(step)
                except Exception as exc:  # thrown into the flow, which decides
                    error = exc
        finally:
            flow.close()

    def _stream(self, flow: ClientFlow[None]) -> Generator[Any, None, None]:
        # _run for a flow that also yields Emit steps: each event goes to the caller, and
        # the flow resumes when the caller asks for the next one.
        try:
            self._state.ensure_open()
            outcome: Any = None
            error: Exception | None = None
            while True:
                try:
                    step = flow.send(outcome) if error is None else flow.throw(error)
                except StopIteration:
                    return
                outcome, error = None, None
                if isinstance(step, Emit):
                    yield step.event
                    continue
                try:
                    outcome = self._perform(step)
                except Exception as exc:  # thrown into the flow, which decides
                    error = exc
        finally:
            flow.close()

    def _exchange(self, reply: Reply) -> Reply:
        if self._state.observe(reply):
            self._release()
        return reply

    def _perform(self, step: FlowStep) -> Any:
        if isinstance(step, Call):
            self._state.ensure_open()
            return self._exchange(self._transport.call(step.command, step.timeout))
        if isinstance(step, Upload):
            self._state.ensure_open()
            chunks = zip_folder(step.folder)
            try:
                reply = self._transport.upload(step.command, chunks, step.timeout)
            finally:
                chunks.close()  # releases the open file at once when the upload broke off
            return self._exchange(reply)
        if isinstance(step, Download):
            self._state.ensure_open()
            return self._download(step)
        if isinstance(step, Sleep):
            return self._transport.sleep(step.seconds, step.wake_on)
        if isinstance(step, Now):
            return self._transport.monotonic()
        if isinstance(step, CloseSession):
            self.close()
            return None
        if isinstance(step, Notify):
            return step.callback(step.job_meta)
        return _local_step(step)

    def _download(self, step: Download) -> Reply:
        with tempfile.TemporaryFile() as spool:
            reply = self._exchange(
                self._transport.download(step.command, spool.write, step.timeout)
            )
            if not isinstance(reply, Ok):
                return reply
            spool.seek(0)
            return Ok(value=extract_archive(spool, step.parent, step.name))

    def _release(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort by contract
            self._transport.close()

    def close(self) -> None:
        if self._state.closed:
            return
        self._state.closed = True
        try:
            self._transport.call(Logout(), self._ctx.command_timeout)
        except Exception:  # logging out is best effort: the server expires idle sessions
            pass
        finally:
            self._release()

    # gen_async: source Session (AsyncSession's methods, below, are generated from these)
    # --- jobs -------------------------------------------------------------------------------

    def submit_job(self, job_definition_path: str, submit_token: str | None = None) -> str:
        return self._run(jobs.submit_job(self._ctx, job_definition_path, submit_token))

    def clone_job(self, job_id: str) -> str:
        return self._run(jobs.clone_job(self._ctx, job_id))

    def list_jobs(
        self,
        detailed: bool = False,
        limit: int | None = None,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
        reverse: bool = False,
        submit_token: str | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        return self._run(
            jobs.list_jobs(
                self._ctx, detailed, limit, id_prefix, name_prefix, reverse, submit_token, **kwargs
            )
        )

    def get_job_meta(self, job_id: str) -> dict[str, Any]:
        return self._run(jobs.get_job_meta(self._ctx, job_id))

    def download_job_result(self, job_id: str, destination: str | None = None) -> str:
        return self._run(jobs.download_job_result(self._ctx, job_id, destination))

    def list_job_components(self, job_id: str) -> list[str]:
        return self._run(jobs.list_job_components(self._ctx, job_id))

    def download_job_components(self, job_id: str) -> str:
        return self._run(jobs.download_job_components(self._ctx, job_id))

    def abort_job(self, job_id: str) -> None:
        return self._run(jobs.abort_job(self._ctx, job_id))

    def delete_job(self, job_id: str) -> dict[str, Any]:
        return self._run(jobs.delete_job(self._ctx, job_id))

    def get_job_logs(
        self,
        job_id: str,
        target: str = "server",
        tail_lines: int | None = None,
        grep_pattern: str | None = None,
        log_file_name: str = "log.txt",
    ) -> dict[str, Any]:
        return self._run(
            jobs.get_job_logs(self._ctx, job_id, target, tail_lines, grep_pattern, log_file_name)
        )

    def configure_job_log(self, job_id: str, config: Any, target: str = "all") -> dict[str, Any]:
        return self._run(jobs.configure_job_log(self._ctx, job_id, config, target))

    def configure_site_log(self, config: Any, target: str = "all") -> dict[str, Any]:
        return self._run(system.configure_site_log(self._ctx, config, target))

    def wait_for_job(
        self, job_id: str, timeout: float = 0.0, poll_interval: float = 2.0
    ) -> dict[str, Any]:
        return self._run(monitor.wait_for_job(self._ctx, job_id, timeout, poll_interval))

    def watch_jobs(
        self, job_id: str | None = None, *, poll_interval: float = 2.0
    ) -> Generator[JobChange, None, None]:
        """Iterate over job status changes, for one job or (``job_id=None``) the study.

        Each job is first reported as seen (``old_status`` None); watching one job ends
        after its terminal status, watching the study goes on until you stop iterating
        (``break``, or ``close()`` on the iterator). Waits wake on the transport's job
        events (memory, WebSocket, HTTP's event stream) and poll every ``poll_interval``
        seconds at the latest; see ``flare_core.flows.watch``.

        Raises:
            InvalidArgumentError: ``poll_interval <= 0`` or a malformed job id (at the
                first ``next``).
            JobNotFound: ``job_id`` names no job of the study.
        """
        self._state.ensure_open()  # a closed session refuses at once, as every method does
        return self._stream(watch.watch_jobs(self._ctx, job_id, poll_interval))

    def monitor_job_and_return_job_meta(
        self,
        job_id: str,
        timeout: float = 0,
        poll_interval: float = 2.0,
        cb: Callable[Concatenate[SessionSpec, str, dict[str, Any], P], bool] | None = None,
        *cb_args: P.args,
        **cb_kwargs: P.kwargs,
    ) -> tuple[MonitorReturnCode, dict[str, Any] | None]:
        bound: MonitorCallback | None = None
        if cb is not None:
            callback = cb

            def bound(meta: dict[str, Any]) -> object:
                return callback(self, job_id, meta, *cb_args, **cb_kwargs)

        return self._run(
            monitor.monitor_job_and_return_job_meta(
                self._ctx, job_id, timeout, poll_interval, bound
            )
        )

    # --- stats ------------------------------------------------------------------------------

    def show_stats(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return self._run(stats.show_stats(self._ctx, job_id, target_type, targets))

    def show_errors(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return self._run(stats.show_errors(self._ctx, job_id, target_type, targets))

    def reset_errors(self, job_id: str) -> None:
        return self._run(stats.reset_errors(self._ctx, job_id))

    # --- system -----------------------------------------------------------------------------

    def get_system_info(self) -> SystemInfo:
        return self._run(system.get_system_info(self._ctx))

    def check_status(self, target_type: str, targets: list[str] | None = None) -> dict[str, Any]:
        return self._run(system.check_status(self._ctx, target_type, targets))

    def report_resources(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return self._run(system.report_resources(self._ctx, target_type, targets))

    def report_version(self, target_type: str, targets: list[str] | None = None) -> dict[str, Any]:
        return self._run(system.report_version(self._ctx, target_type, targets))

    def get_client_job_status(
        self, client_names: list[str] | None = None
    ) -> list[dict[str, Any]] | None:
        return self._run(system.get_client_job_status(self._ctx, client_names))

    def get_connected_client_list(self) -> list[ClientInfo]:
        return self._run(system.get_connected_client_list(self._ctx))

    def restart(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        return self._run(system.restart(self._ctx, target_type, client_names, wait, timeout))

    def shutdown(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        return self._run(system.shutdown(self._ctx, target_type, client_names, wait, timeout))

    def shutdown_system(self) -> None:
        return self._run(system.shutdown_system(self._ctx))

    def set_timeout(self, value: float) -> None:
        return self._run(system.set_timeout(self._ctx, value))

    def unset_timeout(self) -> None:
        return self._run(system.unset_timeout(self._ctx))

    def get_available_apps_to_upload(self) -> list[str]:
        return self._run(system.get_available_apps_to_upload(self._ctx))

    def remove_client(self, client_name: str) -> None:
        return self._run(system.remove_client(self._ctx, client_name))

    def disable_client(self, client_name: str) -> dict[str, Any]:
        return self._run(system.disable_client(self._ctx, client_name))

    def enable_client(self, client_name: str) -> dict[str, Any]:
        return self._run(system.enable_client(self._ctx, client_name))

    # --- shell ------------------------------------------------------------------------------

    def ls_target(self, target: str, options: str | None = None, path: str | None = None) -> str:
        return self._run(shell.run_shell(self._ctx, "ls", target, options, path=path))

    def cat_target(self, target: str, options: str | None = None, file: str | None = None) -> str:
        return self._run(shell.run_shell(self._ctx, "cat", target, options, file=file))

    def tail_target(self, target: str, options: str | None = None, file: str | None = None) -> str:
        return self._run(shell.run_shell(self._ctx, "tail", target, options, file=file))

    def tail_target_log(self, target: str, options: str | None = None) -> str:
        return self._run(shell.run_shell(self._ctx, "tail", target, options, file="log.txt"))

    def head_target(self, target: str, options: str | None = None, file: str | None = None) -> str:
        return self._run(shell.run_shell(self._ctx, "head", target, options, file=file))

    def head_target_log(self, target: str, options: str | None = None) -> str:
        return self._run(shell.run_shell(self._ctx, "head", target, options, file="log.txt"))

    def grep_target(
        self,
        target: str,
        options: str | None = None,
        pattern: str | None = None,
        file: str | None = None,
    ) -> str:
        return self._run(
            shell.run_shell(self._ctx, "grep", target, options, file=file, pattern=pattern)
        )

    def get_working_directory(self, target: str) -> str:
        return self._run(shell.run_shell(self._ctx, "pwd", target))

    # --- studies ----------------------------------------------------------------------------

    def register_study(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        return self._run(studies.register_study(self._ctx, study, sites, site_orgs))

    def add_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        return self._run(studies.add_study_site(self._ctx, study, sites, site_orgs))

    def remove_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        return self._run(studies.remove_study_site(self._ctx, study, sites, site_orgs))

    def remove_study(self, study: str) -> dict[str, Any]:
        return self._run(studies.remove_study(self._ctx, study))

    def list_studies(self) -> dict[str, Any]:
        return self._run(studies.list_studies(self._ctx))

    def show_study(self, study: str) -> dict[str, Any]:
        return self._run(studies.show_study(self._ctx, study))

    def add_study_user(self, study: str, user: str) -> dict[str, Any]:
        return self._run(studies.add_study_user(self._ctx, study, user))

    def remove_study_user(self, study: str, user: str) -> dict[str, Any]:
        return self._run(studies.remove_study_user(self._ctx, study, user))

    # gen_async: end Session


class AsyncSession(_Driver[AsyncTransport], AsyncSessionSpec):
    """An asynchronous session over an ``AsyncTransport`` (see
    ``flare_ports.AsyncSessionSpec``); same arguments as ``Session``."""

    # --- the driver -------------------------------------------------------------------------

    async def _run(self, flow: ClientFlow[T]) -> T:
        try:
            self._state.ensure_open()
            outcome: Any = None
            error: Exception | None = None
            while True:
                try:
                    step = flow.send(outcome) if error is None else flow.throw(error)
                except StopIteration as stop:
                    return cast(T, stop.value)
                outcome, error = None, None
                try:
                    outcome = await self._perform(step)
                except Exception as exc:  # thrown into the flow, which decides
                    error = exc
        finally:
            flow.close()

    async def _stream(self, flow: ClientFlow[None]) -> AsyncGenerator[Any, None]:
        # The async twin of Session._stream.
        try:
            self._state.ensure_open()
            outcome: Any = None
            error: Exception | None = None
            while True:
                try:
                    step = flow.send(outcome) if error is None else flow.throw(error)
                except StopIteration:
                    return
                outcome, error = None, None
                if isinstance(step, Emit):
                    yield step.event
                    continue
                try:
                    outcome = await self._perform(step)
                except Exception as exc:  # thrown into the flow, which decides
                    error = exc
        finally:
            flow.close()

    async def _exchange(self, reply: Reply) -> Reply:
        if self._state.observe(reply):
            await self._release()
        return reply

    async def _perform(self, step: FlowStep) -> Any:
        if isinstance(step, Call):
            self._state.ensure_open()
            return await self._exchange(await self._transport.acall(step.command, step.timeout))
        if isinstance(step, Upload):
            self._state.ensure_open()
            source = zip_folder(step.folder)
            pull = ChunkPull(source)
            chunks = pull.stream()
            try:
                reply = await self._transport.aupload(step.command, chunks, step.timeout)
            finally:
                await pull.settle()
                with contextlib.suppress(RuntimeError):  # still being iterated: it ends with us
                    await chunks.aclose()
                source.close()  # releases the open file at once when the upload broke off
            return await self._exchange(reply)
        if isinstance(step, Download):
            self._state.ensure_open()
            return await self._download(step)
        if isinstance(step, Sleep):
            return await self._transport.asleep(step.seconds, step.wake_on)
        if isinstance(step, Now):
            return self._transport.monotonic()
        if isinstance(step, CloseSession):
            await self.aclose()
            return None
        if isinstance(step, Notify):
            result = step.callback(step.job_meta)
            if inspect.isawaitable(result):
                result = await result
            return result
        return _local_step(step)

    async def _download(self, step: Download) -> Reply:
        with tempfile.TemporaryFile() as spool:
            reply = await self._transport.adownload(step.command, spool.write, step.timeout)
            reply = await self._exchange(reply)
            if not isinstance(reply, Ok):
                return reply
            spool.seek(0)
            path = await asyncio.to_thread(extract_archive, spool, step.parent, step.name)
            return Ok(value=path)

    async def _release(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort by contract
            await self._transport.aclose()

    async def aclose(self) -> None:
        if self._state.closed:
            return
        self._state.closed = True
        try:
            await self._transport.acall(Logout(), self._ctx.command_timeout)
        except Exception:  # logging out is best effort: the server expires idle sessions
            pass
        finally:
            await self._release()

    # gen_async: generated from Session by scripts/gen_async.py (edit Session, then run it)
    # --- jobs -------------------------------------------------------------------------------

    async def submit_job(self, job_definition_path: str, submit_token: str | None = None) -> str:
        return await self._run(jobs.submit_job(self._ctx, job_definition_path, submit_token))

    async def clone_job(self, job_id: str) -> str:
        return await self._run(jobs.clone_job(self._ctx, job_id))

    async def list_jobs(
        self,
        detailed: bool = False,
        limit: int | None = None,
        id_prefix: str | None = None,
        name_prefix: str | None = None,
        reverse: bool = False,
        submit_token: str | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        return await self._run(
            jobs.list_jobs(
                self._ctx, detailed, limit, id_prefix, name_prefix, reverse, submit_token, **kwargs
            )
        )

    async def get_job_meta(self, job_id: str) -> dict[str, Any]:
        return await self._run(jobs.get_job_meta(self._ctx, job_id))

    async def download_job_result(self, job_id: str, destination: str | None = None) -> str:
        return await self._run(jobs.download_job_result(self._ctx, job_id, destination))

    async def list_job_components(self, job_id: str) -> list[str]:
        return await self._run(jobs.list_job_components(self._ctx, job_id))

    async def download_job_components(self, job_id: str) -> str:
        return await self._run(jobs.download_job_components(self._ctx, job_id))

    async def abort_job(self, job_id: str) -> None:
        return await self._run(jobs.abort_job(self._ctx, job_id))

    async def delete_job(self, job_id: str) -> dict[str, Any]:
        return await self._run(jobs.delete_job(self._ctx, job_id))

    async def get_job_logs(
        self,
        job_id: str,
        target: str = "server",
        tail_lines: int | None = None,
        grep_pattern: str | None = None,
        log_file_name: str = "log.txt",
    ) -> dict[str, Any]:
        return await self._run(
            jobs.get_job_logs(self._ctx, job_id, target, tail_lines, grep_pattern, log_file_name)
        )

    async def configure_job_log(
        self, job_id: str, config: Any, target: str = "all"
    ) -> dict[str, Any]:
        return await self._run(jobs.configure_job_log(self._ctx, job_id, config, target))

    async def configure_site_log(self, config: Any, target: str = "all") -> dict[str, Any]:
        return await self._run(system.configure_site_log(self._ctx, config, target))

    async def wait_for_job(
        self, job_id: str, timeout: float = 0.0, poll_interval: float = 2.0
    ) -> dict[str, Any]:
        return await self._run(monitor.wait_for_job(self._ctx, job_id, timeout, poll_interval))

    def watch_jobs(
        self, job_id: str | None = None, *, poll_interval: float = 2.0
    ) -> AsyncGenerator[JobChange, None]:
        """Async-iterate over job status changes, for one job or (``job_id=None``) the study.

        Each job is first reported as seen (``old_status`` None); watching one job ends
        after its terminal status, watching the study goes on until you stop iterating
        (``break``, or ``aclose()`` on the iterator). Waits wake on the transport's job
        events (memory, WebSocket, HTTP's event stream) and poll every ``poll_interval``
        seconds at the latest; see ``flare_core.flows.watch``.

        Raises:
            InvalidArgumentError: ``poll_interval <= 0`` or a malformed job id (at the
                first ``anext``).
            JobNotFound: ``job_id`` names no job of the study.
        """
        self._state.ensure_open()  # a closed session refuses at once, as every method does
        return self._stream(watch.watch_jobs(self._ctx, job_id, poll_interval))

    async def monitor_job_and_return_job_meta(
        self,
        job_id: str,
        timeout: float = 0,
        poll_interval: float = 2.0,
        cb: Callable[Concatenate[AsyncSessionSpec, str, dict[str, Any], P], bool | Awaitable[bool]]
        | None = None,
        *cb_args: P.args,
        **cb_kwargs: P.kwargs,
    ) -> tuple[MonitorReturnCode, dict[str, Any] | None]:
        bound: MonitorCallback | None = None
        if cb is not None:
            callback = cb

            def bound(meta: dict[str, Any]) -> object:
                return callback(self, job_id, meta, *cb_args, **cb_kwargs)

        return await self._run(
            monitor.monitor_job_and_return_job_meta(
                self._ctx, job_id, timeout, poll_interval, bound
            )
        )

    # --- stats ------------------------------------------------------------------------------

    async def show_stats(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(stats.show_stats(self._ctx, job_id, target_type, targets))

    async def show_errors(
        self, job_id: str, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(stats.show_errors(self._ctx, job_id, target_type, targets))

    async def reset_errors(self, job_id: str) -> None:
        return await self._run(stats.reset_errors(self._ctx, job_id))

    # --- system -----------------------------------------------------------------------------

    async def get_system_info(self) -> SystemInfo:
        return await self._run(system.get_system_info(self._ctx))

    async def check_status(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(system.check_status(self._ctx, target_type, targets))

    async def report_resources(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(system.report_resources(self._ctx, target_type, targets))

    async def report_version(
        self, target_type: str, targets: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(system.report_version(self._ctx, target_type, targets))

    async def get_client_job_status(
        self, client_names: list[str] | None = None
    ) -> list[dict[str, Any]] | None:
        return await self._run(system.get_client_job_status(self._ctx, client_names))

    async def get_connected_client_list(self) -> list[ClientInfo]:
        return await self._run(system.get_connected_client_list(self._ctx))

    async def restart(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        return await self._run(system.restart(self._ctx, target_type, client_names, wait, timeout))

    async def shutdown(
        self,
        target_type: str,
        client_names: list[str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        return await self._run(system.shutdown(self._ctx, target_type, client_names, wait, timeout))

    async def shutdown_system(self) -> None:
        return await self._run(system.shutdown_system(self._ctx))

    async def set_timeout(self, value: float) -> None:
        return await self._run(system.set_timeout(self._ctx, value))

    async def unset_timeout(self) -> None:
        return await self._run(system.unset_timeout(self._ctx))

    async def get_available_apps_to_upload(self) -> list[str]:
        return await self._run(system.get_available_apps_to_upload(self._ctx))

    async def remove_client(self, client_name: str) -> None:
        return await self._run(system.remove_client(self._ctx, client_name))

    async def disable_client(self, client_name: str) -> dict[str, Any]:
        return await self._run(system.disable_client(self._ctx, client_name))

    async def enable_client(self, client_name: str) -> dict[str, Any]:
        return await self._run(system.enable_client(self._ctx, client_name))

    # --- shell ------------------------------------------------------------------------------

    async def ls_target(
        self, target: str, options: str | None = None, path: str | None = None
    ) -> str:
        return await self._run(shell.run_shell(self._ctx, "ls", target, options, path=path))

    async def cat_target(
        self, target: str, options: str | None = None, file: str | None = None
    ) -> str:
        return await self._run(shell.run_shell(self._ctx, "cat", target, options, file=file))

    async def tail_target(
        self, target: str, options: str | None = None, file: str | None = None
    ) -> str:
        return await self._run(shell.run_shell(self._ctx, "tail", target, options, file=file))

    async def tail_target_log(self, target: str, options: str | None = None) -> str:
        return await self._run(shell.run_shell(self._ctx, "tail", target, options, file="log.txt"))

    async def head_target(
        self, target: str, options: str | None = None, file: str | None = None
    ) -> str:
        return await self._run(shell.run_shell(self._ctx, "head", target, options, file=file))

    async def head_target_log(self, target: str, options: str | None = None) -> str:
        return await self._run(shell.run_shell(self._ctx, "head", target, options, file="log.txt"))

    async def grep_target(
        self,
        target: str,
        options: str | None = None,
        pattern: str | None = None,
        file: str | None = None,
    ) -> str:
        return await self._run(
            shell.run_shell(self._ctx, "grep", target, options, file=file, pattern=pattern)
        )

    async def get_working_directory(self, target: str) -> str:
        return await self._run(shell.run_shell(self._ctx, "pwd", target))

    # --- studies ----------------------------------------------------------------------------

    async def register_study(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(studies.register_study(self._ctx, study, sites, site_orgs))

    async def add_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(studies.add_study_site(self._ctx, study, sites, site_orgs))

    async def remove_study_site(
        self, study: str, sites: list[str] | None = None, site_orgs: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._run(studies.remove_study_site(self._ctx, study, sites, site_orgs))

    async def remove_study(self, study: str) -> dict[str, Any]:
        return await self._run(studies.remove_study(self._ctx, study))

    async def list_studies(self) -> dict[str, Any]:
        return await self._run(studies.list_studies(self._ctx))

    async def show_study(self, study: str) -> dict[str, Any]:
        return await self._run(studies.show_study(self._ctx, study))

    async def add_study_user(self, study: str, user: str) -> dict[str, Any]:
        return await self._run(studies.add_study_user(self._ctx, study, user))

    async def remove_study_user(self, study: str, user: str) -> dict[str, Any]:
        return await self._run(studies.remove_study_user(self._ctx, study, user))
