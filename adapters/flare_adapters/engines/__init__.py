"""Job engines behind the service's ``Engine`` port: ``simulated`` (deterministic, clock-driven)
and ``nvflare`` (real jobs on NVIDIA FLARE's simulator, in ``flare_adapters.engines.nvflare``)."""

from flare_adapters.engines.simulated import SimulatedEngine

__all__ = ["SimulatedEngine"]
