"""The ``ArchiveView`` port over a local job folder, without zipping it first (client side).

Lets tools run the core's job-definition rules and submit-token hash on a folder on disk,
exactly as the server sees the uploaded archive: every member sits under
``<folder name>/``; symlinks are skipped (as ``zip_folder`` skips them when uploading).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from flare_adapters.zipsafe import CHUNK_SIZE
from flare_core import InvalidJobDefinition

__all__ = ["FolderArchive", "folder_archive"]


class FolderArchive:
    """An ``ArchiveView`` over a directory; file contents are streamed on demand."""

    def __init__(self, folder: str) -> None:
        self._root = os.path.abspath(folder)
        top = os.path.basename(self._root.rstrip(os.sep)) + "/"
        names = [top]
        self._files: dict[str, str] = {}
        for root, dirs, files in os.walk(self._root):
            dirs.sort()
            rel = os.path.relpath(root, self._root)
            prefix = top if rel == "." else top + rel.replace(os.sep, "/") + "/"
            for name in dirs:
                if not os.path.islink(os.path.join(root, name)):
                    names.append(prefix + name + "/")
            for name in sorted(files):
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    names.append(prefix + name)
                    self._files[prefix + name] = path
        self._names = names

    def names(self) -> Sequence[str]:
        """Every member name: directories end with ``/``, all under ``<folder name>/``."""
        return list(self._names)

    def open(self, name: str) -> Iterator[bytes]:
        """Stream a file member. Raises KeyError for an unknown name."""
        path = self._files[name]
        return self._stream(path)

    @staticmethod
    def _stream(path: str) -> Iterator[bytes]:
        with open(path, "rb") as source:
            while block := source.read(CHUNK_SIZE):
                yield block

    def size(self, name: str) -> int:
        """A file member's size in bytes. Raises KeyError for an unknown name."""
        return os.path.getsize(self._files[name])


def folder_archive(folder: str) -> FolderArchive:
    """View the job folder at ``folder`` as the server would see its upload.

    Raises:
        InvalidJobDefinition: ``folder`` is not a directory.
    """
    if not os.path.isdir(folder):
        raise InvalidJobDefinition(f"job_definition_path '{folder}' is not a valid folder")
    return FolderArchive(folder)
