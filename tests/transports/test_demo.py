"""``flare-core demo``: the scenario runs end to end over HTTP and WebSocket."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from flare_adapters import demo


def test_the_demo_runs_over_both_transports() -> None:
    out = io.StringIO()
    assert demo.main(["--job-duration", "0.05"], out=out) == 0
    text = out.getvalue()
    assert "embedded server started on http://127.0.0.1:" in text
    assert "=== over HTTP" in text
    assert "=== over WebSocket" in text
    assert text.count("FINISHED:COMPLETED after") == 2
    assert text.count("(same job, nothing resubmitted)") == 2
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("uploaded ") for line in lines) == 4  # two submits each
    assert sum(line.startswith("downloaded ") for line in lines) == 2
    assert "job finished with status FINISHED:COMPLETED" in text
    assert text.rstrip().endswith("embedded server stopped")


def test_the_example_job_is_the_shipped_example(tmp_path: Path) -> None:
    folder = Path(demo.write_example_job(str(tmp_path)))
    shipped = Path(__file__).resolve().parents[2] / "testing/flare_testing/jobs/hello-numpy-sag"
    for relative in demo.EXAMPLE_JOB:
        written = json.loads((folder / relative).read_text())
        assert written == json.loads((shipped / relative).read_text()), relative


def test_a_failing_demo_reports_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(out: object, job_duration: float = 2.0) -> None:
        raise OSError("no space left")

    monkeypatch.setattr(demo, "run_demo", broken)
    assert demo.main([]) == 1
    assert "flare-core demo failed: OSError: no space left" in capsys.readouterr().err
