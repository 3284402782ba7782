"""The study commands (§9.5) as pure functions of the registry.

Every command here takes the current registry and returns ``(new_registry, payload)``, or
``(None, payload)`` when nothing changed, and raises ``CommandError`` (with the reference's
error code, hint and exit code) or ``AuthorizationError`` (role gates, §9.5). Persisting the
new registry, atomically, is the caller's job (``service._studies_cmds``); a command that
raises changed nothing. The model they edit, and its loading rules, are in ``studies``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flare_core.errors import CommandError
from flare_core.policy import require_study_role
from flare_core.principal import Principal
from flare_core.studies import (
    DEFAULT_STUDY,
    ORG_NAME_PATTERN,
    SITE_NAME_PATTERN,
    STUDY_NAME_PATTERN,
    Study,
    StudyRegistry,
    StudyRegistryError,
    is_visible,
    registry_from_config,
)

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

# The study command's own name checks (the server side of §9.4); the patterns are shared.
_STUDY_RE = re.compile(STUDY_NAME_PATTERN)
_SITE_RE = re.compile(SITE_NAME_PATTERN)
_ORG_RE = re.compile(ORG_NAME_PATTERN)

_EXIT_CODES: Mapping[str, int] = {
    "INVALID_ARGS": 4,
    "INVALID_SITE": 4,
    "INVALID_STUDY_NAME": 4,
    "STUDY_NOT_FOUND": 1,
    "STUDY_ALREADY_EXISTS": 1,
    "STUDY_HAS_JOBS": 1,
    "USER_ALREADY_IN_STUDY": 1,
    "USER_NOT_IN_STUDY": 1,
    "LOCK_TIMEOUT": 3,
    "INTERNAL_ERROR": 5,
}

_HINT_NOT_FOUND = "Verify the study name or contact a project_admin."
_HINT_SITES = (
    "Each site must be currently connected to the server and provisioned under the specified org."
)


def _error(code: str, message: str, hint: str = "") -> CommandError:
    return CommandError(code, message, hint, _EXIT_CODES[code])


class _Draft:
    """A mutable copy of one study, edited by a command before the registry is rebuilt."""

    __slots__ = ("admins", "site_orgs")

    def __init__(self, study: Study | None = None) -> None:
        self.site_orgs: dict[str, list[str]] = (
            {org: list(sites) for org, sites in study.site_orgs.items()} if study else {}
        )
        self.admins: list[str] = list(study.admins) if study else []

    def flat_sites(self) -> list[str]:
        return [site for sites in self.site_orgs.values() for site in sites]


def _drafts(reg: StudyRegistry | None) -> dict[str, _Draft]:
    return {} if reg is None else {name: _Draft(s) for name, s in reg.studies.items()}


def _commit(reg: StudyRegistry | None, drafts: Mapping[str, _Draft]) -> StudyRegistry | None:
    """Rebuild the registry through the loading rules; None when it did not change."""
    config = {
        "format_version": "1.0",
        "studies": {n: {"site_orgs": d.site_orgs, "admins": d.admins} for n, d in drafts.items()},
    }
    try:
        new = registry_from_config(config)
    except StudyRegistryError as exc:
        raise _error("INTERNAL_ERROR", f"study command failed: {exc}") from None
    return None if reg is not None and new == reg else new


def _check_study_name(study: object) -> str:
    if not isinstance(study, str) or not _STUDY_RE.fullmatch(study) or study == DEFAULT_STUDY:
        raise _error("INVALID_STUDY_NAME", f"invalid study name '{study}'")
    return study


def _parse_sites(sites: Sequence[str] | None) -> list[str]:
    if sites is None or not sites:
        raise _error("INVALID_ARGS", "--sites is required")
    parsed: list[str] = []
    for site in ",".join(sites).split(","):
        site = site.strip()
        if site and site not in parsed:
            parsed.append(site)  # --sites de-duplicates silently, unlike --site-org
    if not parsed:
        raise _error("INVALID_ARGS", "--sites must contain at least one site")
    return parsed


def _parse_site_orgs(site_orgs: Sequence[str] | None) -> dict[str, list[str]]:
    if not site_orgs:
        raise _error("INVALID_ARGS", "--site-org is required")
    result: dict[str, list[str]] = {}
    seen: set[str] = set()
    for item in site_orgs:
        org, sep, raw_sites = item.partition(":")
        if not sep:
            raise _error("INVALID_ARGS", f"invalid --site-org value '{item}'")
        sites: list[str] = []
        for site in raw_sites.split(","):
            site = site.strip()
            if not site:
                continue
            if site in seen:
                raise _error("INVALID_ARGS", f"site '{site}' appears in more than one org group")
            seen.add(site)
            sites.append(site)
        if not sites:
            raise _error("INVALID_ARGS", f"--site-org '{item}' must contain at least one site")
        result.setdefault(org.strip(), []).extend(sites)
    return result


def _requested_site_orgs(
    caller: Principal, sites: Sequence[str] | None, site_orgs: Sequence[str] | None
) -> dict[str, list[str]]:
    """The org -> sites groups a site command asks for (§9.4, server side)."""
    if sites and site_orgs:
        raise _error(
            "INVALID_ARGS", "--sites and --site-org are mutually exclusive; provide only one"
        )
    if caller.role == "org_admin" and site_orgs:
        raise _error("INVALID_ARGS", "org_admin must use --sites, not --site-org")
    if caller.role == "project_admin" and sites:
        raise _error("INVALID_ARGS", "project_admin must use --site-org, not --sites")
    if caller.role == "project_admin":
        requested = _parse_site_orgs(site_orgs)
    else:
        if not caller.org:
            raise _error("INVALID_ARGS", "caller org is empty — misconfigured certificate")
        requested = {caller.org: _parse_sites(sites)}
    for org, org_sites in requested.items():
        if not _ORG_RE.fullmatch(org):
            raise _error("INVALID_ARGS", f"invalid org '{org}'")
        for site in org_sites:
            if not _SITE_RE.fullmatch(site):
                raise _error("INVALID_SITE", f"invalid site '{site}'")
    return requested


def _check_sites_belong(
    requested: Mapping[str, list[str]], site_orgs_of: Mapping[str, str]
) -> None:
    for org, sites in requested.items():
        bad = [site for site in sites if not org or site_orgs_of.get(site) != org]
        if bad:
            raise _error(
                "INVALID_SITE",
                f"Sites {bad} are unknown or do not belong to org '{org}'.",
                _HINT_SITES,
            )


def _visible_draft(
    reg: StudyRegistry | None, drafts: Mapping[str, _Draft], caller: Principal, study: str
) -> _Draft:
    entry = None if reg is None else reg.studies.get(study)
    if entry is None or not is_visible(entry, caller):
        raise _error("STUDY_NOT_FOUND", f"Study '{study}' not found.", _HINT_NOT_FOUND)
    return drafts[study]


def _study_payload(name: str, draft: _Draft) -> dict[str, Any]:
    return {
        "name": name,
        "site_orgs": {org: list(sites) for org, sites in draft.site_orgs.items()},
        "sites": sorted(draft.flat_sites()),
        "users": list(draft.admins),
    }


def _site_payload(name: str, draft: _Draft, **changes: list[str]) -> dict[str, Any]:
    payload: dict[str, Any] = {"study": name, **changes}
    payload["site_orgs"] = {org: list(sites) for org, sites in draft.site_orgs.items()}
    payload["sites"] = sorted(set(draft.flat_sites()))
    return payload


def register_study(
    reg: StudyRegistry | None,
    caller: Principal,
    study: str,
    sites: Sequence[str] | None,
    site_orgs: Sequence[str] | None,
    site_orgs_of: Mapping[str, str],
) -> tuple[StudyRegistry | None, dict[str, Any]]:
    """Create a study, or merge sites into an existing one (``register_study``, §9.5).

    Every requested site must be connected with a certificate org equal to its group's org.
    The caller is added to the study's users.

    Args:
        reg: the current registry (None: the server has none yet; one is created).
        caller: the caller (``project_admin`` uses ``site_orgs``, ``org_admin`` ``sites``).
        study: the study name (``default`` is reserved).
        sites: site names, for an ``org_admin`` (their org is the caller's org).
        site_orgs: ``"org:s1,s2"`` entries, for a ``project_admin``.
        site_orgs_of: connected site -> its certificate org.

    Returns:
        ``(new_registry or None, {"name", "site_orgs", "sites", "users"})``.

    Raises:
        AuthorizationError: the caller is not a ``project_admin``/``org_admin``.
        CommandError: ``INVALID_STUDY_NAME``, ``INVALID_ARGS``, ``INVALID_SITE``,
            ``STUDY_ALREADY_EXISTS`` (an ``org_admin`` whose org is not in the existing
            study), ``INTERNAL_ERROR`` (the result would break the registry rules).
    """
    require_study_role(caller, "register_study")
    name = _check_study_name(study)
    requested = _requested_site_orgs(caller, sites, site_orgs)
    drafts = _drafts(reg)
    draft = drafts.get(name)
    if draft is None:
        draft = drafts[name] = _Draft()
    elif caller.role == "org_admin" and caller.org not in draft.site_orgs:
        raise _error(
            "STUDY_ALREADY_EXISTS",
            f"Study '{name}' already exists.",
            "The study name is already taken. Contact a project_admin to grant access.",
        )
    _check_sites_belong(requested, site_orgs_of)
    for org, org_sites in requested.items():
        current = draft.site_orgs.setdefault(org, [])
        for site in org_sites:
            if site not in current:
                current.append(site)
    if caller.name not in draft.admins:
        draft.admins.append(caller.name)
    payload = _study_payload(name, draft)
    return _commit(reg, drafts), payload


def add_study_site(
    reg: StudyRegistry | None,
    caller: Principal,
    study: str,
    sites: Sequence[str] | None,
    site_orgs: Sequence[str] | None,
    site_orgs_of: Mapping[str, str],
) -> tuple[StudyRegistry | None, dict[str, Any]]:
    """Enrol sites in a visible study (``add_study_site``, §9.5).

    Args:
        reg: the current registry.
        caller: the caller.
        study: the study name.
        sites: site names (``org_admin`` form).
        site_orgs: ``"org:s1,s2"`` entries (``project_admin`` form).
        site_orgs_of: connected site -> its certificate org.

    Returns:
        ``(new_registry or None, {"study", "added", "already_enrolled", "site_orgs",
        "sites"})``; sites already in their org group are reported, not errors.

    Raises:
        AuthorizationError: the caller is not a ``project_admin``/``org_admin``.
        CommandError: ``INVALID_STUDY_NAME``, ``INVALID_ARGS``, ``INVALID_SITE``,
            ``STUDY_NOT_FOUND`` (missing or invisible), ``INTERNAL_ERROR``.
    """
    require_study_role(caller, "add_study_site")
    name = _check_study_name(study)
    requested = _requested_site_orgs(caller, sites, site_orgs)
    drafts = _drafts(reg)
    draft = _visible_draft(reg, drafts, caller, name)
    _check_sites_belong(requested, site_orgs_of)
    added: list[str] = []
    already: list[str] = []
    for org, org_sites in requested.items():
        current = draft.site_orgs.setdefault(org, [])
        for site in org_sites:
            if site in current:
                already.append(site)
            else:
                current.append(site)
                added.append(site)
    payload = _site_payload(name, draft, added=added, already_enrolled=already)
    return _commit(reg, drafts), payload


def remove_study_site(
    reg: StudyRegistry | None,
    caller: Principal,
    study: str,
    sites: Sequence[str] | None,
    site_orgs: Sequence[str] | None,
) -> tuple[StudyRegistry | None, dict[str, Any]]:
    """Withdraw sites from a visible study (``remove_study_site``, §9.5).

    There is no connectivity or org check: offline sites can be removed. Sites of an org
    the study lacks are reported as ``not_enrolled`` without creating that org; removing
    an org's last site leaves ``org: []`` behind, so the org keeps visibility.

    Args:
        reg: the current registry.
        caller: the caller.
        study: the study name.
        sites: site names (``org_admin`` form).
        site_orgs: ``"org:s1,s2"`` entries (``project_admin`` form).

    Returns:
        ``(new_registry or None, {"study", "removed", "not_enrolled", "site_orgs", "sites"})``.

    Raises:
        AuthorizationError: the caller is not a ``project_admin``/``org_admin``.
        CommandError: ``INVALID_STUDY_NAME``, ``INVALID_ARGS``, ``INVALID_SITE``,
            ``STUDY_NOT_FOUND``.
    """
    require_study_role(caller, "remove_study_site")
    name = _check_study_name(study)
    requested = _requested_site_orgs(caller, sites, site_orgs)
    drafts = _drafts(reg)
    draft = _visible_draft(reg, drafts, caller, name)
    removed: list[str] = []
    not_enrolled: list[str] = []
    for org, org_sites in requested.items():
        current = draft.site_orgs.get(org)
        if current is None:
            not_enrolled.extend(org_sites)
            continue
        removed.extend(site for site in current if site in org_sites)
        not_enrolled.extend(site for site in org_sites if site not in current)
        draft.site_orgs[org] = [site for site in current if site not in org_sites]
    payload = _site_payload(name, draft, removed=removed, not_enrolled=not_enrolled)
    return _commit(reg, drafts), payload


def remove_study(
    reg: StudyRegistry | None, caller: Principal, study: str, job_count: int
) -> tuple[StudyRegistry | None, dict[str, Any]]:
    """Delete a study that no job belongs to (``remove_study``, §9.5).

    Args:
        reg: the current registry.
        caller: the caller (``project_admin`` only).
        study: the study name.
        job_count: how many stored jobs, in any status, belong to the study.

    Returns:
        ``(new_registry, {"name", "removed": True})``.

    Raises:
        AuthorizationError: the caller is not a ``project_admin``.
        CommandError: ``INVALID_STUDY_NAME``, ``STUDY_NOT_FOUND``, ``STUDY_HAS_JOBS``.
    """
    require_study_role(caller, "remove_study")
    name = _check_study_name(study)
    drafts = _drafts(reg)
    if name not in drafts:
        raise _error("STUDY_NOT_FOUND", f"Study '{name}' not found.", "Verify the study name.")
    if job_count > 0:
        raise _error(
            "STUDY_HAS_JOBS",
            f"Study '{name}' has {job_count} associated job(s) and cannot be removed.",
            "Archive or delete the associated jobs before retrying.",
        )
    del drafts[name]
    return _commit(reg, drafts), {"name": name, "removed": True}


def list_studies(
    reg: StudyRegistry | None, caller: Principal, can_submit: Callable[[], tuple[bool, str]]
) -> tuple[None, dict[str, Any]]:
    """List the studies visible to the caller (``list_studies``, §9.5).

    Args:
        reg: the current registry (None: empty lists).
        caller: the caller (any of ``project_admin``, ``org_admin``, ``lead``, ``member``).
        can_submit: runs the policy check of the ``submit_job`` right for the caller; called
            at most once.

    Returns:
        ``(None, {"identity": {"name", "org", "role"}, "studies": sorted names,
        "study_details": [{"name", "role", "capabilities": {"submit_job"},
        "can_submit_job", "reason"?}] sorted by name})``.

    Raises:
        AuthorizationError: any other role.
    """
    require_study_role(caller, "list_studies")
    names = sorted(n for n, s in (reg.studies.items() if reg else ()) if is_visible(s, caller))
    details: list[dict[str, Any]] = []
    if names:
        allowed, reason = can_submit()
        for name in names:
            item: dict[str, Any] = {
                "name": name,
                "role": caller.role,
                "capabilities": {"submit_job": allowed},
                "can_submit_job": allowed,
            }
            if not allowed:
                item["reason"] = (
                    reason or f"user '{caller.name}' is not authorized for 'submit_job'"
                )
            details.append(item)
    identity = {"name": caller.name, "org": caller.org, "role": caller.role}
    return None, {"identity": identity, "studies": names, "study_details": details}


def show_study(
    reg: StudyRegistry | None, caller: Principal, study: str
) -> tuple[None, dict[str, Any]]:
    """Describe a visible study (``show_study``, §9.5).

    Returns:
        ``(None, {"name", "site_orgs", "sites", "users"})``.

    Raises:
        AuthorizationError: the caller is not a ``project_admin``/``org_admin``.
        CommandError: ``INVALID_STUDY_NAME``, ``STUDY_NOT_FOUND`` (missing or invisible).
    """
    require_study_role(caller, "show_study")
    name = _check_study_name(study)
    entry = None if reg is None else reg.studies.get(name)
    if entry is None or not is_visible(entry, caller):
        raise _error(
            "STUDY_NOT_FOUND",
            f"Study '{name}' not found.",
            "Verify the study name. If the study exists and you expect access, contact a "
            "project_admin.",
        )
    return None, _study_payload(name, _Draft(entry))


def _check_user(user: object) -> str:
    if not isinstance(user, str) or not user:
        raise _error("INVALID_ARGS", "user is required")
    return user


def add_study_user(
    reg: StudyRegistry | None, caller: Principal, study: str, user: str
) -> tuple[StudyRegistry | None, dict[str, Any]]:
    """Let a user log in to a visible study (``add_study_user``, §9.5).

    Returns:
        ``(new_registry, {"study", "user"})``.

    Raises:
        AuthorizationError: the caller is not a ``project_admin``/``org_admin``.
        CommandError: ``INVALID_STUDY_NAME``, ``INVALID_ARGS`` (empty user),
            ``STUDY_NOT_FOUND``, ``USER_ALREADY_IN_STUDY``.
    """
    require_study_role(caller, "add_study_user")
    name = _check_study_name(study)
    user = _check_user(user)
    drafts = _drafts(reg)
    draft = _visible_draft(reg, drafts, caller, name)
    if user in draft.admins:
        raise _error(
            "USER_ALREADY_IN_STUDY",
            f"User '{user}' is already in study '{name}'.",
            "Use a different user or remove the existing entry first.",
        )
    draft.admins.append(user)
    return _commit(reg, drafts), {"study": name, "user": user}


def remove_study_user(
    reg: StudyRegistry | None, caller: Principal, study: str, user: str
) -> tuple[StudyRegistry | None, dict[str, Any]]:
    """Stop a user from logging in to a visible study (``remove_study_user``, §9.5).

    Returns:
        ``(new_registry, {"study", "user", "removed": True})``.

    Raises:
        AuthorizationError: the caller is not a ``project_admin``/``org_admin``.
        CommandError: ``INVALID_STUDY_NAME``, ``INVALID_ARGS`` (empty user),
            ``STUDY_NOT_FOUND``, ``USER_NOT_IN_STUDY``.
    """
    require_study_role(caller, "remove_study_user")
    name = _check_study_name(study)
    user = _check_user(user)
    drafts = _drafts(reg)
    draft = _visible_draft(reg, drafts, caller, name)
    if user not in draft.admins:
        raise _error(
            "USER_NOT_IN_STUDY",
            f"User '{user}' is not in study '{name}'.",
            "Use add-user to add the user first.",
        )
    draft.admins.remove(user)
    return _commit(reg, drafts), {"study": name, "user": user, "removed": True}
