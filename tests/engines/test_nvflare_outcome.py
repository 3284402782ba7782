"""The nvflare engine's pure rules: rounds from the server log, and how a run ended."""

from __future__ import annotations

import pytest

from flare_adapters.engines.nvflare.outcome import RoundTracker, first_error, outcome

_PREFIX = "ScatterAndGather - INFO - [identity=simulator_server, run=simulate_job, wf=sag] - "


def _line(stamp: str, message: str) -> str:
    return f"2026-12-01 10:50:{stamp} - {_PREFIX}{message}\n"


LOG = (
    _line("51,827", "Round 0 started.")
    + "2026-12-01 10:50:52,000 - WFCommServer - INFO - scheduled task train\n"
    + _line("57,441", "Round 0 finished.")
    + _line("57,586", "Round 1 started.")
)

NOT_AUTHORIZED = (
    "2026-12-01 10:51:28,870 - JsonScanner - ERROR - Traceback (most recent call last):\n"
    '  File "json_configer.py", line 155, in _authorize_component_config\n'
    "nvflare.fuel.common.excepts.ComponentNotAuthorized: component not authorized: "
    "Component 'evil.Trainer' is not in allow_list\n"
)


def test_rounds_are_followed_with_their_durations() -> None:
    tracker = RoundTracker(num_rounds=3)
    assert tracker.feed(LOG)
    assert tracker.progress() == {
        "workflow": "ScatterAndGather",
        "current_round": 1,
        "num_rounds": 3,
        "rounds_finished": 1,
        "round_seconds": [5.614],
    }
    assert tracker.stats() == {"phase": "train", "current_round": 1, "num_rounds": 3}


def test_a_line_split_across_reads_is_joined() -> None:
    tracker = RoundTracker(num_rounds=3)
    line = _line("51,827", "Round 0 started.")
    assert not tracker.feed(line[:30])
    assert tracker.feed(line[30:])
    assert tracker.current_round == 0


def test_other_lines_change_nothing() -> None:
    tracker = RoundTracker()
    assert not tracker.feed("2026-12-01 10:50:51,000 - X - INFO - Round about started.\nnoise\n")
    assert tracker.progress()["current_round"] is None
    assert tracker.stats()["phase"] == "init"


def test_an_endless_line_is_dropped_not_kept() -> None:
    tracker = RoundTracker()
    tracker.feed("x" * 200_000)
    assert not tracker.feed("y" * 10 + "\n")
    assert tracker.feed(_line("51,827", "Round 0 started."))


def test_clean_logs_and_exit_zero_complete() -> None:
    assert outcome(0, False, {"server": "", "site-1": ""}).status == "FINISHED:COMPLETED"


def test_an_abort_wins_whatever_the_logs_say() -> None:
    result = outcome(-15, True, {"site-1": NOT_AUTHORIZED})
    assert (result.status, result.reason) == ("FINISHED:ABORTED", "aborted by admin")


def test_a_component_off_the_allow_list_is_abnormal_although_the_simulator_exits_zero() -> None:
    result = outcome(0, False, {"server": "", "site-1": NOT_AUTHORIZED})
    assert result.status == "FINISHED:ABNORMAL"
    assert result.reason.startswith("site-1: nvflare.fuel.common.excepts.ComponentNotAuthorized")


def test_another_logged_error_is_an_execution_exception() -> None:
    text = "2026-12-01 - Trainer - ERROR - boom\nValueError: bad shape\n"
    result = outcome(0, False, {"site-2": text})
    assert (result.status, result.reason) == (
        "FINISHED:EXECUTION_EXCEPTION",
        "site-2: ValueError: bad shape",
    )


@pytest.mark.parametrize(
    ("code", "said"), [(2, "the simulator exited (2)"), (-9, "the simulator was killed (-9)")]
)
def test_a_failed_or_killed_simulator_is_an_execution_exception(code: int, said: str) -> None:
    result = outcome(code, False, {"server": "RuntimeError: no server app\n"})
    assert result.status == "FINISHED:EXECUTION_EXCEPTION"
    assert result.reason == f"{said}; server: RuntimeError: no server app"


def test_first_error_unwraps_nvflares_config_errors() -> None:
    wrapped = (
        "nvflare.fuel.common.excepts.ComponentNotAuthorized: Error processing ['/x/config.json']"
        " in JSON element {'path': 'evil.T'}: path: executors.#1.executor, exception:"
        " ComponentNotAuthorized: component 'evil.T' is not in allow_list\n"
    )
    assert first_error(wrapped) == "ComponentNotAuthorized: component 'evil.T' is not in allow_list"


def test_first_error_prefers_the_exception_line() -> None:
    assert first_error("first\n  File x\nKeyError: 'k'\n") == "KeyError: 'k'"
    assert first_error("just a line\n") == "just a line"
    assert first_error("") == ""
