"""The study commands (flare_core.study_commands): pure registry changes and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from flare_core.errors import AuthorizationError, CommandError
from flare_core.principal import Principal
from flare_core.studies import Study, StudyRegistry, is_visible
from flare_core.study_commands import (
    add_study_site,
    add_study_user,
    list_studies,
    register_study,
    remove_study,
    remove_study_site,
    remove_study_user,
    show_study,
)

PA = Principal(name="admin@a.org", org="org_a", role="project_admin")
OA = Principal(name="oa@a.org", org="org_a", role="org_admin")
OB = Principal(name="ob@b.org", org="org_b", role="org_admin")
LEAD = Principal(name="lead@a.org", org="org_a", role="lead")
MEMBER = Principal(name="member@a.org", org="org_a", role="member")

CONNECTED = {"hospital-a": "org_a", "hospital-a2": "org_a", "hospital-b": "org_b"}

REGISTRY = StudyRegistry(
    studies={
        "cancer": Study(
            site_orgs={"org_a": ["hospital-a"], "org_b": ["hospital-b"]},
            admins=["admin@a.org", "lead@a.org"],
        ),
        "heart": Study(site_orgs={"org_c": ["clinic-c"]}, admins=["member@a.org"]),
        "empty": Study(site_orgs={"org_a": []}, admins=[]),
    }
)


def command_error(excinfo: pytest.ExceptionInfo[CommandError]) -> tuple[str, str, int]:
    err = excinfo.value
    assert str(err) == err.message
    return err.error_code, err.message, err.exit_code


def never() -> tuple[bool, str]:
    raise AssertionError("can_submit must not be called")


# --- register_study --------------------------------------------------------------------------


def test_register_new_study_as_project_admin() -> None:
    reg, payload = register_study(
        REGISTRY,
        PA,
        "lungs",
        None,
        ["org_a:hospital-a, hospital-a2", "org_b:hospital-b"],
        CONNECTED,
    )
    assert payload == {
        "name": "lungs",
        "site_orgs": {"org_a": ["hospital-a", "hospital-a2"], "org_b": ["hospital-b"]},
        "sites": ["hospital-a", "hospital-a2", "hospital-b"],
        "users": ["admin@a.org"],
    }
    assert reg is not None
    assert reg.studies["lungs"] == Study(
        site_orgs={"org_a": ["hospital-a", "hospital-a2"], "org_b": ["hospital-b"]},
        admins=["admin@a.org"],
    )
    assert "lungs" not in REGISTRY.studies  # the input registry is a value; it never changes


def test_register_creates_a_registry_when_there_is_none() -> None:
    reg, payload = register_study(None, OA, "lungs", ["hospital-a"], None, CONNECTED)
    assert reg == StudyRegistry(
        studies={"lungs": Study(site_orgs={"org_a": ["hospital-a"]}, admins=["oa@a.org"])}
    )
    assert payload["users"] == ["oa@a.org"]


def test_org_admin_sites_are_split_trimmed_and_deduplicated() -> None:
    _, payload = register_study(
        None, OA, "lungs", ["hospital-a, hospital-a2", "hospital-a", " "], None, CONNECTED
    )
    assert payload["site_orgs"] == {"org_a": ["hospital-a", "hospital-a2"]}


def test_repeated_org_groups_merge() -> None:
    _, payload = register_study(
        None, PA, "lungs", None, ["org_a:hospital-a", " org_a :hospital-a2"], CONNECTED
    )
    assert payload["site_orgs"] == {"org_a": ["hospital-a", "hospital-a2"]}


def test_register_existing_study_merges_and_is_idempotent() -> None:
    reg, payload = register_study(REGISTRY, PA, "cancer", None, ["org_a:hospital-a2"], CONNECTED)
    assert reg is not None
    assert reg.studies["cancer"].site_orgs == {
        "org_a": ["hospital-a", "hospital-a2"],
        "org_b": ["hospital-b"],
    }
    assert payload["users"] == ["admin@a.org", "lead@a.org"]  # the caller was already there
    again, same = register_study(reg, PA, "cancer", None, ["org_a:hospital-a2"], CONNECTED)
    assert again is None  # nothing changed
    assert same == payload


def test_org_admin_may_merge_into_a_study_of_its_org() -> None:
    reg, payload = register_study(REGISTRY, OA, "cancer", ["hospital-a2"], None, CONNECTED)
    assert reg is not None
    assert payload["users"] == ["admin@a.org", "lead@a.org", "oa@a.org"]


def test_org_admin_cannot_take_over_a_study_without_its_org() -> None:
    with pytest.raises(CommandError) as info:
        register_study(REGISTRY, OB, "heart", ["hospital-b"], None, CONNECTED)
    assert command_error(info) == ("STUDY_ALREADY_EXISTS", "Study 'heart' already exists.", 1)
    assert (
        info.value.hint
        == "The study name is already taken. Contact a project_admin to grant access."
    )


@pytest.mark.parametrize("caller", [LEAD, MEMBER])
@pytest.mark.parametrize(
    "command",
    [
        lambda c: register_study(REGISTRY, c, "x", ["hospital-a"], None, CONNECTED),
        lambda c: add_study_site(REGISTRY, c, "cancer", ["hospital-a"], None, CONNECTED),
        lambda c: remove_study_site(REGISTRY, c, "cancer", ["hospital-a"], None),
        lambda c: show_study(REGISTRY, c, "cancer"),
        lambda c: add_study_user(REGISTRY, c, "cancer", "u"),
        lambda c: remove_study_user(REGISTRY, c, "cancer", "lead@a.org"),
        lambda c: remove_study(REGISTRY, c, "cancer", 0),
    ],
)
def test_lead_and_member_are_gated(caller: Principal, command: Any) -> None:
    with pytest.raises(AuthorizationError):
        command(caller)


@pytest.mark.parametrize("study", ["default", "Bad", "-x", "", "a" * 64])
def test_register_rejects_bad_study_names(study: str) -> None:
    with pytest.raises(CommandError) as info:
        register_study(REGISTRY, PA, study, None, ["org_a:hospital-a"], CONNECTED)
    assert command_error(info) == ("INVALID_STUDY_NAME", f"invalid study name '{study}'", 4)


def test_study_name_is_checked_before_the_site_arguments() -> None:
    with pytest.raises(CommandError) as info:
        register_study(REGISTRY, PA, "default", ["hospital-a"], None, CONNECTED)
    assert info.value.error_code == "INVALID_STUDY_NAME"


@pytest.mark.parametrize(
    ("caller", "sites", "site_orgs", "message"),
    [
        (PA, ["a"], ["o:a"], "--sites and --site-org are mutually exclusive; provide only one"),
        (OA, ["a"], ["o:a"], "--sites and --site-org are mutually exclusive; provide only one"),
        (OA, None, ["org_a:hospital-a"], "org_admin must use --sites, not --site-org"),
        (PA, ["hospital-a"], None, "project_admin must use --site-org, not --sites"),
        (PA, None, None, "--site-org is required"),
        (PA, None, [], "--site-org is required"),
        (OA, None, None, "--sites is required"),
        (OA, [" , "], None, "--sites must contain at least one site"),
        (PA, None, ["hospital-a"], "invalid --site-org value 'hospital-a'"),
        (PA, None, ["org_a:a,b", "org_b:b"], "site 'b' appears in more than one org group"),
        (PA, None, ["org_a:a,a"], "site 'a' appears in more than one org group"),
        (PA, None, ["org_a: , "], "--site-org 'org_a: , ' must contain at least one site"),
        (PA, None, ["org-a:hospital-a"], "invalid org 'org-a'"),
        (PA, None, [":hospital-a"], "invalid org ''"),
        (
            Principal(name="n", org="", role="org_admin"),
            ["hospital-a"],
            None,
            "caller org is empty — misconfigured certificate",
        ),
    ],
)
def test_site_argument_rules(
    caller: Principal, sites: list[str] | None, site_orgs: list[str] | None, message: str
) -> None:
    with pytest.raises(CommandError) as info:
        register_study(REGISTRY, caller, "lungs", sites, site_orgs, CONNECTED)
    assert command_error(info) == ("INVALID_ARGS", message, 4)
    assert info.value.hint == ""


def test_site_names_are_validated() -> None:
    with pytest.raises(CommandError) as info:
        register_study(REGISTRY, PA, "lungs", None, ["org_a:hospital.a"], CONNECTED)
    assert command_error(info) == ("INVALID_SITE", "invalid site 'hospital.a'", 4)


@pytest.mark.parametrize(
    ("site_orgs", "message"),
    [
        (
            ["org_a:hospital-a,offline-1"],
            "Sites ['offline-1'] are unknown or do not belong to org 'org_a'.",
        ),
        (["org_a:hospital-b"], "Sites ['hospital-b'] are unknown or do not belong to org 'org_a'."),
    ],
)
def test_register_needs_connected_sites_of_the_right_org(
    site_orgs: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as info:
        register_study(REGISTRY, PA, "lungs", None, site_orgs, CONNECTED)
    assert command_error(info) == ("INVALID_SITE", message, 4)
    assert info.value.hint == (
        "Each site must be currently connected to the server and provisioned under the "
        "specified org."
    )


# --- add_study_site / remove_study_site ------------------------------------------------------


def test_add_study_site_reports_added_and_already_enrolled() -> None:
    reg, payload = add_study_site(
        REGISTRY, PA, "cancer", None, ["org_a:hospital-a,hospital-a2"], CONNECTED
    )
    assert payload == {
        "study": "cancer",
        "added": ["hospital-a2"],
        "already_enrolled": ["hospital-a"],
        "site_orgs": {"org_a": ["hospital-a", "hospital-a2"], "org_b": ["hospital-b"]},
        "sites": ["hospital-a", "hospital-a2", "hospital-b"],
    }
    assert reg is not None
    assert reg.studies["cancer"].admins == ["admin@a.org", "lead@a.org"]  # users unchanged


def test_add_only_already_enrolled_sites_changes_nothing() -> None:
    reg, payload = add_study_site(REGISTRY, OA, "cancer", ["hospital-a"], None, CONNECTED)
    assert reg is None
    assert payload["added"] == []
    assert payload["already_enrolled"] == ["hospital-a"]


@pytest.mark.parametrize(("caller", "study"), [(PA, "lungs"), (OA, "heart"), (OB, "empty")])
def test_add_study_site_needs_a_visible_study(caller: Principal, study: str) -> None:
    with pytest.raises(CommandError) as info:
        add_study_site(
            REGISTRY,
            caller,
            study,
            None if caller is PA else ["x"],
            ["o:x"] if caller is PA else None,
            CONNECTED,
        )
    assert command_error(info) == ("STUDY_NOT_FOUND", f"Study '{study}' not found.", 1)
    assert info.value.hint == "Verify the study name or contact a project_admin."


def test_add_study_site_checks_connectivity() -> None:
    with pytest.raises(CommandError) as info:
        add_study_site(REGISTRY, OB, "cancer", ["gone"], None, CONNECTED)
    assert command_error(info) == (
        "INVALID_SITE",
        "Sites ['gone'] are unknown or do not belong to org 'org_b'.",
        4,
    )


def test_a_site_moved_to_another_org_cannot_be_in_two_groups() -> None:
    moved = {"hospital-a": "org_b"}
    with pytest.raises(CommandError) as info:
        add_study_site(REGISTRY, PA, "cancer", None, ["org_b:hospital-a"], moved)
    assert command_error(info) == (
        "INTERNAL_ERROR",
        "study command failed: study 'cancer' contains duplicate site 'hospital-a' across org "
        "groups",
        5,
    )


def test_remove_study_site_needs_no_connectivity_and_keeps_empty_orgs() -> None:
    reg, payload = remove_study_site(REGISTRY, OB, "cancer", ["hospital-b", "nowhere"], None)
    assert payload == {
        "study": "cancer",
        "removed": ["hospital-b"],
        "not_enrolled": ["nowhere"],
        "site_orgs": {"org_a": ["hospital-a"], "org_b": []},
        "sites": ["hospital-a"],
    }
    assert reg is not None
    assert is_visible(reg.studies["cancer"], OB)  # the empty org key keeps visibility


def test_remove_study_site_of_an_absent_org_creates_no_entry() -> None:
    reg, payload = remove_study_site(REGISTRY, PA, "heart", None, ["org_z:clinic-z"])
    assert reg is None
    assert payload["removed"] == []
    assert payload["not_enrolled"] == ["clinic-z"]
    assert payload["site_orgs"] == {"org_c": ["clinic-c"]}


def test_remove_study_site_needs_a_visible_study() -> None:
    with pytest.raises(CommandError) as info:
        remove_study_site(REGISTRY, OA, "heart", ["clinic-c"], None)
    assert info.value.error_code == "STUDY_NOT_FOUND"


# --- remove_study ----------------------------------------------------------------------------


def test_remove_study() -> None:
    reg, payload = remove_study(REGISTRY, PA, "heart", 0)
    assert payload == {"name": "heart", "removed": True}
    assert reg is not None
    assert set(reg.studies) == {"cancer", "empty"}


def test_remove_study_refuses_while_jobs_exist() -> None:
    with pytest.raises(CommandError) as info:
        remove_study(REGISTRY, PA, "heart", 2)
    assert command_error(info) == (
        "STUDY_HAS_JOBS",
        "Study 'heart' has 2 associated job(s) and cannot be removed.",
        1,
    )
    assert info.value.hint == "Archive or delete the associated jobs before retrying."


@pytest.mark.parametrize("registry", [None, REGISTRY])
def test_remove_missing_study(registry: StudyRegistry | None) -> None:
    with pytest.raises(CommandError) as info:
        remove_study(registry, PA, "lungs", 0)
    assert command_error(info) == ("STUDY_NOT_FOUND", "Study 'lungs' not found.", 1)
    assert info.value.hint == "Verify the study name."


def test_remove_study_is_project_admin_only() -> None:
    with pytest.raises(AuthorizationError):
        remove_study(REGISTRY, OA, "cancer", 0)


def test_remove_study_name_errors() -> None:
    with pytest.raises(CommandError) as info:
        remove_study(REGISTRY, PA, "default", 0)
    assert command_error(info) == ("INVALID_STUDY_NAME", "invalid study name 'default'", 4)


# --- list_studies / show_study ---------------------------------------------------------------


def test_list_studies_for_project_admin() -> None:
    reg, payload = list_studies(REGISTRY, PA, lambda: (True, ""))
    assert reg is None
    assert payload == {
        "identity": {"name": "admin@a.org", "org": "org_a", "role": "project_admin"},
        "studies": ["cancer", "empty", "heart"],
        "study_details": [
            {
                "name": name,
                "role": "project_admin",
                "capabilities": {"submit_job": True},
                "can_submit_job": True,
            }
            for name in ("cancer", "empty", "heart")
        ],
    }


@pytest.mark.parametrize(
    ("caller", "studies"),
    [(OA, ["cancer", "empty"]), (OB, ["cancer"]), (LEAD, ["cancer"]), (MEMBER, ["heart"])],
)
def test_list_studies_visibility(caller: Principal, studies: list[str]) -> None:
    _, payload = list_studies(REGISTRY, caller, lambda: (True, ""))
    assert payload["studies"] == studies
    assert [d["name"] for d in payload["study_details"]] == studies


def test_list_studies_reports_why_submit_is_denied() -> None:
    _, payload = list_studies(REGISTRY, MEMBER, lambda: (False, ""))
    assert payload["study_details"] == [
        {
            "name": "heart",
            "role": "member",
            "capabilities": {"submit_job": False},
            "can_submit_job": False,
            "reason": "user 'member@a.org' is not authorized for 'submit_job'",
        }
    ]
    _, payload = list_studies(REGISTRY, MEMBER, lambda: (False, "policy says no"))
    assert payload["study_details"][0]["reason"] == "policy says no"


def test_list_studies_without_registry_or_visible_study() -> None:
    for registry in (None, StudyRegistry()):
        _, payload = list_studies(registry, LEAD, never)
        assert payload["studies"] == []
        assert payload["study_details"] == []


def test_list_studies_role_gate() -> None:
    with pytest.raises(AuthorizationError):
        list_studies(REGISTRY, Principal(name="x", org="o", role="auditor"), never)


def test_show_study() -> None:
    reg, payload = show_study(REGISTRY, OB, "cancer")
    assert reg is None
    assert payload == {
        "name": "cancer",
        "site_orgs": {"org_a": ["hospital-a"], "org_b": ["hospital-b"]},
        "sites": ["hospital-a", "hospital-b"],
        "users": ["admin@a.org", "lead@a.org"],
    }


@pytest.mark.parametrize(
    ("registry", "study"), [(None, "cancer"), (REGISTRY, "heart"), (REGISTRY, "x")]
)
def test_show_study_hides_invisible_and_missing_studies(
    registry: StudyRegistry | None, study: str
) -> None:
    with pytest.raises(CommandError) as info:
        show_study(registry, OA, study)
    assert command_error(info) == ("STUDY_NOT_FOUND", f"Study '{study}' not found.", 1)
    assert info.value.hint == (
        "Verify the study name. If the study exists and you expect access, contact a project_admin."
    )


# --- study users -----------------------------------------------------------------------------


def test_add_and_remove_study_user() -> None:
    reg, payload = add_study_user(REGISTRY, OA, "cancer", "new@a.org")
    assert payload == {"study": "cancer", "user": "new@a.org"}
    assert reg is not None
    assert reg.studies["cancer"].admins == ["admin@a.org", "lead@a.org", "new@a.org"]
    reg2, payload2 = remove_study_user(reg, OA, "cancer", "new@a.org")
    assert payload2 == {"study": "cancer", "user": "new@a.org", "removed": True}
    assert reg2 == REGISTRY


def test_add_duplicate_user() -> None:
    with pytest.raises(CommandError) as info:
        add_study_user(REGISTRY, PA, "cancer", "lead@a.org")
    assert command_error(info) == (
        "USER_ALREADY_IN_STUDY",
        "User 'lead@a.org' is already in study 'cancer'.",
        1,
    )
    assert info.value.hint == "Use a different user or remove the existing entry first."


def test_remove_absent_user() -> None:
    with pytest.raises(CommandError) as info:
        remove_study_user(REGISTRY, PA, "cancer", "ghost")
    assert command_error(info) == ("USER_NOT_IN_STUDY", "User 'ghost' is not in study 'cancer'.", 1)
    assert info.value.hint == "Use add-user to add the user first."


@pytest.mark.parametrize("command", [add_study_user, remove_study_user])
def test_user_commands_need_a_visible_study(command: Any) -> None:
    with pytest.raises(CommandError) as info:
        command(REGISTRY, OA, "heart", "member@a.org")
    assert info.value.error_code == "STUDY_NOT_FOUND"


@pytest.mark.parametrize("command", [add_study_user, remove_study_user])
def test_user_commands_need_a_user(command: Any) -> None:
    with pytest.raises(CommandError) as info:
        command(REGISTRY, PA, "cancer", "")
    assert command_error(info) == ("INVALID_ARGS", "user is required", 4)
