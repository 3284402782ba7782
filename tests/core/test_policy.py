"""The authorization policy (flare_core.policy): categories, default table, conditions."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from flare_core.errors import AuthorizationError
from flare_core.policy import (
    CATEGORIES,
    DEFAULT_POLICY,
    STUDY_ROLE_GATES,
    Policy,
    PolicyError,
    Submitter,
    check_right,
    parse_policy,
    policy_document,
    require_right,
    require_study_role,
)
from flare_core.principal import Principal

SERVER_ORG = "nvidia"


def who(role: str, name: str = "u@nvidia.com", org: str = "nvidia") -> Principal:
    return Principal(name=name, org=org, role=role)


OWN = Submitter(name="u@nvidia.com", org="nvidia", role="lead")
SAME_ORG = Submitter(name="other@nvidia.com", org="nvidia", role="lead")
OTHER_ORG = Submitter(name="x@other.org", org="other", role="lead")


def allowed(
    principal: Principal,
    right: str,
    submitter: Submitter | None = None,
    policy: Policy = DEFAULT_POLICY,
    site_org: str = SERVER_ORG,
) -> bool:
    return check_right(policy, principal, right, submitter=submitter, site_org=site_org)[0]


def policy_of(permissions: dict[str, Any]) -> Policy:
    return parse_policy({"format_version": "1.0", "permissions": permissions})


# --- categories ------------------------------------------------------------------------------


def test_categories_are_the_reference_table() -> None:
    assert CATEGORIES["manage_job"] == {
        "abort",
        "abort_job",
        "delete_job",
        "delete_workspace",
        "configure_job_log",
    }
    assert CATEGORIES["view"] == {
        "check_status",
        "show_scopes",
        "show_stats",
        "reset_errors",
        "show_errors",
        "list_jobs",
        "get_job_meta",
    }
    assert CATEGORIES["shell_commands"] == {"cat", "grep", "head", "ls", "pwd", "tail"}
    assert CATEGORIES["download_job"] == {"download_job"}
    assert {"restart", "shutdown", "report_resources", "configure_site_log"} <= CATEGORIES[
        "operate"
    ]


def test_uncategorised_rights_stay_uncategorised() -> None:
    every = set().union(*CATEGORIES.values())
    for right in ("submit_job", "clone_job", "get_job_log", "list_job", "report_version", "byoc"):
        assert right not in every


# --- the default policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "right",
    ["submit_job", "clone_job", "abort_job", "get_job_log", "report_version", "made_up", "ls"],
)
def test_project_admin_may_do_anything(right: str) -> None:
    assert allowed(who("project_admin", org="elsewhere"), right, OTHER_ORG)


@pytest.mark.parametrize(
    ("role", "right", "submitter", "expected"),
    [
        # org_admin: no submit/clone, manage and download jobs of its own org.
        ("org_admin", "submit_job", None, False),
        ("org_admin", "clone_job", OWN, False),
        ("org_admin", "abort_job", SAME_ORG, True),
        ("org_admin", "delete_job", OTHER_ORG, False),
        ("org_admin", "download_job", SAME_ORG, True),
        ("org_admin", "download_job", OTHER_ORG, False),
        ("org_admin", "configure_job_log", OTHER_ORG, False),
        ("org_admin", "byoc", None, False),
        # lead: submits; clones, manages and downloads only its own jobs.
        ("lead", "submit_job", None, True),
        ("lead", "clone_job", OWN, True),
        ("lead", "clone_job", SAME_ORG, False),
        ("lead", "abort_job", OWN, True),
        ("lead", "delete_job", SAME_ORG, False),
        ("lead", "download_job", OWN, True),
        ("lead", "byoc", None, True),
        ("lead", "server-predeployed-flwr", None, False),
        # member: view only.
        ("member", "submit_job", None, False),
        ("member", "abort_job", OWN, False),
        ("member", "restart", None, False),
        ("member", "clone_job", OWN, False),
    ],
)
def test_default_policy_job_rights(
    role: str, right: str, submitter: Submitter | None, expected: bool
) -> None:
    assert allowed(who(role), right, submitter) is expected


@pytest.mark.parametrize("role", ["org_admin", "lead", "member"])
@pytest.mark.parametrize(
    "right",
    ["list_jobs", "get_job_meta", "check_status", "show_stats", "show_errors", "reset_errors"],
)
def test_every_role_may_view(role: str, right: str) -> None:
    assert allowed(who(role, org="other"), right)


@pytest.mark.parametrize("role", ["org_admin", "lead", "member"])
def test_report_version_is_viewable_by_every_role(role: str) -> None:
    # DECISIONS §19 (the reference leaves it project_admin-only).
    assert allowed(who(role, org="other"), "report_version")


@pytest.mark.parametrize("right", ["get_job_log", "list_job", "download_job_components"])
def test_job_reads_follow_the_download_job_rule(right: str) -> None:
    # DECISIONS §19: logs and components follow download_job, not project_admin-only.
    assert allowed(who("lead"), right, OWN)
    assert not allowed(who("lead"), right, SAME_ORG)
    assert allowed(who("org_admin"), right, SAME_ORG)
    assert not allowed(who("org_admin"), right, OTHER_ORG)
    assert not allowed(who("member"), right, OWN)


@pytest.mark.parametrize("role", ["org_admin", "lead"])
@pytest.mark.parametrize("right", ["restart", "shutdown", "remove_client", "cat", "ls"])
def test_operate_and_shell_need_the_server_org(role: str, right: str) -> None:
    assert allowed(who(role, org="nvidia"), right, site_org="nvidia")
    assert not allowed(who(role, org="other"), right, site_org="nvidia")


def test_unknown_role_and_unknown_right_are_denied() -> None:
    assert not allowed(who("auditor"), "list_jobs")
    assert not allowed(who("lead"), "made_up_right")


def test_super_role_always_passes() -> None:
    empty = Policy(roles={})
    assert check_right(empty, who("super"), "anything") == (True, "")
    assert check_right(empty, who(" Super "), "anything") == (True, "")


def test_denial_reason_names_user_and_right() -> None:
    result = check_right(DEFAULT_POLICY, who("member", name="Bob@Nvidia.com"), "submit_job")
    assert result == (False, "user 'bob@nvidia.com' is not authorized for 'submit_job'")


def test_require_right_raises_with_the_reason() -> None:
    require_right(DEFAULT_POLICY, who("lead"), "submit_job")
    with pytest.raises(AuthorizationError) as info:
        require_right(DEFAULT_POLICY, who("lead"), "abort_job", submitter=OTHER_ORG)
    assert str(info.value) == "user 'u@nvidia.com' is not authorized for 'abort_job'"


def test_missing_submitter_matches_no_submitter_condition() -> None:
    assert not allowed(who("lead"), "abort_job", None)
    assert not allowed(who("org_admin"), "abort_job", None)


# --- the condition language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "principal", "expected"),
    [
        ("any", who("r"), True),
        ("all", who("r"), True),
        ("none", who("r"), False),
        ("no", who("r"), False),
        ("o:nvidia", who("r", org="nvidia"), True),
        ("org:nvidia", who("r", org="other"), False),
        ("n:alice", who("r", name="alice"), True),
        ("name:alice", who("r", name="bob"), False),
        ("o:site", who("r", org="nvidia"), True),
        ("o:site", who("r", org="other"), False),
        ("o:submitter", who("r", org="other"), True),
        ("n:submitter", who("r", name="x@other.org"), True),
        ("n:submitter", who("r", name="y@other.org"), False),
        ("not o:other", who("r", org="nvidia"), True),
        ("not o:other", who("r", org="other"), False),
        (["n:alice", "o:other"], who("r", name="bob", org="other"), True),
        (["n:alice", "o:other"], who("r", name="bob", org="nvidia"), False),
        (["any", "not n:bob"], who("r", name="bob"), False),
        (["any", "not n:bob"], who("r", name="carol"), True),
        (["not n:bob", "not o:x"], who("r", name="carol", org="y"), True),
        ("  O : Site ", who("r", org="NVIDIA"), True),
        ("N:Alice", who("r", name="ALICE"), True),
    ],
)
def test_conditions(condition: str | list[str], principal: Principal, expected: bool) -> None:
    policy = policy_of({"r": {"abort_job": condition}})
    assert allowed(principal, "abort_job", OTHER_ORG, policy) is expected


def test_role_names_are_normalised() -> None:
    policy = policy_of({"Lead  Admin": "any"})
    assert allowed(who("lead admin"), "submit_job", policy=policy)
    assert allowed(who("LEAD   ADMIN"), "submit_job", policy=policy)


def test_explicit_right_overrides_its_category() -> None:
    policy = policy_of({"r": {"manage_job": "any", "delete_job": "none"}})
    assert allowed(who("r"), "abort_job", policy=policy)
    assert not allowed(who("r"), "delete_job", policy=policy)
    assert allowed(who("r"), "manage_job", policy=policy)  # the category name is a right too


def test_a_role_wide_condition_covers_every_right() -> None:
    policy = policy_of({"r": ["o:site"]})
    assert allowed(who("r", org="nvidia"), "anything_at_all", policy=policy)
    assert not allowed(who("r", org="other"), "list_jobs", policy=policy)


def test_unvalidated_bad_condition_fails_closed() -> None:
    policy = Policy(roles={"r": {"list_jobs": ["any", "bogus:x:y"]}})
    assert not allowed(who("r"), "list_jobs", policy=policy)


# --- documents --------------------------------------------------------------------------------


def test_parse_policy_accepts_both_shapes_and_normalises_keys() -> None:
    reference = parse_policy(
        {"format_version": "1.0", "permissions": {"Lead": {"Submit_Job": "any"}}}
    )
    ours = parse_policy({"roles": {"lead": {"submit_job": "any"}}})
    assert reference == ours == Policy(roles={"lead": {"submit_job": "any"}})


def test_policy_document_round_trips() -> None:
    document = policy_document(DEFAULT_POLICY)
    assert document["format_version"] == "1.0"
    assert document["permissions"]["project_admin"] == "any"
    assert parse_policy(document) == DEFAULT_POLICY


def test_policy_travels_as_a_msgspec_struct() -> None:
    data = msgspec.json.encode(DEFAULT_POLICY)
    assert msgspec.json.decode(data, type=Policy) == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a dict but got <class 'list'>"),
        ({}, "policy definition is empty"),
        ({"permissions": {"r": "any"}}, "missing or invalid policy format_version: must be 1.0"),
        (
            {"format_version": "2.0", "permissions": {"r": "any"}},
            "missing or invalid policy format_version: must be 1.0",
        ),
        ({"format_version": "1.0"}, "missing permissions"),
        ({"format_version": "1.0", "permissions": {}}, "missing permissions"),
        ({"format_version": "1.0", "permissions": ["r"]}, "invalid permissions: expect a dict"),
        ({"format_version": "1.0", "permissions": {1: "any"}}, "bad role name"),
        ({"format_version": "1.0", "permissions": {"r": 3}}, "bad right config"),
        ({"format_version": "1.0", "permissions": {"r": {2: "any"}}}, "bad right name"),
        (
            {"format_version": "1.0", "permissions": {"r": "o:a:b"}},
            'bad condition expression "o:a:b"',
        ),
        ({"format_version": "1.0", "permissions": {"r": "q:a"}}, 'invalid type "q"'),
        ({"format_version": "1.0", "permissions": {"r": "maybe"}}, "bad condition expression"),
        ({"format_version": "1.0", "permissions": {"r": []}}, "no conditions specified"),
        ({"format_version": "1.0", "permissions": {"r": {"x": 5}}}, "expect str or list"),
        ({"format_version": "1.0", "permissions": {"r": ["any", 5]}}, "expect str but got"),
    ],
)
def test_parse_policy_rejects(document: Any, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(document)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("invalid policy config: ")
    assert message in str(info.value)


# --- study role gates ---------------------------------------------------------------------------


def test_study_role_gates_table() -> None:
    admins = {"project_admin", "org_admin"}
    for right in (
        "register_study",
        "add_study_site",
        "remove_study_site",
        "show_study",
        "add_study_user",
        "remove_study_user",
    ):
        assert STUDY_ROLE_GATES[right] == admins
    assert STUDY_ROLE_GATES["remove_study"] == {"project_admin"}
    assert STUDY_ROLE_GATES["list_studies"] == {"project_admin", "org_admin", "lead", "member"}


@pytest.mark.parametrize(
    ("role", "right"),
    [
        ("lead", "show_study"),
        ("member", "register_study"),
        ("org_admin", "remove_study"),
        ("Project_Admin", "show_study"),  # the certificate role is compared exactly
        ("auditor", "list_studies"),
        ("project_admin", "not_a_study_command"),
    ],
)
def test_require_study_role_denies(role: str, right: str) -> None:
    with pytest.raises(AuthorizationError) as info:
        require_study_role(who(role, name="carol"), right)
    assert str(info.value) == f"user 'carol' with role '{role}' is not authorized for '{right}'"


@pytest.mark.parametrize(
    ("role", "right"),
    [("org_admin", "show_study"), ("project_admin", "remove_study"), ("member", "list_studies")],
)
def test_require_study_role_allows(role: str, right: str) -> None:
    require_study_role(who(role), right)


def test_submitter_from_meta() -> None:
    meta = {"submitter_name": "a", "submitter_org": "b", "submitter_role": 3}
    assert Submitter.from_meta(meta) == Submitter(name="a", org="b", role="")
    assert Submitter.from_meta({}) == Submitter()
