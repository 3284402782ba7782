"""Mirroring a simulator site's folder into the site's workspace (no NVFlare needed)."""

from __future__ import annotations

import os
from pathlib import Path

from flare_adapters.disk_workspaces import DiskWorkspaces
from flare_adapters.engines.nvflare.mirror import SiteMirror

JOB = "job-1"


def _write(path: Path, data: bytes, mode: str = "wb") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as handle:
        handle.write(data)


def _mirror(tmp_path: Path, **limits: int) -> tuple[Path, DiskWorkspaces, SiteMirror]:
    source = tmp_path / "sim" / "site-1"
    source.mkdir(parents=True)
    workspaces = DiskWorkspaces(str(tmp_path / "workspaces"))
    mirror = SiteMirror(str(source), workspaces.tree("site-1"), JOB, lambda: 1.0, **limits)
    return source, workspaces, mirror


def test_live_logs_are_copied_incrementally(tmp_path: Path) -> None:
    source, workspaces, mirror = _mirror(tmp_path)
    tree = workspaces.tree("site-1")
    assert mirror.pump() == ""
    assert tree.stat(f"{JOB}/log.txt") is None  # nothing yet: nothing created
    _write(source / "log.txt", b"line one\n")
    assert mirror.pump() == "line one\n"
    _write(source / "log.txt", b"line two\n", "ab")
    assert mirror.pump() == "line two\n"
    assert tree.read(f"{JOB}/log.txt") == b"line one\nline two\n"
    assert tree.read("log.txt") == b"line one\nline two\n"  # the site's own log shows it too
    assert tree.stat(f"{JOB}/error_log.txt") is None  # an empty error log is not a component


def test_error_log_text_is_kept_for_the_outcome(tmp_path: Path) -> None:
    source, workspaces, mirror = _mirror(tmp_path)
    _write(source / "error_log.txt", "ValueError: é\n".encode())
    mirror.pump()
    assert mirror.error_text() == "ValueError: é\n"
    assert workspaces.tree("site-1").read(f"{JOB}/error_log.txt") == "ValueError: é\n".encode()


def test_a_multibyte_character_split_between_pumps_decodes(tmp_path: Path) -> None:
    source, _, mirror = _mirror(tmp_path)
    data = "é\n".encode()
    _write(source / "log.txt", data[:1])
    first = mirror.pump()
    _write(source / "log.txt", data[1:], "ab")
    assert first + mirror.pump() == "é\n"


def test_a_runaway_log_is_capped_and_says_so(tmp_path: Path) -> None:
    source, workspaces, mirror = _mirror(tmp_path, max_log_bytes=10)
    _write(source / "log.txt", b"0123456789abcdef\n")
    mirror.pump()
    mirror.pump()
    copied = workspaces.tree("site-1").read(f"{JOB}/log.txt")
    assert copied.startswith(b"0123456789\n[flare-core: log.txt mirrored up to 10 bytes]")
    assert b"abcdef" not in copied


def test_results_are_collected_with_the_job_folder_flattened(tmp_path: Path) -> None:
    source, workspaces, mirror = _mirror(tmp_path)
    _write(source / "log.txt", b"log\n")
    _write(source / "simulate_job" / "models" / "server.npy", b"model")
    _write(source / "pool_stats" / "stats.json", b"{}")
    _write(source / "startup" / "fed_client.json", b"set-up")
    _write(source / "local" / "log_config.json", b"set-up")
    os.symlink("/etc/passwd", source / "simulate_job" / "leak")
    mirror.pump()
    mirror.collect()
    assert workspaces.tree("site-1").files(JOB) == [  # the site's own log.txt is outside
        f"{JOB}/log.txt",
        f"{JOB}/models/server.npy",
        f"{JOB}/pool_stats/stats.json",
    ]
    assert workspaces.tree("site-1").read(f"{JOB}/models/server.npy") == b"model"


def test_result_files_are_bounded_in_number(tmp_path: Path) -> None:
    source, workspaces, mirror = _mirror(tmp_path, max_files=2)
    for index in range(5):
        _write(source / "simulate_job" / f"f{index}", b"x")
    mirror.collect()
    tree = workspaces.tree("site-1")
    assert len([f for f in tree.files(JOB) if not f.endswith("log.txt")]) == 2
    assert b"result files cut off after 2" in tree.read(f"{JOB}/log.txt")
