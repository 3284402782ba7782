"""``flare-core demo``: the scenario runs end to end over HTTP and WebSocket."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from flare_adapters import demo


def test_the_demo_runs_over_both_transports() -> None:
    out = io.StringIO()
    assert demo.main(["--engine", "simulated", "--job-duration", "0.05"], out=out) == 0
    text = out.getvalue()
    assert "embedded server started on http://127.0.0.1:" in text
    assert "engine: simulated (jobs are not computed" in text  # says it, not hides it
    assert "=== over HTTP" in text
    assert "=== over WebSocket" in text
    assert text.count("FINISHED:COMPLETED after") == 2
    assert text.count("(same job, nothing resubmitted)") == 2
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("uploaded ") for line in lines) == 6  # three submits each
    assert sum(line.startswith("downloaded ") for line in lines) == 2
    assert "job finished with status FINISHED:COMPLETED" in text
    assert text.count("no model: the simulated engine computes nothing") == 2
    assert text.count("ended FINISHED:EXECUTION_EXCEPTION: cannot load component") == 2
    assert text.rstrip().endswith("embedded server stopped")


def test_the_example_job_is_nvflares_own(tmp_path: Path) -> None:
    folder = Path(demo.write_example_job(str(tmp_path)))
    reference = Path(__file__).resolve().parents[3] / "shared/examples/hello-numpy-sag"
    if not reference.is_dir():
        pytest.skip("the NVFlare reference job folder is not beside this checkout")
    files = sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    for relative in files:
        written = json.loads((folder / relative).read_text())
        assert written == json.loads((reference / relative).read_text()), relative


def test_the_failing_job_differs_only_in_its_executor(tmp_path: Path) -> None:
    good = Path(demo.write_example_job(str(tmp_path / "good")))
    bad = Path(demo.write_failing_job(str(tmp_path / "bad")))
    config = "app/config/config_fed_client.json"
    expected = json.loads((good / config).read_text())
    expected["executors"][0]["executor"]["path"] = demo.BAD_EXECUTOR
    assert json.loads((bad / config).read_text()) == expected
    assert (bad / "meta.json").read_text() == (good / "meta.json").read_text()


def test_a_failing_demo_reports_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(out: object, job_duration: float = 2.0, engine: str = "auto") -> None:
        raise OSError("no space left")

    monkeypatch.setattr(demo, "run_demo", broken)
    assert demo.main([]) == 1
    assert "flare-core demo failed: OSError: no space left" in capsys.readouterr().err
