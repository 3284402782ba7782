"""Study commands through the service: role gates, payloads, errors, persistence."""

from __future__ import annotations

import pytest

from flare_core import (
    AddStudySite,
    AddStudyUser,
    Command,
    ListStudies,
    RegisterStudy,
    RemoveStudy,
    RemoveStudySite,
    RemoveStudyUser,
    ShowStudy,
)
from tests.service.helpers import (
    ADMIN,
    LEAD,
    MEMBER,
    ORG_ADMIN,
    OTHER_ORG_ADMIN,
    Harness,
)


def test_project_admin_registers_a_study_with_site_orgs() -> None:
    h = Harness()
    payload = h.ok(h.login(), RegisterStudy(study="cancer", site_orgs=["nvidia:site-1,site-2"]))
    assert payload == {
        "name": "cancer",
        "site_orgs": {"nvidia": ["site-1", "site-2"]},
        "sites": ["site-1", "site-2"],
        "users": [ADMIN],
    }
    assert h.service.login(ADMIN, ADMIN, "cancer").principal.study == "cancer"


def test_org_admin_registers_with_sites_and_the_wrong_form_is_invalid_args() -> None:
    h = Harness()
    org_admin = h.login(ORG_ADMIN)
    payload = h.ok(org_admin, RegisterStudy(study="s1", sites=["site-1"]))
    assert payload["site_orgs"] == {"nvidia": ["site-1"]}
    problem = h.problem(org_admin, RegisterStudy(study="s2", site_orgs=["nvidia:site-1"]))
    assert problem.code == "command_error"
    assert problem.message == "INVALID_ARGS"
    assert problem.attrs["exit_code"] == 4
    problem = h.problem(h.login(), RegisterStudy(study="s3", sites=["site-1"]))
    assert problem.message == "INVALID_ARGS"


def test_register_checks_connectivity_and_org() -> None:
    h = Harness()
    admin = h.login()
    for site_orgs in (["nvidia:ghost"], ["other:site-1"]):
        problem = h.problem(admin, RegisterStudy(study="s", site_orgs=site_orgs))
        assert problem.message == "INVALID_SITE"
        assert problem.attrs["exit_code"] == 4
    problem = h.problem(h.login(OTHER_ORG_ADMIN), RegisterStudy(study="default", sites=["x"]))
    assert problem.message == "INVALID_STUDY_NAME"


def test_org_admin_of_another_org_cannot_merge_into_an_existing_study() -> None:
    h = Harness(sites=("site-1", ("site-x", "other")))
    h.ok(h.login(), RegisterStudy(study="s", site_orgs=["nvidia:site-1"]))
    problem = h.problem(h.login(OTHER_ORG_ADMIN), RegisterStudy(study="s", sites=["site-x"]))
    assert problem.message == "STUDY_ALREADY_EXISTS"


def test_show_add_remove_sites_and_users() -> None:
    h = Harness(sites=("site-1", "site-2"))
    admin = h.login()
    h.ok(admin, RegisterStudy(study="s", site_orgs=["nvidia:site-1"]))
    added = h.ok(admin, AddStudySite(study="s", site_orgs=["nvidia:site-1,site-2"]))
    assert (added["added"], added["already_enrolled"]) == (["site-2"], ["site-1"])
    h.service.disconnect_site("site-2")
    removed = h.ok(admin, RemoveStudySite(study="s", site_orgs=["nvidia:site-2,site-9"]))
    assert (removed["removed"], removed["not_enrolled"]) == (["site-2"], ["site-9"])
    assert h.ok(admin, AddStudyUser(study="s", user=LEAD)) == {"study": "s", "user": LEAD}
    assert h.problem(admin, AddStudyUser(study="s", user=LEAD)).message == ("USER_ALREADY_IN_STUDY")
    assert h.ok(admin, ShowStudy(study="s"))["users"] == [ADMIN, LEAD]
    assert h.ok(admin, RemoveStudyUser(study="s", user=LEAD))["removed"] is True
    assert h.problem(admin, RemoveStudyUser(study="s", user=LEAD)).message == "USER_NOT_IN_STUDY"


@pytest.mark.parametrize(
    "command",
    [
        ShowStudy(study="nope"),
        AddStudySite(study="nope", site_orgs=["nvidia:site-1"]),
        RemoveStudySite(study="nope", site_orgs=["nvidia:site-1"]),
        AddStudyUser(study="nope", user="u"),
        RemoveStudyUser(study="nope", user="u"),
    ],
)
def test_missing_studies_are_not_found(command: Command) -> None:
    h = Harness()
    problem = h.problem(h.login(), command)
    assert problem.message == "STUDY_NOT_FOUND"
    assert problem.attrs["exit_code"] == 1


def test_role_gates() -> None:
    h = Harness()
    h.ok(h.login(), RegisterStudy(study="s", site_orgs=["nvidia:site-1"]))
    for user in (LEAD, MEMBER):
        assert h.problem(h.login(user), ShowStudy(study="s")).code == "not_authorized"
    assert h.problem(h.login(ORG_ADMIN), RemoveStudy(study="s")).code == "not_authorized"


def test_remove_study_refuses_while_jobs_exist() -> None:
    h = Harness()
    admin = h.login()
    h.ok(admin, RegisterStudy(study="s", site_orgs=["nvidia:site-1,site-2"]))
    h.submit(h.login(study="s"))
    problem = h.problem(admin, RemoveStudy(study="s"))
    assert problem.message == "STUDY_HAS_JOBS"
    assert problem.attrs["message"] == "Study 's' has 1 associated job(s) and cannot be removed."
    h.ok(admin, RegisterStudy(study="empty", site_orgs=["nvidia:site-1"]))
    assert h.ok(admin, RemoveStudy(study="empty")) == {"name": "empty", "removed": True}
    assert h.problem(admin, RemoveStudy(study="empty")).message == "STUDY_NOT_FOUND"


def test_list_studies_visibility_and_submit_capability() -> None:
    h = Harness()
    admin = h.login()
    h.ok(admin, RegisterStudy(study="a", site_orgs=["nvidia:site-1"]))
    h.service.add_study("b", {"other": []}, [MEMBER])
    assert h.ok(admin, ListStudies())["studies"] == ["a", "b"]
    assert h.ok(h.login(ORG_ADMIN), ListStudies())["studies"] == ["a"]
    assert h.ok(h.login(OTHER_ORG_ADMIN), ListStudies())["studies"] == ["b"]
    member = h.ok(h.login(MEMBER), ListStudies())
    assert member["identity"] == {"name": MEMBER, "org": "nvidia", "role": "member"}
    assert member["studies"] == ["b"]
    detail = member["study_details"][0]
    assert detail["can_submit_job"] is False
    assert detail["reason"] == f"user '{MEMBER}' is not authorized for 'submit_job'"
    assert h.ok(h.login(LEAD), ListStudies())["studies"] == []


def test_registry_changes_survive_in_the_study_store() -> None:
    h = Harness()
    h.ok(h.login(), RegisterStudy(study="kept", site_orgs=["nvidia:site-1"]))
    registry = h.system.ports.studies.load()
    assert registry is not None
    assert registry.studies["kept"].site_orgs == {"nvidia": ["site-1"]}
