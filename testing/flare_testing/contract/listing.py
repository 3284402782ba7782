"""Contract: ``list_jobs`` - shapes, order, newest-N limits, prefixes, legacy keyword aliases
and study scoping (reference §1.5, §4, §11.1 #15, #16)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    PENDING_SITE,
    ContractBase,
    OpenSession,
    Users,
    arg_error,
    nothing_sent,
    pending_job,
    running_job,
)
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import EXAMPLE, JobFolders

__all__ = ["ListJobsContract"]

SUMMARY_KEYS = {"job_id", "job_name", "status", "submit_time", "duration", "study"}
SCHEDULER_KEYS = frozenset({"schedule_count", "last_schedule_time", "schedule_history"})
"""Meta keys a real scheduler writes on its own while a job waits (between any two reads)."""


def _stable(meta: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in meta.items() if key not in SCHEDULER_KEYS}


NAMES = ("alpha", "Beta", "alphabet", "gamma")


def _submit_spaced(
    harness: Harness, caps: frozenset[str], session: SessionSpec, jobs: JobFolders
) -> list[str]:
    """Submit one queued job per name in ``NAMES``, oldest first, one second apart."""
    ids = []
    for name in NAMES:
        if cap.VIRTUAL_TIME in caps:
            harness.advance(1.0)
        ids.append(pending_job(session, jobs, name=name))
    return ids


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["job_id"] for row in rows]


def _duration(text: str) -> timedelta:
    hours, minutes, seconds = text.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))


class ListJobsContract(ContractBase):
    """``list_jobs``: the recovery lookup by token is in ``tokens.py``."""

    @pytest.fixture
    def listed(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, jobs: JobFolders
    ) -> list[str]:
        """Job ids of ``NAMES`` in submission order."""
        return _submit_spaced(harness, caps, session, jobs)

    def test_no_jobs_lists_nothing(self, session: SessionSpec) -> None:
        assert session.list_jobs() == []
        assert session.list_jobs(detailed=True) == []

    def test_summary_rows_have_exactly_the_reference_keys(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = pending_job(session, jobs, name="shape")
        (row,) = session.list_jobs()
        assert set(row) == SUMMARY_KEYS
        meta = session.get_job_meta(job_id)
        assert row == {
            "job_id": job_id,
            "job_name": "shape",
            "status": "SUBMITTED",
            "submit_time": meta["submit_time_iso"],
            "duration": "N/A",
            "study": "default",
        }

    def test_job_name_falls_back_to_the_folder_name(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        pending_job(session, jobs, drop_meta_keys=["name"])
        assert session.list_jobs()[0]["job_name"] == EXAMPLE

    def test_detailed_rows_are_job_metas(
        self, session: SessionSpec, jobs: JobFolders, users: Users
    ) -> None:
        job_id = pending_job(session, jobs, name="detailed")
        (row,) = session.list_jobs(detailed=True)
        assert _stable(row) == _stable(session.get_job_meta(job_id))
        assert row["submitter_name"] == users.admin
        assert row["study"] == "default"

    def test_default_order_is_oldest_first(self, session: SessionSpec, listed: list[str]) -> None:
        assert _ids(session.list_jobs()) == listed

    def test_reverse_is_newest_first(self, session: SessionSpec, listed: list[str]) -> None:
        assert _ids(session.list_jobs(reverse=True)) == listed[::-1]

    @pytest.mark.parametrize("limit", [1, 2, 3, 4, 10])
    def test_limit_keeps_the_newest_oldest_first(
        self, session: SessionSpec, listed: list[str], limit: int
    ) -> None:
        assert _ids(session.list_jobs(limit=limit)) == listed[-limit:]

    @pytest.mark.parametrize("limit", [1, 2, 3, 4, 10])
    def test_limit_keeps_the_newest_in_reverse(
        self, session: SessionSpec, listed: list[str], limit: int
    ) -> None:
        assert _ids(session.list_jobs(limit=limit, reverse=True)) == listed[::-1][:limit]

    @pytest.mark.parametrize("limit", [0, None])
    def test_zero_or_no_limit_lists_all(
        self, session: SessionSpec, listed: list[str], limit: int | None
    ) -> None:
        assert _ids(session.list_jobs(limit=limit)) == listed

    def test_id_prefix_is_case_insensitive(self, session: SessionSpec, listed: list[str]) -> None:
        target = listed[2]
        assert _ids(session.list_jobs(id_prefix=target[:8].upper())) == [target]
        assert _ids(session.list_jobs(id_prefix=target)) == [target]

    def test_unmatched_id_prefix_lists_nothing(
        self, session: SessionSpec, listed: list[str]
    ) -> None:
        prefix = next(c for c in "0123456789abcdef" if not any(i.startswith(c) for i in listed))
        assert session.list_jobs(id_prefix=prefix) == []

    def test_name_prefix_is_case_insensitive(self, session: SessionSpec, listed: list[str]) -> None:
        assert _ids(session.list_jobs(name_prefix="ALPHA")) == [listed[0], listed[2]]
        assert _ids(session.list_jobs(name_prefix="beta")) == [listed[1]]

    def test_name_prefix_ignores_the_folder_name(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        pending_job(session, jobs, folder_name="zeta-folder", drop_meta_keys=["name"])
        assert session.list_jobs(name_prefix="zeta") == []
        assert session.list_jobs()[0]["job_name"] == "zeta-folder"

    def test_filters_combine(self, session: SessionSpec, listed: list[str]) -> None:
        rows = session.list_jobs(name_prefix="alpha", limit=1, reverse=True)
        assert _ids(rows) == [listed[2]]
        assert _ids(session.list_jobs(name_prefix="alpha", id_prefix=listed[1])) == []

    @pytest.mark.flare_requires(cap.STUDY_ADMIN)
    def test_listing_is_scoped_to_the_session_study(
        self, harness: Harness, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        enrolled = [*harness.sites, PENDING_SITE]
        harness.add_study("study-a", {users.server_org: enrolled}, [users.admin])
        default = sessions(users.admin)
        scoped = sessions(users.admin, "study-a")
        in_default = pending_job(default, jobs)
        in_study = pending_job(scoped, jobs)
        assert _ids(default.list_jobs()) == [in_default]
        assert _ids(scoped.list_jobs()) == [in_study]
        assert scoped.list_jobs()[0]["study"] == "study-a"

    @pytest.mark.flare_requires(cap.JOB_CONTROL, cap.VIRTUAL_TIME)
    def test_running_duration_is_computed_at_list_time(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        job_id = running_job(harness, session, jobs)
        harness.advance(65.0)
        (row,) = session.list_jobs()
        assert row["status"] == "RUNNING"
        assert _duration(row["duration"]) >= timedelta(seconds=65)
        (detailed,) = session.list_jobs(detailed=True)
        assert _duration(detailed["duration"]) >= timedelta(seconds=65)
        assert session.get_job_meta(job_id)["duration"] == "N/A"

    # --- legacy keyword aliases (#16) -------------------------------------------------------------

    @pytest.mark.parametrize(
        ("alias", "value", "expected"),
        [
            ("max_num", 1, [3]),
            ("job_name_prefix", "alpha", [0, 2]),
            ("name", "GAMMA", [3]),
        ],
    )
    def test_legacy_alias_applies(
        self,
        session: SessionSpec,
        listed: list[str],
        alias: str,
        value: Any,
        expected: list[int],
    ) -> None:
        kwargs: dict[str, Any] = {alias: value}
        assert _ids(session.list_jobs(**kwargs)) == [listed[i] for i in expected]

    @pytest.mark.parametrize("alias", ["job_id_prefix", "id"])
    def test_legacy_id_alias_applies(
        self, session: SessionSpec, listed: list[str], alias: str
    ) -> None:
        kwargs: dict[str, Any] = {alias: listed[1][:8]}
        assert _ids(session.list_jobs(**kwargs)) == [listed[1]]

    def test_canonical_argument_wins_over_alias(
        self, session: SessionSpec, listed: list[str]
    ) -> None:
        assert _ids(session.list_jobs(limit=2, max_num=1)) == listed[-2:]
        assert _ids(session.list_jobs(name_prefix="beta", name="alpha")) == [listed[1]]
        assert _ids(session.list_jobs(id_prefix=listed[0], id=listed[1])) == [listed[0]]

    def test_earlier_alias_wins_over_later_alias(
        self, session: SessionSpec, listed: list[str]
    ) -> None:
        assert _ids(session.list_jobs(job_id_prefix=listed[0], id=listed[1])) == [listed[0]]
        assert _ids(session.list_jobs(job_name_prefix="beta", name="gamma")) == [listed[1]]

    def test_unknown_keyword_is_a_type_error(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec
    ) -> None:
        kwargs: dict[str, Any] = {"zzz": 1, "bogus": True}
        with (
            nothing_sent(harness, caps),
            pytest.raises(TypeError, match=r"unsupported list_jobs kwargs: \['bogus', 'zzz'\]"),
        ):
            session.list_jobs(**kwargs)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"detailed": 1},
            {"detailed": "yes"},
            {"reverse": None},
            {"reverse": "true"},
            {"limit": "5"},
            {"limit": 2.5},
            {"id_prefix": 5},
            {"name_prefix": ["a"]},
        ],
        ids=lambda kw: f"{next(iter(kw))}={next(iter(kw.values()))!r}",
    )
    def test_wrongly_typed_argument_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        kwargs: dict[str, Any],
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(arg_error(caps, ValueError)):
            session.list_jobs(**kwargs)
