"""The grep pattern engine on its own: the subset it accepts, its answers, its bounds.

``tests/core/test_shell.py`` checks grep as a command (options, files, output); these tests
check the engine under it, with no file tree in between.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flare_core import regex_dfa as regex_dfa
from flare_core.errors import InvalidArgumentError
from flare_core.regex_dfa import TooMuchWork, compile_pattern

LIMIT = 2_000_000


def matches(pattern: str, line: str, ignore_case: bool = False) -> bool:
    return compile_pattern(pattern, ignore_case, LIMIT).search(line)


@pytest.mark.parametrize(
    ("pattern", "line", "expected"),
    [
        ("a\\.b", "a.b", True),
        ("a\\.b", "axb", False),
        ("a.b", "axb", True),
        ("*star", "*star", True),  # a leading "*" is a literal
        ("^*", "*x", True),
        ("x^y", "x^y", True),  # "^" in the middle is a literal
        ("$5", "cost $5", True),  # "$" before the end is a literal
        ("\\[x]", "[x]", True),
        ("[]x]", "]", True),
        ("[^a-z*$ []", "a.b", True),
        ("[^a-z*$ []", "ab", False),
        ("[[:digit:]][[:alpha:]]", "7x", True),
        ("^ab*c$", "ac", True),
        ("^ab*c$", "abbbc", True),
        ("^ab*c$", "abbbcd", False),
        ("", "anything", True),
    ],
)
def test_the_supported_subset(pattern: str, line: str, expected: bool) -> None:
    assert matches(pattern, line) is expected


def test_ignore_case_folds_before_negating_a_bracket() -> None:
    assert matches("[^a]", "A", ignore_case=True) is False
    assert matches("[A]", "a", ignore_case=True) is True


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("\\(a\\)", "\\( is not supported"),
        ("a\\{2\\}", "\\{ is not supported"),
        ("a\\|b", "\\| is not supported"),
        ("a\\+", "\\+ is not supported"),
        ("\\1", "\\1 is not supported"),
        ("[abc", "unmatched ["),
        ("[[:nope:]]", "unknown character class"),
        ("[z-a]", "invalid range end"),
        ("x\\", "trailing backslash"),
        ("[[.a.]]", "collating elements are not supported"),
    ],
)
def test_unsupported_patterns_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        compile_pattern(pattern, False, LIMIT)
    assert str(info.value) == f"unsupported grep pattern {pattern!r}: {reason}"


_ATOMS = ["a", "b", ".", "a*", "b*", ".*", "ab", "[ab]", "[^a]", "[ab]*"]


@given(
    st.booleans(),
    st.lists(st.sampled_from(_ATOMS), max_size=6),
    st.booleans(),
    st.lists(st.text(alphabet="abc", max_size=12), min_size=1, max_size=5),
    st.booleans(),
)
def test_agrees_with_python_re_on_the_common_subset(
    start: bool, atoms: list[str], end: bool, lines: list[str], ignore_case: bool
) -> None:
    # For these atoms BRE and Python syntax coincide, so Python's re is the oracle.
    pattern = ("^" if start else "") + "".join(atoms) + ("$" if end else "")
    if not pattern:
        pattern = "a"
    lines = [line.upper() if i % 2 else line for i, line in enumerate(lines)]
    matcher = compile_pattern(pattern, ignore_case, LIMIT)
    flags = re.IGNORECASE if ignore_case else 0
    for line in lines:
        assert matcher.search(line) is bool(re.search(pattern, line, flags))


def test_runs_in_linear_time_on_a_backtracking_trap() -> None:
    # "(a*)*b"-style patterns make backtracking engines explode; the DFA does not care.
    assert matches("a*a*a*a*a*a*a*a*c", "a" * 20_000) is False


def test_matching_work_is_bounded() -> None:
    # Every new character costs a mask over the pattern's positions: a long pattern over a
    # line of distinct characters is the costliest input; the budget stops it.
    matcher = compile_pattern("[a-z]*x" * 100, ignore_case=False, work_limit=50_000)
    line = "".join(chr(0x4E00 + i) for i in range(5000))
    with pytest.raises(TooMuchWork):
        matcher.search(line)
    assert compile_pattern("[a-z]*x", ignore_case=False, work_limit=50_000).search(line) is False


def test_a_tiny_dfa_cache_still_matches_correctly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regex_dfa, "_DFA_CACHE_LIMIT", 2)
    lines = [f"x{i}y{'z' * (i % 5)}" for i in range(200)]
    matcher = compile_pattern("1.*z$", False, LIMIT)
    assert [line for line in lines if matcher.search(line)] == [
        line for line in lines if re.search("1.*z$", line)
    ]
