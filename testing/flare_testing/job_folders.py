"""Job folders for tests, derived from the real ``hello-numpy-sag`` example flare-core ships.

``hello-numpy-sag`` is a real NVIDIA FLARE job (FedAvg-style ScatterAndGather, numpy only,
``deploy_map: {"app": ["@ALL"]}``, ``min_clients: 2``, 3 rounds) that ran to
``FINISHED:COMPLETED`` on an NVFlare 2.9 POC. ``JobFolders`` copies it into a scratch
directory and derives variants: another ``num_rounds`` (different content, for token
conflicts), a bad executor path (fails at run time on a real engine), a long ``sleep_time``
(a job to abort), other meta, extra files, and the invalid definitions of reference §11.1 #8.

Every call writes a fresh directory, so two folders with the same name can coexist; the same
arguments always produce byte-identical content.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from flare_adapters.examples import example

__all__ = ["EXAMPLE", "INVALID_DEFINITIONS", "JobFolders"]

EXAMPLE = "hello-numpy-sag"
"""The shipped example's folder name (also its meta ``name``)."""

INVALID_DEFINITIONS: Mapping[str, str] = {
    "no_meta": "not existing for job",
    "empty_meta": "not existing for job",
    "malformed_meta": "",
    "deploy_map_missing": "deploy_map is empty",
    "deploy_map_empty": "deploy_map is empty",
    "deploy_map_not_dict": "deploy_map must be a dictionary",
    "bad_app_name": "",
    "no_site": "No site is specified",
    "all_mixed": "No other site can be specified if @ALL is used",
    "missing_server": "Missing server site",
    "site_in_two_apps": "Multiple apps to be deployed to following sites",
    "app_without_config": "doesn't exist for job",
    "missing_server_config": "server config is missing",
    "missing_client_config": "client config is missing",
    "min_clients_too_high": "min 3 clients required",
    "min_clients_zero": "",
    "min_clients_not_int": "",
    "mandatory_not_deployed": "Mandatory clients",
    "resource_spec_not_dict": "resource_spec",
}
"""Invalid job definitions (reference §3 / §11.1 #8): kind -> a fragment the server's
``InvalidJobDefinition`` message contains (``""``: only the type is specified)."""

_META = "meta.json"
_SERVER_CONFIG = "app/config/config_fed_server.json"
_CLIENT_CONFIG = "app/config/config_fed_client.json"


def _dump(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=False) + "\n").encode()


class JobFolders:
    """Writes job folders under ``root`` (one fresh sub-directory per folder).

    Args:
        root: a scratch directory (created if missing).
        sites: the client site names variants refer to (the system's connected sites).
    """

    def __init__(self, root: str | Path, sites: Sequence[str] = ("site-1", "site-2")) -> None:
        self.root = Path(root)
        self.sites = tuple(sites)
        self._count = 0

    @staticmethod
    def example() -> Traversable:
        """The shipped ``hello-numpy-sag`` folder (``flare_adapters.examples``, read-only)."""
        return example(EXAMPLE)

    @classmethod
    def example_files(cls) -> dict[str, bytes]:
        """The example's files: relative POSIX path -> bytes."""
        found: dict[str, bytes] = {}

        def walk(node: Traversable, prefix: str) -> None:
            for child in node.iterdir():
                rel = f"{prefix}{child.name}"
                if child.is_dir():
                    walk(child, rel + "/")
                else:
                    found[rel] = child.read_bytes()

        walk(cls.example(), "")
        return dict(sorted(found.items()))

    def folder(
        self,
        content: Mapping[str, bytes | str],
        folder_name: str = EXAMPLE,
        *,
        empty_dirs: Iterable[str] = (),
    ) -> Path:
        """Write an arbitrary folder.

        Args:
            content: relative POSIX path -> bytes (or text, UTF-8 encoded).
            folder_name: the folder's base name.
            empty_dirs: relative directories to create empty.

        Returns:
            The new folder's absolute path.
        """
        self._count += 1
        target = self.root / f"{self._count:04d}" / folder_name
        target.mkdir(parents=True)
        for rel, data in content.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
        for rel in empty_dirs:
            (target / rel).mkdir(parents=True, exist_ok=True)
        return target.resolve()

    def hello_content(
        self,
        *,
        name: str | None = None,
        num_rounds: int | None = None,
        sleep_time: float | None = None,
        executor_path: str | None = None,
        deploy_map: Mapping[str, Any] | None = None,
        min_clients: int | None = None,
        meta: Mapping[str, Any] | None = None,
        drop_meta_keys: Iterable[str] = (),
        extra_files: Mapping[str, bytes | str] | None = None,
        remove_files: Iterable[str] = (),
    ) -> dict[str, bytes | str]:
        """The example's files with the requested changes (see ``hello``)."""
        content: dict[str, bytes | str] = dict(self.example_files())
        meta_doc = json.loads(content[_META])
        meta_changed = False
        for key, value in (
            ("name", name),
            ("deploy_map", deploy_map),
            ("min_clients", min_clients),
        ):
            if value is not None:
                meta_doc[key] = value
                meta_changed = True
        for key, value in (meta or {}).items():
            meta_doc[key] = value
            meta_changed = True
        for key in drop_meta_keys:
            meta_doc.pop(key, None)
            meta_changed = True
        if meta_changed:
            content[_META] = _dump(meta_doc)
        if num_rounds is not None:
            server = json.loads(content[_SERVER_CONFIG])
            server["workflows"][0]["args"]["num_rounds"] = num_rounds
            content[_SERVER_CONFIG] = _dump(server)
        if sleep_time is not None or executor_path is not None:
            client = json.loads(content[_CLIENT_CONFIG])
            executor = client["executors"][0]["executor"]
            if sleep_time is not None:
                executor["args"]["sleep_time"] = sleep_time
            if executor_path is not None:
                executor["path"] = executor_path
            content[_CLIENT_CONFIG] = _dump(client)
        for rel in remove_files:
            del content[rel]
        content.update(extra_files or {})
        return content

    def hello(
        self,
        folder_name: str = EXAMPLE,
        *,
        name: str | None = None,
        num_rounds: int | None = None,
        sleep_time: float | None = None,
        executor_path: str | None = None,
        deploy_map: Mapping[str, Any] | None = None,
        min_clients: int | None = None,
        meta: Mapping[str, Any] | None = None,
        drop_meta_keys: Iterable[str] = (),
        extra_files: Mapping[str, bytes | str] | None = None,
        remove_files: Iterable[str] = (),
        empty_dirs: Iterable[str] = (),
    ) -> Path:
        """Write a ``hello-numpy-sag`` variant.

        Args:
            folder_name: the folder's base name (does not change the content hash).
            name: the meta ``name``.
            num_rounds: the ScatterAndGather ``num_rounds`` (server config).
            sleep_time: the trainer's ``sleep_time`` (client config).
            executor_path: the trainer's class path (a bad one fails at run time).
            deploy_map: the meta ``deploy_map``.
            min_clients: the meta ``min_clients``.
            meta: further meta keys to set.
            drop_meta_keys: meta keys to remove.
            extra_files: files to add or replace (relative POSIX path -> content).
            remove_files: files to leave out.
            empty_dirs: empty directories to add.

        Returns:
            The new folder's absolute path.
        """
        content = self.hello_content(
            name=name,
            num_rounds=num_rounds,
            sleep_time=sleep_time,
            executor_path=executor_path,
            deploy_map=deploy_map,
            min_clients=min_clients,
            meta=meta,
            drop_meta_keys=drop_meta_keys,
            extra_files=extra_files,
            remove_files=remove_files,
        )
        return self.folder(content, folder_name, empty_dirs=empty_dirs)

    def explicit_sites_map(self, *sites: str) -> dict[str, list[str]]:
        """A deploy map sending ``app`` to the server and ``sites`` (default: all sites)."""
        return {"app": ["server", *(sites or self.sites)]}

    def invalid(self, kind: str) -> Path:
        """Write one of the ``INVALID_DEFINITIONS`` (the server must reject it).

        Raises:
            KeyError: unknown kind.
        """
        if kind not in INVALID_DEFINITIONS:
            raise KeyError(kind)
        first, second = self.sites[0], self.sites[1]
        explicit = self.explicit_sites_map()
        app_files = {
            rel.replace("app/", "app2/", 1): data
            for rel, data in self.example_files().items()
            if rel.startswith("app/")
        }
        variants: dict[str, dict[str, Any]] = {
            "no_meta": {"remove_files": [_META]},
            "empty_meta": {"extra_files": {_META: "{}\n"}},
            "malformed_meta": {"extra_files": {_META: '{"name": "broken",\n'}},
            "deploy_map_missing": {"drop_meta_keys": ["deploy_map"]},
            "deploy_map_empty": {"deploy_map": {}},
            "deploy_map_not_dict": {"meta": {"deploy_map": ["@ALL"]}},
            "bad_app_name": {"deploy_map": {"-app": ["@ALL"]}},
            "no_site": {"deploy_map": {"app": []}},
            "all_mixed": {"deploy_map": {"app": ["@ALL", first]}},
            "missing_server": {"deploy_map": {"app": [first, second]}},
            "site_in_two_apps": {
                "deploy_map": {"app": ["server", first, second], "app2": [first]},
                "min_clients": 1,
                "extra_files": app_files,
            },
            "app_without_config": {
                "deploy_map": {"app": ["server", first], "app2": [second]},
                "min_clients": 1,
                "extra_files": {"app2/README.txt": "no config folder here\n"},
            },
            "missing_server_config": {"remove_files": [_SERVER_CONFIG]},
            "missing_client_config": {"remove_files": [_CLIENT_CONFIG]},
            "min_clients_too_high": {"deploy_map": explicit, "min_clients": 3},
            "min_clients_zero": {"deploy_map": explicit, "meta": {"min_clients": 0}},
            "min_clients_not_int": {"meta": {"min_clients": "two"}},
            "mandatory_not_deployed": {
                "deploy_map": {"app": ["server", first]},
                "min_clients": 1,
                "meta": {"mandatory_clients": [second]},
            },
            "resource_spec_not_dict": {"meta": {"resource_spec": ["gpu"]}},
        }
        return self.hello(f"invalid-{kind.replace('_', '-')}", **variants[kind])
