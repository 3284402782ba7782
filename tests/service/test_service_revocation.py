"""Item 3 of issue 10: a revocation takes effect on the session's next request.

Removing a user from a study, removing the study, removing the user or changing their role
ends the sessions that relied on it: the next request answers ``session_expired`` (so a
client that logs in again gets whatever rights are current, or is refused).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flare_core import ListJobs, RemoveStudy, RemoveStudyUser, SessionExpired
from flare_core.principal import Grant
from tests.service.helpers import ADMIN, LEAD, Harness

STUDY = "s1"


def _setup() -> tuple[Harness, Grant]:
    h = Harness()
    h.service.add_study(STUDY, {"nvidia": ["site-1", "site-2"]}, [ADMIN, LEAD])
    grant = h.service.login(LEAD, LEAD, STUDY)
    principal = h.service.authenticate(grant.token)
    assert h.ok(principal, ListJobs()) == []
    return h, grant


def _remove_from_study(h: Harness) -> None:
    h.ok(h.login(ADMIN, STUDY), RemoveStudyUser(study=STUDY, user=LEAD))


def _remove_study(h: Harness) -> None:
    h.ok(h.login(ADMIN), RemoveStudy(study=STUDY))


def _remove_user(h: Harness) -> None:
    assert h.service.remove_user(LEAD)


def _change_role(h: Harness) -> None:
    h.service.add_user(LEAD, "nvidia", "member", LEAD)


REVOCATIONS: dict[str, Callable[[Harness], None]] = {
    "removed from the study": _remove_from_study,
    "study removed": _remove_study,
    "user removed": _remove_user,
    "role changed": _change_role,
}


@pytest.mark.parametrize("revocation", sorted(REVOCATIONS))
def test_the_next_request_after_a_revocation_is_refused(revocation: str) -> None:
    h, grant = _setup()
    REVOCATIONS[revocation](h)
    with pytest.raises(SessionExpired, match="revoked"):
        h.service.authenticate(grant.token)
    # The session is gone for good, not only for one request.
    with pytest.raises(Exception, match="unknown or closed session"):
        h.service.authenticate(grant.token)


def test_a_role_change_applies_once_the_user_logs_in_again() -> None:
    h, _ = _setup()
    _change_role(h)
    grant = h.service.login(LEAD, LEAD, "default")
    assert h.service.authenticate(grant.token).role == "member"


def test_sessions_that_lost_nothing_carry_on() -> None:
    h, grant = _setup()
    h.service.add_user("someone@nvidia.com", "nvidia", "lead", "key")
    assert h.service.authenticate(grant.token).study == STUDY
