"""Submit tokens: validation, content identity, scopes, records and the replay decision."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterator, Sequence

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flare_core.archive import verify_members
from flare_core.errors import (
    InvalidArgumentError,
    InvalidJobDefinition,
    SubmitTokenConflict,
    SubmitTokenJobDeleted,
)
from flare_core.principal import Principal
from flare_core.replies import Problem
from flare_core.tokens import (
    SIGNATURE_FILES,
    SUBMIT_TOKEN_PATTERN,
    Conflict,
    Create,
    Deleted,
    Recover,
    Replay,
    TokenRecord,
    TokenScope,
    content_hash,
    decide,
    mark_created,
    new_record,
    raise_for,
    resolve_for_listing,
    tombstone,
    validate_submit_token,
)

TOKEN_MESSAGE = (
    "submit_token must be non-empty, at most 128 characters, and match ^[A-Za-z0-9._:-]{1,128}$"
)
ALICE = Principal(name="alice@nvidia.com", org="nvidia", role="lead", study="cancer")
JOB_A = "11111111-1111-4111-8111-111111111111"


class DictArchive:
    """An ArchiveView over ``{name: bytes}`` (``None`` marks a directory entry)."""

    def __init__(self, members: dict[str, bytes | None], chunk: int = 3) -> None:
        self._members = members
        self._chunk = chunk

    def names(self) -> Sequence[str]:
        return list(self._members)

    def open(self, name: str) -> Iterator[bytes]:
        data = self._members[name]
        if data is None:
            raise KeyError(name)
        for start in range(0, len(data), self._chunk):
            yield data[start : start + self._chunk]

    def size(self, name: str) -> int:
        data = self._members[name]
        if data is None:
            raise KeyError(name)
        return len(data)


def h(members: dict[str, bytes | None], chunk: int = 3) -> str:
    return content_hash(DictArchive(members, chunk))


# --- token validation --------------------------------------------------------------------------


def test_pattern_is_the_reference_pattern() -> None:
    assert SUBMIT_TOKEN_PATTERN == r"^[A-Za-z0-9._:-]{1,128}$"


@pytest.mark.parametrize("token", ["retry.01:A_b-c", "x" * 128, "a", "0", "...", "a:b:c"])
def test_valid_tokens_pass_through(token: str) -> None:
    assert validate_submit_token(token) == token


def test_none_means_no_token() -> None:
    assert validate_submit_token(None) is None


@pytest.mark.parametrize(
    "token", ["", "bad token", "bad/token", "x" * 129, "tok\n", "tök", 5, b"tok", ["t"]]
)
def test_invalid_tokens_are_rejected_with_the_reference_message(token: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_submit_token(token)
    assert str(info.value) == TOKEN_MESSAGE
    assert isinstance(info.value, ValueError)


_TOKEN_ALPHABET = "abcXYZ019._:-"


@given(st.text(alphabet=_TOKEN_ALPHABET, min_size=1, max_size=128))
def test_any_string_over_the_alphabet_is_valid(token: str) -> None:
    assert validate_submit_token(token) == token


@given(
    st.text(alphabet=_TOKEN_ALPHABET, max_size=60),
    st.characters(exclude_characters=string.ascii_letters + string.digits + "._:-"),
    st.text(alphabet=_TOKEN_ALPHABET, max_size=60),
)
def test_any_foreign_character_invalidates(head: str, bad: str, tail: str) -> None:
    with pytest.raises(InvalidArgumentError):
        validate_submit_token(head + bad + tail)


# --- content hash ------------------------------------------------------------------------------

BASE: dict[str, bytes | None] = {
    "job/": None,
    "job/meta.json": b'{"name": "hello"}',
    "job/app/": None,
    "job/app/config/": None,
    "job/app/config/config_fed_server.json": b"{}",
    "job/app/config/config_fed_client.json": b'{"x": 1}',
    "job/app/custom/model.py": b"print('hi')\n",
}


def test_hash_format() -> None:
    digest = h(BASE)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    int(digest[7:], 16)


def test_hash_pins_its_framing() -> None:
    # Stored records compare against this: the framing must never change silently.
    outer = hashlib.sha256(b"flare-core job content v1\x00")
    for path, data in [("a.txt", b"hello"), ("d/b.txt", b"")]:
        encoded = path.encode()
        outer.update(len(encoded).to_bytes(8, "big") + encoded)
        outer.update(len(data).to_bytes(8, "big") + hashlib.sha256(data).digest())
    expected = "sha256:" + outer.hexdigest()
    assert h({"job/d/b.txt": b"", "job/a.txt": b"hello"}) == expected
    assert h({"a.txt": b"hello", "d/b.txt": b""}) == expected


@given(st.permutations(list(BASE.items())), st.integers(min_value=1, max_value=64))
def test_member_order_and_chunking_do_not_matter(
    items: list[tuple[str, bytes | None]], chunk: int
) -> None:
    assert h(dict(items), chunk) == h(BASE)


_NAMES = st.text(alphabet="abcdefghij_-.0123456789", min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and s not in SIGNATURE_FILES
)


@given(_NAMES, _NAMES)
def test_wrapper_folder_name_does_not_matter(first: str, second: str) -> None:
    files = {"meta.json": b"{}", "app/config/x.json": b"1"}
    wrapped_a = {f"{first}/{k}": v for k, v in files.items()}
    wrapped_b: dict[str, bytes | None] = {f"{second}/": None}
    wrapped_b.update({f"{second}/{k}": v for k, v in files.items()})
    assert h(dict(files)) == h(dict(wrapped_a)) == h(wrapped_b)


def test_parent_directory_is_different_content() -> None:
    parent = {f"outer/{k}": v for k, v in BASE.items()}
    assert h(parent) != h(BASE)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "job/", "job/app/", "job/app/config/", "job/x/y/"]),
            st.sampled_from(sorted(SIGNATURE_FILES)),
            st.binary(max_size=20),
        ),
        max_size=4,
    ),
    st.lists(st.sampled_from(["job/empty/", "job/app/more/", "other/", "zz/"]), max_size=3),
)
def test_signature_files_and_empty_directories_do_not_matter(
    signatures: list[tuple[str, str, bytes]], empty_dirs: list[str]
) -> None:
    members = dict(BASE)
    for folder, name, data in signatures:
        members[folder + name] = data
    for folder in empty_dirs:
        members[folder] = None
    assert h(members) == h(BASE)


_FILE_NAMES = sorted(k for k, v in BASE.items() if v is not None)


@given(st.sampled_from(_FILE_NAMES), st.binary(max_size=30))
def test_any_byte_change_matters(name: str, data: bytes) -> None:
    original = BASE[name]
    changed = dict(BASE)
    changed[name] = data
    assert (h(changed) == h(BASE)) == (data == original)


@given(st.sampled_from(_FILE_NAMES), _NAMES)
def test_any_path_change_matters(name: str, new_base: str) -> None:
    renamed = {k: v for k, v in BASE.items() if k != name}
    new_name = name.rsplit("/", 1)[0] + "/" + new_base
    renamed[new_name] = BASE[name]
    assert (h(renamed) == h(BASE)) == (new_name == name)


def test_adding_or_removing_a_file_matters() -> None:
    added = dict(BASE)
    added["job/readme.txt"] = b""
    removed = {k: v for k, v in BASE.items() if k != "job/meta.json"}
    assert len({h(BASE), h(added), h(removed)}) == 3


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": b"bc"}, {"ab": b"c"}),  # path/content boundary
        ({"a": b"", "b": b"x"}, {"a": b"x", "b": b""}),  # which file owns the bytes
        ({"a.txt": b""}, {}),  # an empty file still counts
        ({"dir/a": b"1", "b": b"2"}, {"a": b"1", "b": b"2"}),  # no wrapper here to strip
    ],
)
def test_framing_is_unambiguous(
    left: dict[str, bytes | None], right: dict[str, bytes | None]
) -> None:
    assert h(left) != h(right)


def test_signature_name_counts_when_not_the_basename() -> None:
    assert h({"job/.__nvfl_sig.json.bak": b"x", **BASE}) != h(BASE)


def test_large_members_are_streamed_without_limit() -> None:
    class Zeros:
        def __init__(self, mib: int) -> None:
            self.mib = mib

        def names(self) -> Sequence[str]:
            return ["job/big.bin"]

        def open(self, name: str) -> Iterator[bytes]:
            chunk = bytes(1024 * 1024)
            for _ in range(self.mib):
                yield chunk

        def size(self, name: str) -> int:
            return self.mib * 1024 * 1024

    # Larger than the reference's 10 MiB hashing limit (DECISIONS §9).
    assert content_hash(Zeros(11)) != content_hash(Zeros(10))


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/etc/passwd", "job/../x.txt", "job/./x.txt", "job\\x.txt", "C:/x"]
)
def test_unsafe_member_names_are_invalid_job_definitions(name: str) -> None:
    members = dict(BASE)
    members[name] = b"x"
    with pytest.raises(InvalidJobDefinition, match="invalid job definition: unsafe archive member"):
        h(members)


# --- one pass for verification and hash ---------------------------------------------------------


class OpenCounting(DictArchive):
    def __init__(self, members: dict[str, bytes | None]) -> None:
        super().__init__(members)
        self.opened: list[str] = []

    def open(self, name: str) -> Iterator[bytes]:
        self.opened.append(name)
        return super().open(name)


@given(
    st.dictionaries(
        st.sampled_from(["job/a.txt", "job/app/b.bin", "job/meta.json", "job/signature.json"]),
        st.binary(max_size=40),
        min_size=1,
    )
)
def test_the_verifying_pass_gives_the_hash_without_reading_again(
    members: dict[str, bytes],
) -> None:
    archive = OpenCounting({"job/": None, **members})
    digests = verify_members(archive, digests=True)
    assert sorted(archive.opened) == sorted(members)  # every file member once
    assert content_hash(archive, digests) == content_hash(DictArchive({"job/": None, **members}))
    assert sorted(archive.opened) == sorted(members)  # and not again for the hash


def test_without_digests_the_pass_only_verifies() -> None:
    archive = OpenCounting({"job/a.txt": b"a"})
    assert verify_members(archive) == {}
    assert archive.opened == ["job/a.txt"]


# --- scopes ------------------------------------------------------------------------------------

SCOPE = TokenScope.for_principal(ALICE, "retry-1")


def test_scope_for_principal() -> None:
    assert (
        TokenScope(
            study="cancer",
            submitter_name="alice@nvidia.com",
            submitter_org="nvidia",
            submitter_role="lead",
            token="retry-1",
            kind="user",
        )
        == SCOPE
    )
    assert TokenScope.for_principal(ALICE, "t", kind="session").kind == "session"


def test_scope_key_is_stable() -> None:
    assert SCOPE.key() == TokenScope.for_principal(ALICE, "retry-1").key()
    # Pinned: stores key records by it, so it must not change between releases.
    assert SCOPE.key() == "90da30127e07213a5f239102a2254ef59c0f510f348d80d3e67ae9ecb43cc384"


@pytest.mark.parametrize(
    "field",
    ["study", "submitter_name", "submitter_org", "submitter_role", "token", "kind"],
)
def test_every_scope_field_separates_records(field: str) -> None:
    other = msgspec.structs.replace(SCOPE, **{field: "session" if field == "kind" else "other"})
    assert other.key() != SCOPE.key()


def test_scope_key_cannot_be_forged_by_shifting_separators() -> None:
    a = msgspec.structs.replace(SCOPE, submitter_name="a", submitter_org="b,c")
    b = msgspec.structs.replace(SCOPE, submitter_name="a,b", submitter_org="c")
    assert a.key() != b.key()


# --- records and decisions ---------------------------------------------------------------------

HASH_1 = "sha256:" + "1" * 64
HASH_2 = "sha256:" + "2" * 64


def _record(state: str = "created", job_id: str = JOB_A) -> TokenRecord:
    record = new_record(
        SCOPE,
        job_id=job_id,
        job_name="hello",
        job_folder_name="hello-job",
        content_hash=HASH_1,
        submit_time="2023-11-14T23:13:20+01:00",
    )
    if state == "created":
        return mark_created(record)
    if state == "job_deleted":
        return tombstone(record, deleted_time="2023-11-15T00:00:00+00:00", deleted_by=ALICE)
    return record


def test_new_record_reserves_the_job_id() -> None:
    record = _record("creating")
    assert record.state == "creating"
    assert record.job_id == JOB_A
    assert record.job_content_hash == HASH_1
    assert record.schema_version == 1
    assert record.deleted_time is None
    assert record.deleted_by is None


def test_mark_created_and_tombstone() -> None:
    created = mark_created(_record("creating"))
    assert created.state == "created"
    deleter = Principal(name="admin@nvidia.com", org="nvidia", role="project_admin")
    dead = tombstone(created, deleted_time="2023-11-15T00:00:00+00:00", deleted_by=deleter)
    assert dead.state == "job_deleted"
    assert dead.deleted_time == "2023-11-15T00:00:00+00:00"
    assert dead.deleted_by == {"name": "admin@nvidia.com", "org": "nvidia", "role": "project_admin"}
    # Everything else is kept for audit; a tombstone is never revived.
    assert (dead.job_id, dead.job_content_hash, dead.scope) == (JOB_A, HASH_1, SCOPE)
    assert mark_created(dead) is dead


def test_record_round_trips_through_json() -> None:
    record = _record("job_deleted")
    data = msgspec.json.encode(record)
    assert msgspec.json.decode(data, type=TokenRecord) == record


@pytest.mark.parametrize(
    ("record", "content", "exists", "expected"),
    [
        (None, HASH_1, False, Create()),
        (_record("created"), HASH_1, True, Replay(JOB_A)),
        (_record("creating"), HASH_1, True, Replay(JOB_A)),
        (_record("created"), HASH_1, False, Recover(JOB_A)),
        (_record("creating"), HASH_1, False, Recover(JOB_A)),
        (_record("created"), HASH_2, True, Conflict(JOB_A)),
        (_record("creating"), HASH_2, False, Conflict(JOB_A)),
        (_record("created", job_id=""), HASH_2, False, Conflict(None)),
        # Deleted is checked before the content hash.
        (_record("job_deleted"), HASH_1, False, Deleted(JOB_A, "2023-11-15T00:00:00+00:00")),
        (_record("job_deleted"), HASH_2, True, Deleted(JOB_A, "2023-11-15T00:00:00+00:00")),
    ],
)
def test_decide(record: TokenRecord | None, content: str, exists: bool, expected: object) -> None:
    assert decide(record, content, exists) == expected


@given(
    st.sampled_from([None, "creating", "created", "job_deleted"]),
    st.booleans(),
    st.booleans(),
)
def test_decide_against_a_model(state: str | None, same: bool, exists: bool) -> None:
    record = None if state is None else _record(state)
    decision = decide(record, HASH_1 if same else HASH_2, exists)
    if state is None:
        assert isinstance(decision, Create)
    elif state == "job_deleted":
        assert isinstance(decision, Deleted)
    elif not same:
        assert isinstance(decision, Conflict)
    else:
        assert decision == (Replay(JOB_A) if exists else Recover(JOB_A))


def test_raise_for_conflict() -> None:
    with pytest.raises(SubmitTokenConflict) as info:
        raise_for(Conflict(JOB_A))
    assert str(info.value) == "submit token was already used for different job content"
    assert info.value.existing_job_id == JOB_A


def test_raise_for_deleted() -> None:
    with pytest.raises(SubmitTokenJobDeleted) as info:
        raise_for(Deleted(JOB_A, "2023-11-15T00:00:00+00:00"))
    assert str(info.value) == "submit token refers to a deleted job"
    assert (info.value.job_id, info.value.state, info.value.deleted_time) == (
        JOB_A,
        "job_deleted",
        "2023-11-15T00:00:00+00:00",
    )


@pytest.mark.parametrize(
    "decision", [Conflict(JOB_A), Conflict(None), Deleted(JOB_A, None), Deleted(JOB_A, "t")]
)
def test_refusals_survive_the_wire(decision: Conflict | Deleted) -> None:
    with pytest.raises((SubmitTokenConflict, SubmitTokenJobDeleted)) as info:
        raise_for(decision)
    problem = msgspec.json.decode(
        msgspec.json.encode(Problem.from_exception(info.value)), type=Problem
    )
    rebuilt = problem.to_exception()
    assert type(rebuilt) is type(info.value)
    assert vars(rebuilt) == vars(info.value)
    assert str(rebuilt) == str(info.value)


def test_resolve_for_listing() -> None:
    assert resolve_for_listing(None, False) is None
    assert resolve_for_listing(_record("created"), True) == JOB_A
    assert resolve_for_listing(_record("creating"), True) == JOB_A
    assert resolve_for_listing(_record("created"), False) is None
    assert resolve_for_listing(_record("created", job_id=""), True) is None


def test_resolve_for_listing_raises_for_deleted_job() -> None:
    with pytest.raises(SubmitTokenJobDeleted) as info:
        resolve_for_listing(_record("job_deleted"), False)
    assert info.value.job_id == JOB_A
    assert info.value.state == "job_deleted"
