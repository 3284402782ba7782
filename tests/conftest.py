"""Settings shared by every test under ``tests/``."""

from __future__ import annotations

from hypothesis import settings

# Hypothesis fails an example that takes longer than 200 ms by default; on a loaded CI machine
# (two ``make test`` side by side, as the brief asks) that is a clock race, not a finding. The
# properties are about values; speed is measured in ``make bench``.
settings.register_profile("flare-core", deadline=None)
settings.load_profile("flare-core")
