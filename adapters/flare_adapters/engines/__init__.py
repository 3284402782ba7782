"""Job engines behind the service's ``Engine`` port: ``simulated`` (deterministic, clock-driven)."""

from flare_adapters.engines.simulated import SimulatedEngine

__all__ = ["SimulatedEngine"]
