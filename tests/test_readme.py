"""The README's examples run as written (from the repository root)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Blocks marked "python skip" need a running server; every plain python block must run.
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(
    index: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(BLOCKS[index], f"README.md[{index}]", "exec"), {})
    out = capsys.readouterr().out
    for expected in re.findall(r"# ([A-Z][\w:]+(?:\(\))?)", BLOCKS[index]):
        if expected[0].isupper() and (":" in expected or "(" in expected):
            assert expected.split("(")[0] in out


def test_readme_server_examples_compile() -> None:
    text = (ROOT / "README.md").read_text()
    skipped = re.findall(r"```python skip\n(.*?)```", text, flags=re.S)
    assert skipped
    for index, block in enumerate(skipped):
        compile(block, f"README.md[skip {index}]", "exec")
