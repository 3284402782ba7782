"""The drivers' local file helpers: streamed zipping, safe extraction, path inspection."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from flare_adapters import file_steps
from flare_adapters.file_steps import extract_archive, inspect_path, list_dirs, zip_folder
from flare_adapters.zipsafe import ZipSink, open_zip
from flare_core import InternalError
from flare_core.steps import PathInfo
from flare_core.tokens import content_hash
from tests.client.scripted import zip_bytes


def build_tree(root: Path) -> Path:
    folder = root / "my-job"
    (folder / "app" / "config").mkdir(parents=True)
    (folder / "app" / "custom").mkdir()
    (folder / ".secret").mkdir()
    (folder / "meta.json").write_text('{"name": "x"}')
    (folder / ".env").write_text("A=1")
    (folder / "app" / "config" / "config_fed_client.json").write_text("{}")
    os.symlink(folder / "meta.json", folder / "linked.json")
    os.symlink(root, folder / "linked-dir")
    return folder


def test_zip_folder_wraps_everything_in_the_folder_name(tmp_path: Path) -> None:
    folder = build_tree(tmp_path)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zip_folder(str(folder)))))
    assert archive.namelist() == [
        "my-job/",
        "my-job/.secret/",
        "my-job/app/",
        "my-job/.env",
        "my-job/meta.json",
        "my-job/app/config/",
        "my-job/app/custom/",
        "my-job/app/config/config_fed_client.json",
    ]
    assert archive.read("my-job/meta.json") == b'{"name": "x"}'
    assert archive.testzip() is None


def test_zip_folder_of_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zip_folder(str(tmp_path / "empty")))))
    assert archive.namelist() == ["empty/"]


def test_zip_folder_streams_in_bounded_chunks(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    payload = os.urandom(400_000)
    (folder / "blob.bin").write_bytes(payload)
    chunks = list(zip_folder(str(folder), chunk_size=4096))
    assert len(chunks) > 10  # zlib emits about every 16 KiB
    assert max(len(chunk) for chunk in chunks) < 64 * 1024
    assert all(chunks)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("big/blob.bin") == payload


def test_zip_folder_passes_a_stored_members_blocks_through_uncopied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large incompressible file is stored: each block read from it after the first (which
    # joins the member's header) leaves the generator as that very object, not a copy.
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "blob.bin").write_bytes(os.urandom(300_000))
    read: list[bytes] = []

    class Recording(io.FileIO):
        def read(self, size: int | None = -1, /) -> bytes:
            block = super().read(size)
            read.append(block)
            return block

    monkeypatch.setattr(file_steps, "open", Recording, raising=False)  # the module's open()
    chunks = list(zip_folder(str(folder), chunk_size=100_000))
    blocks = [block for block in read if block]
    assert [len(block) for block in blocks] == [100_000, 100_000, 100_000]
    assert all(any(chunk is block for chunk in chunks) for block in blocks[1:])
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("big/blob.bin") == b"".join(blocks)


def test_zip_folder_sends_small_files_in_pieces_of_at_least_a_chunk(tmp_path: Path) -> None:
    # Each piece crosses a thread and becomes a frame or a write: a folder of small files
    # is one piece, not one per entry, and a larger one comes in chunk-sized pieces.
    folder = build_tree(tmp_path)
    assert len(list(zip_folder(str(folder)))) == 1
    for index in range(40):
        (folder / f"part-{index}.bin").write_bytes(os.urandom(700))
    chunks = list(zip_folder(str(folder), chunk_size=4096))
    assert len(chunks) > 5
    assert all(len(chunk) >= 4096 for chunk in chunks[:-1])
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    assert len(archive.namelist()) == 48


def test_zip_sink_hands_out_what_was_written_since_the_last_take() -> None:
    sink = ZipSink()
    assert sink.take() == b""
    sink.write(b"ab")
    sink.write(memoryview(b"cd"))
    assert sink.tell() == 4
    assert sink.take() == b"abcd"
    one = b"x" * 10
    sink.write(one)
    assert sink.take() is one
    assert sink.tell() == 14
    assert not sink.seekable()
    sink.write(b"ef")
    assert sink.take(at_least=3) == b""  # kept for a later take
    sink.write(b"g")
    assert sink.take(at_least=3) == b"efg"
    assert sink.take() == b""


def test_zip_folder_is_lazy(tmp_path: Path) -> None:
    folder = build_tree(tmp_path)
    stream = zip_folder(str(folder))
    (folder / "late.txt").write_text("added before the first chunk was asked for")
    names = zipfile.ZipFile(io.BytesIO(b"".join(stream))).namelist()
    assert "my-job/late.txt" in names


def test_extract_archive_creates_fresh_directories(tmp_path: Path) -> None:
    data = zip_bytes({"job/": b"", "job/a.txt": b"A", "meta.json": b"{}"})
    first = extract_archive(io.BytesIO(data), str(tmp_path / "new" / "parent"), "result")
    second = extract_archive(io.BytesIO(data), str(tmp_path / "new" / "parent"), "result")
    assert Path(first).name == "result"
    assert Path(second).name == "result__1"
    assert (Path(first) / "job" / "a.txt").read_text() == "A"
    assert oct(Path(first).stat().st_mode & 0o777) == oct(0o755)
    assert sorted(p.name for p in (tmp_path / "new" / "parent").iterdir()) == [
        "result",
        "result__1",
    ]


@pytest.mark.parametrize(
    "data",
    [
        zip_bytes({"../evil.txt": b"x"}),
        zip_bytes({"/abs.txt": b"x"}),
        b"definitely not a zip",
    ],
)
def test_extract_archive_refuses_bad_archives_and_leaves_nothing(
    tmp_path: Path, data: bytes
) -> None:
    with pytest.raises(InternalError, match="downloaded archive refused"):
        extract_archive(io.BytesIO(data), str(tmp_path), "result")
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "evil.txt").exists()


def test_extract_archive_gives_up_after_max_suffix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_steps, "MAX_SUFFIX", 2)
    for name in ("r", "r__1", "r__2"):
        (tmp_path / name).mkdir()
    with pytest.raises(InternalError, match="no free directory name"):
        extract_archive(io.BytesIO(zip_bytes({"a": b"1"})), str(tmp_path), "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "r__1", "r__2"]


def test_inspect_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    assert inspect_path("d/") == PathInfo(path=str(tmp_path / "d"), is_dir=True)
    assert not inspect_path("f").is_dir
    assert not inspect_path("missing").is_dir


def test_list_dirs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c.txt").write_text("x")
    assert sorted(list_dirs(str(tmp_path))) == ["a", "b"]
    assert list_dirs(str(tmp_path / "c.txt")) == []
    assert list_dirs(str(tmp_path / "missing")) == []


def test_zip_folder_stores_what_does_not_shrink_and_deflates_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    noise = os.urandom(300_000)
    text = b"learning_rate = 0.01\n" * 20_000
    (folder / "weights.bin").write_bytes(noise)
    (folder / "config.py").write_bytes(text)
    (folder / "empty.txt").write_bytes(b"")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zip_folder(str(folder)))))
    kinds = {info.filename: info.compress_type for info in archive.infolist()}
    assert kinds["mixed/weights.bin"] == zipfile.ZIP_STORED
    assert kinds["mixed/config.py"] == zipfile.ZIP_DEFLATED
    assert kinds["mixed/empty.txt"] == zipfile.ZIP_STORED
    assert archive.read("mixed/weights.bin") == noise
    assert archive.read("mixed/config.py") == text
    assert archive.testzip() is None


def test_compression_choice_leaves_the_content_hash_unchanged(tmp_path: Path) -> None:
    # A submit token's record keeps the content hash: a client zipping differently (stored
    # members, level 1) must hash the same folder the same as the earlier deflate-6 archives.
    folder = tmp_path / "job"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "model.bin").write_bytes(os.urandom(200_000))
    (folder / "meta.json").write_text('{"name": "x"}' * 1000)
    old = io.BytesIO()
    with zipfile.ZipFile(old, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("job/", b"")
        zf.writestr("job/app/", b"")
        zf.write(folder / "app" / "model.bin", "job/app/model.bin")
        zf.write(folder / "meta.json", "job/meta.json")
    new = b"".join(zip_folder(str(folder)))
    assert new != old.getvalue()
    assert content_hash(open_zip(io.BytesIO(new))) == content_hash(open_zip(old))
