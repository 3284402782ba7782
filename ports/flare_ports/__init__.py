"""flare-ports: the typed seams of flare-core (session interfaces, transports, backend, wire)."""

from flare_ports._backend import Backend, Unsubscribe

__all__ = ["Backend", "Unsubscribe"]
