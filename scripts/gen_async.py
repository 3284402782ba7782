"""Generate the async session interface and driver from the sync ones (as httpcore's unasync).

``AsyncSessionSpec`` (``ports/flare_ports/session_spec.py``) is ``SessionSpec`` with every
method a coroutine, and ``AsyncSession``'s public methods (``adapters/flare_adapters/
session.py``) are ``Session``'s with ``await`` before the flow they run. Both used to be kept
in step by hand: about 1,050 lines, 48 of 52 docstrings copies. Now the sync code is the only
source; this script rewrites each marked async region from its sync region with the rules
below and formats the file with ruff.

Usage::

    python scripts/gen_async.py          # rewrite the generated regions
    python scripts/gen_async.py --check  # exit 1 if a region is stale (make test runs it)

A region's source runs from its ``# gen_async: source`` marker to its ``# gen_async: end``
marker; its target from its ``# gen_async: generated`` marker to the end of the file (each
async twin is the last thing in its file). Hand-written async code (the driver's ``_run``,
``_perform`` and friends) stays above the target marker.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SOURCE = "# gen_async: source"
END = "# gen_async: end"
TARGET = "# gen_async: generated"

# Methods that stay plain functions: they return an async iterator, which is not awaited.
SYNC_METHODS = frozenset({"watch_jobs"})

# Word-level renames, applied everywhere in the region (code, comments and docstrings).
RENAMES: tuple[tuple[str, str], ...] = (
    (r"\bSessionSpec\b", "AsyncSessionSpec"),
    (r"\bJobMonitorCallback\b", "AsyncJobMonitorCallback"),
    (r"\bdef __enter__\b", "def __aenter__"),
    (r"\bdef __exit__\b", "def __aexit__"),
    (r"\bdef close\b", "def aclose"),
    (r"\bself\.close\(\)", "await self.aclose()"),
    (r"``close\(\)``", "``aclose()``"),
    (r"Generator\[JobChange, None, None\]", "AsyncGenerator[JobChange, None]"),
    # A monitor callback may be a coroutine function.
    (r"P\], bool\]", "P], bool | Awaitable[bool]]"),
    # What a method returns is its flow's result, awaited.
    (r"\breturn self\._run\(", "return await self._run("),
    (r"= self\.monitor_job_and_return_job_meta\(", "= await self.monitor_job_and_return_job_meta("),
    (r"\bIterate over job status changes", "Async-iterate over job status changes"),
    (r"first ``next``", "first ``anext``"),
)

_METHOD = re.compile(r"^(    )def (\w+)\(")


@dataclass(frozen=True)
class Region:
    """One generated region: a file, the name of its sync source, and the async class head.

    Attributes:
        path: the file, relative to the repository root.
        source: the name after the source marker (``SessionSpec``).
        head: text the generated region starts with (the async class line and docstring when
            the source is a whole class; empty when it is a class body).
    """

    path: str
    source: str
    head: str = ""


REGIONS: tuple[Region, ...] = (
    Region(
        "ports/flare_ports/session_spec.py",
        "SessionSpec",
        head='''class AsyncSessionSpec(ABC):
    """The asynchronous twin of ``SessionSpec``: every method is a coroutine with the same
    arguments, defaults, results and exceptions; ``close`` is ``aclose``.

    Use it as an async context manager (``async with connect_async(...) as session:``) or
    await ``aclose()``. A monitor callback may be a plain function or a coroutine function.
    """
''',
    ),
    Region("adapters/flare_adapters/session.py", "Session"),
)


def _asyncify(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        method = _METHOD.match(line)
        if method and method.group(2) not in SYNC_METHODS:
            line = f"{method.group(1)}async def {method.group(2)}(" + line[method.end() :]
        for pattern, replacement in RENAMES:
            line = re.sub(pattern, replacement, line)
        out.append(line)
    return out


def _drop_class_head(lines: list[str]) -> list[str]:
    # The sync class line and docstring give way to the region's own head.
    assert lines[0].startswith("class "), lines[0]
    body = lines[1:]
    if body and body[0].strip().startswith('"""'):
        end = next(i for i, line in enumerate(body) if i and line.strip().endswith('"""'))
        if body[0].strip().count('"""') == 2:
            end = 0
        body = body[end + 1 :]
    return body


def _marker_index(lines: list[str], marker: str, path: str) -> int:
    found = [i for i, line in enumerate(lines) if line.strip().startswith(marker)]
    if len(found) != 1:
        raise SystemExit(f"{path}: expected one {marker!r} line, found {len(found)}")
    return found[0]


def generate(region: Region, text: str) -> str:
    """The file's text with its generated region rebuilt from its source (unformatted)."""
    lines = text.splitlines()
    start = _marker_index(lines, f"{SOURCE} {region.source}", region.path)
    end = _marker_index(lines, f"{END} {region.source}", region.path)
    target = _marker_index(lines, f"{TARGET} from {region.source}", region.path)
    source = lines[start + 1 : end]
    if region.head:
        source = _drop_class_head(source)
    body = _asyncify(source)
    head = region.head.splitlines()
    return "\n".join([*lines[: target + 1], *head, *body]) + "\n"


def _ruff() -> str:
    local = Path(sys.executable).parent / "ruff"
    found = str(local) if local.exists() else shutil.which("ruff")
    if found is None:
        raise SystemExit("gen_async: ruff not found (make install)")
    return found


def formatted(path: str, text: str) -> str:
    """``text`` as ``ruff format`` writes it (the generated code passes the format check)."""
    result = subprocess.run(
        [_ruff(), "format", "--stdin-filename", str(ROOT / path), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a region is stale")
    args = parser.parse_args(argv)
    stale: list[str] = []
    for region in REGIONS:
        path = ROOT / region.path
        current = path.read_text()
        wanted = formatted(region.path, generate(region, current))
        if wanted == current:
            continue
        if args.check:
            stale.append(region.path)
        else:
            path.write_text(wanted)
            print(f"gen_async: rewrote {region.path}")
    if stale:
        print(
            "gen_async: stale generated code in " + ", ".join(stale) + "; run "
            "`python scripts/gen_async.py` and commit the result",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
