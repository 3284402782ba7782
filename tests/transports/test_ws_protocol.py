"""The sans-I/O WebSocket protocol: frames on the wire, credit, and the waiters' wake rule.

No sockets and no clock: every state machine is driven by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgspec
import pytest

from flare_adapters.memory.clock import VirtualClock
from flare_adapters.memory.transport import MemoryTransport
from flare_adapters.ws import protocol
from flare_adapters.ws.protocol import (
    AckFrame,
    CallFrame,
    CancelFrame,
    ChunkFrame,
    ClientFrame,
    Credit,
    DownloadFrame,
    EventFrame,
    FrameCodec,
    LoginFrame,
    ReplyFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    UploadEndFrame,
    UploadStartFrame,
    WakeRule,
    wire_job_id,
)
from flare_core.commands import Command, GetJobMeta, ListJobs
from flare_core.events import JobEvent
from flare_core.principal import Grant, Principal
from flare_core.replies import Ok, Problem, Reply
from flare_core.steps import ANY_JOB

JOB = "job-1"
OTHER = "job-2"

# --- frames -------------------------------------------------------------------------------------

# The exact JSON the client sent before the frames were structs: the wire must not move.
CLIENT_FRAMES_ON_THE_WIRE = [
    (
        LoginFrame(id=1, user="u", api_key=None, study="s"),
        b'{"id":1,"op":"login","user":"u","api_key":null,"study":"s"}',
    ),
    (
        CallFrame(id=2, command=GetJobMeta(job_id=JOB)),
        b'{"id":2,"op":"call","command":{"op":"get_job_meta","job_id":"job-1"}}',
    ),
    (
        # Any command will do: the frame's own keys are pinned here, not the command's.
        UploadStartFrame(id=3, command=GetJobMeta(job_id=JOB)),
        b'{"id":3,"op":"upload_start","command":{"op":"get_job_meta","job_id":"job-1"}}',
    ),
    (ChunkFrame(id=3, data=b"zip"), b'{"id":3,"op":"chunk","data":"emlw"}'),
    (UploadEndFrame(id=3), b'{"id":3,"op":"upload_end"}'),
    (
        DownloadFrame(id=4, command=GetJobMeta(job_id=JOB), window=8),
        b'{"id":4,"op":"download","command":{"op":"get_job_meta","job_id":"job-1"},"window":8}',
    ),
    (AckFrame(id=4, n=1), b'{"id":4,"op":"ack","n":1}'),
    (CancelFrame(id=5), b'{"id":5,"op":"cancel"}'),
    (SubscribeFrame(id=6, job_id=None), b'{"id":6,"op":"subscribe","job_id":null}'),
    (UnsubscribeFrame(id=7, job_id=JOB), b'{"id":7,"op":"unsubscribe","job_id":"job-1"}'),
]


@pytest.mark.parametrize(("frame", "wire"), CLIENT_FRAMES_ON_THE_WIRE)
def test_client_frames_keep_their_json(frame: msgspec.Struct, wire: bytes) -> None:
    assert FrameCodec("json").encode(frame) == wire


@pytest.mark.parametrize(("frame", "wire"), CLIENT_FRAMES_ON_THE_WIRE)
def test_the_server_reads_every_client_frame(frame: msgspec.Struct, wire: bytes) -> None:
    for encoding in ("json", "msgpack"):
        codec = FrameCodec(encoding)
        decoded = codec.decode_client(codec.encode(frame))
        assert isinstance(decoded, ClientFrame)
        assert decoded.id == msgspec.structs.asdict(frame)["id"]
        assert decoded.op == msgspec.structs.asdict(frame)["op"]


def test_the_server_decodes_a_command_left_raw() -> None:
    codec = FrameCodec("msgpack")
    decoded = codec.decode_client(codec.encode(CallFrame(id=9, command=ListJobs())))
    assert msgspec.msgpack.decode(decoded.command)["op"] == "list_jobs"


def test_server_frames_read_back_on_the_client() -> None:
    event = JobEvent(job_id=JOB, study="s", status="RUNNING")
    for encoding in ("json", "msgpack"):
        codec = FrameCodec(encoding)
        reply = codec.decode_server(codec.encode(ReplyFrame(id=1, reply=Ok(value=3))))
        assert (reply.id, reply.reply) == (1, Ok(value=3))
        problem = Problem(code="cancelled", error="InternalError", message="m")
        assert codec.decode_server(codec.encode(ReplyFrame(id=2, reply=problem))).reply == problem
        chunk = codec.decode_server(codec.encode(ChunkFrame(id=3, data=b"\x00\xff")))
        assert (chunk.op, chunk.data, chunk.reply) == ("chunk", b"\x00\xff", None)
        ack = codec.decode_server(codec.encode(AckFrame(id=4, n=8)))
        assert (ack.op, ack.n) == ("ack", 8)
        pushed = codec.decode_server(codec.encode(EventFrame(event=event)))
        assert (pushed.id, pushed.event) == (None, event)


def test_reply_and_event_frames_keep_their_json() -> None:
    codec = FrameCodec("json")
    assert codec.encode(ReplyFrame(id=1, reply=Ok(value=None))) == (
        b'{"id":1,"reply":{"kind":"ok","value":null}}'
    )
    event = JobEvent(job_id=JOB, study="s", status="RUNNING")
    assert codec.encode(EventFrame(event=event)).startswith(b'{"event":{"job_id":"job-1"')


def test_subprotocols_choose_the_codec() -> None:
    assert FrameCodec.for_subprotocol(protocol.MSGPACK_PROTOCOL).text is False
    assert FrameCodec.for_subprotocol(protocol.JSON_PROTOCOL).text is True
    assert FrameCodec.for_subprotocol(None).subprotocol == protocol.JSON_PROTOCOL
    assert protocol.SUBPROTOCOLS == ("flare-core.v1.json", "flare-core.v1.msgpack")


def test_one_vocabulary_for_both_ends() -> None:
    # The subprotocol names and close codes are written once, in protocol.py: neither end
    # spells them again (they once were, in the client and in the server).
    package = Path(protocol.__file__).resolve().parents[1]
    spelled = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "protocol.py"
        and re.search(r'"flare-core\.v1\.(json|msgpack)"|\b1008\b', path.read_text())
    }
    assert spelled == set()
    assert {
        "login",
        "call",
        "upload_start",
        "download",
        "subscribe",
        "unsubscribe",
    } == protocol.REQUEST_OPS


def test_a_study_wide_subscription_is_null_on_the_wire() -> None:
    assert wire_job_id(ANY_JOB) is None
    assert wire_job_id(JOB) == JOB


# --- credit -------------------------------------------------------------------------------------


def test_credit_allows_exactly_the_window_then_waits_for_acks() -> None:
    credit = Credit(3)
    assert [credit.spend() for _ in range(4)] == [True, True, True, False]
    assert credit.available == 0
    credit.grant(1)
    assert credit.spend() is True
    assert credit.spend() is False


def test_credit_starts_empty_when_the_window_is_zero() -> None:
    credit = Credit(0)
    assert credit.spend() is False
    credit.grant(2)
    assert credit.available == 2
    assert [credit.spend(), credit.spend(), credit.spend()] == [True, True, False]


def test_acks_accumulate() -> None:
    credit = Credit(1)
    credit.grant(2)
    credit.grant(3)
    assert credit.available == 6


@pytest.mark.parametrize("n", [0, -5])
def test_a_grant_that_is_not_positive_grants_nothing(n: int) -> None:
    credit = Credit(1)
    credit.grant(n)
    assert credit.available == 1
    assert credit.spend() is True
    assert credit.spend() is False


def test_a_failed_spend_takes_nothing() -> None:
    credit = Credit(0)
    for _ in range(3):
        assert credit.spend() is False
    credit.grant(1)
    assert credit.spend() is True


# --- the wake rule ------------------------------------------------------------------------------


def test_an_event_is_news_once() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    assert rule.heard(JOB) is True
    assert rule.news(JOB) is True
    assert rule.news(JOB) is False


def test_several_events_wake_a_waiter_once() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    rule.heard(JOB)
    rule.heard(JOB)
    assert rule.news(JOB) is True
    assert rule.news(JOB) is False


def test_nothing_heard_is_no_news() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    assert rule.news(JOB) is False
    assert rule.news(OTHER) is False


def test_keys_not_listened_to_are_not_counted() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    assert rule.heard(OTHER) is False
    assert rule.listening(OTHER) is False
    assert rule.news(OTHER) is False
    assert rule.news(JOB) is False


def test_events_before_listening_are_no_news() -> None:
    rule = WakeRule()
    rule.heard(JOB)
    rule.listen(JOB)
    assert rule.news(JOB) is False


def test_a_study_wide_waiter_hears_every_job() -> None:
    rule = WakeRule()
    rule.listen(ANY_JOB)
    assert rule.heard(JOB) is True
    assert rule.news(JOB) is False  # not listened to by itself
    assert rule.news(ANY_JOB) is True
    assert rule.news(ANY_JOB) is False


def test_news_of_one_key_leaves_the_others() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    rule.listen(ANY_JOB)
    rule.heard(JOB)
    assert rule.news(ANY_JOB) is True
    assert rule.news(JOB) is True


def test_a_command_about_the_job_has_seen_its_events() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    rule.heard(JOB)
    rule.asked(JOB)
    assert rule.news(JOB) is False
    rule.heard(JOB)  # after the command was sent: its reply may not reflect it
    assert rule.news(JOB) is True


def test_a_command_about_another_job_leaves_the_news() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    rule.listen(OTHER)
    rule.listen(ANY_JOB)
    rule.heard(JOB)
    rule.asked(OTHER)
    assert rule.news(JOB) is True
    assert rule.news(ANY_JOB) is True


def test_a_command_about_no_job_has_seen_everything() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    rule.listen(ANY_JOB)
    rule.heard(JOB)
    rule.asked(None)
    assert rule.news(JOB) is False
    assert rule.news(ANY_JOB) is False


def test_a_reconnect_is_news_for_every_key() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    rule.listen(ANY_JOB)
    rule.missed()
    assert rule.news(JOB) is True
    assert rule.news(ANY_JOB) is True
    assert rule.news(OTHER) is False


def test_a_forgotten_key_is_no_longer_counted() -> None:
    rule = WakeRule()
    rule.listen(JOB)
    rule.heard(JOB)
    rule.forget(JOB)
    assert rule.news(JOB) is False
    assert rule.heard(JOB) is False
    rule.missed()
    assert rule.news(JOB) is False


def test_every_job_counts_without_listening() -> None:
    rule = WakeRule(every_job=True)
    assert rule.listening(JOB) is True
    assert rule.heard(JOB) is True
    assert rule.news(JOB) is True
    assert rule.news(JOB) is False
    rule.heard(OTHER)
    assert rule.news(ANY_JOB) is True
    assert rule.news(ANY_JOB) is False
    assert rule.news(OTHER) is True


def test_every_job_follows_the_same_command_rule() -> None:
    rule = WakeRule(every_job=True)
    rule.heard(JOB)
    rule.heard(OTHER)
    rule.asked(JOB)
    assert rule.news(JOB) is False
    assert rule.news(OTHER) is True
    rule.heard(JOB)
    rule.asked(None)
    assert rule.news(JOB) is False
    assert rule.news(ANY_JOB) is False


class _EventfulBackend:
    """Just enough ``Backend`` for a memory transport whose job events the test raises."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[JobEvent], None]] = []
        self.principal = Principal(name="u", org="o", role="project_admin")

    def login(self, user: str, api_key: str | None, study: str) -> Grant:
        return Grant(token="t", principal=self.principal, idle_timeout=60.0)

    def authenticate(self, token: str) -> Principal:
        return self.principal

    def logout(self, token: str) -> None:
        return None

    def handle(
        self, principal: Principal, command: Command, upload: Iterable[bytes] | None = None
    ) -> Reply:
        return Ok(value=None)

    def open_download(self, principal: Principal, download_id: str) -> Iterator[bytes]:
        return iter(())

    def subscribe(self, listener: Callable[[JobEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def publish(self, job_id: str) -> None:
        for listener in list(self.listeners):
            listener(JobEvent(job_id=job_id, study="default", status="RUNNING"))


def test_the_memory_transport_wakes_by_the_same_rule() -> None:
    backend = _EventfulBackend()
    transport = MemoryTransport(backend, VirtualClock(), user="u")
    backend.publish(JOB)
    transport.call(GetJobMeta(job_id=OTHER), None)  # about another job: JOB's news stays
    assert transport.sleep(2.0, JOB) is True
    assert transport.monotonic() == 0.0
    backend.publish(JOB)
    transport.call(GetJobMeta(job_id=JOB), None)  # its reply reflects the event
    assert transport.sleep(2.0, JOB) is False
    assert transport.monotonic() == 2.0
    backend.publish(OTHER)
    assert transport.sleep(2.0, ANY_JOB) is True
    transport.call(ListJobs(), None)  # about no job: every event was seen
    backend.publish(OTHER)
    transport.call(ListJobs(), None)
    assert transport.sleep(2.0, OTHER) is False
