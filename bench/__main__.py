"""``make bench``: every figure of issue 12 next to a baseline measured in the same run.

Servers run on 127.0.0.1 (ephemeral ports), each in its own process: ``flare-core serve`` on a
temporary workspace (``--engine simulated``), a minimal aiohttp app, a minimal websockets echo
server, and NVFlare's POC when ``--nvflare`` (the default when nvflare is importable). The
goals are ratios to those baselines, or the issue's absolute bounds; the exit code is 1 when
any goal is missed. See docs/performance.md for what each figure measures.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench import nvflare_side, plan
from bench.run import SECTIONS, run

_MIB = 1 << 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (smaller sizes)")
    parser.add_argument(
        "--tiny", action="store_true", help="plumbing only, meaningless sizes (the unit test's)"
    )
    parser.add_argument(
        "--big",
        action="store_true",
        help="transfer 1 GiB (the issue's size) instead of the default",
    )
    parser.add_argument("--transfer-mib", type=int, default=None, help="transfer size, MiB")
    parser.add_argument(
        "--listing-sizes",
        default=None,
        help="comma-separated job counts for the listing figures (default 1000,10000,100000)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--nvflare", dest="nvflare", action="store_true", default=None)
    group.add_argument("--no-nvflare", dest="nvflare", action="store_false")
    parser.add_argument(
        "--only", default=None, help=f"comma-separated sections of: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--json", default=".bench/results.json", help="where to write the JSON")
    args = parser.parse_args(argv)

    chosen = plan.tiny() if args.tiny else plan.quick() if args.quick else plan.full()
    if args.big:
        chosen = chosen.with_options(transfer_bytes=1024 * _MIB)
    if args.transfer_mib is not None:
        chosen = chosen.with_options(transfer_bytes=args.transfer_mib * _MIB)
    if args.listing_sizes:
        sizes = tuple(int(n) for n in args.listing_sizes.split(","))
        chosen = chosen.with_options(listing_sizes=sizes)
    nvflare = nvflare_side.available() if args.nvflare is None else args.nvflare
    if nvflare and not nvflare_side.available():
        parser.error("--nvflare: nvflare is not installed (make .venv/.nvflare-installed)")
    chosen = chosen.with_options(nvflare=nvflare)
    sections = list(SECTIONS) if args.only is None else args.only.split(",")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections: {unknown}")

    report = run(chosen, sections)
    if not nvflare:
        report.skip("NVFlare comparison (nvflare not installed, or --no-nvflare)")
    print(report.table())
    report.write(args.json)
    markdown = os.path.splitext(args.json)[0] + ".md"
    with open(markdown, "w", encoding="utf-8") as out:
        out.write(report.markdown() + "\n")
    print(f"JSON: {args.json}, Markdown: {markdown}")
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
