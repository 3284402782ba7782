"""The service keeps the study registry it loaded (``ServiceCore.registry``).

Every request of a study's user checks that the user is still a member, and decoding the
registry grows with it, so the service loads it once and keeps it. It is the registry's only
writer: a save replaces what it keeps, and a section that saved it and then raised, or
whose commit failed, forgets it, so the next use reads the store again. A failed request
that saved nothing (an unknown job, a refused right) keeps it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import TracebackType

import pytest

from flare_core import (
    AddStudyUser,
    AuthenticationError,
    GetJobMeta,
    ListJobs,
    Problem,
    RemoveStudyUser,
    SessionExpired,
)
from flare_core.service._core import ServiceCore
from flare_core.studies import StudyRegistry
from tests.service.helpers import ADMIN, LEAD, MEMBER, Harness, count_calls

STUDY = "s1"


def _core(h: Harness) -> ServiceCore:
    core = h.service._core
    assert isinstance(core, ServiceCore)
    return core


def _count_loads(h: Harness, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    return count_calls(monkeypatch, h.system.ports.studies, "load")


def _study_harness() -> Harness:
    h = Harness()
    h.service.add_study(STUDY, {"nvidia": ["site-1", "site-2"]}, [ADMIN, LEAD])
    return h


def test_a_study_users_requests_read_the_registry_once(monkeypatch: pytest.MonkeyPatch) -> None:
    h = _study_harness()
    loads = _count_loads(h, monkeypatch)
    grant = h.service.login(LEAD, LEAD, STUDY)
    for _ in range(20):
        principal = h.service.authenticate(grant.token)
        assert h.ok(principal, ListJobs()) == []
    assert loads() <= 1


def test_a_study_change_applies_to_the_next_request() -> None:
    h = _study_harness()
    with pytest.raises(AuthenticationError, match="is not mapped to study"):
        h.service.login(MEMBER, MEMBER, STUDY)
    h.ok(h.login(ADMIN, STUDY), AddStudyUser(study=STUDY, user=MEMBER))
    grant = h.service.login(MEMBER, MEMBER, STUDY)
    assert h.service.authenticate(grant.token).study == STUDY
    h.ok(h.login(ADMIN, STUDY), RemoveStudyUser(study=STUDY, user=MEMBER))
    with pytest.raises(SessionExpired, match="revoked"):
        h.service.authenticate(grant.token)


def test_a_section_that_saved_and_raised_forgets_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = _study_harness()
    core = _core(h)
    with core.guard():
        kept = core.registry()
    loads = _count_loads(h, monkeypatch)

    def failing_section(save: bool) -> None:
        with core.guard():
            if save:
                core.save_registry(StudyRegistry())
            core.registry()
            raise RuntimeError("the section failed")

    with pytest.raises(RuntimeError):
        failing_section(save=False)
    with core.guard():
        assert core.registry() is kept  # nothing was saved: nothing to doubt
    assert loads() == 0
    with pytest.raises(RuntimeError):
        failing_section(save=True)
    assert loads() == 1  # the section's own read after its save
    with core.guard():
        assert core.registry() == h.system.ports.studies.load()
    assert loads() == 3  # read again after the failure, then the check's own read


def test_a_failed_request_keeps_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    h = _study_harness()
    grant = h.service.login(LEAD, LEAD, STUDY)
    loads = _count_loads(h, monkeypatch)
    principal = h.service.authenticate(grant.token)
    for _ in range(5):
        reply = h.reply(principal, GetJobMeta(job_id="3f2b6c1e-8a4d-4c2b-9f1e-2d3c4b5a6e7f"))
        assert isinstance(reply, Problem)
        assert reply.code == "job_not_found"
        h.service.authenticate(grant.token)
    assert loads() == 0


class _FailingCommit:
    """A service lock whose release fails, as a commit that cannot reach the disk does."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        raise OSError("commit failed")

    def acquire(self, blocking: bool = True, timeout: float = -1, /) -> bool:
        return True

    def release(self) -> None:
        return None


def test_a_failed_commit_forgets_the_saved_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    h = _study_harness()
    core = _core(h)
    with core.guard():
        before = core.registry()
    assert before is not None
    normal = core.ports
    monkeypatch.setattr(core, "ports", dataclasses.replace(normal, lock=_FailingCommit()))

    def section_that_saves() -> None:
        with core.guard():
            core.save_registry(StudyRegistry())
            assert core.registry() == StudyRegistry()  # kept while the section runs

    with pytest.raises(OSError, match="commit failed"):
        section_that_saves()
    # The store is the memory one, so the save did land; what matters is that the service
    # asks the store again rather than trusting what it kept.
    loads = _count_loads(h, monkeypatch)
    monkeypatch.setattr(core, "ports", normal)
    with core.guard():
        assert core.registry() == normal.studies.load()
    assert loads() == 2  # the service's reload, then the check above
