"""The campaign's bounded versions (issue 10): each phase at a small scale, its invariants
asserted. ``make soak`` runs the full size and prints the figures (timing goals live there,
not here)."""

from __future__ import annotations

from pathlib import Path

from tests.soak.authz import expected_table, run_authz
from tests.soak.faults import run_faults
from tests.soak.hostile import run_hostile
from tests.soak.load import run_load
from tests.soak.sessions import run_sessions


def test_faults_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    result = run_faults(str(tmp_path), submits=16, sessions=4, kills=1)
    assert result.kills == 1
    assert result.acknowledged > 0
    assert (result.lost, result.duplicated, result.left_running) == (0, 0, 0), result


def test_fuzzed_routes_and_frames_never_reach_a_5xx(tmp_path: Path) -> None:
    result = run_hostile(str(tmp_path), http_cases=60, ws_cases=30, corpora=False)
    assert result.cases >= 90
    assert result.ok, result.failures


def test_a_small_load_runs_without_errors(tmp_path: Path) -> None:
    result = run_load(str(tmp_path), ws_sessions=10, http_sessions=5, seconds=2.0)
    assert result.calls > 0
    assert result.ok, result.first_errors


def test_sessions_behave_as_documented(tmp_path: Path) -> None:
    result = run_sessions(str(tmp_path), idle_checks=False)
    assert result.ok, result.checks


def test_a_sample_of_the_authorization_matrix_holds(tmp_path: Path) -> None:
    result = run_authz(str(tmp_path), schemes=("http",), sample=5)
    assert result.cells > 40  # about a fifth of the HTTP cells, plus membership and revocation
    assert result.ok, result.mismatches


def test_the_documented_matrix_is_the_generated_one() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "authorization-matrix.md"
    assert docs.read_text(encoding="utf-8") == expected_table(), (
        "regenerate it: python -m tests.soak.authz --docs"
    )
