"""``list_jobs`` reads a study in store pages (issue 12): a listing longer than a page is a
``Rows`` reply read as it is sent, and a limited ``mine_only`` listing reads only the pages
it needs. Every shape gives exactly what ``select_jobs`` over the whole study gives."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from flare_adapters.server.rows import reply_pieces
from flare_adapters.sqlite.db import Database
from flare_adapters.sqlite.stores import SqliteJobStore
from flare_core import ListJobs, Ok, Rows
from flare_core.listing import select_jobs, shape_rows
from flare_core.replies import whole
from flare_core.service._jobs import scan_study
from flare_core.service.ports import JobPage, JobStore
from tests.service.helpers import ADMIN, MEMBER, Harness

PAGE = 3


def _meta(n: int, submitter: str = ADMIN, study: str = "default") -> dict[str, Any]:
    return {
        "job_id": f"00000000-0000-4000-8000-{n:012d}",
        "name": f"{'alpha' if n % 3 else 'beta'}-{n}",
        "status": "FINISHED:COMPLETED",
        "submit_time": 1_764_583_200.0 + n // 2,  # pairs share an instant
        "submit_time_iso": "2025-12-01T10:00:00+00:00",
        "submitter_name": submitter,
        "study": study,
        "payload": {"rounds": list(range(n % 4))},
    }


class Counted:
    """The harness's job store, counting its ``page`` and ``query`` calls."""

    def __init__(self, h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pages = 0
        self.queries = 0
        jobs = h.system.ports.jobs
        page, query = jobs.page, jobs.query

        def counted_page(**options: Any) -> JobPage:
            self.pages += 1
            return page(**options)

        def counted_query(**options: Any) -> list[dict[str, Any]]:
            self.queries += 1
            return query(**options)

        monkeypatch.setattr(jobs, "page", counted_page)
        monkeypatch.setattr(jobs, "query", counted_query)


def _harness(count: int) -> Harness:
    h = Harness(list_page_size=PAGE)
    for n in range(count):
        h.system.ports.jobs.add(_meta(n, submitter=MEMBER if n % 2 else ADMIN))
    h.system.ports.jobs.add(_meta(count, study="other"))
    return h


def _reference(h: Harness, command: ListJobs) -> list[dict[str, Any]]:
    everything = h.system.ports.jobs.query(study="default")
    return select_jobs(everything, command, study="default", caller_name=ADMIN, now=h.clock.time())


COMMANDS = [
    ListJobs(),
    ListJobs(detailed=True),
    ListJobs(reverse=True),
    ListJobs(mine_only=True),
    ListJobs(name_prefix="ALPHA"),
    ListJobs(id_prefix="00000000-0000-4000-8000-00000000001", detailed=True, reverse=True),
    ListJobs(mine_only=True, limit=2),
    ListJobs(mine_only=True, limit=4, reverse=True),
    ListJobs(mine_only=True, limit=50, name_prefix="beta"),
    ListJobs(limit=4),
]


@pytest.mark.parametrize("command", COMMANDS, ids=repr)
def test_every_listing_is_what_select_jobs_gives_over_the_whole_study(command: ListJobs) -> None:
    h = _harness(17)
    reply = whole(h.reply(h.login(), command))
    assert isinstance(reply, Ok)
    assert reply.value == _reference(h, command)


def test_a_listing_longer_than_a_page_is_read_as_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = _harness(10)
    counted = Counted(h, monkeypatch)
    reply = h.reply(h.login(), ListJobs(detailed=True))
    assert isinstance(reply, Ok)
    assert isinstance(reply.value, Rows)
    # The service read one page more than the first (to know the listing is longer) ...
    assert (counted.pages, counted.queries) == (2, 0)
    rows = list(reply.value)
    # ... and the rest was read as the rows were taken: every page once, no whole query.
    assert (counted.pages, counted.queries) == (4, 0)
    assert rows == _reference(h, ListJobs(detailed=True))
    with pytest.raises(RuntimeError, match="only once"):
        list(reply.value)


def test_a_listing_within_a_page_is_a_plain_list(monkeypatch: pytest.MonkeyPatch) -> None:
    h = _harness(PAGE)
    counted = Counted(h, monkeypatch)
    value = h.ok(h.login(), ListJobs())
    assert isinstance(value, list)
    assert len(value) == PAGE
    assert counted.pages == 2  # a full page's cursor: one more (empty) page ends it


def test_a_limited_mine_only_listing_reads_the_newest_pages_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = _harness(40)
    counted = Counted(h, monkeypatch)
    value = h.ok(h.login(), ListJobs(mine_only=True, limit=2))
    assert (counted.pages, counted.queries) == (2, 0)  # 2 of mine among the newest 6
    assert value == _reference(h, ListJobs(mine_only=True, limit=2))


def test_a_limited_listing_is_still_one_query(monkeypatch: pytest.MonkeyPatch) -> None:
    h = _harness(10)
    counted = Counted(h, monkeypatch)
    h.ok(h.login(), ListJobs(limit=4, name_prefix="alpha"))
    assert (counted.pages, counted.queries) == (0, 1)


def _peak(work: Any) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_streamed_listing_holds_a_page_not_the_study(tmp_path: Any) -> None:
    # The SQLite store, the core's shaping and the HTTP body's encoder, as the server runs
    # them: the streamed listing's peak memory stays that of a page and a piece, while the
    # listing built whole (what the server did before) grows with the study.
    db = Database(str(tmp_path / "jobs.db"))
    jobs: JobStore = SqliteJobStore(db)
    count = 3000
    for n in range(count):
        jobs.add(_meta(n))
    command = ListJobs(detailed=True)

    def streamed() -> None:
        metas = scan_study(jobs, "default", command, False, 100)
        rows = shape_rows(metas, command, study="default", caller_name=ADMIN, now=0.0)
        for _ in reply_pieces(rows, 64 * 1024):
            pass

    def built_whole() -> None:
        metas = jobs.query(study="default")
        select_jobs(metas, command, study="default", caller_name=ADMIN, now=0.0)

    try:
        assert _peak(streamed) * 5 < _peak(built_whole)
    finally:
        db.close()
