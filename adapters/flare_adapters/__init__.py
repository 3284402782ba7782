"""flare-adapters: sessions, transports, server, storage and engines around flare-core."""

from flare_adapters.session import AsyncSession, Session

__all__ = ["AsyncSession", "Session"]
