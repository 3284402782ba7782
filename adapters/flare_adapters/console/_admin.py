"""``flare-core system ...``, ``sites ...`` and ``studies ...``: one session call each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from flare_adapters.console._app import common_options, run_session
from flare_adapters.console._exits import ExitCode
from flare_adapters.console._output import Output, local_time
from flare_core import SystemInfo
from flare_ports import SessionSpec

__all__ = ["sites", "studies", "system"]

_TARGET_TYPES = click.Choice(("all", "server", "client"))


def _run(
    call: Callable[[SessionSpec], Any], render: Callable[[Output, Any], None] | None = None
) -> None:
    def go(session: SessionSpec, output: Output) -> int:
        value = call(session)
        if output.json_mode or render is None:
            output.result(value)
        else:
            render(output, value)
        return ExitCode.OK

    run_session(go)


def _by_site(output: Output, value: dict[str, Any]) -> None:
    # check_status / report_version: one row per site (the reference's extra keys omitted).
    rows = [
        {"site": site, **info}
        for site, info in value.items()
        if isinstance(info, dict) and not isinstance(info.get("jobs", []), dict)
    ]
    keys = list(dict.fromkeys(key for row in rows for key in row))
    output.table(rows, [(key, key.upper().replace("_", " ")) for key in keys])


@click.group()
def system() -> None:
    """The server's and the sites' status, info and versions."""


@system.command("status")
@click.option("--target-type", default="all", type=_TARGET_TYPES)
@click.option("--target", "targets", multiple=True, help="client name (repeatable)")
@common_options
def status(target_type: str, targets: tuple[str, ...]) -> None:
    """Check the server's and clients' status."""
    _run(lambda s: s.check_status(target_type, list(targets) or None), _by_site)


def _info(output: Output, info: SystemInfo) -> None:
    output.line(
        f"server: {info.server_info.status} since {local_time(info.server_info.start_time)}"
    )
    output.table(
        [{"name": c.name, "last_connect_time": c.last_connect_time} for c in info.client_info],
        (("name", "CLIENT"), ("last_connect_time", "LAST CONNECTED")),
    )
    if info.job_info:
        output.table(
            [{"job_id": j.job_id, "app_name": j.app_name} for j in info.job_info],
            (("job_id", "RUNNING JOB"), ("app_name", "APP")),
        )


def _info_json(session: SessionSpec) -> dict[str, Any]:
    info = session.get_system_info()
    return {
        "server_info": {
            "status": info.server_info.status,
            "start_time": info.server_info.start_time,
        },
        "client_info": [
            {"name": c.name, "last_connect_time": c.last_connect_time} for c in info.client_info
        ],
        "job_info": [{"job_id": j.job_id, "app_name": j.app_name} for j in info.job_info],
    }


@system.command("info")
@common_options
def info() -> None:
    """The server's status, connected clients and running jobs."""

    def go(session: SessionSpec, output: Output) -> int:
        if output.json_mode:
            output.json(_info_json(session))
        else:
            _info(output, session.get_system_info())
        return ExitCode.OK

    run_session(go)


@system.command("version")
@click.option("--target-type", default="all", type=_TARGET_TYPES)
@click.option("--target", "targets", multiple=True, help="client name (repeatable)")
@common_options
def version(target_type: str, targets: tuple[str, ...]) -> None:
    """The versions the server and the sites report."""
    _run(lambda s: s.report_version(target_type, list(targets) or None), _by_site)


@click.group()
def sites() -> None:
    """Connected client sites: list, enable, disable, remove."""


@sites.command("list")
@common_options
def sites_list() -> None:
    """The connected client sites."""

    def go(session: SessionSpec, output: Output) -> int:
        rows = [
            {"name": c.name, "last_connect_time": c.last_connect_time}
            for c in session.get_connected_client_list()
        ]
        if output.json_mode:
            output.json(rows)
        else:
            output.table(rows, (("name", "SITE"), ("last_connect_time", "LAST CONNECTED")))
        return ExitCode.OK

    run_session(go)


@sites.command("enable")
@click.argument("name")
@common_options
def sites_enable(name: str) -> None:
    """Let a disabled site connect again."""
    _run(lambda s: s.enable_client(name))


@sites.command("disable")
@click.argument("name")
@common_options
def sites_disable(name: str) -> None:
    """Disconnect a site and refuse it until enabled."""
    _run(lambda s: s.disable_client(name))


@sites.command("remove")
@click.argument("name")
@common_options
def sites_remove(name: str) -> None:
    """Disconnect a site (it may connect again)."""

    def go(session: SessionSpec, output: Output) -> int:
        session.remove_client(name)
        if output.json_mode:
            output.json(None)
        else:
            output.line(f"removed {name}")
        return ExitCode.OK

    run_session(go)


@click.group()
def studies() -> None:
    """Studies: list, show, register, and their sites and users."""


_SITE = click.option(
    "--site", "site_names", multiple=True, help="site name (the org admin form; repeatable)"
)
_SITE_ORG = click.option(
    "--site-org",
    "site_orgs",
    multiple=True,
    help="ORG:SITE1,SITE2 (the project admin form; repeatable)",
)


def _or_none(values: tuple[str, ...]) -> list[str] | None:
    return list(values) or None


@studies.command("list")
@common_options
def studies_list() -> None:
    """The studies the caller may see."""
    _run(lambda s: s.list_studies())


@studies.command("show")
@click.argument("study_name", metavar="STUDY")
@common_options
def studies_show(study_name: str) -> None:
    """One study's sites and users."""
    _run(lambda s: s.show_study(study_name))


@studies.command("register")
@click.argument("study_name", metavar="STUDY")
@_SITE
@_SITE_ORG
@common_options
def studies_register(
    study_name: str, site_names: tuple[str, ...], site_orgs: tuple[str, ...]
) -> None:
    """Register a new study."""
    _run(lambda s: s.register_study(study_name, _or_none(site_names), _or_none(site_orgs)))


@studies.command("add-site")
@click.argument("study_name", metavar="STUDY")
@_SITE
@_SITE_ORG
@common_options
def studies_add_site(
    study_name: str, site_names: tuple[str, ...], site_orgs: tuple[str, ...]
) -> None:
    """Enrol sites in a study."""
    _run(lambda s: s.add_study_site(study_name, _or_none(site_names), _or_none(site_orgs)))


@studies.command("remove-site")
@click.argument("study_name", metavar="STUDY")
@_SITE
@_SITE_ORG
@common_options
def studies_remove_site(
    study_name: str, site_names: tuple[str, ...], site_orgs: tuple[str, ...]
) -> None:
    """Take sites out of a study."""
    _run(lambda s: s.remove_study_site(study_name, _or_none(site_names), _or_none(site_orgs)))


@studies.command("add-user")
@click.argument("study_name", metavar="STUDY")
@click.argument("user_name")
@common_options
def studies_add_user(study_name: str, user_name: str) -> None:
    """Let a user log in to a study."""
    _run(lambda s: s.add_study_user(study_name, user_name))


@studies.command("remove-user")
@click.argument("study_name", metavar="STUDY")
@click.argument("user_name")
@common_options
def studies_remove_user(study_name: str, user_name: str) -> None:
    """Take a user out of a study."""
    _run(lambda s: s.remove_study_user(study_name, user_name))


@studies.command("remove")
@click.argument("study_name", metavar="STUDY")
@common_options
def studies_remove(study_name: str) -> None:
    """Remove a study."""
    _run(lambda s: s.remove_study(study_name))
