"""The generated async code is current: ``scripts/gen_async.py --check`` finds nothing stale.

``AsyncSessionSpec`` and ``AsyncSession``'s methods are generated from ``SessionSpec`` and
``Session``; editing a sync method without regenerating fails here (and in ``make test``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_async_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_async.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
