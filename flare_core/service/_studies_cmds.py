"""Study commands (reference §9.5): thin wrappers over the pure ``flare_core.study_commands``.

Each loads the registry, runs the rule (which applies the role gate and raises
``CommandError``/``AuthorizationError``), saves the new registry when it changed, and returns the
payload. Registry changes can unblock or block scheduling, so mutations reschedule.
"""

from __future__ import annotations

from typing import Any

from flare_core import study_commands as rules
from flare_core.commands import (
    AddStudySite,
    AddStudyUser,
    ListStudies,
    RegisterStudy,
    RemoveStudy,
    RemoveStudySite,
    RemoveStudyUser,
    ShowStudy,
)
from flare_core.policy import check_right
from flare_core.principal import Principal
from flare_core.service._core import ServiceCore
from flare_core.service._scheduler import schedule
from flare_core.studies import StudyRegistry

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


def _commit(
    core: ServiceCore, result: tuple[StudyRegistry | None, dict[str, Any]]
) -> dict[str, Any]:
    registry, payload = result
    if registry is not None:
        core.save_registry(registry)
        schedule(core)
    return payload


def register_study(
    core: ServiceCore, principal: Principal, command: RegisterStudy
) -> dict[str, Any]:
    """Create a study or merge sites into it."""
    return _commit(
        core,
        rules.register_study(
            core.registry(),
            principal,
            command.study,
            command.sites,
            command.site_orgs,
            core.site_orgs(),
        ),
    )


def add_study_site(
    core: ServiceCore, principal: Principal, command: AddStudySite
) -> dict[str, Any]:
    """Enrol connected sites in a visible study."""
    return _commit(
        core,
        rules.add_study_site(
            core.registry(),
            principal,
            command.study,
            command.sites,
            command.site_orgs,
            core.site_orgs(),
        ),
    )


def remove_study_site(
    core: ServiceCore, principal: Principal, command: RemoveStudySite
) -> dict[str, Any]:
    """Withdraw sites (online or not) from a visible study."""
    return _commit(
        core,
        rules.remove_study_site(
            core.registry(), principal, command.study, command.sites, command.site_orgs
        ),
    )


def remove_study(core: ServiceCore, principal: Principal, command: RemoveStudy) -> dict[str, Any]:
    """Delete a study that no job (in any status) belongs to."""
    count = core.ports.jobs.count(command.study) if isinstance(command.study, str) else 0
    return _commit(core, rules.remove_study(core.registry(), principal, command.study, count))


def list_studies(core: ServiceCore, principal: Principal, command: ListStudies) -> dict[str, Any]:
    """The studies visible to the caller, with whether the caller may submit jobs."""

    def can_submit() -> tuple[bool, str]:
        return check_right(
            core.config.policy, principal, "submit_job", site_org=core.config.server_org
        )

    return _commit(core, rules.list_studies(core.registry(), principal, can_submit))


def show_study(core: ServiceCore, principal: Principal, command: ShowStudy) -> dict[str, Any]:
    """Describe a visible study."""
    return _commit(core, rules.show_study(core.registry(), principal, command.study))


def add_study_user(
    core: ServiceCore, principal: Principal, command: AddStudyUser
) -> dict[str, Any]:
    """Let a user log in to a visible study."""
    return _commit(
        core, rules.add_study_user(core.registry(), principal, command.study, command.user)
    )


def remove_study_user(
    core: ServiceCore, principal: Principal, command: RemoveStudyUser
) -> dict[str, Any]:
    """Stop a user from logging in to a visible study."""
    return _commit(
        core, rules.remove_study_user(core.registry(), principal, command.study, command.user)
    )
