"""What the network transports share: connect options, progress reports, session factories.

``connect(url, *, user, api_key, study, **options)`` hands every option to the transport
factory of the URL's scheme. The network factories (``http``/``https`` and ``ws``/``wss``)
split them in two:

- session options, passed to ``Session`` / ``AsyncSession``: ``upload_dir``,
  ``download_dir``, ``retry`` (a ``RetryPolicy``; it also governs retries of the login) and
  ``mint_token``;
- transport options (``NetworkOptions``): ``timeout`` (seconds a call may wait for its reply;
  for uploads and downloads, the longest silence between two pieces), ``connect_timeout``,
  ``ssl`` (an ``ssl.SSLContext`` for ``https``/``wss``: custom CAs, client certificates),
  ``progress`` (a callback receiving ``TransferProgress`` while archives stream),
  ``max_poll_interval`` (caps each wait between two polls of ``wait_for_job`` /
  ``monitor_job``; useful where the transport has no event source) and ``chunk_size``; plus
  the options of one transport (e.g. the WebSocket's ``encoding``).

Unknown options raise ``TypeError``, as unknown keyword arguments do.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import TracebackType
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from flare_adapters.loop_thread import ThreadedTransport
from flare_adapters.session import AsyncSession, Session
from flare_core.commands import Command
from flare_core.errors import InvalidArgumentError, NoConnection
from flare_core.flows import RetryPolicy
from flare_core.studies import check_session_study
from flare_ports.transport import AsyncTransport

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "CallerCode",
    "ChunkPump",
    "NetworkOptions",
    "NetworkTransportFactory",
    "ProgressCallback",
    "TransferProgress",
    "login_with_retries",
    "op_name",
    "split_options",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds a call waits for its reply unless ``timeout`` (or ``set_timeout``) says otherwise."""

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to establish a connection (the reference's login timeout)."""

SESSION_OPTIONS = frozenset({"upload_dir", "download_dir", "retry", "mint_token"})


class TransferProgress(NamedTuple):
    """One progress report of a streamed archive.

    Attributes:
        direction: ``"upload"`` (a job folder going up) or ``"download"`` (an archive coming
            down).
        op: the command's wire name, e.g. ``"submit_job"`` or ``"download_job_result"``.
        transferred: bytes moved so far.
        done: True on the last report of the transfer (sent once it completed).
    """

    direction: Literal["upload", "download"]
    op: str
    transferred: int
    done: bool


ProgressCallback = Callable[[TransferProgress], object]
"""Receives ``TransferProgress`` reports, on the transport's event-loop thread; it must be
quick and must not call back into the session."""


@dataclass(frozen=True)
class NetworkOptions:
    """The options every network transport understands (see the module docstring).

    Attributes:
        timeout: default seconds per call (``set_timeout`` overrides it per session).
        connect_timeout: seconds to open a connection.
        ssl: TLS context for ``https``/``wss`` (None: the system's default verification).
        progress: transfer progress callback, or None.
        max_poll_interval: cap on each wait between polls, or None for no cap.
        chunk_size: bytes per piece of a streamed archive.
        retry: retry policy of the login (the session applies it to its calls).
    """

    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ssl: ssl.SSLContext | None = None
    progress: ProgressCallback | None = None
    max_poll_interval: float | None = None
    chunk_size: int = 256 * 1024
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise InvalidArgumentError(f"{name} must be a number > 0, got {value!r}")
        cap = self.max_poll_interval
        if cap is not None and (not isinstance(cap, int | float) or not cap > 0):
            raise InvalidArgumentError(f"max_poll_interval must be > 0 or None, got {cap!r}")
        if self.ssl is not None and not isinstance(self.ssl, ssl.SSLContext):
            raise InvalidArgumentError("ssl must be an ssl.SSLContext or None")
        if self.progress is not None and not callable(self.progress):
            raise InvalidArgumentError("progress must be callable or None")
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1024:
            raise InvalidArgumentError("chunk_size must be an int >= 1024")
        if not isinstance(self.retry, RetryPolicy):
            raise InvalidArgumentError("retry must be a RetryPolicy")

    def call_timeout(self, timeout: float | None) -> float:
        """The timeout of one call: the caller's, else this default."""
        return self.timeout if timeout is None else timeout

    def sleep_for(self, seconds: float) -> float:
        """How long a poll wait really waits (``max_poll_interval`` caps it)."""
        seconds = max(0.0, seconds)
        cap = self.max_poll_interval
        return seconds if cap is None else min(seconds, cap)


def op_name(command: Command) -> str:
    """A command's wire name (its ``op`` tag), e.g. ``"submit_job"``."""
    # The struct's own config, not `msgspec.inspect.type_info`: that walks the class's
    # annotations (about 2 ms for a submit's command), and this runs on every upload and
    # download.
    tag = type(command).__struct_config__.tag
    return "command" if tag is None else str(tag)


T = TypeVar("T")


class CallerCode:
    """Runs caller-supplied code (a download sink, upload chunks, a progress callback) and
    remembers its first failure, so that failure surfaces as itself instead of being
    mistaken for a network failure by a transport's error translation.

    Args:
        progress: the progress callback, if any.
        op: the command's wire name, for progress reports.
    """

    def __init__(self, progress: ProgressCallback | None = None, op: str = "") -> None:
        self.error: BaseException | None = None
        self._progress = progress
        self._op = op

    def call(self, func: Callable[[T], object], arg: T) -> None:
        """Call ``func(arg)``, remembering its failure (then re-raised)."""
        try:
            func(arg)
        except BaseException as exc:
            self.error = exc
            raise

    def report(
        self, direction: Literal["upload", "download"], transferred: int, done: bool = False
    ) -> None:
        """Send one progress report (when there is a callback)."""
        if self._progress is not None:
            self.call(self._progress, TransferProgress(direction, self._op, transferred, done))


class translating:  # lower case: entered like the function it was, ``with translating(...)``
    """Turn foreign errors into domain exceptions with ``translate`` (chained with ``from``).

    An error the caller's own code raised (a progress callback) is re-raised as it was;
    anything ``translate`` does not know (returns None for) propagates unchanged. A plain
    context manager, not a generator one: every call of every transport enters it, and a
    ``contextmanager`` costs a generator and two extra calls each time.
    """

    __slots__ = ("_caller", "_timeout", "_translate")

    def __init__(
        self,
        translate: Callable[[Exception, float], Exception | None],
        timeout: float,
        caller: CallerCode | None = None,
    ) -> None:
        self._translate = translate
        self._timeout = timeout
        self._caller = caller

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Returning lets ``exc`` propagate unchanged: no error, one that is not an
        # ``Exception`` (cancellation, interrupts), or one ``translate`` does not know.
        if not isinstance(exc, Exception):
            return
        caller = self._caller
        if caller is not None and caller.error is not None:
            raise caller.error from None
        domain = self._translate(exc, self._timeout)
        if domain is not None:
            raise domain from exc


class ChunkPump:
    """Pulls an upload's chunks in a task of its own, at most one chunk ahead, and hands them
    out in pieces of at most ``piece_size`` bytes (what every transport sends at a time, so
    progress comes in steps of the session's ``chunk_size`` whatever the archive's pieces).

    A transport reads with ``next``; whatever happens to the upload, ``stop`` lets the chunk
    being produced finish and ends the task, never cancelling it inside ``chunks``. So once
    the transport returned, nothing iterates ``chunks`` any more and the caller may close
    it at once.

    Args:
        chunks: the archive's bytes.
        caller: records a failure of ``chunks`` (re-raised by ``next``).
        piece_size: the largest piece ``next`` returns.
    """

    def __init__(self, chunks: AsyncIterable[bytes], caller: CallerCode, piece_size: int) -> None:
        self._chunks = chunks
        self._caller = caller
        self._piece_size = piece_size
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        # The chunk being cut, as a view, and where its next piece starts: its pieces cost
        # a slice each, not a task switch.
        self._current = memoryview(b"")
        self._offset = 0
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for chunk in self._chunks:
                if self._stopping:
                    return
                if chunk:
                    await self._queue.put(chunk)
        except Exception as exc:
            self._caller.error = exc
        if not self._stopping:
            await self._queue.put(None)

    async def next(self) -> bytes | memoryview | None:
        """The next non-empty piece, or None at the end. A chunk that fits is its own piece;
        a larger one comes as views into it, not copies.

        Raises:
            Exception: whatever producing the chunks raised.
        """
        size = self._piece_size
        if self._offset >= len(self._current):
            chunk = await self._queue.get()
            if chunk is None:
                if self._caller.error is not None:
                    raise self._caller.error
                return None
            if len(chunk) <= size:
                return chunk
            self._current, self._offset = memoryview(chunk), 0
        start = self._offset
        self._offset += size
        return self._current[start : start + size]

    async def stop(self) -> None:
        """End the pump (idempotent); returns once nothing iterates the chunks."""
        self._stopping = True
        while not self._queue.empty():  # unblock a pending put
            self._queue.get_nowait()
        try:
            await self._task
        finally:
            self._task.cancel()  # only when we were cancelled while waiting


_COMMON = frozenset(f.name for f in fields(NetworkOptions))


def split_options(
    options: Mapping[str, Any], extra: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], NetworkOptions, dict[str, Any]]:
    """Split ``connect`` options into session, common transport and transport-specific ones.

    Args:
        options: the keyword options given to ``connect``.
        extra: the option names the specific transport adds.

    Returns:
        ``(session_options, network_options, extra_options)``.

    Raises:
        TypeError: an option nobody understands.
        InvalidArgumentError: a known option with a bad value.
    """
    unknown = sorted(set(options) - SESSION_OPTIONS - _COMMON - extra)
    if unknown:
        raise TypeError(f"unsupported connect options: {unknown}")
    session = {k: v for k, v in options.items() if k in SESSION_OPTIONS}
    common = {k: v for k, v in options.items() if k in _COMMON}
    specific = {k: v for k, v in options.items() if k in extra}
    return session, replace(NetworkOptions(), **common), specific


async def login_with_retries(policy: RetryPolicy, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a login ``attempt``, retrying connection failures as ``policy`` says.

    A rejected login (``AuthenticationError``) is never retried: only ``NoConnection`` is.

    Raises:
        NoConnection: every attempt failed to reach the server.
        AuthenticationError: the server rejected the login.
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline),
        wait=wait_exponential(multiplier=policy.initial_delay, max=policy.max_delay),
        retry=retry_if_exception_type(NoConnection),
        reraise=True,
    )
    async for round_ in retrying:
        with round_:
            return await attempt()
    raise NoConnection("cannot connect to server")  # unreachable: reraise=True


A = TypeVar("A", bound=AsyncTransport, covariant=True)


class TransportOpener(Protocol[A]):
    """Opens (connects and logs in) one kind of async transport."""

    def __call__(
        self,
        url: str,
        *,
        user: str,
        api_key: str | None,
        study: str,
        options: NetworkOptions,
        extra: dict[str, Any],
    ) -> Awaitable[A]: ...


def _checked_login(user: object, study: object) -> tuple[str, str]:
    # connect() checks these too; the factories are public, so they check again.
    if not isinstance(user, str) or not user:
        raise InvalidArgumentError("user must be a non-empty str")
    return user, check_session_study(study)


class NetworkTransportFactory(Generic[A]):
    """A ``flare_core.transports.TransportFactory`` for one network transport.

    Args:
        name: the transport's name for thread names and messages (``"http"``, ``"ws"``).
        opener: opens a logged-in async transport.
        extra: the transport-specific option names ``opener`` accepts.
        threaded: the sync flavour a sync ``Session`` runs the async transport in.
    """

    def __init__(
        self,
        name: str,
        opener: TransportOpener[A],
        extra: frozenset[str],
        threaded: type[ThreadedTransport] = ThreadedTransport,
    ) -> None:
        self._name = name
        self._opener = opener
        self._extra = extra
        self._threaded = threaded

    def connect(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> Session:
        """Log in over this transport and return a sync ``Session`` (run on a private
        event-loop thread, closed with the session).

        Raises:
            NoConnection: the server could not be reached.
            AuthenticationError: the login was rejected.
            TypeError: an unknown option.
            InvalidArgumentError: a bad option value, URL, user or study name (nothing is
                sent).
        """
        user, study = _checked_login(user, study)
        session_options, common, extra = split_options(options, self._extra)

        def make() -> Awaitable[AsyncTransport]:
            return self._opener(
                url, user=user, api_key=api_key, study=study, options=common, extra=extra
            )

        transport = self._threaded.open(make, name=f"flare-{self._name}")
        try:
            return Session(transport, **session_options)
        except BaseException:
            transport.close()
            raise

    async def connect_async(
        self, url: str, *, user: str, api_key: str | None, study: str, **options: Any
    ) -> AsyncSession:
        """Log in over this transport and return an ``AsyncSession`` on the running loop.

        Raises:
            NoConnection: the server could not be reached.
            AuthenticationError: the login was rejected.
            TypeError: an unknown option.
            InvalidArgumentError: a bad option value, URL, user or study name (nothing is
                sent).
        """
        user, study = _checked_login(user, study)
        session_options, common, extra = split_options(options, self._extra)
        transport = await self._opener(
            url, user=user, api_key=api_key, study=study, options=common, extra=extra
        )
        try:
            return AsyncSession(transport, **session_options)
        except BaseException:
            await transport.aclose()
            raise
