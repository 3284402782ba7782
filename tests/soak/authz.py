"""The authorization matrix, generated from the policy table and checked against a running
server over HTTP and WebSocket.

Dimensions: role x org (own / other than the server's) x command x job (own / another
user's, of the actor's org or another) x study membership x revocation. The expected outcome
of every cell comes from ``flare_core.policy.check_right`` over ``DEFAULT_POLICY`` (the table
itself); non-members must be refused at login, and a session whose user was removed from its
study must answer ``SessionExpired`` to every command. ``python -m tests.soak.authz --docs``
writes the expected table to ``docs/authorization-matrix.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

import flare_core as fc
from flare_adapters.http.client import http_transport
from flare_adapters.session import Session
from flare_adapters.ws.client import ws_transport
from flare_core.policy import DEFAULT_POLICY, Submitter, check_right
from flare_core.principal import Principal
from flare_testing.job_folders import JobFolders
from tests.soak.served import ServerProcess, make_workspace

__all__ = ["ACTORS", "COMMANDS", "AuthzResult", "expected_table", "run_authz"]

SERVER_ORG = "nvidia"

ACTORS: tuple[tuple[str, str, str], ...] = tuple(
    (f"{role}@{org}.org", org, role)
    for org in (SERVER_ORG, "other")
    for role in ("project_admin", "org_admin", "lead", "member")
)
"""Every role in the policy, in the server's org and in another."""

Call = Callable[[Session, str], object]

COMMANDS: dict[str, tuple[type[fc.Command], Call, bool]] = {
    # name: (command type, how a session calls it on job_id, job-scoped)
    "get_job_meta": (fc.GetJobMeta, lambda s, j: s.get_job_meta(j), True),
    "get_job_logs": (fc.GetJobLogs, lambda s, j: s.get_job_logs(j), True),
    "list_job_components": (fc.ListJobComponents, lambda s, j: s.list_job_components(j), True),
    "download_job_result": (fc.DownloadJobResult, lambda s, j: s.download_job_result(j), True),
    "abort_job": (fc.AbortJob, lambda s, j: s.abort_job(j), True),
    "clone_job": (fc.CloneJob, lambda s, j: s.clone_job(j), True),
    "list_jobs": (fc.ListJobs, lambda s, j: s.list_jobs(), False),
    "check_status": (fc.CheckStatus, lambda s, j: s.check_status("server"), False),
    "report_version": (fc.ReportVersion, lambda s, j: s.report_version("server"), False),
    "report_resources": (fc.ReportResources, lambda s, j: s.report_resources("server"), False),
    "pwd": (fc.ShellCommand, lambda s, j: s.get_working_directory("server"), False),
    "ls": (fc.ShellCommand, lambda s, j: s.ls_target("server"), False),
}

JOB_RELATIONS = ("own job", "same-org user's job", "other-org user's job")


def _right(name: str) -> str:
    command = COMMANDS[name][0]
    return name if command is fc.ShellCommand else command.right


def _principal(actor: tuple[str, str, str]) -> Principal:
    name, org, role = actor
    return Principal(name=name, org=org, role=role)


def _owner(actor: tuple[str, str, str], relation: str) -> tuple[str, str, str] | None:
    name, org, _ = actor
    if relation == "own job":
        return actor if _can_submit(actor) else None
    owner_org = (
        org if relation == "same-org user's job" else ("other" if org == SERVER_ORG else SERVER_ORG)
    )
    # Another user of that org who can submit: the lead, or the project admin for the lead.
    for role in ("lead", "project_admin"):
        owner = (f"{role}@{owner_org}.org", owner_org, role)
        if owner[0] != name:
            return owner
    raise AssertionError("unreachable")


def _can_submit(actor: tuple[str, str, str]) -> bool:
    return check_right(DEFAULT_POLICY, _principal(actor), "submit_job", site_org=SERVER_ORG)[0]


def expected(actor: tuple[str, str, str], command: str, owner: tuple[str, str, str] | None) -> bool:
    """What the policy table says for one cell."""
    submitter = None if owner is None else Submitter(name=owner[0], org=owner[1])
    allowed, _ = check_right(
        DEFAULT_POLICY, _principal(actor), _right(command), submitter=submitter, site_org=SERVER_ORG
    )
    return allowed


def expected_table() -> str:
    """The expected matrix as markdown (for the docs)."""
    head = ["actor (role, org)", *COMMANDS]
    lines = [
        "# Authorization matrix (generated)",
        "",
        "Generated from `DEFAULT_POLICY` by `python -m tests.soak.authz --docs`; `make soak`",
        "checks every cell against a running server over HTTP and WebSocket (and `make test`",
        "a sample). Job commands have one mark per job: own / same-org user's / other-org",
        "user's (`-`: the role cannot submit, so it has no own job). Y = allowed, n = denied",
        "(`not_authorized`). Not shown, also checked: a user who is not a member of a study",
        "cannot log in to it; a session whose user was removed from its study answers",
        "`session_expired` to every command.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for actor in ACTORS:
        cells = []
        for command, (_, _, job_scoped) in COMMANDS.items():
            if not job_scoped:
                cells.append("Y" if expected(actor, command, None) else "n")
                continue
            marks = []
            for relation in JOB_RELATIONS:
                owner = _owner(actor, relation)
                marks.append(
                    "-" if owner is None else "Y" if expected(actor, command, owner) else "n"
                )
            cells.append("/".join(marks))
        lines.append(
            f"| {actor[2]}, {'own' if actor[1] == SERVER_ORG else 'other'} org | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


class AuthzResult(msgspec.Struct, kw_only=True):
    """Cells checked and the mismatches found."""

    cells: int = 0
    mismatches: list[str] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _outcome(call: Call, session: Session, job_id: str) -> str:
    try:
        call(session, job_id)
    except fc.AuthorizationError:
        return "denied"
    except fc.SessionExpired:
        return "expired"
    except Exception as exc:  # another refusal (e.g. job state): the policy let it through
        return f"allowed ({type(exc).__name__})"
    return "allowed"


def run_authz(
    workdir: str, *, schemes: tuple[str, ...] = ("http", "ws"), sample: int = 0
) -> AuthzResult:
    """Check the matrix (every ``sample``-th cell when ``sample`` > 1)."""
    root = str(Path(workdir) / "authz")
    keys = make_workspace(root, job_duration=0.01, users=ACTORS)
    server = ServerProcess(root)
    server.start()
    result = AuthzResult()
    folders = JobFolders(Path(workdir) / "authz-jobs")
    ws_url = server.url.replace("http://", "ws://") + "/v1/ws"

    def open_session(scheme: str, user: str, study: str = "default") -> Session:
        factory = http_transport if scheme == "http" else ws_transport
        return factory.connect(
            server.url if scheme == "http" else ws_url,
            user=user,
            api_key=keys[user],
            study=study,
            upload_dir=str(Path(workdir) / "authz-up"),
            download_dir=str(Path(workdir) / "authz-down"),
        )

    try:
        jobs: dict[str, str] = {}  # submitter name -> a finished job of theirs
        for actor in ACTORS:
            if _can_submit(actor):
                with open_session("http", actor[0]) as session:
                    job_id = session.submit_job(str(folders.hello(name=f"authz-{actor[2]}")))
                    session.wait_for_job(job_id, timeout=60)
                    jobs[actor[0]] = job_id
        index = 0
        for scheme in schemes:
            for actor in ACTORS:
                with open_session(scheme, actor[0]) as session:
                    for command, (_, call, job_scoped) in COMMANDS.items():
                        relations = JOB_RELATIONS if job_scoped else ("",)
                        for relation in relations:
                            owner = _owner(actor, relation) if job_scoped else None
                            if job_scoped and owner is None:
                                continue
                            index += 1
                            if sample > 1 and index % sample:
                                continue
                            want = "allowed" if expected(actor, command, owner) else "denied"
                            got = _outcome(call, session, jobs[owner[0]] if owner else "")
                            result.cells += 1
                            if not got.startswith(want):
                                result.mismatches.append(
                                    f"{scheme} {actor[2]}@{actor[1]} {command} {relation}: "
                                    f"expected {want}, got {got}"
                                )
            _membership_and_revocation(open_session, scheme, jobs, result)
    finally:
        server.stop()
    return result


def _membership_and_revocation(
    open_session: Callable[..., Session], scheme: str, jobs: dict[str, str], result: AuthzResult
) -> None:
    study = f"closed-{scheme}"
    member = f"lead@{SERVER_ORG}.org"
    admin = f"project_admin@{SERVER_ORG}.org"
    with open_session(scheme, admin) as session:
        session.register_study(study, site_orgs=[f"{SERVER_ORG}:site-1"])
        session.add_study_user(study, member)
    for actor in ACTORS:
        if actor[0] in (member, admin):
            continue
        result.cells += 1
        try:
            open_session(scheme, actor[0], study).close()
        except fc.AuthenticationError:
            continue
        result.mismatches.append(f"{scheme} {actor[0]} logged in to {study} without membership")
    revoked = open_session(scheme, member, study)
    try:
        with open_session(scheme, admin) as session:
            session.remove_study_user(study, member)
        for command, (_, call, _) in COMMANDS.items():
            result.cells += 1
            got = _outcome(call, revoked, jobs.get(member, ""))
            if got != "expired":
                result.mismatches.append(f"{scheme} revoked session {command}: got {got}")
                break  # the session may have been re-created; later cells say nothing new
    finally:
        revoked.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.authz")
    parser.add_argument("--docs", action="store_true", help="write docs/authorization-matrix.md")
    args = parser.parse_args(argv)
    if args.docs:
        Path(__file__).resolve().parents[2].joinpath("docs", "authorization-matrix.md").write_text(
            expected_table(), encoding="utf-8"
        )
        return 0
    print(expected_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
