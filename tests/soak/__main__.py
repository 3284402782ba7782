"""``make soak``: the reliability and security campaign of issue 10, full size.

Runs every phase against ``flare-core serve`` processes on loopback, prints one table and
exits 1 if any invariant broke (``--quick`` runs a smaller campaign). The bounded versions
run in ``make test`` (``tests/soak/test_campaign.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from tests.soak.authz import run_authz
from tests.soak.fairness import P99_GOAL_MS, run_fairness
from tests.soak.faults import run_faults
from tests.soak.hostile import percentile, run_hostile
from tests.soak.load import RSS_BOUND_MIB, run_load
from tests.soak.sessions import run_sessions

Row = tuple[str, str, bool]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak")
    parser.add_argument("--quick", action="store_true", help="a smaller campaign (minutes)")
    args = parser.parse_args(argv)
    q = args.quick
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flare-soak-") as workdir:
        faults = run_faults(workdir, submits=200 if q else 1000, kills=5 if q else 20)
        rows.append(
            (
                "faults",
                f"{faults.submits} submits over HTTP+WS (8 sessions, half with tokens), "
                f"{faults.network_faults} network faults, {faults.kills} SIGKILLs+restarts: "
                f"{faults.acknowledged} acknowledged, {faults.failed} gave up; lost "
                f"{faults.lost}, duplicated {faults.duplicated}, left RUNNING "
                f"{faults.left_running}",
                faults.ok,
            )
        )
        _progress(rows)
        hostile = run_hostile(workdir, http_cases=500 if q else 3000, ws_cases=250 if q else 1500)
        rows.append(
            (
                "hostile input",
                f"{hostile.cases} inputs (fuzzed routes and frames, zip and shell corpora): "
                f"5xx/1011/internal {hostile.server_errors}, hangs {hostile.hangs}; health "
                f"check p99 {percentile(hostile.health_ms, 0.99):.1f} ms, max "
                f"{max(hostile.health_ms, default=0.0):.1f} ms"
                + (f"; first: {hostile.failures[0]}" if hostile.failures else ""),
                hostile.ok,
            )
        )
        _progress(rows)
        fair = run_fairness(workdir, seconds=10.0 if q else 60.0)
        rows.append(
            (
                "fairness",
                f"{fair.reads} reads by another user during {fair.expensive_requests} "
                f"most-expensive requests: p50 {fair.p50_ms:.1f} ms, p99 {fair.p99_ms:.1f} ms "
                f"(goal < {P99_GOAL_MS:.0f}), max {fair.max_ms:.1f} ms",
                fair.ok,
            )
        )
        _progress(rows)
        load = run_load(
            workdir,
            ws_sessions=50 if q else 200,
            http_sessions=15 if q else 50,
            seconds=15.0 if q else 60.0,
        )
        rows.append(
            (
                "load",
                f"{load.ws_sessions} WS + {load.http_sessions} HTTP sessions, "
                f"{load.seconds:.0f} s: {load.calls} calls ({load.calls_per_second:.0f}/s), "
                f"errors {load.errors}; read p50 {load.p50_ms:.1f} ms, p99 "
                f"{load.p99_ms:.1f} ms; submit p99 {load.submit_p99_ms:.0f} ms; server peak "
                f"RSS {load.peak_rss_mib:.0f} MiB (bound {RSS_BOUND_MIB:.0f})"
                + (f"; first: {load.first_errors[0]}" if load.first_errors else ""),
                load.ok,
            )
        )
        _progress(rows)
        authz = run_authz(workdir)
        rows.append(
            (
                "authorization",
                f"{authz.cells} cells (role x org x command x job owner x membership x "
                f"revocation, HTTP and WS, from the policy table): mismatches "
                f"{len(authz.mismatches)}"
                + (f"; first: {authz.mismatches[0]}" if authz.mismatches else ""),
                authz.ok,
            )
        )
        _progress(rows)
        sessions = run_sessions(workdir)
        failed = [name for name, outcome in sessions.checks.items() if outcome != "ok"]
        rows.append(
            (
                "sessions",
                f"{len(sessions.checks)} checks (logout, idle expiry, SIGKILL+restart with "
                f"sessions open, study binding and revocation; HTTP and WS): "
                f"{sessions.failed} failed" + (f" ({', '.join(failed)})" if failed else ""),
                sessions.ok,
            )
        )
    print()
    print(f"{'phase':<14} {'ok':<4} result")
    print(f"{'-' * 14} {'-' * 4} {'-' * 60}")
    for phase, text, ok in rows:
        print(f"{phase:<14} {'yes' if ok else 'NO':<4} {text}")
    print(f"\ncampaign took {time.monotonic() - started:.0f} s")
    return 0 if all(ok for _, _, ok in rows) else 1


def _progress(rows: list[Row]) -> None:
    phase, text, ok = rows[-1]
    print(f"[{phase}] {'ok' if ok else 'BROKEN'}: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
