"""Contract: studies - the registry commands, their role gates and payloads, login to a study,
enrollment at submit time and study-narrowed targets (reference §9, §11.1 #9, #23-#25)."""

from __future__ import annotations

from typing import Any

import pytest

from flare_core.errors import (
    AuthenticationError,
    AuthorizationError,
    CommandError,
    InvalidArgumentError,
    InvalidJobDefinition,
    InvalidTarget,
)
from flare_ports.session_spec import SessionSpec
from flare_testing.contract import capabilities as cap
from flare_testing.contract.base import (
    ContractBase,
    OpenSession,
    Users,
    arg_error,
    call,
    nothing_sent,
)
from flare_testing.contract.harness import Harness
from flare_testing.job_folders import JobFolders

__all__ = ["StudyArgumentsContract", "StudyCommandsContract", "StudyScopeContract"]

STUDY = "cancer-research"
SITE_METHODS = ("register_study", "add_study_site", "remove_study_site")
NAMED_METHODS: dict[str, tuple[Any, ...]] = {
    "register_study": (None, ["nvidia:site-1"]),
    "add_study_site": (None, ["nvidia:site-1"]),
    "remove_study_site": (None, ["nvidia:site-1"]),
    "remove_study": (),
    "show_study": (),
    "add_study_user": ("someone@nvidia.com",),
    "remove_study_user": ("someone@nvidia.com",),
}
"""Every study method taking a study name -> the arguments after it."""


def _code(error: pytest.ExceptionInfo[CommandError], code: str, exit_code: int) -> None:
    assert error.value.error_code == code
    assert error.value.exit_code == exit_code
    assert str(error.value) == error.value.message
    assert isinstance(error.value.hint, str)


def _register(
    session: SessionSpec, users: Users, *sites: str, study: str = STUDY
) -> dict[str, Any]:
    return session.register_study(study, site_orgs=[f"{users.server_org}:{','.join(sites)}"])


class StudyArgumentsContract(ContractBase):
    """Study arguments are checked locally (§9.4) before anything is sent."""

    @pytest.mark.parametrize("method", SITE_METHODS)
    def test_sites_and_site_orgs_are_exclusive(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, method: str
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(InvalidArgumentError, match="mutually exclusive"),
        ):
            call(session, method, STUDY, ["site-1"], ["nvidia:site-1"])

    @pytest.mark.parametrize("method", SITE_METHODS)
    @pytest.mark.parametrize(
        ("sites", "site_orgs", "message"),
        [
            (None, None, "sites must be list"),
            ([], None, "sites are required"),
            ("site-1", None, "sites must be list"),
            ([""], None, ""),
            (None, "nvidia:site-1", ""),
            (None, [""], ""),
        ],
        ids=["neither", "empty", "str", "empty_name", "site_orgs_str", "empty_group"],
    )
    def test_malformed_site_arguments_fail_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        sites: Any,
        site_orgs: Any,
        message: str,
    ) -> None:
        with (
            nothing_sent(harness, caps),
            pytest.raises(InvalidArgumentError, match=message or None),
        ):
            call(session, method, STUDY, sites, site_orgs)

    @pytest.mark.parametrize("method", list(NAMED_METHODS))
    @pytest.mark.parametrize("study", ["", None])
    def test_missing_study_name_fails_locally(
        self,
        harness: Harness,
        caps: frozenset[str],
        session: SessionSpec,
        method: str,
        study: Any,
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(InvalidArgumentError):
            call(session, method, study, *NAMED_METHODS[method])

    @pytest.mark.parametrize("method", ["add_study_user", "remove_study_user"])
    def test_missing_user_fails_locally(
        self, harness: Harness, caps: frozenset[str], session: SessionSpec, method: str
    ) -> None:
        with nothing_sent(harness, caps), pytest.raises(InvalidArgumentError):
            call(session, method, STUDY, "")

    @pytest.mark.parametrize(
        ("study", "reference"),
        [
            ("Upper", ValueError),
            ("under score", ValueError),
            ("-dash", ValueError),
            ("x" * 64, ValueError),
            (7, AssertionError),
        ],
        ids=["upper", "space", "dash", "long", "int"],
    )
    def test_bad_session_study_fails_locally(
        self,
        caps: frozenset[str],
        sessions: OpenSession,
        users: Users,
        study: Any,
        reference: type[Exception],
    ) -> None:
        with pytest.raises(arg_error(caps, reference)):
            sessions(users.admin, study)


class StudyCommandsContract(ContractBase):
    """The registry commands (§9.4-§9.5): payloads, error codes and role gates."""

    def test_register_as_project_admin(self, session: SessionSpec, users: Users) -> None:
        payload = _register(session, users, "site-1", "site-2")
        assert payload == {
            "name": STUDY,
            "site_orgs": {users.server_org: ["site-1", "site-2"]},
            "sites": ["site-1", "site-2"],
            "users": [users.admin],
        }
        assert session.show_study(STUDY) == payload

    def test_register_merges_into_an_existing_study(
        self, session: SessionSpec, users: Users
    ) -> None:
        _register(session, users, "site-1")
        merged = _register(session, users, "site-2")
        assert merged["sites"] == ["site-1", "site-2"]
        assert merged["users"] == [users.admin]

    def test_register_as_org_admin_uses_the_callers_org(
        self, sessions: OpenSession, users: Users
    ) -> None:
        payload = sessions(users.org_admin).register_study(STUDY, ["site-2", "site-1", "site-2"])
        assert list(payload["site_orgs"]) == [users.server_org]
        assert sorted(payload["site_orgs"][users.server_org]) == ["site-1", "site-2"]
        assert payload["sites"] == ["site-1", "site-2"]
        assert payload["users"] == [users.org_admin]

    def test_project_admin_must_use_site_orgs(self, session: SessionSpec) -> None:
        with pytest.raises(CommandError, match="project_admin must use --site-org") as caught:
            session.register_study(STUDY, ["site-1"])
        _code(caught, "INVALID_ARGS", 4)

    def test_org_admin_must_use_sites(self, sessions: OpenSession, users: Users) -> None:
        with pytest.raises(CommandError, match="org_admin must use --sites") as caught:
            sessions(users.org_admin).register_study(STUDY, site_orgs=["nvidia:site-1"])
        _code(caught, "INVALID_ARGS", 4)

    @pytest.mark.parametrize(
        ("site_orgs", "code", "message"),
        [
            (["nvidia-site-1"], "INVALID_ARGS", "invalid --site-org value"),
            (["nvidia:site-1", "other:site-1"], "INVALID_ARGS", "more than one org group"),
            (["nvidia:site-1,site-1"], "INVALID_ARGS", "more than one org group"),
            (["bad-org:site-1"], "INVALID_ARGS", "invalid org"),
            (["nvidia:"], "INVALID_ARGS", "must contain at least one site"),
            (["nvidia:bad site"], "INVALID_SITE", ""),
            (["nvidia:site-9"], "INVALID_SITE", "unknown or do not belong to org"),
            (["other:site-1"], "INVALID_SITE", "unknown or do not belong to org"),
        ],
        ids=[
            "no_colon",
            "two_groups",
            "same_group",
            "dashed_org",
            "empty_group",
            "bad_site",
            "offline_site",
            "wrong_org",
        ],
    )
    def test_register_rejects_bad_site_orgs(
        self, session: SessionSpec, site_orgs: list[str], code: str, message: str
    ) -> None:
        with pytest.raises(CommandError, match=message or None) as caught:
            session.register_study(STUDY, site_orgs=site_orgs)
        _code(caught, code, 4)
        with pytest.raises(CommandError) as missing:
            session.show_study(STUDY)
        _code(missing, "STUDY_NOT_FOUND", 1)

    @pytest.mark.parametrize(
        "study",
        [
            "default",
            "Upper",
            "under score",
            pytest.param("-lead", marks=pytest.mark.flare_requires(cap.DASH_NAMES)),
        ],
    )
    def test_register_rejects_bad_study_names(self, session: SessionSpec, study: str) -> None:
        with pytest.raises(CommandError) as caught:
            session.register_study(study, site_orgs=["nvidia:site-1"])
        _code(caught, "INVALID_STUDY_NAME", 4)

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    def test_org_admin_cannot_merge_into_a_foreign_study(
        self, harness: Harness, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        harness.connect_site("site-other", org=users.other_org)
        _register(session, users, "site-1")
        with pytest.raises(CommandError) as caught:
            sessions(users.other_org_admin).register_study(STUDY, ["site-other"])
        _code(caught, "STUDY_ALREADY_EXISTS", 1)

    def test_add_study_site(self, session: SessionSpec, users: Users) -> None:
        _register(session, users, "site-1")
        payload = session.add_study_site(STUDY, site_orgs=["nvidia:site-1,site-2"])
        assert payload == {
            "study": STUDY,
            "added": ["site-2"],
            "already_enrolled": ["site-1"],
            "site_orgs": {users.server_org: ["site-1", "site-2"]},
            "sites": ["site-1", "site-2"],
        }

    def test_add_offline_site_is_refused(self, session: SessionSpec, users: Users) -> None:
        _register(session, users, "site-1")
        with pytest.raises(CommandError) as caught:
            session.add_study_site(STUDY, site_orgs=["nvidia:site-9"])
        _code(caught, "INVALID_SITE", 4)

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    def test_remove_offline_site(
        self, harness: Harness, session: SessionSpec, users: Users
    ) -> None:
        _register(session, users, "site-1", "site-2")
        harness.disconnect_site("site-2")
        payload = session.remove_study_site(STUDY, site_orgs=["nvidia:site-2,site-9"])
        assert payload == {
            "study": STUDY,
            "removed": ["site-2"],
            "not_enrolled": ["site-9"],
            "site_orgs": {users.server_org: ["site-1"]},
            "sites": ["site-1"],
        }

    def test_remove_from_an_org_not_in_the_study(self, session: SessionSpec, users: Users) -> None:
        _register(session, users, "site-1")
        payload = session.remove_study_site(STUDY, site_orgs=["other:site-1"])
        assert payload["removed"] == []
        assert payload["not_enrolled"] == ["site-1"]
        assert payload["site_orgs"] == {users.server_org: ["site-1"]}

    def test_removing_every_site_keeps_the_org(self, session: SessionSpec, users: Users) -> None:
        _register(session, users, "site-1")
        payload = session.remove_study_site(STUDY, site_orgs=["nvidia:site-1"])
        assert payload["site_orgs"] == {users.server_org: []}
        assert payload["sites"] == []

    def test_remove_study(self, session: SessionSpec, users: Users) -> None:
        _register(session, users, "site-1")
        assert session.remove_study(STUDY) == {"name": STUDY, "removed": True}
        with pytest.raises(CommandError) as caught:
            session.show_study(STUDY)
        _code(caught, "STUDY_NOT_FOUND", 1)
        assert STUDY not in session.list_studies()["studies"]

    @pytest.mark.flare_requires(cap.QUICK_JOBS)
    def test_remove_study_with_jobs(
        self, session: SessionSpec, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        _register(session, users, *jobs.sites)
        scoped = sessions(users.admin, STUDY)
        scoped.wait_for_job(scoped.submit_job(str(jobs.hello())), timeout=3600)
        with pytest.raises(CommandError, match="has 1 associated job") as caught:
            session.remove_study(STUDY)
        _code(caught, "STUDY_HAS_JOBS", 1)

    @pytest.mark.parametrize("role", ["org_admin", "lead", "member"])
    def test_remove_study_needs_project_admin(
        self, session: SessionSpec, sessions: OpenSession, users: Users, role: str
    ) -> None:
        _register(session, users, "site-1")
        with pytest.raises(AuthorizationError):
            sessions(getattr(users, role)).remove_study(STUDY)

    @pytest.mark.parametrize("method", [m for m in NAMED_METHODS if m != "register_study"])
    def test_missing_study_is_not_found(self, session: SessionSpec, method: str) -> None:
        with pytest.raises(CommandError) as caught:
            call(session, method, "no-such-study", *NAMED_METHODS[method])
        _code(caught, "STUDY_NOT_FOUND", 1)

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    @pytest.mark.parametrize(
        "method",
        [
            "show_study",
            "add_study_site",
            "remove_study_site",
            "add_study_user",
            "remove_study_user",
        ],
    )
    def test_invisible_study_is_not_found(
        self,
        harness: Harness,
        session: SessionSpec,
        sessions: OpenSession,
        users: Users,
        method: str,
    ) -> None:
        harness.connect_site("site-other", org=users.other_org)
        _register(session, users, "site-1")
        args: dict[str, tuple[Any, ...]] = {
            "show_study": (),
            "add_study_site": (["site-other"],),
            "remove_study_site": (["site-other"],),
            "add_study_user": (users.other_lead,),
            "remove_study_user": (users.admin,),
        }
        with pytest.raises(CommandError) as caught:
            call(sessions(users.other_org_admin), method, STUDY, *args[method])
        _code(caught, "STUDY_NOT_FOUND", 1)

    def test_study_users(self, session: SessionSpec, users: Users) -> None:
        _register(session, users, "site-1")
        assert session.add_study_user(STUDY, users.lead) == {"study": STUDY, "user": users.lead}
        assert session.show_study(STUDY)["users"] == [users.admin, users.lead]
        with pytest.raises(CommandError) as caught:
            session.add_study_user(STUDY, users.lead)
        _code(caught, "USER_ALREADY_IN_STUDY", 1)
        assert session.remove_study_user(STUDY, users.lead) == {
            "study": STUDY,
            "user": users.lead,
            "removed": True,
        }
        with pytest.raises(CommandError) as caught:
            session.remove_study_user(STUDY, users.lead)
        _code(caught, "USER_NOT_IN_STUDY", 1)

    @pytest.mark.parametrize("role", ["lead", "member"])
    @pytest.mark.parametrize(
        "method", ["register_study", "add_study_site", "remove_study_site", "show_study"]
    )
    def test_lead_and_member_cannot_use_registry_commands(
        self,
        session: SessionSpec,
        sessions: OpenSession,
        users: Users,
        role: str,
        method: str,
    ) -> None:
        _register(session, users, "site-1")
        args = () if method == "show_study" else (["site-1"],)
        with pytest.raises(AuthorizationError):
            call(sessions(getattr(users, role)), method, STUDY, *args)

    def test_list_studies_shape(self, session: SessionSpec, users: Users) -> None:
        _register(session, users, "site-1")
        listing = session.list_studies()
        assert set(listing) == {"identity", "studies", "study_details"}
        assert listing["identity"] == {
            "name": users.admin,
            "org": users.server_org,
            "role": "project_admin",
        }
        assert listing["studies"] == [STUDY]
        (detail,) = listing["study_details"]
        assert detail["name"] == STUDY
        assert detail["can_submit_job"] is True
        assert detail["capabilities"] == {"submit_job": True}

    def test_list_studies_without_studies(self, session: SessionSpec) -> None:
        listing = session.list_studies()
        assert listing["studies"] == []
        assert listing["study_details"] == []

    @pytest.mark.flare_requires(cap.SITE_CONTROL)
    def test_list_studies_visibility(
        self, harness: Harness, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        harness.connect_site("site-other", org=users.other_org)
        _register(session, users, "site-1", study="alpha")
        session.register_study("beta", site_orgs=[f"{users.other_org}:site-other"])
        _register(session, users, "site-2", study="gamma")
        session.add_study_user("gamma", users.lead)
        session.add_study_user("gamma", users.member)

        def visible(user: str) -> list[str]:
            return list(sessions(user).list_studies()["studies"])

        assert visible(users.admin) == ["alpha", "beta", "gamma"]
        assert visible(users.org_admin) == ["alpha", "gamma"]
        assert visible(users.other_org_admin) == ["beta"]
        assert visible(users.lead) == ["gamma"]
        assert visible(users.member) == ["gamma"]
        assert visible(users.other_lead) == []

    def test_list_studies_reports_submit_rights(
        self, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        _register(session, users, "site-1")
        session.add_study_user(STUDY, users.lead)
        session.add_study_user(STUDY, users.member)
        (lead,) = sessions(users.lead).list_studies()["study_details"]
        assert lead["can_submit_job"] is True
        (member,) = sessions(users.member).list_studies()["study_details"]
        assert member["can_submit_job"] is False
        assert member["capabilities"] == {"submit_job": False}
        assert member["reason"] == f"user '{users.member}' is not authorized for 'submit_job'"


class StudyScopeContract(ContractBase):
    """A session's study: login rules, enrollment at submit, job and target scoping."""

    def test_unknown_study_login(self, sessions: OpenSession, users: Users) -> None:
        with pytest.raises(AuthenticationError) as caught:
            sessions(users.admin, "no-such-study")
        assert caught.value.auth_code in ("AUTH_UNKNOWN_STUDY", "AUTH_STUDY_NOT_CONFIGURED")

    def test_unknown_study_login_with_a_registry(
        self, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        _register(session, users, "site-1")
        with pytest.raises(AuthenticationError) as caught:
            sessions(users.admin, "no-such-study")
        assert caught.value.auth_code == "AUTH_UNKNOWN_STUDY"

    @pytest.mark.parametrize("role", ["org_admin", "lead", "member"])
    def test_unmapped_user_cannot_log_in(
        self, session: SessionSpec, sessions: OpenSession, users: Users, role: str
    ) -> None:
        _register(session, users, "site-1")
        with pytest.raises(AuthenticationError) as caught:
            sessions(getattr(users, role), STUDY)
        assert caught.value.auth_code == "AUTH_STUDY_USER_NOT_MAPPED"

    def test_project_admin_needs_membership_too(
        self, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        _register(session, users, "site-1")
        session.remove_study_user(STUDY, users.admin)
        with pytest.raises(AuthenticationError) as caught:
            sessions(users.admin, STUDY)
        assert caught.value.auth_code == "AUTH_STUDY_USER_NOT_MAPPED"

    def test_added_user_can_log_in(
        self, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        _register(session, users, "site-1")
        session.add_study_user(STUDY, users.member)
        assert sessions(users.member, STUDY).list_jobs() == []

    def test_job_is_tagged_with_the_study(
        self, session: SessionSpec, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        _register(session, users, *jobs.sites)
        scoped = sessions(users.admin, STUDY)
        job_id = scoped.submit_job(str(jobs.hello()))
        assert scoped.get_job_meta(job_id)["study"] == STUDY
        assert session.list_jobs() == []

    def test_enrollment_names_every_missing_site(
        self, session: SessionSpec, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        _register(session, users, "site-1")
        folder = jobs.hello(
            deploy_map={"app": ["server", "site-1", "site-3", "site-2"]}, min_clients=1
        )
        with pytest.raises(
            InvalidJobDefinition,
            match="sites 'site-3', 'site-2' are not enrolled in study 'cancer-research'",
        ):
            sessions(users.admin, STUDY).submit_job(str(folder))

    def test_enrollment_names_a_single_missing_site(
        self, session: SessionSpec, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        _register(session, users, "site-1")
        folder = jobs.hello(deploy_map={"app": ["server", "site-1", "site-2"]}, min_clients=1)
        with pytest.raises(
            InvalidJobDefinition, match="site 'site-2' is not enrolled in study 'cancer-research'"
        ):
            sessions(users.admin, STUDY).submit_job(str(folder))

    def test_all_sites_wildcard_is_exempt(
        self, session: SessionSpec, sessions: OpenSession, users: Users, jobs: JobFolders
    ) -> None:
        _register(session, users, "site-1")
        scoped = sessions(users.admin, STUDY)
        job_id = scoped.submit_job(str(jobs.hello()))
        assert scoped.get_job_meta(job_id)["study"] == STUDY

    def test_client_targets_are_narrowed_to_the_study(
        self, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        _register(session, users, "site-1")
        scoped = sessions(users.admin, STUDY)
        with pytest.raises(InvalidTarget, match="site 'site-2' is not enrolled in study"):
            scoped.check_status("client", ["site-2"])
        scoped.check_status("client", ["site-1"])

    @pytest.mark.flare_requires(cap.STATUS_BY_SITE)
    def test_all_targets_drop_unenrolled_sites(
        self, session: SessionSpec, sessions: OpenSession, users: Users
    ) -> None:
        _register(session, users, "site-1")
        status = sessions(users.admin, STUDY).check_status("all")
        assert "site-1" in status
        assert "site-2" not in status
