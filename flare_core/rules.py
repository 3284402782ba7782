"""The domain rules, for tools that want them without a server.

Everything here is pure: values in, decisions out. The session flows and ``AdminService`` use
these same functions; this module only gathers the ones worth calling directly.
"""

from flare_core.archive import ArchiveView, is_safe_member
from flare_core.jobdef import JobDefinition, check_enrollment, validate_job_definition
from flare_core.lifecycle import (
    TRANSITIONS,
    JobOp,
    Trigger,
    check_operation,
    is_terminal,
    plan_abort,
    state_diagram,
    transition,
)
from flare_core.listing import build_list_jobs, select_jobs
from flare_core.policy import DEFAULT_POLICY, Policy, Submitter, check_right, parse_policy
from flare_core.studies import Study, StudyRegistry, parse_registry
from flare_core.tokens import (
    Conflict,
    Create,
    Decision,
    Deleted,
    Recover,
    Replay,
    TokenRecord,
    TokenScope,
    content_hash,
    decide,
    new_record,
    tombstone,
    validate_submit_token,
)

__all__ = [
    "DEFAULT_POLICY",
    "TRANSITIONS",
    "ArchiveView",
    "Conflict",
    "Create",
    "Decision",
    "Deleted",
    "JobDefinition",
    "JobOp",
    "Policy",
    "Recover",
    "Replay",
    "Study",
    "StudyRegistry",
    "Submitter",
    "TokenRecord",
    "TokenScope",
    "Trigger",
    "build_list_jobs",
    "check_enrollment",
    "check_operation",
    "check_right",
    "content_hash",
    "decide",
    "is_safe_member",
    "is_terminal",
    "new_record",
    "parse_policy",
    "parse_registry",
    "plan_abort",
    "select_jobs",
    "state_diagram",
    "tombstone",
    "transition",
    "validate_job_definition",
    "validate_submit_token",
]
