"""The lifecycle page in docs/ is generated from the transition table and kept in step."""

from __future__ import annotations

from pathlib import Path

from flare_core.rules import state_diagram

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"


def test_lifecycle_doc_matches_the_table() -> None:
    assert f"```mermaid\n{state_diagram()}\n```" in DOC.read_text(encoding="utf-8")
