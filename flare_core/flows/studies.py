"""Client flows of the study commands (reference §9.4-§9.5).

The server reports refusals as ``CommandError`` problems; for backends that answer the
reference way, a payload carrying a truthy ``error_code`` is turned into the same
``CommandError`` here.
"""

from __future__ import annotations

from typing import Any

from flare_core.commands import (
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
from flare_core.errors import CommandError, InternalError
from flare_core.flows._calls import call
from flare_core.flows._context import ClientFlow, FlowContext
from flare_core.studies import check_name_arg, check_site_args

__all__ = [
    "add_study_site",
    "add_study_user",
    "list_studies",
    "register_study",
    "remove_study",
    "remove_study_site",
    "remove_study_user",
    "show_study",
]


def _payload(ctx: FlowContext, command: Command) -> ClientFlow[dict[str, Any]]:
    payload = yield from call(ctx, command)
    if not isinstance(payload, dict):
        raise InternalError(f"study command returned {type(payload).__name__}, not a dict")
    code = payload.get("error_code")
    if code:
        exit_code = payload.get("exit_code")
        raise CommandError(
            str(code),
            str(payload.get("message") or ""),
            str(payload.get("hint") or ""),
            exit_code if isinstance(exit_code, int) else 1,
        )
    return payload


def _site_change(
    ctx: FlowContext,
    command_type: type[RegisterStudy | AddStudySite | RemoveStudySite],
    study: str,
    sites: list[str] | None,
    site_orgs: list[str] | None,
) -> ClientFlow[dict[str, Any]]:
    """Validate a study's name and its ``sites`` / ``site_orgs``, send, return the payload."""
    name = check_name_arg(study, "study")
    flat, groups = check_site_args(sites, site_orgs)
    return (yield from _payload(ctx, command_type(study=name, sites=flat, site_orgs=groups)))


def register_study(
    ctx: FlowContext,
    study: str,
    sites: list[str] | None = None,
    site_orgs: list[str] | None = None,
) -> ClientFlow[dict[str, Any]]:
    """Create or merge a study; exactly one of ``sites`` / ``site_orgs``."""
    return (yield from _site_change(ctx, RegisterStudy, study, sites, site_orgs))


def add_study_site(
    ctx: FlowContext,
    study: str,
    sites: list[str] | None = None,
    site_orgs: list[str] | None = None,
) -> ClientFlow[dict[str, Any]]:
    """Enroll sites in an existing study; exactly one of ``sites`` / ``site_orgs``."""
    return (yield from _site_change(ctx, AddStudySite, study, sites, site_orgs))


def remove_study_site(
    ctx: FlowContext,
    study: str,
    sites: list[str] | None = None,
    site_orgs: list[str] | None = None,
) -> ClientFlow[dict[str, Any]]:
    """Remove sites from a study; exactly one of ``sites`` / ``site_orgs``."""
    return (yield from _site_change(ctx, RemoveStudySite, study, sites, site_orgs))


def remove_study(ctx: FlowContext, study: str) -> ClientFlow[dict[str, Any]]:
    """Remove a study that has no jobs (project_admin only)."""
    name = check_name_arg(study, "study")
    return (yield from _payload(ctx, RemoveStudy(study=name)))


def list_studies(ctx: FlowContext) -> ClientFlow[dict[str, Any]]:
    """List the studies visible to the caller."""
    return (yield from _payload(ctx, ListStudies()))


def show_study(ctx: FlowContext, study: str) -> ClientFlow[dict[str, Any]]:
    """Show one visible study."""
    name = check_name_arg(study, "study")
    return (yield from _payload(ctx, ShowStudy(study=name)))


def add_study_user(ctx: FlowContext, study: str, user: str) -> ClientFlow[dict[str, Any]]:
    """Add a user to a study's admins list."""
    name = check_name_arg(study, "study")
    who = check_name_arg(user, "user")
    return (yield from _payload(ctx, AddStudyUser(study=name, user=who)))


def remove_study_user(ctx: FlowContext, study: str, user: str) -> ClientFlow[dict[str, Any]]:
    """Remove a user from a study's admins list."""
    name = check_name_arg(study, "study")
    who = check_name_arg(user, "user")
    return (yield from _payload(ctx, RemoveStudyUser(study=name, user=who)))
