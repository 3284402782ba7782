"""flare-adapters: sessions, transports, server, storage and engines around flare-core."""

__all__: list[str] = []
