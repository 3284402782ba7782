"""The docs site's generated page is current, and the pages the issue asks for exist."""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_coverage", ROOT / "docs" / "gen_coverage.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_coverage_page_is_what_the_generator_writes() -> None:
    render = _generator().render
    page = (ROOT / "docs" / "coverage.md").read_text()
    assert page == render(), "run 'make docs' (docs/gen_coverage.py) and commit docs/coverage.md"
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert any(row.startswith("| `watch_jobs` |") for row in rows)
    assert len(rows) >= 50


def test_every_nav_page_exists() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    pages = re.findall(r":\s+(\S+\.md)$", config, flags=re.M)
    assert {"index.md", "api.md", "testing.md", "contract.md", "server.md", "protocol.md"} <= set(
        pages
    )
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page
