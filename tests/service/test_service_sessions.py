"""Login, authentication, idle expiry, logout, API-key hashing and the control plane."""

from __future__ import annotations

import msgspec
import pytest

from flare_adapters.memory.system import DEFAULT_USERS, build_memory_service
from flare_core import (
    AuthenticationError,
    ListJobs,
    Logout,
    NoConnection,
    Ok,
    SessionExpired,
    Shutdown,
)
from flare_core.service import hash_api_key, hash_generated_key, verify_api_key
from flare_core.service._sessions import EXPIRED_MESSAGE
from tests.service.helpers import ADMIN, LEAD, Harness


def test_hash_and_verify_api_key() -> None:
    stored = hash_api_key("s3cret", b"12345678", n=16)
    assert stored.startswith("scrypt$16$8$1$")
    assert verify_api_key("s3cret", stored)
    assert not verify_api_key("S3cret", stored)
    assert hash_api_key("s3cret", b"12345678", n=16) == stored
    assert hash_api_key("s3cret", b"87654321", n=16) != stored


@pytest.mark.parametrize(
    "stored",
    ["", "md5$x", "scrypt$16$8$1$zz$00", "scrypt$3$8$1$00$00", "scrypt$2097152$8$1$00$00"],
)
def test_verify_rejects_malformed_or_out_of_range_hashes(stored: str) -> None:
    assert not verify_api_key("key", stored)


_GENERATED = "k" * 43  # the length of secrets.token_urlsafe(32)


def test_generated_key_form_verifies_in_the_fast_keyed_form() -> None:
    stored = hash_generated_key(_GENERATED, b"12345678")
    prefix, salt, digest = stored.split("$")
    assert (prefix, salt, len(digest)) == ("sha256", b"12345678".hex(), 64)
    assert verify_api_key(_GENERATED, stored)
    assert not verify_api_key(_GENERATED + "x", stored)
    assert not verify_api_key(_GENERATED[:-1] + "K", stored)
    assert hash_generated_key(_GENERATED, b"87654321") != stored


def test_both_forms_verify_side_by_side() -> None:
    slow = hash_api_key(_GENERATED, b"12345678", n=16)
    fast = hash_generated_key(_GENERATED, b"12345678")
    assert verify_api_key(_GENERATED, slow)
    assert verify_api_key(_GENERATED, fast)
    assert slow != fast


@pytest.mark.parametrize(
    "stored",
    [
        "sha256",
        "sha256$",
        "sha256$$",
        "sha256$3132333435363738",  # no digest
        "sha256$zz$" + "00" * 32,  # salt not hex
        "sha256$3132333435363738$" + "zz" * 32,  # digest not hex
        "sha256$31323334$" + "00" * 32,  # salt under 8 bytes
        "sha256$3132333435363738$" + "00" * 31,  # digest not 32 bytes
        "sha256$3132333435363738$" + "00" * 32 + "$extra",
        "SHA256$3132333435363738$" + "00" * 32,
    ],
)
def test_verify_rejects_malformed_fast_hashes(stored: str) -> None:
    assert not verify_api_key(_GENERATED, stored)


def test_generated_form_refuses_short_salts_and_short_keys() -> None:
    with pytest.raises(ValueError, match="salt"):
        hash_generated_key(_GENERATED, b"short")
    with pytest.raises(ValueError, match="generated key"):
        hash_generated_key("chosen-password", b"12345678")


def test_hash_rejects_short_salts_and_bad_parameters() -> None:
    with pytest.raises(ValueError, match="salt"):
        hash_api_key("k", b"short")
    with pytest.raises(ValueError, match="parameters"):
        hash_api_key("k", b"12345678", n=1000)


def test_login_returns_a_grant_bound_to_the_study() -> None:
    h = Harness()
    grant = h.service.login(LEAD, LEAD, "default")
    assert grant.idle_timeout == 1800.0
    assert grant.principal.name == LEAD
    assert grant.principal.org == "nvidia"
    assert grant.principal.role == "lead"
    assert grant.principal.study == "default"
    assert grant.principal.session_id
    assert grant.token not in grant.principal.session_id
    assert h.service.authenticate(grant.token) == grant.principal


@pytest.mark.parametrize(
    ("user", "key"),
    [(ADMIN, "wrong"), ("nobody@x.org", "nobody@x.org")],
)
def test_login_rejects_bad_credentials_without_an_auth_code(user: str, key: str | None) -> None:
    h = Harness()
    with pytest.raises(AuthenticationError, match="Incorrect user name or password") as info:
        h.service.login(user, key, "default")
    assert info.value.auth_code is None


@pytest.mark.parametrize("user", [ADMIN, "nobody@x.org"])
@pytest.mark.parametrize("key", [None, ""])
def test_login_without_a_key_says_the_key_is_missing(user: str, key: str | None) -> None:
    # Not "Incorrect user name or password": nothing was wrong, something was missing; the
    # message is the same for known and unknown users.
    h = Harness()
    with pytest.raises(AuthenticationError, match="no API key given for user") as info:
        h.service.login(user, key, "default")
    assert info.value.auth_code is None


def test_login_checks_the_study() -> None:
    h = Harness()
    with pytest.raises(AuthenticationError) as info:
        h.service.login(ADMIN, ADMIN, "cancer")
    assert info.value.auth_code == "AUTH_STUDY_NOT_CONFIGURED"
    h.service.add_study("cancer", {"nvidia": ["site-1"]}, [LEAD])
    with pytest.raises(AuthenticationError) as info:
        h.service.login(ADMIN, ADMIN, "cancer")
    assert info.value.auth_code == "AUTH_STUDY_USER_NOT_MAPPED"
    with pytest.raises(AuthenticationError) as info:
        h.service.login(ADMIN, ADMIN, "unknown")
    assert info.value.auth_code == "AUTH_UNKNOWN_STUDY"
    with pytest.raises(AuthenticationError) as info:
        h.service.login(ADMIN, ADMIN, "Bad Study")
    assert info.value.auth_code == "AUTH_INVALID_STUDY_NAME"
    assert h.service.login(LEAD, LEAD, "cancer").principal.study == "cancer"


def test_unknown_tokens_are_not_authenticated() -> None:
    h = Harness()
    with pytest.raises(AuthenticationError, match="not authenticated"):
        h.service.authenticate("forged-token")


def test_sessions_expire_after_the_idle_timeout_on_the_monotonic_clock() -> None:
    h = Harness(idle_timeout=100.0)
    grant = h.service.login(ADMIN, ADMIN, "default")
    h.advance(99.0)
    h.service.authenticate(grant.token)  # refreshes the idle timer
    h.advance(100.0)
    h.service.authenticate(grant.token)
    h.advance(100.5)
    with pytest.raises(SessionExpired, match=EXPIRED_MESSAGE):
        h.service.authenticate(grant.token)
    with pytest.raises(AuthenticationError):
        h.service.authenticate(grant.token)


def test_the_idle_timer_is_exact_but_stored_at_most_every_hundredth_of_the_timeout() -> None:
    h = Harness(idle_timeout=100.0)  # stored at most every second
    grant = h.service.login(ADMIN, ADMIN, "default")
    store = h.system.ports.sessions
    session_id = h.service.authenticate(grant.token).session_id
    first = store.get(session_id)
    assert first is not None
    for _ in range(50):  # 50 requests within 0.5 s: not one store write
        h.advance(0.01)
        h.service.authenticate(grant.token)
    assert store.get(session_id) == first
    h.advance(99.9)  # idle 99.9 s since the last request, 100.4 s since the stored moment
    h.service.authenticate(grant.token)  # alive: the timer is exact in the service
    stored = store.get(session_id)
    assert stored is not None
    assert stored.last_seen > first.last_seen
    h.advance(100.5)
    with pytest.raises(SessionExpired):
        h.service.authenticate(grant.token)


def test_logout_is_idempotent_and_ends_the_session() -> None:
    h = Harness()
    grant = h.service.login(ADMIN, ADMIN, "default")
    h.service.logout(grant.token)
    h.service.logout(grant.token)
    h.service.logout("never-issued")
    with pytest.raises(AuthenticationError):
        h.service.authenticate(grant.token)


def test_logout_command_ends_the_callers_session() -> None:
    h = Harness()
    grant = h.service.login(ADMIN, ADMIN, "default")
    principal = h.service.authenticate(grant.token)
    assert h.ok(principal, Logout()) is None
    with pytest.raises(AuthenticationError):
        h.service.authenticate(grant.token)


def test_add_user_lets_the_new_user_log_in() -> None:
    h = Harness()
    h.service.add_user("new@lab.org", "lab", "lead", "k3y")
    principal = h.service.login("new@lab.org", "k3y", "default").principal
    assert (principal.org, principal.role) == ("lab", "lead")
    with pytest.raises(ValueError, match="non-empty"):
        h.service.add_user("", "lab", "lead", "k")


def test_a_shut_down_server_refuses_logins_and_calls_until_started() -> None:
    h = Harness(sites=())
    grant = h.service.login(ADMIN, ADMIN, "default")
    principal = h.service.authenticate(grant.token)
    assert h.ok(principal, Shutdown(target_type="server")) == {"server_status": "stopped"}
    stopped = h.service.running
    assert stopped is False
    with pytest.raises(NoConnection):
        h.service.login(ADMIN, ADMIN, "default")
    with pytest.raises(NoConnection):
        h.service.authenticate(grant.token)
    assert h.problem(principal, ListJobs()).code == "no_connection"
    before = h.service.start_time
    h.service.start()
    assert h.service.running
    assert h.service.start_time > before
    assert isinstance(h.reply(h.service.authenticate(grant.token), ListJobs()), Ok)


def test_an_idle_session_still_expires_properly_after_other_logins() -> None:
    h = Harness(idle_timeout=100.0)
    stale = h.service.login(ADMIN, ADMIN, "default")
    h.advance(5000.0)
    h.service.login(LEAD, LEAD, "default")  # purges only sessions idle for a week
    with pytest.raises(SessionExpired):
        h.service.authenticate(stale.token)
    forgotten = h.service.login(ADMIN, ADMIN, "default")
    h.advance(8 * 24 * 3600.0)
    h.service.login(LEAD, LEAD, "default")
    with pytest.raises(AuthenticationError, match="not authenticated"):
        h.service.authenticate(forgotten.token)


def test_build_memory_service_defaults() -> None:
    service, engine, clock = build_memory_service()
    roles = {}
    for name, org, role in DEFAULT_USERS:
        principal = service.login(name, name, "default").principal
        roles[name] = (principal.org, principal.role)
        assert (org, role) == roles[name]
    assert roles["admin@nvidia.com"] == ("nvidia", "project_admin")
    assert roles["orgadmin@other.org"] == ("other", "org_admin")
    assert [(s.name, s.org, s.connected) for s in service.sites()] == [
        ("site-1", "nvidia", True),
        ("site-2", "nvidia", True),
    ]
    assert clock.time() == 1_700_000_000.0
    assert engine.running_jobs() == []


def test_the_unknown_user_dummy_follows_the_stored_key_form() -> None:
    # A known user's wrong key and an unknown user must cost the same kind of hash: scrypt while
    # any key is scrypt, the fast form once every key is (no user-name timing oracle).
    h = Harness()
    core = h.service._core
    assert core.dummy_hash().startswith("scrypt$")
    keys = {}
    for name, user in list(core.users.items()):
        keys[name] = f"{name}-generated-key".ljust(43, "x")
        digest = hash_generated_key(keys[name], b"salt-" + name.encode())
        core.users[name] = msgspec.structs.replace(user, api_key_hash=digest)
    assert core.dummy_hash().startswith("sha256$")
    with pytest.raises(AuthenticationError, match="Incorrect user name or password"):
        h.service.login("nobody@x.org", keys[ADMIN], "default")
    with pytest.raises(AuthenticationError, match="Incorrect user name or password"):
        h.service.login(ADMIN, keys[ADMIN] + "x", "default")
    assert h.service.login(ADMIN, keys[ADMIN], "default").principal.name == ADMIN
