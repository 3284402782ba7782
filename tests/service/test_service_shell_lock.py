"""Long work (shell file reads, study listings) runs outside the service lock; rights are
checked before targets (issue 10, items 1, 2 and 8, and fairness)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flare_adapters.memory.workspaces import MemoryFileTree
from flare_core import CheckStatus, ListJobs, Ok, Reply, ShellCommand
from flare_core.service.ports import JobPage
from tests.service.helpers import ADMIN, MEMBER, Harness

WAIT = 30.0
"""Generous: only reached when the behaviour under test is broken."""


class GatedTree(MemoryFileTree):
    """A workspace whose reads park until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__("/workspace/server")
        self.entered = threading.Event()
        self.gate = threading.Event()

    def read(self, path: str, offset: int = 0, size: int = -1) -> bytes:
        self.entered.set()
        # Longer than the test waits for the other user: a read parked under the lock must
        # still be parked when the test gives up on the other user's call.
        assert self.gate.wait(2 * WAIT)
        return super().read(path, offset, size)


def test_a_parked_shell_read_does_not_hold_other_users(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    tree = GatedTree()
    tree.write("big.log", b"line\n", 0.0)
    monkeypatch.setattr(h.system.workspaces, "tree", lambda site: tree)
    admin, member = h.login(ADMIN), h.login(MEMBER)
    replies: dict[str, Reply] = {}

    def run(name: str, principal: Any, command: Any) -> None:
        replies[name] = h.reply(principal, command)

    cat = threading.Thread(
        target=run, args=("cat", admin, ShellCommand(verb="cat", target="server", path="big.log"))
    )
    cat.start()
    try:
        assert tree.entered.wait(WAIT)
        # The cat is inside the file read now; another user's call must not wait for it.
        listing = threading.Thread(target=run, args=("list", member, ListJobs()))
        listing.start()
        listing.join(WAIT)
        assert not listing.is_alive(), "list_jobs waited for another user's file read"
        assert isinstance(replies["list"], Ok)
    finally:
        tree.gate.set()
        cat.join(WAIT)
    assert h.ok(admin, ShellCommand(verb="cat", target="server", path="big.log")) == "line\n"


@pytest.mark.parametrize("target", ["server", "site-1", "no-such-site"])
def test_without_the_right_every_target_looks_the_same(target: str) -> None:
    h = Harness()
    problem = h.problem(h.login(MEMBER), ShellCommand(verb="pwd", target=target))
    assert (problem.code, problem.message) == (
        "not_authorized",
        f"user '{MEMBER}' is not authorized for 'pwd'",
    )


def test_a_long_listing_does_not_hold_other_users(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    entered, gate = threading.Event(), threading.Event()
    page = h.system.ports.jobs.page

    def parked_page(**kwargs: Any) -> JobPage:
        entered.set()
        assert gate.wait(2 * WAIT)
        return page(**kwargs)

    monkeypatch.setattr(h.system.ports.jobs, "page", parked_page)  # a full listing reads pages
    admin, member = h.login(ADMIN), h.login(MEMBER)
    replies: dict[str, Reply] = {}

    def run(name: str, principal: Any, command: Any) -> None:
        replies[name] = h.reply(principal, command)

    listing = threading.Thread(target=run, args=("list", admin, ListJobs(detailed=True)))
    listing.start()
    try:
        assert entered.wait(WAIT)
        other = threading.Thread(
            target=run, args=("status", member, CheckStatus(target_type="server"))
        )
        other.start()
        other.join(WAIT)
        assert not other.is_alive(), "check_status waited for another user's listing"
        assert isinstance(replies["status"], Ok)
    finally:
        gate.set()
        listing.join(WAIT)
    assert isinstance(replies["list"], Ok)
