"""``list_jobs``: client-side argument handling and the server's filter, order, limit, shape."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flare_core.commands import ListJobs
from flare_core.errors import InvalidArgumentError
from flare_core.lifecycle import creation_fields, start_fields
from flare_core.listing import (
    LEGACY_ALIASES,
    SUMMARY_KEYS,
    build_list_jobs,
    detailed_row,
    job_name,
    normalize_study,
    select_jobs,
    summary_row,
)

T0 = 1_700_000_000.0


def meta(
    job_id: str,
    *,
    submit: float | None = T0,
    name: str | None = "job",
    study: str | None = "default",
    status: str = "SUBMITTED",
    submitter: str = "alice",
    **extra: Any,
) -> dict[str, Any]:
    fields: dict[str, Any] = {"job_id": job_id, "status": status, "submitter_name": submitter}
    if submit is not None:
        created = creation_fields(submit)
        fields.update(created, status=status)
    if name is not None:
        fields["name"] = name
    if study is not None:
        fields["study"] = study
    fields.update(extra)
    return fields


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["job_id"] for row in rows]


def select(metas: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    study = kwargs.pop("study", "default")
    caller = kwargs.pop("caller_name", "alice")
    now = kwargs.pop("now", T0 + 1000)
    return select_jobs(metas, ListJobs(**kwargs), study=study, caller_name=caller, now=now)


# --- client side: build_list_jobs --------------------------------------------------------------


def test_defaults() -> None:
    assert build_list_jobs() == ListJobs()


def test_canonical_arguments() -> None:
    command = build_list_jobs(
        detailed=True,
        limit=5,
        id_prefix="ab",
        name_prefix="hello",
        reverse=True,
        submit_token="retry.01:A_b-c",
    )
    assert command == ListJobs(
        detailed=True,
        limit=5,
        id_prefix="ab",
        name_prefix="hello",
        reverse=True,
        submit_token="retry.01:A_b-c",
    )
    assert command.mine_only is False  # the session never asks for -u


def test_alias_order_is_the_reference_order() -> None:
    assert LEGACY_ALIASES == (
        ("max_num", "limit"),
        ("job_id_prefix", "id_prefix"),
        ("job_name_prefix", "name_prefix"),
        ("id", "id_prefix"),
        ("name", "name_prefix"),
    )


def test_legacy_aliases_map_onto_canonical_arguments() -> None:
    command = build_list_jobs(max_num=5, job_id_prefix="job", job_name_prefix="hello")
    assert (command.limit, command.id_prefix, command.name_prefix) == (5, "job", "hello")
    command = build_list_jobs(id="ab", name="he")
    assert (command.id_prefix, command.name_prefix) == ("ab", "he")


def test_canonical_argument_wins_over_alias() -> None:
    command = build_list_jobs(limit=3, id_prefix="x", name_prefix="y", max_num=9, id="z", name="w")
    assert (command.limit, command.id_prefix, command.name_prefix) == (3, "x", "y")


def test_earlier_alias_wins_over_later_alias() -> None:
    command = build_list_jobs(job_id_prefix="first", id="second", job_name_prefix="a", name="b")
    assert (command.id_prefix, command.name_prefix) == ("first", "a")


def test_alias_given_as_none_lets_a_later_alias_apply() -> None:
    assert build_list_jobs(job_id_prefix=None, id="second").id_prefix == "second"


def test_unknown_kwargs_raise_type_error_with_sorted_names() -> None:
    with pytest.raises(TypeError) as info:
        build_list_jobs(zeta=1, alpha=2, max_num=3)
    assert str(info.value) == "unsupported list_jobs kwargs: ['alpha', 'zeta']"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detailed": "yes"}, "detailed must be bool but got <class 'str'>"),
        ({"detailed": 1}, "detailed must be bool but got <class 'int'>"),
        ({"reverse": None}, "reverse must be bool but got <class 'NoneType'>"),
        ({"limit": "5"}, "limit must be None or int but got <class 'str'>"),
        ({"limit": 2.0}, "limit must be None or int but got <class 'float'>"),
        ({"limit": True}, "limit must be None or int but got <class 'bool'>"),
        ({"max_num": "5"}, "limit must be None or int but got <class 'str'>"),
        ({"limit": -1}, "limit must be >= 0 but got -1"),
        ({"id_prefix": 5}, "id_prefix must be None or str but got <class 'int'>"),
        ({"name_prefix": b"x"}, "name_prefix must be None or str but got <class 'bytes'>"),
        ({"name": 3}, "name_prefix must be None or str but got <class 'int'>"),
    ],
)
def test_bad_types_raise_invalid_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        build_list_jobs(**kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)  # DECISIONS §4: except ValueError keeps working


@pytest.mark.parametrize("token", ["", "bad token", "bad/token", "x" * 129])
def test_bad_submit_token_is_rejected(token: str) -> None:
    with pytest.raises(InvalidArgumentError, match="submit_token"):
        build_list_jobs(submit_token=token)


def test_empty_prefixes_and_zero_limit_mean_none() -> None:
    assert build_list_jobs(limit=0, id_prefix="", name_prefix="") == ListJobs()
    assert build_list_jobs(max_num=0, job_id_prefix="", job_name_prefix="") == ListJobs()


# --- study and name helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cancer", "cancer"),
        ("default", "default"),
        ("", "default"),
        (None, "default"),
        (7, "default"),
    ],
)
def test_normalize_study(value: object, expected: str) -> None:
    assert normalize_study(value) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "n", "job_folder_name": "f"}, "n"),
        ({"name": "", "job_folder_name": "f"}, "f"),
        ({"job_folder_name": "f"}, "f"),
        ({}, "No name"),
    ],
)
def test_job_name_fallbacks(fields: dict[str, Any], expected: str) -> None:
    assert job_name(fields) == expected


# --- rows --------------------------------------------------------------------------------------


def test_summary_row_shape() -> None:
    row = summary_row(meta("a", name="hello", study="cancer"), T0 + 5)
    assert tuple(row) == SUMMARY_KEYS
    assert row == {
        "job_id": "a",
        "job_name": "hello",
        "status": "SUBMITTED",
        "submit_time": creation_fields(T0)["submit_time_iso"],
        "duration": "N/A",
        "study": "cancer",
    }


def test_summary_row_of_a_sparse_legacy_meta() -> None:
    assert summary_row({}, T0) == {
        "job_id": "",
        "job_name": "No name",
        "status": "",
        "submit_time": "",
        "duration": "N/A",
        "study": "default",
    }


def test_rows_recompute_running_duration() -> None:
    running = meta("a", status="RUNNING", start_time=start_fields(T0 + 10)["start_time"])
    assert summary_row(running, T0 + 70)["duration"] == "0:01:00"
    assert detailed_row(running, T0 + 70)["duration"] == "0:01:00"
    assert running["duration"] == "N/A"  # the stored meta is untouched


def test_rows_ignore_unparsable_start_time() -> None:
    running = meta("a", status="RUNNING", start_time="not a time")
    assert summary_row(running, T0)["duration"] == "N/A"
    assert detailed_row(running, T0)["duration"] == "N/A"


def test_detailed_row_is_a_deep_copy_with_normalised_study() -> None:
    source = meta("a", study=None, deploy_map={"app": ["server", "site-1"]})
    row = detailed_row(source, T0)
    assert row == {**source, "study": "default"}
    assert "study" not in source
    row["deploy_map"]["app"].append("site-2")
    assert source["deploy_map"] == {"app": ["server", "site-1"]}


# --- server side: select_jobs ------------------------------------------------------------------


def test_only_the_session_study_is_listed_and_legacy_jobs_count_as_default() -> None:
    metas = [
        meta("a", study="default"),
        meta("b", study=None),
        meta("c", study=""),
        meta("d", study="cancer"),
    ]
    assert ids(select(metas)) == ["a", "b", "c"]
    assert ids(select(metas, study="cancer")) == ["d"]
    assert select(metas, study="nowhere") == []


def test_id_prefix_is_case_insensitive() -> None:
    metas = [meta("ABcd"), meta("abXY"), meta("zz")]
    assert ids(select(metas, id_prefix="ab")) == ["ABcd", "abXY"]
    assert ids(select(metas, id_prefix="ABC")) == ["ABcd"]


def test_name_prefix_reads_meta_name_only() -> None:
    metas = [
        meta("a", name="Hello-World"),
        meta("b", name=None, job_folder_name="hello-folder"),
        meta("c", name="other"),
    ]
    assert ids(select(metas, name_prefix="hello")) == ["a"]
    # ... though the summary row falls back to the folder name.
    assert select(metas)[1]["job_name"] == "hello-folder"


def test_mine_only_keeps_the_callers_jobs() -> None:
    metas = [meta("a", submitter="alice"), meta("b", submitter="bob")]
    assert ids(select(metas, mine_only=True, caller_name="bob")) == ["b"]
    assert ids(select(metas)) == ["a", "b"]


def test_sorted_by_submit_time_missing_counts_as_zero() -> None:
    metas = [meta("late", submit=T0 + 20), meta("none", submit=None), meta("early", submit=T0)]
    assert ids(select(metas)) == ["none", "early", "late"]
    assert ids(select(metas, reverse=True)) == ["late", "early", "none"]


def test_equal_submit_times_are_a_total_order_and_reverse_is_exact() -> None:
    # Issue 10, item 10: ties go by the store's (submission) order, and reverse=True is the
    # exact reverse, also when a limit cuts the list.
    metas = [meta("x"), meta("y"), meta("z")]
    assert ids(select(metas)) == ["x", "y", "z"]
    assert ids(select(metas, reverse=True)) == ["z", "y", "x"]
    assert ids(select(metas, limit=2)) == ["y", "z"]
    assert ids(select(metas, limit=2, reverse=True)) == ["z", "y"]


def test_limit_keeps_the_newest_in_both_orders() -> None:
    metas = [meta(f"j{i}", submit=T0 + i) for i in (3, 1, 4, 0, 2)]
    assert ids(select(metas, limit=2)) == ["j3", "j4"]
    assert ids(select(metas, limit=2, reverse=True)) == ["j4", "j3"]
    assert ids(select(metas, limit=10)) == ["j0", "j1", "j2", "j3", "j4"]
    assert ids(select(metas, limit=None)) == ids(select(metas, limit=0))


def test_negative_limit_is_refused_on_the_server_too() -> None:
    with pytest.raises(InvalidArgumentError):
        select([meta("a")], limit=-1)


def test_detailed_listing_returns_full_meta() -> None:
    rows = select([meta("a", deploy_map={"app": ["@ALL"]})], detailed=True)
    assert rows[0]["deploy_map"] == {"app": ["@ALL"]}
    assert rows[0]["submit_time"] == T0  # the float, unlike the summary's ISO string


def test_filters_apply_to_a_token_resolved_candidate() -> None:
    candidate = [meta("abc", name="hello")]
    assert ids(select(candidate, submit_token="t", id_prefix="ab")) == ["abc"]
    assert select(candidate, submit_token="t", id_prefix="zz") == []
    assert select(candidate, submit_token="t", study="other") == []


def test_empty_store() -> None:
    assert select([]) == []


# --- model-based: random stores and commands against a naive model -------------------------------

_job = st.fixed_dictionaries(
    {
        "job_id": st.text(alphabet="abAB12", min_size=1, max_size=4),
        "name": st.one_of(st.none(), st.text(alphabet="hHeE", max_size=3)),
        "study": st.sampled_from([None, "", "default", "cancer"]),
        "submit": st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
        "submitter": st.sampled_from(["alice", "bob"]),
    }
)


def _model(jobs: list[dict[str, Any]], command: ListJobs, study: str, caller: str) -> list[str]:
    kept = []
    for job in jobs:
        job_study = job["study"] or "default"
        if job_study != study:
            continue
        if command.id_prefix and not job["job_id"].lower().startswith(command.id_prefix.lower()):
            continue
        if command.name_prefix and not (job["name"] or "").lower().startswith(
            command.name_prefix.lower()
        ):
            continue
        if command.mine_only and job["submitter"] != caller:
            continue
        kept.append(job)
    # Stable ranking by submit time, missing as 0.
    ranked = sorted(kept, key=lambda j: float(j["submit"] or 0))
    if command.reverse:  # the exact reverse, ties included
        ranked = ranked[::-1]
    if command.limit:
        ranked = ranked[: command.limit] if command.reverse else ranked[-command.limit :]
    return [j["job_id"] for j in ranked]


@given(
    st.lists(_job, max_size=12),
    st.builds(
        ListJobs,
        limit=st.one_of(st.none(), st.integers(min_value=0, max_value=6)),
        id_prefix=st.one_of(st.none(), st.text(alphabet="abAB1", max_size=2)),
        name_prefix=st.one_of(st.none(), st.text(alphabet="hHe", max_size=2)),
        reverse=st.booleans(),
        mine_only=st.booleans(),
    ),
    st.sampled_from(["default", "cancer"]),
    st.sampled_from(["alice", "bob"]),
)
def test_select_jobs_matches_a_simple_model(
    jobs: list[dict[str, Any]], command: ListJobs, study: str, caller: str
) -> None:
    metas = [
        meta(
            j["job_id"],
            submit=None if j["submit"] is None else T0 + j["submit"],
            name=j["name"],
            study=j["study"],
            submitter=j["submitter"],
        )
        for j in jobs
    ]
    # T0 offsets keep the model's order: shift the model's epochs the same way.
    shifted = [dict(j, submit=None if j["submit"] is None else T0 + j["submit"]) for j in jobs]
    rows = select_jobs(metas, command, study=study, caller_name=caller, now=T0)
    assert ids(rows) == _model(shifted, command, study, caller)
    assert len(rows) <= (command.limit or len(metas))
    for row in rows:
        assert tuple(row) == SUMMARY_KEYS
