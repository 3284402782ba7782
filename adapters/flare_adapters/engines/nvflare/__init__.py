"""The ``nvflare`` engine: the embedded server's jobs run for real on NVIDIA FLARE's simulator.

Part of the ``flare-core[nvflare]`` extra. Importing this package does not import NVFlare:
only the child process the engine starts for each job does (``child``).
"""

from flare_adapters.engines.nvflare.engine import NVFlareEngine, nvflare_available
from flare_adapters.engines.nvflare.run import RunSettings

__all__ = ["NVFlareEngine", "RunSettings", "nvflare_available"]
