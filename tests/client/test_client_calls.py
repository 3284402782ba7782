"""The shared call sub-flow: retries (DECISIONS §7), deadlines, reply mapping, timeouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flare_core import (
    AbortJob,
    CloneJob,
    DeleteJob,
    GetJobMeta,
    InternalError,
    InvalidArgumentError,
    JobNotFound,
    ListJobs,
    NoConnection,
    SubmitJob,
    SubmitTokenConflict,
)
from flare_core.flows import FlowContext, RetryPolicy, exchange, unwrap
from flare_core.replies import Reply
from flare_core.steps import Call, Now, Sleep
from tests.client.scripted import (
    ScriptedTransport,
    make_async_session,
    make_session,
    ok,
    problem,
)

JOB = "4f3a1c52-8b7e-4d0a-9c55-0d2f1e6a7b90"
META = {"job_id": JOB, "status": "RUNNING"}


def test_idempotent_read_is_retried_with_reference_backoff(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("down"), NoConnection("down"), ok(META))
    session = make_session(transport, str(tmp_path))
    assert session.get_job_meta(JOB) == META
    assert transport.ops == ["GetJobMeta"] * 3
    assert transport.sleeps == [(0.5, None), (1.0, None)]


def _drive_exchange(
    outcomes: list[Reply | BaseException], clock: list[float], policy: RetryPolicy | None = None
) -> tuple[list[object], Reply | BaseException]:
    """Run ``exchange`` for a read, answering its ``Call`` steps from ``outcomes`` and its
    ``Now`` steps from ``clock``; returns the steps it yielded and its result or exception."""
    ctx = FlowContext("/up", "/down", lambda: "t", retry=policy or RetryPolicy())
    flow = exchange(ctx, Call(command=GetJobMeta(job_id=JOB), timeout=None))
    steps: list[object] = []
    answer: object = None
    thrown: BaseException | None = None
    try:
        while True:
            step = flow.throw(thrown) if thrown is not None else flow.send(answer)
            steps.append(step)
            answer, thrown = None, None
            if isinstance(step, Now):
                answer = clock.pop(0)
            elif isinstance(step, Call):
                outcome = outcomes.pop(0)
                if isinstance(outcome, BaseException):
                    thrown = outcome
                else:
                    answer = outcome
    except StopIteration as stop:
        return steps, stop.value
    except BaseException as exc:
        return steps, exc


def test_exchange_steps_after_each_kind_of_first_attempt() -> None:
    # The first attempt runs outside tenacity: the steps must be the ones tenacity makes.
    call = Call(command=GetJobMeta(job_id=JOB), timeout=None)
    steps, result = _drive_exchange([ok(META)], [100.0])
    assert (steps, result) == ([Now(), call], ok(META))
    down = problem(NoConnection("upstream down"))
    steps, result = _drive_exchange([NoConnection("a"), down, ok(META)], [100.0, 100.1, 100.7])
    assert result == ok(META)
    assert steps == [Now(), call, Now(), Sleep(seconds=0.5), call, Now(), Sleep(seconds=1.0), call]
    steps, result = _drive_exchange([down, NoConnection("b"), NoConnection("c")], [100.0] * 4)
    assert isinstance(result, NoConnection)
    assert str(result) == "c"
    assert steps.count(call) == 3
    assert [s for s in steps if isinstance(s, Sleep)] == [
        Sleep(seconds=0.5),
        Sleep(seconds=1.0),
    ]
    # A first attempt failing past the deadline's reach is not retried.
    steps, result = _drive_exchange([NoConnection("late")], [100.0, 159.8])
    assert isinstance(result, NoConnection)
    assert steps == [Now(), call, Now()]
    # Other failures are never retried, on the first attempt or a later one.
    steps, result = _drive_exchange([ValueError("x")], [100.0])
    assert isinstance(result, ValueError)
    assert steps == [Now(), call]
    steps, result = _drive_exchange([NoConnection("a"), ValueError("y")], [100.0, 100.1])
    assert isinstance(result, ValueError)
    assert steps.count(call) == 2
    # A reply that is a problem, but not a connection failure, is the reply.
    gone = problem(JobNotFound("no such job"))
    assert _drive_exchange([gone], [100.0])[1] == gone


def test_retries_stop_after_three_attempts(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=NoConnection("down"))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(NoConnection, match="down"):
        session.get_job_meta(JOB)
    assert len(transport.sent) == 3
    assert [s for s, _ in transport.sleeps] == [0.5, 1.0]


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda s: s.clone_job(JOB), CloneJob),
        (lambda s: s.delete_job(JOB), DeleteJob),
    ],
)
def test_mutations_are_never_replayed(tmp_path: Path, call: object, kind: type) -> None:
    transport = ScriptedTransport(NoConnection("lost"), ok("unused"))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(NoConnection):
        call(session)  # type: ignore[operator]  # the parametrized lambdas are callables
    assert [type(c) for c in transport.sent] == [kind]
    assert transport.sleeps == []


def test_abort_is_retried(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("x"), ok("Aborted"))
    session = make_session(transport, str(tmp_path))
    abort: Callable[[str], object] = session.abort_job  # DECISIONS §11: returns None
    assert abort(JOB) is None
    assert transport.of(AbortJob) == [AbortJob(job_id=JOB)] * 2
    assert [s for s, _ in transport.sleeps] == [0.5]


def test_server_side_no_connection_problem_is_retried(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(NoConnection("upstream gone")), ok([]))
    session = make_session(transport, str(tmp_path))
    assert session.list_jobs() == []
    assert transport.ops == ["ListJobs", "ListJobs"]


def test_domain_problems_are_not_retried(tmp_path: Path) -> None:
    transport = ScriptedTransport(problem(JobNotFound(f"no such job: {JOB}")))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(JobNotFound, match="no such job"):
        session.get_job_meta(JOB)
    assert len(transport.sent) == 1


def test_retry_stops_at_the_call_deadline(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=NoConnection("slow"))
    transport.latency = 0.4
    policy = RetryPolicy(deadline=1.0)
    session = make_session(transport, str(tmp_path), retry=policy)
    with pytest.raises(NoConnection):
        session.get_job_meta(JOB)
    # 100.4 + 0.5 <= 101.0 allows one retry; 101.3 + 1.0 > 101.0 stops the next.
    assert len(transport.sent) == 2
    assert [s for s, _ in transport.sleeps] == [0.5]


def test_backoff_is_capped(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=NoConnection("down"))
    policy = RetryPolicy(attempts=5, initial_delay=0.5, max_delay=1.5)
    session = make_session(transport, str(tmp_path), retry=policy)
    with pytest.raises(NoConnection):
        session.get_job_meta(JOB)
    assert [s for s, _ in transport.sleeps] == [0.5, 1.0, 1.5, 1.5]
    assert len(transport.sent) == 5


def test_single_attempt_policy_disables_retries(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("down"), ok(META))
    session = make_session(transport, str(tmp_path), retry=RetryPolicy(attempts=1))
    with pytest.raises(NoConnection):
        session.get_job_meta(JOB)
    assert len(transport.sent) == 1


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(InvalidArgumentError):
        RetryPolicy(attempts=0)
    with pytest.raises(InvalidArgumentError):
        RetryPolicy(deadline=0)
    with pytest.raises(InvalidArgumentError):
        RetryPolicy(initial_delay=-1)


def _job_folder(root: Path, name: str = "hello-job") -> Path:
    folder = root / name
    (folder / "app" / "config").mkdir(parents=True)
    (folder / "meta.json").write_text('{"name": "hello"}')
    (folder / "app" / "config" / "config_fed_server.json").write_text("{}")
    return folder


def test_submit_without_token_mints_one_private_token_reused_by_retries(tmp_path: Path) -> None:
    folder = _job_folder(tmp_path)
    transport = ScriptedTransport(NoConnection("lost reply"), ok(JOB))
    session = make_session(transport, str(tmp_path))
    assert session.submit_job(str(folder)) == JOB
    expected = SubmitJob(
        folder_name="hello-job", submit_token="session.fixed", token_scope="session"
    )
    assert transport.sent == [expected, expected]
    assert len(transport.uploaded) == 2
    assert transport.uploaded[0] == transport.uploaded[1]


def test_submit_with_user_token_keeps_user_scope(tmp_path: Path) -> None:
    folder = _job_folder(tmp_path)
    transport = ScriptedTransport(ok(JOB))
    session = make_session(transport, str(tmp_path))
    assert session.submit_job(str(folder), submit_token="retry.01:A_b-c") == JOB
    assert transport.sent == [
        SubmitJob(folder_name="hello-job", submit_token="retry.01:A_b-c", token_scope="user")
    ]


def test_each_submit_call_mints_a_fresh_token(tmp_path: Path) -> None:
    folder = _job_folder(tmp_path)
    transport = ScriptedTransport(default=ok(JOB))
    tokens = iter(["session.a", "session.b"])
    from flare_adapters.session import Session

    session = Session(transport, upload_dir=str(tmp_path), mint_token=lambda: next(tokens))
    session.submit_job(str(folder))
    session.submit_job(str(folder))
    assert [c.submit_token for c in transport.of(SubmitJob)] == ["session.a", "session.b"]


def test_default_private_tokens_are_valid_and_distinct(tmp_path: Path) -> None:
    from flare_adapters.session import mint_session_token
    from flare_core.tokens import validate_submit_token

    first, second = mint_session_token(), mint_session_token()
    assert first != second
    assert validate_submit_token(first) == first


def test_problem_attributes_survive_the_mapping(tmp_path: Path) -> None:
    folder = _job_folder(tmp_path)
    conflict = SubmitTokenConflict("submit token was already used", existing_job_id=JOB)
    transport = ScriptedTransport(problem(conflict))
    session = make_session(transport, str(tmp_path))
    with pytest.raises(SubmitTokenConflict) as info:
        session.submit_job(str(folder), submit_token="t1")
    assert info.value.existing_job_id == JOB


def test_unwrap_rejects_a_non_reply() -> None:
    with pytest.raises(InternalError, match="unexpected reply"):
        unwrap("not a reply")


def test_set_timeout_applies_to_every_request_until_unset(tmp_path: Path) -> None:
    transport = ScriptedTransport(default=ok([]))
    session = make_session(transport, str(tmp_path))
    session.list_jobs()
    session.set_timeout(7)
    session.list_jobs()
    session.unset_timeout()
    session.list_jobs()
    assert transport.timeouts == [None, 7.0, None]
    assert transport.of(ListJobs) == [ListJobs()] * 3


@pytest.mark.parametrize("value", [0, -1.5])
def test_set_timeout_rejects_non_positive_values(tmp_path: Path, value: float) -> None:
    transport = ScriptedTransport()
    session = make_session(transport, str(tmp_path))
    with pytest.raises(InvalidArgumentError):
        session.set_timeout(value)
    assert transport.sent == []


def test_set_timeout_rejects_non_numbers(tmp_path: Path) -> None:
    session = make_session(ScriptedTransport(), str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        session.set_timeout("5")  # type: ignore[arg-type]  # the wrong type is the point


@pytest.mark.asyncio
async def test_async_session_retries_the_same_way(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("a"), NoConnection("b"), ok(META))
    session = make_async_session(transport, str(tmp_path))
    assert await session.get_job_meta(JOB) == META
    assert transport.of(GetJobMeta) == [GetJobMeta(job_id=JOB)] * 3
    assert [s for s, _ in transport.sleeps] == [0.5, 1.0]


@pytest.mark.asyncio
async def test_async_session_never_replays_mutations(tmp_path: Path) -> None:
    transport = ScriptedTransport(NoConnection("lost"))
    session = make_async_session(transport, str(tmp_path))
    with pytest.raises(NoConnection):
        await session.clone_job(JOB)
    assert len(transport.sent) == 1
