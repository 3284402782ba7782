"""Client-side argument rules (flare_core.validation): values, messages and exception types."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flare_core.errors import InvalidArgumentError, JobNotFound
from flare_core.validation import (
    check_client_name,
    check_command_timeout,
    check_job_id,
    check_log_target,
    check_monitor_args,
    check_site_log_config,
    check_stats_job_id,
    check_tail_lines,
    check_target_type,
    check_targets,
    check_wait_timeout,
    encode_job_log_config,
    filter_logs,
)

WAIT_MESSAGE = "timeout must be a positive number when wait=True; use wait=False for no-wait"
SITE_LOG_MESSAGE = "configure_site_log only supports log levels and built-in log modes"


def test_invalid_argument_error_is_a_value_error() -> None:
    # DECISIONS §4: `except ValueError` written for the reference keeps working.
    with pytest.raises(ValueError, match="target must be a non-empty str"):
        check_log_target("")


# --- job ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_id", "message"), [(None, "invalid job_id None"), (7, "invalid job_id 7")]
)
def test_check_job_id_rejects_non_str_with_job_not_found(job_id: object, message: str) -> None:
    with pytest.raises(JobNotFound) as info:
        check_job_id(job_id)
    assert str(info.value) == message


def test_check_job_id_rejects_empty() -> None:
    with pytest.raises(JobNotFound) as info:
        check_job_id("")
    assert str(info.value) == "job_id is required but not specified."


def test_check_job_id_returns_the_id_unchanged() -> None:
    assert check_job_id("ABC-not-validated-here") == "ABC-not-validated-here"


def test_check_stats_job_id_messages() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_stats_job_id(3)
    assert str(info.value) == "job_id must be str but got <class 'int'>."
    with pytest.raises(InvalidArgumentError) as info:
        check_stats_job_id("")
    assert str(info.value) == "job_id is required but not specified."
    assert check_stats_job_id("j1") == "j1"


# --- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target_type", ["all", "server", "client"])
def test_check_target_type_accepts_the_three_types(target_type: str) -> None:
    assert check_target_type("check_status", target_type) == target_type


@pytest.mark.parametrize("target_type", ["ALL", "clients", "", None, 1, "site-1"])
def test_check_target_type_names_the_command(target_type: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_target_type("restart", target_type)
    assert str(info.value) == (
        f"restart target_type must be one of ['all', 'server', 'client'] but got {target_type!r}"
    )


@pytest.mark.parametrize("target_type", ["server", "all"])
def test_check_targets_ignores_names_unless_client(target_type: str) -> None:
    assert check_targets(target_type, ["bad name", 3]) == []
    assert check_targets(target_type, ("site-1",)) == []


@pytest.mark.parametrize("targets", [None, [], ""])
def test_check_targets_empty_client_list_means_all_clients(targets: object) -> None:
    assert check_targets("client", targets) == []


def test_check_targets_returns_a_copy_of_valid_names() -> None:
    names = ["site-1", "site_2", "site.3", "S4"]
    result = check_targets("client", names)
    assert result == names
    assert result is not names


@pytest.mark.parametrize("target_type", ["client", "server", "all"])
def test_check_targets_refuses_a_bare_string(target_type: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^targets is not a list\.$"):
        check_targets(target_type, "site-1")


def test_check_targets_refuses_a_tuple_for_client() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^targets is not a list\.$"):
        check_targets("client", ("site-1",))


def test_check_targets_refuses_non_str_names() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_targets("client", ["site-1", 2])
    assert str(info.value) == "all targets in the list of targets must be strings."


@pytest.mark.parametrize("name", ["a b", "a/b", "", "site-1;rm", "x\n"])
def test_check_targets_refuses_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_targets("client", ["site-1", name])
    assert str(info.value) == f"invalid target {name}"


@given(st.lists(st.from_regex(r"[A-Za-z0-9._-]+", fullmatch=True), min_size=1))
def test_check_targets_keeps_every_valid_list_in_order(names: list[str]) -> None:
    assert check_targets("client", names) == names


@pytest.mark.parametrize("name", [None, "", 5])
def test_check_client_name_rejects(name: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_client_name(name)
    assert str(info.value) == "client_name must be a non-empty str"


def test_check_client_name_allows_spaces() -> None:
    assert check_client_name("site one") == "site one"


# --- timeouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, -1, 0.0, "abc", None, float("nan"), [1]])
def test_check_wait_timeout_rejects_non_positive_when_waiting(timeout: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_wait_timeout(True, timeout)
    assert str(info.value) == WAIT_MESSAGE


@pytest.mark.parametrize(("timeout", "expected"), [(30, 30.0), ("2.5", 2.5), (0.1, 0.1)])
def test_check_wait_timeout_converts(timeout: object, expected: float) -> None:
    assert check_wait_timeout(True, timeout) == expected


@pytest.mark.parametrize("timeout", [0, -5, "abc", None])
def test_check_wait_timeout_not_validated_without_wait(timeout: object) -> None:
    assert check_wait_timeout(False, timeout) == 0.0


@pytest.mark.parametrize(
    ("timeout", "poll", "message"),
    [
        (-1, 2.0, "timeout must be >= 0"),
        (-0.001, 2.0, "timeout must be >= 0"),
        (float("nan"), 2.0, "timeout must be >= 0"),
        (0, 0, "poll_interval must be > 0"),
        (0, -1.5, "poll_interval must be > 0"),
        (10, float("nan"), "poll_interval must be > 0"),
        ("1", 2.0, "timeout must be a number but got <class 'str'>"),
        (1, None, "poll_interval must be a number but got <class 'NoneType'>"),
        (True, 2.0, "timeout must be a number but got <class 'bool'>"),
    ],
)
def test_check_monitor_args_rejects(timeout: object, poll: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_monitor_args(timeout, poll)
    assert str(info.value) == message


def test_check_monitor_args_checks_timeout_first() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^timeout must be >= 0$"):
        check_monitor_args(-1, 0)


def test_check_monitor_args_accepts_zero_timeout_as_no_limit() -> None:
    assert check_monitor_args(0, 2) == (0.0, 2.0)
    assert check_monitor_args(1.5, 0.25) == (1.5, 0.25)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", "timeout must be a number but got <class 'str'>"),
        (None, "timeout must be a number but got <class 'NoneType'>"),
        (True, "timeout must be a number but got <class 'bool'>"),
        (0, "invalid timeout value 0.0 - must be > 0.0"),
        (-2.5, "invalid timeout value -2.5 - must be > 0.0"),
    ],
)
def test_check_command_timeout_rejects(value: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_command_timeout(value)
    assert str(info.value) == message


def test_check_command_timeout_rejects_nan_and_accepts_numbers() -> None:
    with pytest.raises(InvalidArgumentError, match=r"must be > 0\.0"):
        check_command_timeout(math.nan)
    assert check_command_timeout(5) == 5.0
    assert check_command_timeout(0.5) == 0.5


# --- logs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [None, "", 3])
def test_check_log_target_rejects(target: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^target must be a non-empty str$"):
        check_log_target(target)


def test_check_log_target_returns_target() -> None:
    assert check_log_target("site-1") == "site-1"


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, 0), ("3", 3), (2.9, 2)])
def test_check_tail_lines_converts(value: object, expected: int | None) -> None:
    assert check_tail_lines(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "tail_lines must be an integer"),
        ([1], "tail_lines must be an integer"),
        (float("inf"), "tail_lines must be an integer"),
        (-1, "tail_lines must be greater than or equal to 0"),
    ],
)
def test_check_tail_lines_rejects(value: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_tail_lines(value)
    assert str(info.value) == message


SERVER_LOG = "INFO first\nERROR second\nINFO third\nERROR fourth\n"


def test_filter_logs_reference_example_tail_then_grep() -> None:
    payload = {"logs": {"server": SERVER_LOG}}
    assert filter_logs(payload, 1, "ERROR") == {"logs": {"server": "ERROR fourth\n"}}


def test_filter_logs_tail_is_applied_before_grep() -> None:
    # grep-then-tail would give "ERROR fourth\n" too; two lines tell the orders apart.
    payload = {"logs": {"server": SERVER_LOG}}
    assert filter_logs(payload, 2, "ERROR") == {"logs": {"server": "ERROR fourth\n"}}
    assert filter_logs(payload, 3, "ERROR") == {"logs": {"server": "ERROR second\nERROR fourth\n"}}


def test_filter_logs_tail_zero_keeps_nothing() -> None:
    assert filter_logs({"logs": {"server": SERVER_LOG}}, 0, None) == {"logs": {"server": ""}}


def test_filter_logs_keeps_line_endings_and_a_missing_final_newline() -> None:
    payload = {"logs": {"s": "a\r\nb\rc"}}
    assert filter_logs(payload, 2, None) == {"logs": {"s": "b\rc"}}


def test_filter_logs_grep_is_a_plain_case_sensitive_substring() -> None:
    payload = {"logs": {"s": "x.y\nxzy\nX.Y\n"}}
    assert filter_logs(payload, None, "x.y") == {"logs": {"s": "x.y\n"}}


def test_filter_logs_passes_non_strings_and_other_keys_through() -> None:
    payload: dict[str, Any] = {
        "logs": {"server": SERVER_LOG, "site-1": None},
        "unavailable": {"site-2": "client log stream not available for this job"},
    }
    result = filter_logs(payload, 1, None)
    assert result == {
        "logs": {"server": "ERROR fourth\n", "site-1": None},
        "unavailable": {"site-2": "client log stream not available for this job"},
    }
    assert payload["logs"]["server"] == SERVER_LOG  # the input is not modified


@pytest.mark.parametrize("grep", [None, ""])
def test_filter_logs_without_filters_returns_an_equal_copy(grep: str | None) -> None:
    payload = {"logs": {"server": SERVER_LOG}}
    result = filter_logs(payload, None, grep)
    assert result == payload
    assert result is not payload


def test_filter_logs_leaves_a_payload_without_logs_map() -> None:
    assert filter_logs({"logs": "text"}, 1, "x") == {"logs": "text"}


def test_filter_logs_rejects_negative_tail() -> None:
    with pytest.raises(InvalidArgumentError, match="greater than or equal to 0"):
        filter_logs({"logs": {"s": "a\n"}}, -1, None)


@given(
    st.lists(st.sampled_from(["a\n", "b\n", "ab\n", "\n", "ba"]), max_size=12),
    st.integers(min_value=0, max_value=15),
    st.sampled_from(["a", "b", "ab"]),
)
def test_filter_logs_matches_a_simple_model(lines: list[str], tail: int, pattern: str) -> None:
    text = "".join(lines)
    kept = text.splitlines(keepends=True)
    kept = kept[len(kept) - tail :] if tail < len(kept) else kept
    expected = "".join(line for line in kept if pattern in line)
    assert filter_logs({"logs": {"s": text}}, tail, pattern)["logs"]["s"] == expected


# --- log configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("info", "info"),
        ("DEBUG", "DEBUG"),
        (" warning ", "warning"),
        ("Critical", "Critical"),
        ("10", "10"),
        ("0", "0"),
        ("50", "50"),
        ("concise", "concise"),
        ("reload", "reload"),
        ("full", "full"),
        ("msg_only", "msg_only"),
        ("verbose", "verbose"),
    ],
)
def test_check_site_log_config_accepts_levels_and_modes(config: str, expected: str) -> None:
    assert check_site_log_config(config) == expected


@pytest.mark.parametrize(
    "config",
    [{"version": 1}, 20, None, "", "  ", "51", "-1", "/tmp/log.json", "loud", "basic_format", "²"],
)
def test_check_site_log_config_rejects_everything_else(config: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_site_log_config(config)
    assert str(info.value) == SITE_LOG_MESSAGE


def test_encode_job_log_config() -> None:
    assert encode_job_log_config({"version": 1, "root": {"level": "INFO"}}) == (
        '{"version": 1, "root": {"level": "INFO"}}'
    )
    assert encode_job_log_config("DEBUG") == "DEBUG"
    assert encode_job_log_config(20) == "20"


def test_encode_job_log_config_rejects_unserialisable_dicts() -> None:
    with pytest.raises(InvalidArgumentError, match="config must be JSON-serializable"):
        encode_job_log_config({"handler": object()})
