"""The flare-testing pytest plugin (entry point ``pytest11``: ``flare_testing``).

Installed with flare-core, it gives every test session:

* ``flare_fake``: a fresh ``FakeFlare`` per test (closed afterwards);
* ``flare_session``: a ``project_admin`` ``Session`` on it, with ``upload_dir`` and
  ``download_dir`` in the test's ``tmp_path``;
* ``flare_async_session``: the same as an ``AsyncSession``, for ``async def`` tests (any
  async test runner: the memory transport binds to no event loop);
* the markers the contract suite uses, so ``--strict-markers`` accepts them:
  ``flare_contract`` (every contract test) and ``flare_requires(*capabilities)`` (a test that
  needs declared capabilities; skipped with the reason otherwise).

Without the entry point, enable it with ``-p flare_testing.plugin``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_adapters.session import AsyncSession, Session
from flare_testing.fake import FakeFlare

__all__ = [
    "MARKERS",
    "flare_async_session",
    "flare_fake",
    "flare_session",
    "pytest_configure",
    "register_markers",
]

MARKERS = (
    "flare_contract: a test of the flare-core contract suite (flare_testing.contract)",
    "flare_requires(*capabilities): needs these declared capabilities "
    "(flare_testing.contract.capabilities); skipped with the reason otherwise",
)


def register_markers(config: pytest.Config) -> None:
    """Declare the contract suite's markers on ``config``."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers (pytest hook)."""
    register_markers(config)


@pytest.fixture
def flare_fake() -> Iterator[FakeFlare]:
    """A fresh in-memory FL system, closed after the test."""
    with FakeFlare() as fake:
        yield fake


def _dirs(tmp_path: Path) -> dict[str, str]:
    upload, download = tmp_path / "flare-upload", tmp_path / "flare-download"
    upload.mkdir(exist_ok=True)
    download.mkdir(exist_ok=True)
    return {"upload_dir": str(upload), "download_dir": str(download)}


@pytest.fixture
def flare_session(flare_fake: FakeFlare, tmp_path: Path) -> Iterator[Session]:
    """A ``project_admin`` session on ``flare_fake``, closed after the test."""
    session = flare_fake.session(**_dirs(tmp_path))
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def flare_async_session(flare_fake: FakeFlare, tmp_path: Path) -> Iterator[AsyncSession]:
    """A ``project_admin`` ``AsyncSession`` on ``flare_fake``, closed after the test.

    A plain fixture on purpose: it works under pytest-asyncio, anyio or any other runner,
    because the in-memory transport is bound to no event loop.
    """
    session = flare_fake.async_session(**_dirs(tmp_path))
    try:
        yield session
    finally:
        # Closing the memory transport performs no I/O: any loop (here a fresh one) will do.
        asyncio.run(session.aclose())
