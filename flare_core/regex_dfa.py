"""A linear-time subset of POSIX basic regular expressions, matched by a lazily built DFA.

``grep`` on the server (``shell``) matches untrusted patterns against untrusted files, so
no pattern may stall it: there is no backtracking here. The subset is literals, ``.``,
``*``, ``^``, ``$`` and bracket expressions with ranges and ``[:class:]``; groups,
intervals, back-references and GNU escapes raise ``InvalidArgumentError``.

A compiled pattern is a row of single-character atoms, each optionally starred. Matching
simulates its NFA as a bit set of positions and memoises each (state, character) step, so a
line costs one dict lookup per character whatever the pattern. Building masks and DFA rows
is the only superlinear cost; it is counted against the caller's ``work_limit``.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import msgspec

from flare_core.errors import InvalidArgumentError

__all__ = ["Matcher", "TooMuchWork", "compile_pattern"]

_CLASSES: dict[str, Callable[[str], bool]] = {
    "alpha": str.isalpha,
    "digit": lambda c: c in string.digits,
    "alnum": str.isalnum,
    "upper": str.isupper,
    "lower": str.islower,
    "space": str.isspace,
    "blank": lambda c: c in " \t",
    "punct": lambda c: c in string.punctuation,
    "xdigit": lambda c: c in string.hexdigits,
    "cntrl": lambda c: ord(c) < 32 or ord(c) == 127,
    "print": str.isprintable,
    "graph": lambda c: c.isprintable() and not c.isspace(),
}
_UNSUPPORTED_ESCAPES = set("(){}|+?<>bBwWsS'`123456789")
_DFA_CACHE_LIMIT = 1 << 16


class TooMuchWork(Exception):
    """A search spent its matcher's ``work_limit``: the caller stops matching.

    Internal to the core: ``shell`` turns it into ``MATCH_WORK_MARKER``; it never reaches
    a reply.
    """


def _bad_pattern(pattern: str, reason: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"unsupported grep pattern {pattern!r}: {reason}")


class _Atom(msgspec.Struct, frozen=True):
    """One single-character pattern position: ``test`` (inverted when ``negated``), maybe
    starred. Negation is kept apart so that ``-i`` folds case before negating."""

    test: Callable[[str], bool]
    negated: bool = False
    starred: bool = False


def _bracket(pattern: str, start: int) -> tuple[_Atom, int]:
    """Parse the bracket expression opening at ``start``; return its atom and the index after."""
    i = start + 1
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    classes: list[Callable[[str], bool]] = []
    first = True
    while True:
        if i >= len(pattern):
            raise _bad_pattern(pattern, "unmatched [")
        c = pattern[i]
        if c == "]" and not first:
            i += 1
            break
        first = False
        if c == "[" and pattern[i + 1 : i + 2] == ":":
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end != -1 else ""
            if end == -1 or name not in _CLASSES:
                raise _bad_pattern(pattern, "unknown character class")
            classes.append(_CLASSES[name])
            i = end + 2
            continue
        if c == "[" and pattern[i + 1 : i + 2] in (".", "="):
            raise _bad_pattern(pattern, "collating elements are not supported")
        if pattern[i + 1 : i + 2] == "-" and pattern[i + 2 : i + 3] not in ("", "]"):
            low, high = c, pattern[i + 2]
            if low > high:
                raise _bad_pattern(pattern, "invalid range end")
            ranges.append((low, high))
            i += 3
            continue
        chars.add(c)
        i += 1

    def test(ch: str) -> bool:
        return (
            ch in chars
            or any(low <= ch <= high for low, high in ranges)
            or any(cls(ch) for cls in classes)
        )

    return _Atom(test, negated), i


def _literal(c: str) -> Callable[[str], bool]:
    return lambda ch: ch == c


def _any(ch: str) -> bool:
    return True


class Matcher:
    """A compiled pattern: single-character atoms, each optionally starred, plus anchors.

    Matching simulates the pattern's NFA as a bit set of positions, and memoises each
    (state, character) step - a lazily built DFA - so a line costs one dict lookup per
    character, whatever the pattern.
    """

    def __init__(
        self,
        atoms: list[_Atom],
        anchored_start: bool,
        anchored_end: bool,
        literal: str | None,
        ignore_case: bool,
        work_limit: int,
    ) -> None:
        self._atoms = atoms
        self._work_limit = work_limit
        self._star = sum(1 << i for i, atom in enumerate(atoms) if atom.starred)
        self._accept = 1 << len(atoms)
        self._anchored_start = anchored_start
        self._anchored_end = anchored_end
        self._literal = literal
        self._ignore_case = ignore_case
        self._start = self._closure(1)
        self._masks: dict[str, int] = {}
        self._rows: dict[int, dict[str, int]] = {}  # state -> character -> next state
        self._cached = 0
        self._work = 0  # pattern-position steps spent on building masks and DFA rows

    def _spend(self) -> None:
        # Each new mask or DFA step costs one pass over the pattern's positions.
        self._work += len(self._atoms) + 1
        if self._work > self._work_limit:
            raise TooMuchWork

    def _closure(self, states: int) -> int:
        # A starred atom may match nothing: reaching it also reaches the next position.
        while True:
            extra = ((states & self._star) << 1) & ~states
            if not extra:
                return states
            states |= extra

    def _mask(self, ch: str) -> int:
        mask = self._masks.get(ch)
        if mask is None:
            self._spend()
            variants = {ch, ch.lower(), ch.upper()} if self._ignore_case else {ch}
            mask = sum(
                1 << i
                for i, atom in enumerate(self._atoms)
                if any(atom.test(v) for v in variants) != atom.negated
            )
            self._masks[ch] = mask
        return mask

    def _row(self, states: int) -> dict[str, int]:
        row = self._rows.get(states)
        if row is None:
            if self._cached >= _DFA_CACHE_LIMIT:  # bound the memo; it is only a cache
                self._rows.clear()
                self._cached = 0
            row = self._rows[states] = {}
        return row

    def _step(self, states: int, ch: str) -> int:
        self._spend()
        moved = states & self._mask(ch)
        nxt = ((moved & ~self._star) << 1) | (moved & self._star)
        if not self._anchored_start:
            nxt |= 1  # a match may begin at any position
        nxt = self._closure(nxt)
        self._cached += 1
        return nxt

    def search(self, line: str) -> bool:
        """True when the pattern matches somewhere in ``line`` (no newline)."""
        if self._literal is not None:
            needle, hay = self._literal, line
            if self._ignore_case:
                needle, hay = needle.lower(), hay.lower()
            if self._anchored_start and self._anchored_end:
                return hay == needle
            if self._anchored_start:
                return hay.startswith(needle)
            if self._anchored_end:
                return hay.endswith(needle)
            return needle in hay
        accept = 0 if self._anchored_end else self._accept  # accept early unless "$"
        states = self._start
        row = self._row(states)
        for ch in line:
            if states & accept:
                return True
            nxt = row.get(ch)
            if nxt is None:
                nxt = row[ch] = self._step(states, ch)
            if not nxt:
                return False
            if nxt != states:
                states = nxt
                row = self._row(states)
        return bool(states & self._accept)


def compile_pattern(pattern: str, ignore_case: bool, work_limit: int) -> Matcher:
    """Compile a basic regular expression of the supported subset.

    Args:
        pattern: the pattern, in the subset this module's docstring describes.
        ignore_case: fold case when matching (``grep -i``).
        work_limit: the most pattern-position steps the matcher may spend building its
            masks and DFA rows, over all its searches.

    Returns:
        The matcher; its ``search`` raises ``TooMuchWork`` once ``work_limit`` is spent.

    Raises:
        InvalidArgumentError: the pattern is outside the subset (groups, intervals,
            back-references, GNU escapes, an unmatched ``[``, an unknown class, ...).
    """
    anchored_start = pattern.startswith("^")
    body_start = 1 if anchored_start else 0
    atoms: list[_Atom] = []
    literal_chars: list[str] | None = []
    anchored_end = False
    i = body_start
    while i < len(pattern):
        c = pattern[i]
        if c == "$" and i == len(pattern) - 1:
            anchored_end = True
            i += 1
            continue
        if c == "*" and atoms:
            atoms[-1] = msgspec.structs.replace(atoms[-1], starred=True)
            literal_chars = None
            i += 1
            continue
        if c == "\\":
            if i + 1 >= len(pattern):
                raise _bad_pattern(pattern, "trailing backslash")
            escaped = pattern[i + 1]
            if escaped in _UNSUPPORTED_ESCAPES:
                raise _bad_pattern(pattern, f"\\{escaped} is not supported")
            atoms.append(_Atom(_literal(escaped)))
            if literal_chars is not None:
                literal_chars.append(escaped)
            i += 2
            continue
        if c == "[":
            atom, i = _bracket(pattern, i)
            atoms.append(atom)
            literal_chars = None
            continue
        if c == ".":
            atoms.append(_Atom(_any))
            literal_chars = None
        else:  # a literal, including a leading "*" and a "^"/"$" in the middle
            atoms.append(_Atom(_literal(c)))
            if literal_chars is not None:
                literal_chars.append(c)
        i += 1
    literal = "".join(literal_chars) if literal_chars is not None else None
    return Matcher(atoms, anchored_start, anchored_end, literal, ignore_case, work_limit)
