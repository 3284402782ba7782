"""Studies (flare_core.studies): the registry model, name rules, login scoping and queries.

The study commands that change the registry are tested in ``test_study_commands.py``.
"""

from __future__ import annotations

import re

import pytest

from flare_core.errors import (
    AuthenticationError,
    InvalidArgumentError,
    InvalidTarget,
)
from flare_core.principal import Principal
from flare_core.studies import (
    ORG_NAME_PATTERN,
    SITE_NAME_PATTERN,
    STUDY_NAME_PATTERN,
    Study,
    StudyRegistry,
    StudyRegistryError,
    check_login_study,
    check_name_arg,
    check_session_study,
    check_site_args,
    dump_registry,
    enrolled_sites,
    is_visible,
    narrow_client_targets,
    parse_registry,
)

PA = Principal(name="admin@a.org", org="org_a", role="project_admin")
OA = Principal(name="oa@a.org", org="org_a", role="org_admin")
LEAD = Principal(name="lead@a.org", org="org_a", role="lead")
MEMBER = Principal(name="member@a.org", org="org_a", role="member")

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


# --- name rules and session study ------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "cancer_research", "a", "a-b", "x1", "a" * 63])
def test_study_pattern_accepts(name: str) -> None:
    assert re.fullmatch(STUDY_NAME_PATTERN, name)
    assert check_session_study(name) == name


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "_a", "a" * 64, "a b", "Cancer", "a.b"])
def test_check_session_study_rejects_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_session_study(name)
    assert str(info.value) == (
        f"study name '{name}' contains unsupported characters. Use only lowercase letters, "
        "numbers, underscores, and hyphens."
    )


def test_check_session_study_rejects_non_str() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^study must be str$"):
        check_session_study(None)


def test_site_and_org_patterns() -> None:
    assert re.fullmatch(SITE_NAME_PATTERN, "hospital-a_1")
    assert not re.fullmatch(SITE_NAME_PATTERN, "hospital.a")
    assert re.fullmatch(ORG_NAME_PATTERN, "org_a1")
    assert not re.fullmatch(ORG_NAME_PATTERN, "org-a")


@pytest.mark.parametrize(
    ("registry", "study", "user", "code", "message"),
    [
        (REGISTRY, 3, "u", "AUTH_INVALID_STUDY", "study must be a string"),
        (REGISTRY, "Bad!", "u", "AUTH_INVALID_STUDY_NAME", "invalid study name 'Bad!'"),
        (
            None,
            "cancer",
            "u",
            "AUTH_STUDY_NOT_CONFIGURED",
            "study 'cancer' is not configured on the server",
        ),
        (REGISTRY, "lungs", "u", "AUTH_UNKNOWN_STUDY", "unknown study 'lungs'"),
        (
            REGISTRY,
            "heart",
            "admin@a.org",
            "AUTH_STUDY_USER_NOT_MAPPED",
            "user 'admin@a.org' is not mapped to study 'heart'",
        ),
    ],
)
def test_check_login_study_rejections(
    registry: StudyRegistry | None, study: object, user: str, code: str, message: str
) -> None:
    with pytest.raises(AuthenticationError) as info:
        check_login_study(registry, study, user)
    assert info.value.auth_code == code
    assert str(info.value) == message


@pytest.mark.parametrize("registry", [None, REGISTRY])
def test_default_study_needs_no_registry_or_membership(registry: StudyRegistry | None) -> None:
    check_login_study(registry, "default", "anyone")


def test_login_membership_is_by_name_only() -> None:
    check_login_study(REGISTRY, "heart", "member@a.org")
    check_login_study(REGISTRY, "cancer", "lead@a.org")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "study must be str but got <class 'NoneType'>"),
        ("", "study is required but not specified."),
    ],
)
def test_check_name_arg(value: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_name_arg(value, "study")
    assert str(info.value) == message
    assert check_name_arg("cancer", "study") == "cancer"


# --- client-side site arguments --------------------------------------------------------------


def test_check_site_args_forms() -> None:
    assert check_site_args(["hospital-a"], None) == (["hospital-a"], None)
    assert check_site_args(None, ["org_a:hospital-a"]) == (None, ["org_a:hospital-a"])
    assert check_site_args([], ["org_a:hospital-a"]) == (None, ["org_a:hospital-a"])


@pytest.mark.parametrize(
    ("sites", "site_orgs", "message"),
    [
        (["s"], ["o:s"], "sites and site_orgs are mutually exclusive; provide only one"),
        (None, None, "sites must be list but got <class 'NoneType'>"),
        ([], None, "sites are required but not specified."),
        ("hospital-a", None, "sites must be list but got <class 'str'>"),
        (["a", ""], None, "invalid site value: "),
        (["a", 3], None, "invalid site value: 3"),
        (None, "o:s", "site_orgs must be list but got <class 'str'>"),
        (None, ["o:s", 1], "invalid site_org value: 1"),
    ],
)
def test_check_site_args_rejects(sites: object, site_orgs: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_site_args(sites, site_orgs)
    assert str(info.value) == message


# --- registry documents ----------------------------------------------------------------------


def test_parse_registry_and_derived_sites() -> None:
    reg = parse_registry(
        b'{"format_version": "1.0", "studies": {"s": {"site_orgs": {"o": ["b", "a"], '
        b'"p": ["c"]}, "admins": ["x", "y", "x"]}, "t": null}}'
    )
    assert reg.studies["s"] == Study(site_orgs={"o": ["b", "a"], "p": ["c"]}, admins=["x", "y"])
    assert reg.studies["s"].sites == ["a", "b", "c"]
    assert reg.studies["t"] == Study()


def test_dump_registry_round_trips_with_sorted_keys() -> None:
    data = dump_registry(REGISTRY)
    assert parse_registry(data) == REGISTRY
    assert data.endswith(b"\n")
    text = data.decode()
    assert text.index('"cancer"') < text.index('"empty"') < text.index('"heart"')
    assert text.index('"format_version"') < text.index('"studies"')


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[]", "studies_config must be dict but got <class 'list'>"),
        (b"{not json", "study registry is not valid JSON"),
        (b'{"studies": {}}', "missing or invalid study registry format_version: must be 1.0"),
        (b'{"format_version": 1.0, "studies": {}}', "format_version: must be 1.0"),
        (
            b'{"format_version": "1.0", "studies": []}',
            "'studies' must be dict but got <class 'list'>",
        ),
        (b'{"format_version": "1.0", "studies": {"s": 4}}', "study 's' must be dict"),
        (
            b'{"format_version": "1.0", "studies": {"s": {"admins": "x"}}}',
            "study 's' admins must be list but got <class 'str'>",
        ),
        (
            b'{"format_version": "1.0", "studies": {"s": {"admins": [1]}}}',
            "study 's' admin entries must be str but got <class 'int'>",
        ),
        (
            b'{"format_version": "1.0", "studies": {"s": {"site_orgs": []}}}',
            "study 's' site_orgs must be dict but got <class 'list'>",
        ),
        (
            b'{"format_version": "1.0", "studies": {"s": {"site_orgs": {"o": "a"}}}}',
            "study 's' site_orgs[o] must be list but got <class 'str'>",
        ),
        (
            b'{"format_version": "1.0", "studies": {"s": {"site_orgs": {"o": [2]}}}}',
            "study 's' site entry for org 'o' must be str but got <class 'int'>",
        ),
        (
            b'{"format_version": "1.0", "studies": {"s": {"site_orgs": {"o": ["a"], "p": ["a"]}}}}',
            "study 's' contains duplicate site 'a' across org groups",
        ),
    ],
)
def test_parse_registry_rejects(document: bytes, message: str) -> None:
    with pytest.raises(StudyRegistryError) as info:
        parse_registry(document)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)


def test_enrolled_sites() -> None:
    assert enrolled_sites(None, "cancer") is None
    assert enrolled_sites(REGISTRY, "lungs") is None
    assert enrolled_sites(REGISTRY, "cancer") == frozenset({"hospital-a", "hospital-b"})
    assert enrolled_sites(REGISTRY, "empty") == frozenset()


@pytest.mark.parametrize(
    ("caller", "study", "expected"),
    [
        (PA, "heart", True),
        (OA, "cancer", True),
        (OA, "heart", False),
        (OA, "empty", True),  # an org key with no sites still counts
        (Principal(name="n", org="", role="org_admin"), "cancer", False),
        (LEAD, "cancer", True),
        (LEAD, "heart", False),
        (MEMBER, "heart", True),
        (Principal(name="admin@a.org", org="org_a", role="auditor"), "cancer", True),
    ],
)
def test_is_visible(caller: Principal, study: str, expected: bool) -> None:
    assert is_visible(REGISTRY.studies[study], caller) is expected


# --- client targets narrowed to a study ------------------------------------------------------

ONLINE = ["hospital-a", "hospital-x", "hospital-b", "hospital-y"]


@pytest.mark.parametrize(
    ("registry", "study"), [(None, "cancer"), (REGISTRY, "default"), (REGISTRY, "lungs")]
)
def test_narrow_without_a_study_filter(registry: StudyRegistry | None, study: str) -> None:
    assert narrow_client_targets(registry, study, "all", [], ONLINE) == ONLINE
    assert narrow_client_targets(registry, study, "client", ["hospital-x"], ONLINE) == [
        "hospital-x"
    ]


def test_narrow_all_drops_unenrolled_sites_silently() -> None:
    assert narrow_client_targets(REGISTRY, "cancer", "all", [], ONLINE) == [
        "hospital-a",
        "hospital-b",
    ]
    assert narrow_client_targets(REGISTRY, "empty", "all", [], ONLINE) == []


def test_narrow_client_keeps_enrolled_names() -> None:
    result = narrow_client_targets(
        REGISTRY, "cancer", "client", ["hospital-x", "hospital-b"], ONLINE
    )
    assert result == ["hospital-b"]
    assert narrow_client_targets(REGISTRY, "cancer", "client", [], ONLINE) == [
        "hospital-a",
        "hospital-b",
    ]


def test_narrow_client_with_no_enrolled_target_names_them() -> None:
    with pytest.raises(InvalidTarget) as info:
        narrow_client_targets(REGISTRY, "cancer", "client", ["hospital-x"], ONLINE)
    assert str(info.value) == "site 'hospital-x' is not enrolled in study 'cancer'"
    with pytest.raises(InvalidTarget) as info:
        narrow_client_targets(REGISTRY, "cancer", "client", ["hospital-x", "hospital-y"], ONLINE)
    assert str(info.value) == "sites 'hospital-x', 'hospital-y' are not enrolled in study 'cancer'"


def test_narrow_server_needs_no_clients() -> None:
    assert narrow_client_targets(REGISTRY, "cancer", "server", [], ONLINE) == []
