"""Fixtures of the hostile-input tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.server.server_kit import Host, hosted


@pytest_asyncio.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    """The app over a fresh in-memory system (virtual clock) on a loopback port."""
    async with hosted(str(tmp_path)) as served:
        yield served
