"""Studies: the registry model, its name rules, login scoping and the study commands (§9).

A study groups sites (by org) and names the users who may log in to it. The registry is a
frozen value: every server command here is a pure function of the current registry that
returns ``(new_registry, payload)``, or ``(None, payload)`` when nothing changed, and raises
``CommandError`` (with the reference's error code, hint and exit code) or
``AuthorizationError`` (role gates, §9.5). Persisting the new registry, atomically, is the
caller's job; a command that raises changed nothing.

The client-side argument checks of the study methods (§9.1, §9.4) live here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from flare_core._errors import (
    AuthenticationError,
    CommandError,
    InvalidArgumentError,
    InvalidTarget,
)
from flare_core._nesting import NestingTooDeep, decode_json
from flare_core._policy import require_study_role
from flare_core._principal import Principal

__all__ = [
    "DEFAULT_STUDY",
    "ORG_NAME_PATTERN",
    "SITE_NAME_PATTERN",
    "STUDY_NAME_PATTERN",
    "Study",
    "StudyRegistry",
    "StudyRegistryError",
    "add_study_site",
    "add_study_user",
    "check_login_study",
    "check_name_arg",
    "check_session_study",
    "check_site_args",
    "dump_registry",
    "enrolled_sites",
    "is_visible",
    "list_studies",
    "narrow_client_targets",
    "parse_registry",
    "register_study",
    "remove_study",
    "remove_study_site",
    "remove_study_user",
    "show_study",
]

DEFAULT_STUDY = "default"
"""The study every session uses unless it names another; it needs no registry entry."""

STUDY_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$"
"""A study name: lower-case letters, digits, ``_`` and ``-``; 1-63 chars; alphanumeric ends."""

SITE_NAME_PATTERN = r"^[A-Za-z0-9-_]+$"
"""A site name in study commands: letters, digits, ``-`` and ``_``."""

ORG_NAME_PATTERN = r"^[A-Za-z0-9_]+$"
"""An org name in study commands: letters, digits and ``_`` (no hyphen)."""

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


class StudyRegistryError(ValueError):
    """A study registry document breaks the registry format (§9.2)."""


class Study(msgspec.Struct, frozen=True, kw_only=True):
    """One study of the registry.

    Attributes:
        site_orgs: org -> its enrolled sites, in enrolment order; an org key with an empty
            list still makes the study visible to that org's ``org_admin``.
        admins: the users who may log in to the study (by name, whatever their role).
    """

    site_orgs: dict[str, list[str]] = msgspec.field(default_factory=dict)
    admins: list[str] = msgspec.field(default_factory=list)

    @property
    def sites(self) -> list[str]:
        """Every enrolled site, sorted."""
        return sorted({site for sites in self.site_orgs.values() for site in sites})


class StudyRegistry(msgspec.Struct, frozen=True, kw_only=True):
    """Every study the server knows (the reference's ``study_registry.json``)."""

    format_version: str = "1.0"
    studies: dict[str, Study] = msgspec.field(default_factory=dict)


# --- loading and saving ------------------------------------------------------------------


def _registry_from_config(config: object) -> StudyRegistry:
    """Apply the §9.2 loading rules to a decoded registry document."""
    if not isinstance(config, dict):
        raise StudyRegistryError(f"studies_config must be dict but got {type(config)}")
    if config.get("format_version") != "1.0":
        raise StudyRegistryError("missing or invalid study registry format_version: must be 1.0")
    studies = config.get("studies")
    if not isinstance(studies, dict):
        raise StudyRegistryError(f"study registry 'studies' must be dict but got {type(studies)}")
    built: dict[str, Study] = {}
    for name, study_def in studies.items():
        built[name] = _study_from_config(name, study_def or {})
    return StudyRegistry(format_version="1.0", studies=built)


def _study_from_config(name: str, study_def: object) -> Study:
    if not isinstance(study_def, dict):
        raise StudyRegistryError(f"study '{name}' must be dict but got {type(study_def)}")
    admins = study_def.get("admins")
    admins = [] if admins is None else admins
    if not isinstance(admins, list):
        raise StudyRegistryError(f"study '{name}' admins must be list but got {type(admins)}")
    admin_list: list[str] = []
    for admin in admins:
        if not isinstance(admin, str):
            raise StudyRegistryError(
                f"study '{name}' admin entries must be str but got {type(admin)}"
            )
        if admin not in admin_list:
            admin_list.append(admin)
    site_orgs = study_def.get("site_orgs")
    site_orgs = {} if site_orgs is None else site_orgs
    if not isinstance(site_orgs, dict):
        raise StudyRegistryError(f"study '{name}' site_orgs must be dict but got {type(site_orgs)}")
    seen: set[str] = set()
    normalized: dict[str, list[str]] = {}
    for org, org_sites in site_orgs.items():
        if not isinstance(org_sites, list):
            raise StudyRegistryError(
                f"study '{name}' site_orgs[{org}] must be list but got {type(org_sites)}"
            )
        for site in org_sites:
            if not isinstance(site, str):
                raise StudyRegistryError(
                    f"study '{name}' site entry for org '{org}' must be str but got {type(site)}"
                )
            if site in seen:
                raise StudyRegistryError(
                    f"study '{name}' contains duplicate site '{site}' across org groups"
                )
            seen.add(site)
        normalized[org] = list(org_sites)
    return Study(site_orgs=normalized, admins=admin_list)


def parse_registry(data: bytes) -> StudyRegistry:
    """Load a registry document (§9.2).

    Args:
        data: the JSON document, e.g. the contents of ``study_registry.json``.

    Returns:
        The registry, with duplicate admins dropped.

    Raises:
        StudyRegistryError: (a ValueError) malformed JSON, a missing or wrong
            ``format_version``, wrongly typed parts, or a site listed under two orgs.
    """
    try:
        config = decode_json(data, "study registry")
    except NestingTooDeep as exc:
        raise StudyRegistryError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise StudyRegistryError(f"study registry is not valid JSON: {exc}") from None
    return _registry_from_config(config)


def dump_registry(reg: StudyRegistry) -> bytes:
    """Encode a registry as the document ``parse_registry`` reads (sorted keys, indented)."""
    return msgspec.json.format(msgspec.json.encode(reg, order="sorted"), indent=2) + b"\n"


# --- login and client-side checks --------------------------------------------------------


def check_session_study(study: object) -> str:
    """Check the ``study`` a session is created with (§9.1, client side).

    Args:
        study: the study name.

    Returns:
        The study name.

    Raises:
        InvalidArgumentError: not a str, or not a valid study name (``default`` is valid).
    """
    if not isinstance(study, str):
        raise InvalidArgumentError("study must be str")
    if not _STUDY_RE.fullmatch(study):
        raise InvalidArgumentError(
            f"study name '{study}' contains unsupported characters. Use only lowercase "
            "letters, numbers, underscores, and hyphens."
        )
    return study


def check_login_study(registry: StudyRegistry | None, study: object, user: str) -> None:
    """Decide whether ``user`` may log in to ``study`` (§9.1 table, server side).

    Membership is by user name only, whatever the role: a ``project_admin`` who is not in a
    study's ``admins`` cannot log in to it. The ``default`` study needs no registry.

    Args:
        registry: the server's registry, or None when the server has none.
        study: the study the login asks for.
        user: the authenticated user name.

    Raises:
        AuthenticationError: with ``auth_code`` ``AUTH_INVALID_STUDY``,
            ``AUTH_INVALID_STUDY_NAME``, ``AUTH_STUDY_NOT_CONFIGURED``, ``AUTH_UNKNOWN_STUDY``
            or ``AUTH_STUDY_USER_NOT_MAPPED``.
    """
    if not isinstance(study, str):
        raise AuthenticationError("study must be a string", auth_code="AUTH_INVALID_STUDY")
    if not _STUDY_RE.fullmatch(study):
        raise AuthenticationError(
            f"invalid study name '{study}'", auth_code="AUTH_INVALID_STUDY_NAME"
        )
    if study == DEFAULT_STUDY:
        return
    if registry is None:
        raise AuthenticationError(
            f"study '{study}' is not configured on the server",
            auth_code="AUTH_STUDY_NOT_CONFIGURED",
        )
    entry = registry.studies.get(study)
    if entry is None:
        raise AuthenticationError(f"unknown study '{study}'", auth_code="AUTH_UNKNOWN_STUDY")
    if user not in entry.admins:
        raise AuthenticationError(
            f"user '{user}' is not mapped to study '{study}'",
            auth_code="AUTH_STUDY_USER_NOT_MAPPED",
        )


def check_name_arg(value: object, what: str) -> str:
    """Check a study method's ``study`` or ``user`` argument (client side).

    Args:
        value: the caller's value.
        what: the argument name used in the message (``"study"``, ``"user"``).

    Returns:
        The value.

    Raises:
        InvalidArgumentError: not a str, or empty (names are validated by the server).
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be str but got {type(value)}")
    if not value:
        raise InvalidArgumentError(f"{what} is required but not specified.")
    return value


def _check_str_list(values: object, what: str, item: str) -> list[str]:
    if not isinstance(values, list):
        raise InvalidArgumentError(f"{what} must be list but got {type(values)}")
    if not values:
        raise InvalidArgumentError(f"{what} are required but not specified.")
    for value in values:
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"invalid {item} value: {value}")
    return list(values)


def check_site_args(sites: object, site_orgs: object) -> tuple[list[str] | None, list[str] | None]:
    """Check the ``sites``/``site_orgs`` pair of the study site methods (§9.4, client side).

    Args:
        sites: site names (the ``org_admin`` form).
        site_orgs: ``"org:site1,site2"`` entries (the ``project_admin`` form).

    Returns:
        ``(None, site_orgs)`` when ``site_orgs`` is given, else ``(sites, None)``.

    Raises:
        InvalidArgumentError: both given, the chosen one not a non-empty list of non-empty
            strs (``sites=None, site_orgs=None`` reports ``sites must be list ...``).
    """
    if sites and site_orgs:
        raise InvalidArgumentError("sites and site_orgs are mutually exclusive; provide only one")
    if site_orgs:
        return None, _check_str_list(site_orgs, "site_orgs", "site_org")
    return _check_str_list(sites, "sites", "site"), None


# --- registry queries ----------------------------------------------------------------------


def enrolled_sites(registry: StudyRegistry | None, study: str) -> frozenset[str] | None:
    """The sites enrolled in ``study``; None when there is no registry or it lacks the study.

    A study whose orgs have empty lists gives an empty set (every site then fails enrolment).
    """
    if registry is None:
        return None
    entry = registry.studies.get(study)
    return None if entry is None else frozenset(entry.sites)


def is_visible(study: Study, caller: Principal) -> bool:
    """Whether ``caller`` may see ``study`` (§9.5 visibility rule).

    ``project_admin`` sees every study; ``org_admin`` sees a study whose ``site_orgs`` has
    its org as a key (even with no sites); any other role needs its name in ``admins``.
    """
    if caller.role == "project_admin":
        return True
    if caller.role != "org_admin":
        return caller.name in study.admins
    return bool(caller.org) and caller.org in study.site_orgs


def _not_enrolled_message(names: Sequence[str], study: str) -> str:
    if len(names) == 1:
        return f"site '{names[0]}' is not enrolled in study '{study}'"
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"sites {quoted} are not enrolled in study '{study}'"


def narrow_client_targets(
    registry: StudyRegistry | None,
    study: str,
    target_type: str,
    requested: list[str],
    connected: Sequence[str],
) -> list[str]:
    """Resolve the client targets of a command and narrow them to the study's sites (§6.1).

    The caller has already checked that every requested name is connected and that a
    ``client`` command has someone to talk to; this applies the study filter. No filter
    applies in the ``default`` study, without a registry, or for a study the registry lacks.

    Args:
        registry: the server's registry, or None.
        study: the session's study.
        target_type: ``"server"``, ``"client"`` or ``"all"``.
        requested: the client names the command named (``[]`` = every connected client).
        connected: the connected client names.

    Returns:
        The client names to address, in order (``[]`` for ``server``). With ``all``,
        unenrolled sites are dropped silently.

    Raises:
        InvalidTarget: a ``client`` command whose targets are all unenrolled (the message
            names them: ``site 'x' is not enrolled in study 'y'`` or ``sites 'a', 'b' ...``).
    """
    if target_type == "server":
        return []
    clients = list(requested) if target_type == "client" and requested else list(connected)
    enrolled = enrolled_sites(registry, study) if study != DEFAULT_STUDY else None
    if enrolled is None:
        return clients
    kept = [name for name in clients if name in enrolled]
    if target_type == "client" and not kept:
        raise InvalidTarget(_not_enrolled_message(clients, study))
    return kept


# --- server commands ------------------------------------------------------------------------


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
        new = _registry_from_config(config)
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
