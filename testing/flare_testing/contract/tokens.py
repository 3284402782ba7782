"""Contract: submit tokens - replay, conflict, deletion tombstones, scope, format, content
identity and recovery lookups (reference §2, §11.1 #1-#6; DECISIONS §8, §9)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from flare_core.errors import (
    InternalError,
    InvalidArgumentError,
    InvalidJobDefinition,
    SubmitTokenConflict,
    SubmitTokenJobDeleted,
)
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import ContractBase, OpenSession, Token, Users, nothing_sent
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders

__all__ = ["SubmitTokenContract"]

TOKEN = "retry.01:A_b-c"

BAD_TOKENS = ["", "bad token", "bad/token", "x" * 129, "tab\there", "ünïcode"]
GOOD_TOKENS = [
    TOKEN,
    "x" * 128,
    "a",
    "1.2.3",
    "A:B:C",
    pytest.param("-leading-dash", marks=pytest.mark.flare_requires(cap.DASH_NAMES)),
]


def _job_ids(session: SessionSpec) -> list[str]:
    return [row["job_id"] for row in session.list_jobs()]


class SubmitTokenContract(ContractBase):
    """Submit tokens make ``submit_job`` retry-safe across calls."""

    # --- replay and conflict (#1, #2) ----------------------------------------------------------

    def test_same_token_same_content_replays(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        first = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        second = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        assert second == first
        assert _job_ids(session) == [first]

    def test_replay_ignores_the_folder_name(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        first = session.submit_job(str(jobs.hello("first-name")), submit_token=token(TOKEN))
        second = session.submit_job(str(jobs.hello("second-name")), submit_token=token(TOKEN))
        assert second == first
        assert session.get_job_meta(first)["job_folder_name"] == "first-name"

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_replay_after_the_job_finished(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        first = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        session.wait_for_job(first, timeout=3600)
        assert session.submit_job(str(jobs.hello()), submit_token=token(TOKEN)) == first
        assert _job_ids(session) == [first]

    def test_changed_file_conflicts(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        first = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        with pytest.raises(SubmitTokenConflict) as caught:
            session.submit_job(str(jobs.hello(num_rounds=5)), submit_token=token(TOKEN))
        assert caught.value.existing_job_id == first
        assert "different job content" in str(caught.value)
        assert _job_ids(session) == [first]

    def test_added_file_conflicts(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        first = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        with pytest.raises(SubmitTokenConflict) as caught:
            session.submit_job(
                str(jobs.hello(extra_files={"app/config/extra.json": "{}\n"})),
                submit_token=token(TOKEN),
            )
        assert caught.value.existing_job_id == first

    def test_renamed_file_conflicts(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        base = {"app/config/a.txt": "same bytes\n"}
        moved = {"app/config/b.txt": "same bytes\n"}
        session.submit_job(str(jobs.hello(extra_files=base)), submit_token=token(TOKEN))
        with pytest.raises(SubmitTokenConflict):
            session.submit_job(str(jobs.hello(extra_files=moved)), submit_token=token(TOKEN))

    def test_token_errors_are_distinct(self) -> None:
        for error in (SubmitTokenConflict, SubmitTokenJobDeleted):
            assert not issubclass(error, (InvalidJobDefinition, InternalError))
        assert not issubclass(SubmitTokenConflict, SubmitTokenJobDeleted)
        assert not issubclass(SubmitTokenJobDeleted, SubmitTokenConflict)

    # --- content identity (#6) ------------------------------------------------------------------

    def test_signature_files_do_not_change_the_content(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        first = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        signed = jobs.hello(
            extra_files={
                ".__nvfl_sig.json": '{"sig": "abc"}\n',
                "app/.__nvfl_sig.json": '{"sig": "def"}\n',
                ".__nvfl_submitter.crt": "-----BEGIN CERTIFICATE-----\n",
            }
        )
        assert session.submit_job(str(signed), submit_token=token(TOKEN)) == first

    def test_empty_directories_do_not_change_the_content(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        first = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        padded = jobs.hello(empty_dirs=["app/custom-empty", "docs/empty"])
        assert session.submit_job(str(padded), submit_token=token(TOKEN)) == first

    @pytest.mark.flare_requires(cap.UNBOUNDED_TOKEN_HASH)
    def test_large_file_can_be_submitted_with_a_token(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        # Incompressible bytes, so the archive is as large as the file (no zip-bomb ratio).
        blob = random.Random(7).randbytes(10 * 1024 * 1024 + 1)
        folder = jobs.hello(extra_files={"app/config/weights.json": blob})
        first = session.submit_job(str(folder), submit_token=token(TOKEN))
        assert session.submit_job(str(folder), submit_token=token(TOKEN)) == first

    # --- deleted jobs (#3) -----------------------------------------------------------------------

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_delete_marks_the_token_record(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        job_id = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        session.wait_for_job(job_id, timeout=3600)
        result = session.delete_job(job_id)
        assert result == {"job_id": job_id, "submit_records_marked_deleted": 1}

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    @pytest.mark.parametrize("same_content", [True, False], ids=["same", "different"])
    def test_token_of_a_deleted_job_is_spent(
        self, session: SessionSpec, jobs: JobFolders, same_content: bool, token: Token
    ) -> None:
        job_id = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        session.wait_for_job(job_id, timeout=3600)
        session.delete_job(job_id)
        again = jobs.hello() if same_content else jobs.hello(num_rounds=9)
        with pytest.raises(SubmitTokenJobDeleted) as caught:
            session.submit_job(str(again), submit_token=token(TOKEN))
        error = caught.value
        assert error.job_id == job_id
        assert error.state == "job_deleted"
        assert error.deleted_time is not None
        assert datetime.fromisoformat(error.deleted_time).utcoffset() == timedelta(0)
        assert "deleted job" in str(error)
        assert session.list_jobs() == []

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_listing_a_deleted_jobs_token_raises(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        job_id = session.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        session.wait_for_job(job_id, timeout=3600)
        session.delete_job(job_id)
        with pytest.raises(SubmitTokenJobDeleted) as caught:
            session.list_jobs(submit_token=token(TOKEN))
        assert caught.value.job_id == job_id
        assert caught.value.state == "job_deleted"

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_delete_by_another_user_spends_the_token(
        self, sessions: OpenSession, users: Users, jobs: JobFolders, token: Token
    ) -> None:
        lead = sessions(users.lead)
        job_id = lead.submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        lead.wait_for_job(job_id, timeout=3600)
        assert sessions(users.admin).delete_job(job_id)["submit_records_marked_deleted"] == 1
        with pytest.raises(SubmitTokenJobDeleted):
            lead.submit_job(str(jobs.hello()), submit_token=token(TOKEN))

    # --- scope (#4) -------------------------------------------------------------------------------

    def test_other_user_has_an_independent_scope(
        self, sessions: OpenSession, users: Users, jobs: JobFolders, token: Token
    ) -> None:
        mine = sessions(users.admin).submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        theirs = sessions(users.lead).submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        assert theirs != mine

    @pytest.mark.flare_requires(cap.STUDY_ADMIN)
    def test_other_study_has_an_independent_scope(
        self, harness: Harness, sessions: OpenSession, users: Users, jobs: JobFolders, token: Token
    ) -> None:
        harness.add_study("study-b", {users.server_org: list(harness.sites)}, [users.admin])
        default = sessions(users.admin).submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        other = sessions(users.admin, "study-b").submit_job(
            str(jobs.hello()), submit_token=token(TOKEN)
        )
        assert other != default

    def test_other_users_token_lists_nothing(
        self, sessions: OpenSession, users: Users, jobs: JobFolders, token: Token
    ) -> None:
        sessions(users.lead).submit_job(str(jobs.hello()), submit_token=token(TOKEN))
        assert sessions(users.admin).list_jobs(submit_token=token(TOKEN)) == []

    def test_without_token_identical_submits_differ(
        self, session: SessionSpec, jobs: JobFolders
    ) -> None:
        folder = str(jobs.hello())
        assert session.submit_job(folder) != session.submit_job(folder)
        assert len(session.list_jobs()) == 2

    # --- format (#5) ------------------------------------------------------------------------------

    @pytest.mark.parametrize("bad", BAD_TOKENS, ids=lambda t: repr(t)[:12])
    def test_malformed_token_fails_submit_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        jobs: JobFolders,
        bad: str,
    ) -> None:
        folder = str(jobs.hello())
        with nothing_sent(harness, caps), pytest.raises(InvalidArgumentError, match="submit_token"):
            session.submit_job(folder, submit_token=bad)

    @pytest.mark.parametrize("bad", BAD_TOKENS, ids=lambda t: repr(t)[:12])
    def test_malformed_token_fails_listing_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, bad: str
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(InvalidArgumentError, match="submit_token"):
            session.list_jobs(submit_token=bad)

    def test_non_string_token_fails_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, jobs: JobFolders
    ) -> None:
        folder = str(jobs.hello())
        number: Any = 12345
        with nothing_sent(harness, caps), pytest.raises(InvalidArgumentError, match="submit_token"):
            session.submit_job(folder, submit_token=number)

    @pytest.mark.parametrize("written", GOOD_TOKENS, ids=lambda t: str(t)[:12])
    def test_wellformed_token_is_accepted(
        self, session: SessionSpec, jobs: JobFolders, token: Token, written: str
    ) -> None:
        used = token(written)
        job_id = session.submit_job(str(jobs.hello()), submit_token=used)
        assert [row["job_id"] for row in session.list_jobs(submit_token=used)] == [job_id]

    # --- recovery lookup (§2.6) -------------------------------------------------------------------

    def test_list_by_token_finds_the_job(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        session.submit_job(str(jobs.hello(name="other")))
        job_id = session.submit_job(str(jobs.hello(name="mine")), submit_token=token(TOKEN))
        rows = session.list_jobs(submit_token=token(TOKEN))
        assert [row["job_id"] for row in rows] == [job_id]
        assert rows[0]["job_name"] == "mine"

    def test_list_by_token_applies_the_other_filters(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        job_id = session.submit_job(str(jobs.hello(name="mine")), submit_token=token(TOKEN))
        assert session.list_jobs(submit_token=token(TOKEN), name_prefix="other") == []
        assert session.list_jobs(submit_token=token(TOKEN), id_prefix=job_id[:8].upper()) != []
        detailed = session.list_jobs(submit_token=token(TOKEN), detailed=True)
        assert detailed[0]["job_id"] == job_id
        assert detailed[0]["submitter_name"]

    def test_unknown_token_lists_nothing(self, session: SessionSpec, jobs: JobFolders) -> None:
        session.submit_job(str(jobs.hello()))
        assert session.list_jobs(submit_token="never-used") == []

    def test_token_is_not_written_to_meta(
        self, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        job_id = session.submit_job(
            str(jobs.hello(meta={"submit_token": "from-meta"})), submit_token=token(TOKEN)
        )
        meta = session.get_job_meta(job_id)
        assert "submit_token" not in meta
        assert token(TOKEN) not in repr(meta)

    # --- exactly-once without a token (DECISIONS §8) ---------------------------------------------

    @pytest.mark.flare_requires(cap.EXACTLY_ONCE_SUBMIT, cap.FAULT_INJECTION)
    def test_lost_reply_does_not_duplicate_an_untokened_submit(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        folder = str(jobs.hello())
        harness.inject_failures(1, "after")
        job_id = session.submit_job(folder)
        assert _job_ids(session) == [job_id]

    @pytest.mark.flare_requires(cap.EXACTLY_ONCE_SUBMIT, cap.FAULT_INJECTION)
    def test_failed_send_is_retried_for_an_untokened_submit(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders
    ) -> None:
        folder = str(jobs.hello())
        harness.inject_failures(1, "before")
        job_id = session.submit_job(folder)
        assert _job_ids(session) == [job_id]

    @pytest.mark.flare_requires(cap.EXACTLY_ONCE_SUBMIT, cap.FAULT_INJECTION)
    def test_lost_reply_replays_a_user_token(
        self, harness: Harness, session: SessionSpec, jobs: JobFolders, token: Token
    ) -> None:
        folder = str(jobs.hello())
        harness.inject_failures(1, "after")
        job_id = session.submit_job(folder, submit_token=token(TOKEN))
        assert _job_ids(session) == [job_id]
        assert session.list_jobs(submit_token=token(TOKEN))[0]["job_id"] == job_id
