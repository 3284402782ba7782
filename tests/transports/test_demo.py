"""``flare-core demo``: the scenario runs end to end over HTTP and WebSocket."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from flare_adapters import demo
from flare_adapters.folder_archive import folder_archive
from flare_core import rules


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


def test_the_example_job_is_valid_and_uses_only_nvflares_own_components(tmp_path: Path) -> None:
    # That it runs on NVFlare 2.9 is shown on the real simulator (tests_nvflare/engine).
    folder = Path(demo.write_example_job(str(tmp_path)))
    definition = rules.validate_job_definition(folder_archive(str(folder)), folder.name)
    assert definition.apps == {"app": ["@ALL"]}
    paths = re.findall(
        r'"path": "([^"]+)"',
        "".join(
            (folder / "app" / "config" / name).read_text()
            for name in ("config_fed_server.json", "config_fed_client.json")
        ),
    )
    assert paths
    assert all(path.startswith("nvflare.") for path in paths)
    assert not (folder / "app" / "custom").exists()


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
