"""flare-adapters: sessions, transports, server, storage and engines around flare-core."""

import logging

from flare_adapters.session import AsyncSession, Session

# A library logs through the standard logging module and leaves the handlers to the
# application; the NullHandler keeps "no handler" warnings away when it configures none.
logging.getLogger("flare_adapters").addHandler(logging.NullHandler())

__all__ = ["AsyncSession", "Session"]
