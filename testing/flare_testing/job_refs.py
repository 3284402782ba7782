"""Ways for ``FakeFlare``'s controls to name a job without knowing its id yet.

``fake.fail_job(NEXT_JOB)`` fails whatever job is submitted next (the job "my function
submits"), ``fake.finish_job(JobName("train"))`` ends the newest job of that name, and
``fake.hold_job(SubmitToken("nightly"))`` the job submitted with that token. A plain str is
still a job id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = ["NEXT_JOB", "JobName", "JobRef", "NextJob", "SubmitToken"]


class NextJob:
    """The job submitted (or cloned) next, from any session of the fake."""

    _instance: NextJob | None = None

    def __new__(cls) -> NextJob:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEXT_JOB"


NEXT_JOB: Final = NextJob()
"""The control applies to the next job submitted; it is remembered until then."""


@dataclass(frozen=True)
class JobName:
    """The newest job whose meta ``name`` is ``name`` (in any study)."""

    name: str


@dataclass(frozen=True)
class SubmitToken:
    """The job a session submitted with the submit token ``token``."""

    token: str


JobRef: TypeAlias = str | JobName | SubmitToken | NextJob
"""What a control accepts: a job id, ``JobName``, ``SubmitToken`` or ``NEXT_JOB``."""
