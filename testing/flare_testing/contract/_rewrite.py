"""Ask pytest to rewrite the contract modules' asserts, as it does for test files, so a
failing contract test explains itself. Imported first by the package; harmless outside
pytest (the registration only takes effect under pytest's import hook)."""

import pytest

CONTRACT_MODULES = (
    "authz",
    "base",
    "jobs",
    "listing",
    "monitor",
    "sessions",
    "shell",
    "stats",
    "studies",
    "system",
    "tokens",
)

pytest.register_assert_rewrite(*(f"flare_testing.contract.{name}" for name in CONTRACT_MODULES))
