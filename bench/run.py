"""One run: start the servers, measure the chosen sections in order, always stop everything."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

from bench import (
    idle_sessions,
    listing,
    nvflare_side,
    reads,
    studies,
    transfers,
    waiting,
    writes,
)
from bench.context import Bench
from bench.plan import Plan
from bench.results import Figure, Report

__all__ = ["SECTIONS", "run"]

Section = Callable[[Bench], list[Figure]]

# Order matters: reads fill ``bench.rtt`` (the wait figures count in it), waits fill
# ``bench.waits_ms`` (NVFlare's wait is compared with it); transfers and listing move the
# most data, so they come after the latency figures; NVFlare last (its jobs load the CPU).
SECTIONS: dict[str, Section] = {
    "connect": reads.measure_connect,
    "reads": reads.measure_reads,
    "concurrency": reads.measure_concurrency,
    "writes": writes.measure_writes,
    "waiting": waiting.measure_waits,
    "sessions": idle_sessions.measure_idle_sessions,
    "studies": studies.measure_studies,
    "transfers": transfers.measure_transfers,
    "listing": listing.measure_listing,
}


def run(plan: Plan, sections: Sequence[str] = tuple(SECTIONS), *, log: bool = True) -> Report:
    """Measure ``sections`` (and NVFlare when ``plan.nvflare``); the report, judged."""
    report = Report(
        {
            "plan": dataclasses.asdict(plan),
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        bench = Bench(plan=plan, tmp=tmp, report=report)
        try:
            bench.start()
            for name in sections:
                started = time.perf_counter()
                report.extend(SECTIONS[name](bench))
                if log:
                    print(f"[bench] {name}: {time.perf_counter() - started:.1f} s", flush=True)
                # Each section starts on a settled disk: the transfers' and the listing's
                # hundreds of MiB still being written back would otherwise slow every fsync
                # of the sections after them (a submit's, never a raw baseline's).
                os.sync()
            if plan.nvflare:
                started = time.perf_counter()
                report.extend(nvflare_side.measure_nvflare(bench, report))
                if log:
                    print(f"[bench] nvflare: {time.perf_counter() - started:.1f} s", flush=True)
        finally:
            bench.close()
    report.meta["loadavg_at_end"] = os.getloadavg()
    return report
