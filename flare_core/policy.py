"""The authorization policy: which role may exercise which right, under which condition.

The policy is data, in the shape of the reference's ``authorization.json`` ``permissions``
table (§10.3): role -> a condition for every right (a str or list), or role -> {right or
category -> condition}. Rights are command names (``Command.right``); categories group them
(``CATEGORIES``); an explicit right overrides its category; no entry means deny.

Conditions: ``any``/``all`` (true), ``none``/``no`` (false), ``o:site`` (the user's org is the
server's org), ``o:submitter``/``n:submitter`` (the user's org/name is the job submitter's),
``o:<org>``/``n:<name>`` (literal; ``org:``/``name:`` also work), ``not <condition>`` (a
blocker) and lists (any allowing condition allows, any blocker denies). Names, orgs, roles,
rights and conditions are compared lower-cased with whitespace runs collapsed.

The study commands do not use the policy; they have fixed role gates (§9.5),
``STUDY_ROLE_GATES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgspec

from flare_core.errors import AuthorizationError
from flare_core.principal import Principal

__all__ = [
    "CATEGORIES",
    "DEFAULT_POLICY",
    "STUDY_ROLE_GATES",
    "Policy",
    "PolicyError",
    "Submitter",
    "check_right",
    "parse_policy",
    "policy_document",
    "require_right",
    "require_study_role",
]

Condition = str | list[str]
RoleRules = str | list[str] | dict[str, str | list[str]]

CATEGORIES: Mapping[str, frozenset[str]] = {
    "manage_job": frozenset(
        {"abort", "abort_job", "delete_job", "delete_workspace", "configure_job_log"}
    ),
    "view": frozenset(
        {
            "check_status",
            "show_scopes",
            "show_stats",
            "reset_errors",
            "show_errors",
            "list_jobs",
            "get_job_meta",
        }
    ),
    "operate": frozenset(
        {
            "sys_info",
            "report_resources",
            "report_env",
            "restart",
            "shutdown",
            "remove_client",
            "disable_client",
            "enable_client",
            "set_timeout",
            "call",
            "configure_site_log",
        }
    ),
    "shell_commands": frozenset({"cat", "grep", "head", "ls", "pwd", "tail"}),
    "download_job": frozenset({"download_job"}),
}
"""Right categories and their member rights (the reference's ``COMMAND_CATEGORIES``)."""

_CATEGORY_OF: dict[str, str] = {
    right: category for category, rights in CATEGORIES.items() for right in rights
}

STUDY_ROLE_GATES: Mapping[str, frozenset[str]] = {
    "register_study": frozenset({"project_admin", "org_admin"}),
    "add_study_site": frozenset({"project_admin", "org_admin"}),
    "remove_study_site": frozenset({"project_admin", "org_admin"}),
    "show_study": frozenset({"project_admin", "org_admin"}),
    "add_study_user": frozenset({"project_admin", "org_admin"}),
    "remove_study_user": frozenset({"project_admin", "org_admin"}),
    "remove_study": frozenset({"project_admin"}),
    "list_studies": frozenset({"project_admin", "org_admin", "lead", "member"}),
}
"""Study command right -> the certificate roles allowed to call it (§9.5; exact role names)."""


class PolicyError(ValueError):
    """A policy document violates the policy format."""


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """An authorization policy (the reference's ``authorization.json`` ``permissions``).

    Attributes:
        roles: role -> condition for every right (str or list), or role -> {right or
            category -> condition}. Build one with ``parse_policy`` to have it validated.
    """

    roles: dict[str, RoleRules]


class Submitter(msgspec.Struct, frozen=True, kw_only=True):
    """The submitter of the job a command addresses (the job's ``submitter_*`` meta keys)."""

    name: str = ""
    org: str = ""
    role: str = ""

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Submitter:
        """The submitter recorded in a job's meta (missing or non-str keys become ``""``)."""

        def text(key: str) -> str:
            value = meta.get(key)
            return value if isinstance(value, str) else ""

        return cls(
            name=text("submitter_name"), org=text("submitter_org"), role=text("submitter_role")
        )


# Every request is authorised, and a check normalises a dozen names and re-parses its
# condition: a third of a job read's service time before these two caches. Both map a str to
# an immutable result, so a cached answer is the answer; the bounds keep hostile names from
# growing them (past them, the least recently used entries go).
@lru_cache(maxsize=4096)
def _norm(value: str) -> str:
    return " ".join(value.lower().split())


# --- conditions ----------------------------------------------------------------------------


class _Facts(msgspec.Struct, frozen=True):
    user_name: str
    user_org: str
    submitter_name: str
    submitter_org: str
    site_org: str


def _parse_one(expression: object) -> tuple[bool, tuple[str, str]]:
    """Parse one condition into ``(blocked, (kind, target))``; kind is any/none/org/name."""
    if not isinstance(expression, str):
        raise PolicyError(f"bad condition expression type - expect str but got {type(expression)}")
    return _parse_text(expression)


@lru_cache(maxsize=1024)
def _parse_text(expression: str) -> tuple[bool, tuple[str, str]]:
    # lru_cache keeps returns, not raises: a bad expression is parsed (and refused) each time.
    text = _norm(expression)
    blocked = False
    words = text.split()
    if len(words) == 2 and words[0] == "not":
        blocked, text = True, words[1]
    if text in ("all", "any"):
        return blocked, ("any", "")
    if text in ("none", "no"):
        return blocked, ("none", "")
    parts = text.split(":")
    if len(parts) != 2:
        raise PolicyError(f'bad condition expression "{expression}"')
    kind, target = _norm(parts[0]), _norm(parts[1])
    if kind in ("o", "org"):
        return blocked, ("org", target)
    if kind in ("n", "name"):
        return blocked, ("name", target)
    raise PolicyError(f'bad condition expression "{expression}": invalid type "{kind}"')


def _parse_condition(condition: object) -> list[tuple[bool, tuple[str, str]]]:
    if isinstance(condition, str):
        return [_parse_one(condition)]
    if isinstance(condition, list):
        if not condition:
            raise PolicyError("bad condition expression - no conditions specified")
        return [_parse_one(item) for item in condition]
    raise PolicyError(
        f"bad condition expression type - expect str or list but got {type(condition)}"
    )


def _matches(test: tuple[str, str], facts: _Facts) -> bool:
    kind, target = test
    if kind == "any":
        return True
    if kind == "org":
        if target == "site":
            return facts.user_org == facts.site_org
        if target == "submitter":
            return facts.user_org == facts.submitter_org
        return facts.user_org == target
    if kind == "name":
        if target == "submitter":
            return facts.user_name == facts.submitter_name
        return facts.user_name == target
    return False  # "none"


def _evaluate(condition: object, facts: _Facts) -> bool:
    try:
        tests = _parse_condition(condition)
    except PolicyError:
        return False  # fail closed on a policy that was not validated by parse_policy
    if any(_matches(test, facts) for blocked, test in tests if blocked):
        return False
    allowing = [test for blocked, test in tests if not blocked]
    if not allowing:
        return True  # only blockers were given, and none matched
    return any(_matches(test, facts) for test in allowing)


# --- lookup ---------------------------------------------------------------------------------


def _role_rules(policy: Policy, role: str) -> RoleRules | None:
    found: RoleRules | None = None
    for name, rules in policy.roles.items():
        if _norm(name) == role:
            found = rules  # a later duplicate wins, as in the reference's table
    return found


def _condition_for(rules: RoleRules, right: str) -> object | None:
    if not isinstance(rules, dict):
        return rules  # one condition for every right (the "*" wildcard)
    explicit: object | None = None
    by_category: object | None = None
    category = _CATEGORY_OF.get(right)
    for key, condition in rules.items():
        name = _norm(key)
        if name == right:
            explicit = condition
        elif category is not None and name == category:
            by_category = condition
    return explicit if explicit is not None else by_category


def check_right(
    policy: Policy,
    principal: Principal,
    right: str,
    *,
    submitter: Submitter | None = None,
    site_org: str = "",
) -> tuple[bool, str]:
    """Decide whether ``principal`` may exercise ``right`` (§10.3).

    Args:
        policy: the policy to apply.
        principal: the caller; its certificate role is the role looked up.
        right: the right (command name), e.g. ``"abort_job"``.
        submitter: the addressed job's submitter, for job-scoped rights (``o:submitter``,
            ``n:submitter``); None for commands that address no job.
        site_org: the org of the site that authorises (the server's org, for ``o:site``).

    Returns:
        ``(True, "")``, or ``(False, "user '<name>' is not authorized for '<right>'")``.
        The role ``super`` always passes; an unknown role or right is denied.
    """
    role = _norm(principal.role)
    if role == "super":
        return True, ""
    rules = _role_rules(policy, role)
    condition = None if rules is None else _condition_for(rules, _norm(right))
    if condition is not None:
        who = submitter or Submitter()
        facts = _Facts(
            user_name=_norm(principal.name),
            user_org=_norm(principal.org),
            submitter_name=_norm(who.name),
            submitter_org=_norm(who.org),
            site_org=_norm(site_org),
        )
        if _evaluate(condition, facts):
            return True, ""
    return False, f"user '{_norm(principal.name)}' is not authorized for '{right}'"


def require_right(
    policy: Policy,
    principal: Principal,
    right: str,
    *,
    submitter: Submitter | None = None,
    site_org: str = "",
) -> None:
    """Like ``check_right``, but raise on denial.

    Raises:
        AuthorizationError: the policy denies the right; the message is ``check_right``'s reason.
    """
    allowed, reason = check_right(policy, principal, right, submitter=submitter, site_org=site_org)
    if not allowed:
        raise AuthorizationError(reason)


def require_study_role(principal: Principal, right: str) -> None:
    """Apply the fixed role gate of a study command (§9.5; the policy is not consulted).

    Args:
        principal: the caller; its certificate role is compared exactly.
        right: the study command's right, e.g. ``"show_study"``.

    Raises:
        AuthorizationError: the role may not call the command, or ``right`` is not a study
            command.
    """
    if principal.role not in STUDY_ROLE_GATES.get(right, frozenset()):
        raise AuthorizationError(
            f"user '{principal.name}' with role '{principal.role}' is not authorized for '{right}'"
        )


# --- documents -------------------------------------------------------------------------------


def parse_policy(data: Mapping[str, Any]) -> Policy:
    """Validate a policy document and build the ``Policy``.

    Two shapes are accepted: the reference's ``authorization.json``
    (``{"format_version": "1.0", "permissions": {...}}``) and the encoded ``Policy`` struct
    (``{"roles": {...}}``). Role and right names are normalised (lower case, single spaces).

    Args:
        data: the decoded document.

    Returns:
        The policy.

    Raises:
        PolicyError: (a ValueError) the document breaks the format; the message says where.
    """
    if not isinstance(data, Mapping):
        raise PolicyError(f"invalid policy config: must be a dict but got {type(data)}")
    if not data:
        raise PolicyError("invalid policy config: policy definition is empty")
    if "roles" in data and "permissions" not in data:
        permissions = data["roles"]
    else:
        if data.get("format_version") != "1.0":
            raise PolicyError(
                "invalid policy config: missing or invalid policy format_version: must be 1.0"
            )
        permissions = data.get("permissions")
    if not permissions:
        raise PolicyError("invalid policy config: missing permissions")
    if not isinstance(permissions, Mapping):
        raise PolicyError(
            f"invalid policy config: invalid permissions: expect a dict but got {type(permissions)}"
        )
    roles: dict[str, RoleRules] = {}
    for role, rules in permissions.items():
        if not isinstance(role, str):
            raise PolicyError(
                f"invalid policy config: bad role name: expect a str but got {role!r}"
            )
        try:
            roles[_norm(role)] = _parse_rules(rules)
        except PolicyError as exc:
            raise PolicyError(f"invalid policy config: role '{role}': {exc}") from None
    return Policy(roles=roles)


def _parse_rules(rules: object) -> RoleRules:
    if isinstance(rules, str | list):
        _parse_condition(rules)
        return list(rules) if isinstance(rules, list) else rules
    if not isinstance(rules, Mapping):
        raise PolicyError(f"bad right config: expect a dict but got {type(rules)}")
    parsed: dict[str, str | list[str]] = {}
    for right, condition in rules.items():
        if not isinstance(right, str):
            raise PolicyError(f"bad right name: expect a str but got {right!r}")
        _parse_condition(condition)
        parsed[_norm(right)] = list(condition) if isinstance(condition, list) else condition
    return parsed


def policy_document(policy: Policy) -> dict[str, Any]:
    """The reference's ``authorization.json`` document for ``policy``.

    ``parse_policy`` reads it back; a server can store its policy in this form.
    """
    return {"format_version": "1.0", "permissions": msgspec.to_builtins(policy.roles)}


def _default_policy() -> Policy:
    # DECISIONS §19: reading a job's logs and components follows the download_job rule, and
    # report_version is viewable by every role; the rest is the reference's default_authz.
    job_reads = ("get_job_log", "list_job", "download_job_components")
    org_admin: dict[str, str | list[str]] = {
        "submit_job": "none",
        "clone_job": "none",
        "manage_job": "o:submitter",
        "download_job": "o:submitter",
        "view": "any",
        "operate": "o:site",
        "shell_commands": "o:site",
        "byoc": "none",
        "server-predeployed-flwr": "none",
    }
    lead: dict[str, str | list[str]] = {
        "submit_job": "any",
        "clone_job": "n:submitter",
        "manage_job": "n:submitter",
        "download_job": "n:submitter",
        "view": "any",
        "operate": "o:site",
        "shell_commands": "o:site",
        "byoc": "any",
        "server-predeployed-flwr": "none",
    }
    member: dict[str, str | list[str]] = {"view": "any"}
    for rules in (org_admin, lead, member):
        for right in job_reads:
            if "download_job" in rules:
                rules[right] = rules["download_job"]
        rules["report_version"] = rules["view"]
    return parse_policy(
        {
            "format_version": "1.0",
            "permissions": {
                "project_admin": "any",
                "org_admin": org_admin,
                "lead": lead,
                "member": member,
            },
        }
    )


DEFAULT_POLICY: Policy = _default_policy()
"""The reference's default policy with DECISIONS §19 applied."""
