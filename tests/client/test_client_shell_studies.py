"""Shell-command and study flows over a scripted transport (reference §7.1, §9.4-§9.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_core import (
    AddStudySite,
    AddStudyUser,
    CommandError,
    InternalError,
    InvalidArgumentError,
    InvalidTarget,
    ListStudies,
    RegisterStudy,
    RemoveStudy,
    RemoveStudySite,
    RemoveStudyUser,
    ShellCommand,
    ShowStudy,
)
from tests.client.scripted import ScriptedTransport, make_session, ok, problem

# --- shell ------------------------------------------------------------------------------------


def test_shell_methods_send_the_expected_commands(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok("out\n"))
    session = make_session(transport, str(tmp_path))
    assert session.ls_target("server", "-l -a", "app/config") == "out\n"
    session.ls_target("site-1")
    session.cat_target("site-1", "-n", "log.txt")
    session.head_target("server", "-n 3", "data.csv")
    session.tail_target("server", None, "log.txt.1")
    session.head_target_log("site-2", "-c 10")
    session.tail_target_log("site-2")
    session.grep_target("server", "-i", 'foo"bar', "log.txt")
    session.get_working_directory("site-1")
    assert transport.sent == [
        ShellCommand(verb="ls", target="server", options="-l -a", path="app/config"),
        ShellCommand(verb="ls", target="site-1"),
        ShellCommand(verb="cat", target="site-1", options="-n", path="log.txt"),
        ShellCommand(verb="head", target="server", options="-n 3", path="data.csv"),
        ShellCommand(verb="tail", target="server", path="log.txt.1"),
        ShellCommand(verb="head", target="site-2", options="-c 10", path="log.txt"),
        ShellCommand(verb="tail", target="site-2", path="log.txt"),
        ShellCommand(verb="grep", target="server", options="-i", path="log.txt", pattern='foo"bar'),
        ShellCommand(verb="pwd", target="site-1"),
    ]


@pytest.mark.parametrize(
    ("method", "args", "message"),
    [
        ("ls_target", ("server", None, "/etc"), "absolute path is not allowed"),
        ("ls_target", ("server", None, "a/../b"), ".. in path name is not allowed"),
        ("cat_target", ("server", None, "image.png"), "cannot be applied to file"),
        ("cat_target", ("server", None, None), "file is required but not specified."),
        ("cat_target", ("server", "-n;rm", "log.txt"), "options must be a string"),
        ("head_target", ("bad target", None, "log.txt"), "no spaces"),
        ("tail_target_log", ("", None), "target is required but not specified."),
        ("grep_target", ("server", None, None, "log.txt"), "pattern is required"),
        ("grep_target", ("server", None, 5, "log.txt"), "pattern is not str."),
        ("get_working_directory", ("server name",), "no spaces"),
    ],
)
def test_shell_arguments_are_checked_before_sending(
    tmp_path: Path, method: str, args: tuple[object, ...], message: str
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match=message):
        getattr(session, method)(*args)
    assert transport.sent == []


def test_shell_output_is_data_even_when_it_mentions_authorization(tmp_path: Path) -> None:
    text = "user not authorized\nFailed to communicate\n"
    session = make_session(ScriptedTransport(ok(text)), str(tmp_path))
    assert session.cat_target("server", file="log.txt") == text


def test_shell_target_errors_come_from_the_server(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(InvalidTarget("invalid target: site-9")))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidTarget, match="invalid target: site-9"):
        session.ls_target("site-9")


def test_shell_output_must_be_text(tmp_path: Path) -> None:
    transport = ScriptedTransport(ok({"not": "text"}), ok(None))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InternalError):
        session.get_working_directory("server")
    assert session.get_working_directory("server") == ""


# --- studies ----------------------------------------------------------------------------------

PAYLOAD = {"name": "cancer-research", "site_orgs": {"nvidia": ["site-1"]}, "sites": ["site-1"]}


def test_study_commands(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok(PAYLOAD))
    session = make_session(transport, str(tmp_path))
    assert session.register_study("cancer-research", ["site-1", "site-2"]) == PAYLOAD
    session.register_study("cancer-research", site_orgs=["org_a:hospital-a", "org_b:hospital-b"])
    session.add_study_site("cancer-research", ["site-3"])
    session.remove_study_site("cancer-research", site_orgs=["nvidia:site-1"])
    session.remove_study("cancer-research")
    session.list_studies()
    session.show_study("cancer-research")
    session.add_study_user("cancer-research", "lead@nvidia.com")
    session.remove_study_user("cancer-research", "lead@nvidia.com")
    assert transport.sent == [
        RegisterStudy(study="cancer-research", sites=["site-1", "site-2"]),
        RegisterStudy(study="cancer-research", site_orgs=["org_a:hospital-a", "org_b:hospital-b"]),
        AddStudySite(study="cancer-research", sites=["site-3"]),
        RemoveStudySite(study="cancer-research", site_orgs=["nvidia:site-1"]),
        RemoveStudy(study="cancer-research"),
        ListStudies(),
        ShowStudy(study="cancer-research"),
        AddStudyUser(study="cancer-research", user="lead@nvidia.com"),
        RemoveStudyUser(study="cancer-research", user="lead@nvidia.com"),
    ]


@pytest.mark.parametrize(
    ("sites", "site_orgs", "message"),
    [
        (["a"], ["o:a"], "sites and site_orgs are mutually exclusive; provide only one"),
        (None, None, "sites must be list but got <class 'NoneType'>"),
        ([], None, "sites are required but not specified."),
        ("site-1", None, "sites must be list"),
        ([""], None, "invalid site value"),
    ],
)
@pytest.mark.parametrize("method", ["register_study", "add_study_site", "remove_study_site"])
def test_site_arguments_are_checked_locally(
    tmp_path: Path, method: str, sites: object, site_orgs: object, message: str
) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError, match=message):
        getattr(session, method)("s", sites, site_orgs)
    assert transport.sent == []


@pytest.mark.parametrize("study", ["", None, 3])
def test_study_name_must_be_a_non_empty_str(tmp_path: Path, study: object) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError):
        session.show_study(study)  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(InvalidArgumentError):
        session.add_study_user("s", study)  # type: ignore[arg-type]  # the wrong type is the point
    assert transport.sent == []


def test_command_error_problems_keep_their_fields(tmp_path: Path) -> None:
    refusal = CommandError("INVALID_ARGS", "project_admin must use --site-org", "use site_orgs", 4)
    session = make_session(ScriptedTransport(problem(refusal)), str(tmp_path))
    with pytest.raises(CommandError) as info:
        session.register_study("s", ["site-1"])
    error = info.value
    assert (error.error_code, error.message, error.hint, error.exit_code) == (
        "INVALID_ARGS",
        "project_admin must use --site-org",
        "use site_orgs",
        4,
    )
    assert str(error) == "project_admin must use --site-org"


def test_reference_style_error_payloads_raise_command_error(tmp_path: Path) -> None:
    payload = {"error_code": "STUDY_NOT_FOUND", "message": "Study 'x' does not exist."}
    session = make_session(ScriptedTransport(ok(payload)), str(tmp_path))
    with pytest.raises(CommandError) as info:
        session.show_study("x")
    assert (info.value.error_code, info.value.exit_code, info.value.hint) == (
        "STUDY_NOT_FOUND",
        1,
        "",
    )


def test_study_payload_must_be_a_dict(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(ok(["x"])), str(tmp_path))
    with pytest.raises(InternalError):
        session.list_studies()
