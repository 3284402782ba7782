"""Every "§N" the code cites resolves to a section of a page in the repository.

``DECISIONS §N`` names decision N of ``docs/decisions.md``; ``reference §N.M`` (and a bare
``§N.M``) a section of ``docs/reference-behaviour.md``; a bare ``§N`` either.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["flare_core", "ports", "adapters", "testing", "tests", "tests_nvflare", "bench"]
CITATION = re.compile(r"(DECISIONS|reference|Reference)?[ (]*§(\d+(?:\.\d+)*)")


def _decisions() -> set[str]:
    text = (ROOT / "docs" / "decisions.md").read_text()
    return set(re.findall(r"^(\d+)\. ", text, flags=re.M))


def _reference_sections() -> set[str]:
    text = (ROOT / "docs" / "reference-behaviour.md").read_text()
    return set(re.findall(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", text, flags=re.M))


def _citations() -> list[tuple[str, str, str]]:
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for match in CITATION.finditer(path.read_text()):
                found.append((str(path.relative_to(ROOT)), match.group(1) or "", match.group(2)))
    return found


def test_the_pages_have_their_sections() -> None:
    assert {"1", "7", "19"} <= _decisions()
    assert {"1.3", "2.4", "9.1", "11.1"} <= _reference_sections()


def test_every_citation_resolves() -> None:
    decisions, sections = _decisions(), _reference_sections()
    citations = _citations()
    assert len(citations) > 100
    unresolved = []
    for path, kind, number in citations:
        if kind == "DECISIONS":
            ok = number in decisions
        elif kind.lower() == "reference" or "." in number:
            ok = number in sections
        else:
            ok = number in sections or number in decisions
        if not ok:
            unresolved.append(f"{path}: {kind} §{number}")
    assert unresolved == []
