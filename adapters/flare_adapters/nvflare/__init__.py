"""The nvflare backend: flare-core in front of a real NVIDIA FLARE federation.

``NVFlareBackend`` implements the ``flare_ports.Backend`` port on NVFlare's own admin API, so
``connect("nvflare:///path/to/admin-kit", user=...)`` sessions and the ``flare-core serve
--backend nvflare`` gateway drive a real federation with flare-core's contract. NVFlare itself
(the ``flare-core[nvflare]`` extra) is imported only when a session to it is opened.
"""

from flare_adapters.nvflare.backend import NVFlareBackend, NVFlareConfig
from flare_adapters.nvflare.kits import KitUser

__all__ = ["KitUser", "NVFlareBackend", "NVFlareConfig"]
