"""Studies: the registry model, its name rules, loading, login scoping and queries (§9).

A study groups sites (by org) and names the users who may log in to it. The registry is a
frozen value; the commands that change it are pure functions in ``study_commands``. This
module holds what every reader of the registry shares: the model and its document format
(§9.2), the name patterns, the login rule (§9.1), the client-side argument checks of the
study methods (§9.1, §9.4) and the queries scheduling and targeting ask (§6.1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from flare_core.errors import (
    AuthenticationError,
    InvalidArgumentError,
    InvalidTarget,
)
from flare_core.info import TargetType
from flare_core.nesting import NestingTooDeep, decode_json
from flare_core.principal import Principal

__all__ = [
    "DEFAULT_STUDY",
    "ORG_NAME_PATTERN",
    "SITE_NAME_PATTERN",
    "STUDY_NAME_PATTERN",
    "Study",
    "StudyRegistry",
    "StudyRegistryError",
    "check_login_study",
    "check_name_arg",
    "check_session_study",
    "check_site_args",
    "dump_registry",
    "enrolled_sites",
    "is_visible",
    "narrow_client_targets",
    "parse_registry",
    "registry_from_config",
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


def registry_from_config(config: object) -> StudyRegistry:
    """Apply the §9.2 loading rules to a decoded registry document.

    ``parse_registry`` reads a document through it, and every study command rebuilds its
    result through it, so a command can never save a registry the loader would refuse.

    Args:
        config: the decoded document (``{"format_version": "1.0", "studies": {...}}``).

    Returns:
        The registry, with duplicate admins dropped.

    Raises:
        StudyRegistryError: a missing or wrong ``format_version``, wrongly typed parts, or a
            site listed under two orgs.
    """
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
    return registry_from_config(config)


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
    if target_type == TargetType.SERVER:
        return []
    clients = list(requested) if target_type == TargetType.CLIENT and requested else list(connected)
    enrolled = enrolled_sites(registry, study) if study != DEFAULT_STUDY else None
    if enrolled is None:
        return clients
    kept = [name for name in clients if name in enrolled]
    if target_type == TargetType.CLIENT and not kept:
        raise InvalidTarget(_not_enrolled_message(clients, study))
    return kept
