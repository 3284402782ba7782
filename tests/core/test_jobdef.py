"""Job-definition rules (flare_core.jobdef): folder names, every §3 check, enrolment."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from flare_core.errors import InvalidJobDefinition
from flare_core.jobdef import (
    META_READ_LIMIT,
    JobDefinition,
    check_enrollment,
    check_folder_name,
    validate_job_definition,
)

PREFIX = "invalid job definition: "


class DictArchive:
    """An ArchiveView over {member name: bytes}; names ending in "/" are directory entries."""

    def __init__(self, members: dict[str, bytes], declared: dict[str, int] | None = None) -> None:
        self.members = members
        self.declared = declared or {}
        self.opened: list[str] = []

    def names(self) -> Sequence[str]:
        return list(self.members)

    def open(self, name: str) -> Iterator[bytes]:
        self.opened.append(name)
        data = self.members[name]
        for start in range(0, len(data), 7):  # small chunks: readers must reassemble them
            yield data[start : start + 7]

    def size(self, name: str) -> int:
        return self.declared.get(name, len(self.members[name]))


DEFAULT_META: dict[str, Any] = {
    "name": "hello",
    "deploy_map": {"app": ["server", "site-1", "site-2"]},
    "min_clients": 2,
}
APP_FILES_NO_CUSTOM = {
    "app/config/config_fed_server.json": b"{}",
    "app/config/config_fed_client.json": b"{}",
}


def archive(
    meta: Any = None,
    files: dict[str, bytes] | None = None,
    *,
    wrapper: str = "job",
    dir_entries: bool = True,
    meta_name: str = "meta.json",
) -> DictArchive:
    """A job folder: meta (JSON-encoded unless bytes) + files, wrapped, with dir entries."""
    relative: dict[str, bytes] = {}
    if meta is not None:
        relative[meta_name] = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    relative.update(APP_FILES_NO_CUSTOM if files is None else files)
    members: dict[str, bytes] = {}
    prefix = f"{wrapper}/" if wrapper else ""
    if prefix and dir_entries:
        members[prefix] = b""
    for name, data in relative.items():
        if dir_entries:
            parts = name.rstrip("/").split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                members.setdefault(prefix + "/".join(parts[:depth]) + "/", b"")
        members[prefix + name] = data
    return DictArchive(members)


def meta_with(**changes: Any) -> dict[str, Any]:
    meta = dict(DEFAULT_META)
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def fails(arch: DictArchive, reason: str, folder: str = "job") -> None:
    with pytest.raises(InvalidJobDefinition) as info:
        validate_job_definition(arch, folder)
    assert str(info.value) == PREFIX + reason


def fails_with_prefix(arch: DictArchive, start: str) -> str:
    with pytest.raises(InvalidJobDefinition) as info:
        validate_job_definition(arch, "job")
    assert str(info.value).startswith(PREFIX + start), str(info.value)
    return str(info.value)


# --- folder names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fox-training_poc.1", "a", "9", "job.v2", "A_b-c"])
def test_check_folder_name_accepts(name: str) -> None:
    check_folder_name(name)


@pytest.mark.parametrize(
    "name", ["fox training poc", ".hidden-job", "-flaggy-job", "", "a/b", "_x", "job\n", "é"]
)
def test_check_folder_name_rejects(name: str) -> None:
    with pytest.raises(InvalidJobDefinition) as info:
        check_folder_name(name)
    assert str(info.value) == (
        f"job folder name '{name}' contains unsupported characters. Use only letters, "
        "numbers, dots, underscores, and hyphens, with no spaces."
    )


def test_server_rechecks_the_folder_name() -> None:
    fails(
        archive(DEFAULT_META),
        "job folder name 'a b' contains unsupported characters. Use only letters, numbers, "
        "dots, underscores, and hyphens, with no spaces.",
        folder="a b",
    )


# --- a valid job -----------------------------------------------------------------------------


def test_valid_job_definition() -> None:
    result = validate_job_definition(archive(DEFAULT_META), "job")
    assert result == JobDefinition(
        meta=DEFAULT_META,
        folder_name="job",
        deploy_sites=["site-1", "site-2"],
        uses_all=False,
        apps={"app": ["server", "site-1", "site-2"]},
    )


@pytest.mark.parametrize(
    ("wrapper", "dir_entries"), [("job", True), ("other-name", True), ("", True), ("job", False)]
)
def test_layouts_are_tolerated(wrapper: str, dir_entries: bool) -> None:
    arch = archive(DEFAULT_META, wrapper=wrapper, dir_entries=dir_entries)
    assert validate_job_definition(arch, "job").deploy_sites == ["site-1", "site-2"]


def test_server_owned_keys_are_stripped_and_others_kept() -> None:
    meta = meta_with(submit_token="retry.01", job_id="../evil", custom_key={"a": [1]})
    result = validate_job_definition(archive(meta), "job")
    assert "submit_token" not in result.meta
    assert "job_id" not in result.meta
    assert result.meta["custom_key"] == {"a": [1]}


@pytest.mark.parametrize("extra", [{"app/custom/": b""}, {"app/custom/train.py": b"print(1)"}])
def test_byoc_is_derived_from_a_custom_folder(extra: dict[str, bytes]) -> None:
    files = {**APP_FILES_NO_CUSTOM, **extra}
    assert validate_job_definition(archive(DEFAULT_META, files), "job").meta["byoc"] is True


@pytest.mark.parametrize("claimed", [True, False, "yes"])
def test_user_supplied_byoc_is_never_trusted(claimed: object) -> None:
    result = validate_job_definition(archive(meta_with(byoc=claimed)), "job")
    assert "byoc" not in result.meta


def test_flower_flag_is_derived_from_the_server_config() -> None:
    files = dict(APP_FILES_NO_CUSTOM)
    files["app/config/config_fed_server.json"] = json.dumps(
        {"components": [{"args": {"flower_app_path": "flwr_app"}}]}
    ).encode()
    result = validate_job_definition(archive(DEFAULT_META, files), "job")
    assert result.meta["flower_predeployed"] is True
    plain = validate_job_definition(archive(meta_with(flower_predeployed=True)), "job")
    assert "flower_predeployed" not in plain.meta


def test_malformed_json_server_config_is_refused() -> None:
    files = dict(APP_FILES_NO_CUSTOM)
    files["app/config/config_fed_server.json"] = b"{oops"
    fails_with_prefix(
        archive(DEFAULT_META, files), "app/config/config_fed_server.json is not valid JSON"
    )


def test_meta_json_default_is_used_when_meta_json_is_absent() -> None:
    arch = archive(DEFAULT_META, meta_name="meta.json.default")
    assert validate_job_definition(arch, "job").meta["name"] == "hello"


# --- meta file -------------------------------------------------------------------------------

MISSING_META = (
    "meta.[json|conf|yml] not existing for job job, possible in legacy job format.  "
    "Please upgrade the job structure."
)


@pytest.mark.parametrize("meta", [None, {}, b"null", b"[]", b'""'])
def test_missing_or_empty_meta(meta: Any) -> None:
    fails(archive(meta), MISSING_META)


@pytest.mark.parametrize(
    "meta_name", ["meta.conf", "meta.yml", "meta.yaml", "meta.conf.default", "meta.yaml.default"]
)
def test_non_json_meta_is_recognised_but_not_supported(meta_name: str) -> None:
    fails(archive(b"name: x", meta_name=meta_name), f"{meta_name} is not supported; use meta.json")


def test_meta_json_wins_over_other_formats() -> None:
    arch = archive(DEFAULT_META)
    arch.members["job/meta.conf"] = b"garbage"
    assert validate_job_definition(arch, "job").meta["name"] == "hello"


def test_meta_conf_is_found_before_meta_json_default() -> None:
    arch = archive(DEFAULT_META, meta_name="meta.json.default")
    arch.members["job/meta.conf"] = b"{}"
    fails(arch, "meta.conf is not supported; use meta.json")


@pytest.mark.parametrize("data", [b"{not json", b'{"a": 1,}', b"\xff\xfe{}"])
def test_malformed_meta_json(data: bytes) -> None:
    fails_with_prefix(archive(data), "meta.json is not valid JSON: ")


@pytest.mark.parametrize("data", [b"[1, 2]", b"5", b'"text"'])
def test_meta_must_be_an_object(data: bytes) -> None:
    fails(archive(data), "meta.json must hold a JSON object")


def test_oversized_meta_is_refused_by_declared_size() -> None:
    arch = archive(DEFAULT_META)
    arch.declared["job/meta.json"] = META_READ_LIMIT + 1
    fails(arch, f"meta.json is too large (the limit is {META_READ_LIMIT} bytes)")
    assert arch.opened == []  # refused before reading


def test_oversized_meta_is_refused_while_streaming() -> None:
    big = json.dumps({**DEFAULT_META, "pad": "x" * META_READ_LIMIT}).encode()
    arch = archive(big)
    arch.declared["job/meta.json"] = 10  # a lying size must not let it through
    fails(arch, f"meta.json is too large (the limit is {META_READ_LIMIT} bytes)")


# --- deploy_map ------------------------------------------------------------------------------


@pytest.mark.parametrize("deploy_map", [None, {}, [], ""])
def test_empty_deploy_map(deploy_map: Any) -> None:
    meta = {"name": "x"} if deploy_map is None else {"name": "x", "deploy_map": deploy_map}
    fails(archive(meta), "deploy_map is empty for job job")


@pytest.mark.parametrize("deploy_map", ["server", ["server"], 3])
def test_deploy_map_must_be_a_dictionary(deploy_map: Any) -> None:
    fails(archive(meta_with(deploy_map=deploy_map)), "deploy_map must be a dictionary for job job")


def test_app_names_are_checked() -> None:
    fails(
        archive(meta_with(deploy_map={"bad app": ["server"]})),
        "invalid job app name 'bad app': name=bad app is ill-formatted for entity_type=job_name "
        "based on regex_pattern=^[A-Za-z0-9][A-Za-z0-9._-]*$",
    )
    fails(
        archive(meta_with(deploy_map={"": ["server"]})), "job app name must be a non-empty string"
    )


@pytest.mark.parametrize(
    "deployments",
    [
        {"targets": ["server", "site-1", "site-2"]},
        {"sites": ["server", "site-1", "site-2"]},
        [{"sites": ["site-1"]}, "server", {"targets": ["site-2"]}],
        ["server", {"sites": ["site-1", "site-2"]}],
    ],
)
def test_deploy_map_value_forms(deployments: Any) -> None:
    result = validate_job_definition(archive(meta_with(deploy_map={"app": deployments})), "job")
    assert sorted(result.apps["app"]) == ["server", "site-1", "site-2"]
    assert sorted(result.deploy_sites) == ["site-1", "site-2"]


@pytest.mark.parametrize(
    ("deployments", "reason"),
    [
        (
            ["server", {"sites": ["site-1"], "extra": 1}],
            "Unknown keys {'extra'} in deploy_map entry for job job. Valid keys are: "
            "['sites', 'targets']",
        ),
        (
            ["server", {"b": 1, "a": 2}],
            "Unknown keys {'a', 'b'} in deploy_map entry for job job. Valid keys are: "
            "['sites', 'targets']",
        ),
        (
            {"nodes": ["server"]},
            "invalid participant entry keys ['nodes']: expected 'targets' or 'sites'",
        ),
        (5, "participants must be list/str/dict, but got <class 'int'>"),
        (None, "participants must be list/str/dict, but got <class 'NoneType'>"),
        ({"sites": "server"}, "participants must be list/str/dict, but got <class 'str'>"),
        (["server", 1], "Must be type of str or dict, but got <class 'int'>"),
        (
            ["server", {"sites": "site-1"}],
            "site list must be list in participant entry {'sites': 'site-1'}: expected 'targets' "
            "or 'sites'",
        ),
        (["server", {"sites": [1]}], "site names must be str, but got <class 'int'>"),
        ([], "No site is specified in deploy_map for job job"),
        (["site-1", "site-2"], "Missing server site in deploy_map for job job"),
        (["Server", "site-1"], "Missing server site in deploy_map for job job"),
        (["@ALL", "site-1"], "No other site can be specified if @ALL is used for job job"),
        (["server", "@all"], "No other site can be specified if @ALL is used for job job"),
        (
            ["server", "site-1", "site-1"],
            "Multiple apps to be deployed to following sites ['site-1'] for job job",
        ),
    ],
)
def test_deploy_map_errors(deployments: Any, reason: str) -> None:
    fails(archive(meta_with(deploy_map={"app": deployments}, min_clients=None)), reason)


def test_a_site_listed_by_two_apps() -> None:
    files = {
        **APP_FILES_NO_CUSTOM,
        "app2/config/config_fed_client.json": b"{}",
    }
    meta = meta_with(deploy_map={"app": ["server", "site-1"], "app2": ["site-1", "site-2"]})
    fails(
        archive(meta, files),
        "Multiple apps to be deployed to following sites ['site-1'] for job job",
    )


@pytest.mark.parametrize("all_sites", ["@ALL", "@all", "@All"])
def test_all_sites_alone(all_sites: str) -> None:
    meta = meta_with(deploy_map={"app": [all_sites]}, min_clients=50, mandatory_clients=["x"])
    result = validate_job_definition(archive(meta), "job")
    assert result.uses_all is True
    assert result.deploy_sites == []
    assert result.apps == {"app": [all_sites]}


def test_all_sites_need_both_configs() -> None:
    files = {"app/config/config_fed_client.json": b"{}"}
    fails(
        archive(meta_with(deploy_map={"app": ["@ALL"]}), files),
        "App 'app' will be deployed to server but server config is missing",
    )
    files = {"app/config/config_fed_server.json": b"{}"}
    fails(
        archive(meta_with(deploy_map={"app": ["@ALL"]}), files),
        "App 'app' will be deployed to client but client config is missing",
    )


def test_deploy_sites_keep_first_appearance_order() -> None:
    files = {**APP_FILES_NO_CUSTOM, "b/config/config_fed_client.conf": b"x"}
    meta = meta_with(deploy_map={"app": ["site-9", "server", "site-3"], "b": ["site-1"]})
    result = validate_job_definition(archive(meta, files), "job")
    assert result.deploy_sites == ["site-9", "site-3", "site-1"]


# --- app folders -----------------------------------------------------------------------------


def test_app_folder_must_exist() -> None:
    meta = meta_with(deploy_map={"app": ["server"], "app2": ["site-1", "site-2"]})
    fails(archive(meta), "App 'app2' in deploy_map doesn't exist for job job")


def test_app_folder_needs_a_config_folder() -> None:
    files = {"app/config_fed_server.json": b"{}", "app/config_fed_client.json": b"{}"}
    fails(archive(DEFAULT_META, files), "App 'app' in deploy_map doesn't exist for job job")


def test_server_and_client_configs_are_required_where_deployed() -> None:
    fails(
        archive(DEFAULT_META, {"app/config/config_fed_client.json": b"{}"}),
        "App 'app' will be deployed to server but server config is missing",
    )
    fails(
        archive(DEFAULT_META, {"app/config/config_fed_server.json": b"{}"}),
        "App 'app' will be deployed to client but client config is missing",
    )


def test_server_only_and_client_only_apps_need_only_their_config() -> None:
    files = {
        "srv/config/config_fed_server.json": b"{}",
        "cli/config/config_fed_client.json": b"{}",
    }
    meta = meta_with(deploy_map={"srv": ["server"], "cli": ["site-1", "site-2"]})
    assert validate_job_definition(archive(meta, files), "job").deploy_sites == ["site-1", "site-2"]


@pytest.mark.parametrize(
    "ext", [".json", ".conf", ".yml", ".yaml", ".json.default", ".conf.default", ".yaml.default"]
)
def test_config_extensions(ext: str) -> None:
    files = {
        f"app/config/config_fed_server{ext}": b"x: 1",
        f"app/config/config_fed_client{ext}": b"x: 1",
    }
    if ext.startswith(".json"):
        files = dict.fromkeys(files, b"{}")
    assert validate_job_definition(archive(DEFAULT_META, files), "job").folder_name == "job"


def test_unknown_config_extension_is_not_a_config() -> None:
    files = {
        "app/config/config_fed_server.toml": b"",
        "app/config/config_fed_client.json": b"{}",
    }
    fails(
        archive(DEFAULT_META, files),
        "App 'app' will be deployed to server but server config is missing",
    )


# --- min_clients -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "invalid data type for abc,can't not convert to Int"),
        ([2], "invalid data type for [2],can't not convert to Int"),
        (0, "min_clients 0 must be positive for job job"),
        (-3, "min_clients -3 must be positive for job job"),
        (1_000_001, "min_clients 1000001 must be less than 1000000  for job job"),
        (3, "min 3 clients required for job job, found 2."),
        ("3", "min 3 clients required for job job, found 2."),
    ],
)
def test_min_clients_errors(value: Any, reason: str) -> None:
    fails(archive(meta_with(min_clients=value)), reason)


@pytest.mark.parametrize("value", [1, 2, "2", 2.9])
def test_min_clients_accepted(value: Any) -> None:
    assert (
        validate_job_definition(archive(meta_with(min_clients=value)), "job").meta["min_clients"]
        == value
    )


# --- resource_spec / launcher_spec / conflicts -----------------------------------------------


@pytest.mark.parametrize(
    ("resource_spec", "reason"),
    [
        ([1], "Invalid resource_spec for job job"),
        ({"site-1": 4}, "value for key site-1 in resource spec is expecting a dictionary"),
        (
            {"site-1": {"docker": {"privileged": True}}},
            "resource_spec['site-1']['docker'] for job job contains unsupported job-controlled "
            "Docker option(s) ['privileged']; allowed options: ['entrypoint', 'image', "
            "'num_of_gpus', 'python_path', 'shm_size']",
        ),
        (
            {"site-1": {"docker": {"num_of_gpus": -1}}},
            "resource_spec['site-1']['docker'] for job job field 'num_of_gpus' must be an "
            "integer greater than or equal to 0",
        ),
        (
            {"site-1": {"docker": {"python_path": " "}}},
            "resource_spec['site-1']['docker'] for job job field 'python_path' must be a "
            "non-empty string",
        ),
        (
            {"site-1": {"docker": {"entrypoint": ["run", ""]}}},
            "resource_spec['site-1']['docker'] for job job field 'entrypoint' must be a "
            "non-empty string or a non-empty list of non-empty strings",
        ),
        (
            {"site-1": {"docker": {"shm_size": "2x"}}},
            "resource_spec['site-1']['docker'] for job job field 'shm_size' must be a "
            "non-negative integer or decimal byte-size string within Docker's signed 64-bit limit",
        ),
        (
            {"site-1": {"docker": {"image": 3}}},
            "resource_spec['site-1']['docker'] for job job field 'image' must be a string or null",
        ),
        (
            {"site-1": {"docker": "img"}},
            "resource_spec['site-1']['docker'] for job job must be a dict",
        ),
        (
            {"@default": {"num_of_gpus": 1, "disk": "1Gi"}},
            "resource_spec['@default'] contains unsupported field(s): ['disk']",
        ),
        (
            {"@default": {"num_of_cpus": 0}},
            "resource_spec['@default'].num_of_cpus must be an integer greater than or equal to 1",
        ),
        (
            {"@default": {"num_of_gpus": True}},
            "resource_spec['@default'].num_of_gpus must be an integer greater than or equal to 0",
        ),
        (
            {"@default": {"memory": "1GB"}},
            "resource_spec['@default'].memory must be a positive integer followed by Mi, Gi, or Ti",
        ),
        (
            {"site-1": {"num_of_gpus": -1}},
            "resource_spec['site-1'].num_of_gpus must be an integer greater than or equal to 0",
        ),
        (
            {"@default": {}, "site-1": {"process": {"memory": "0Gi"}}},
            "resource_spec['site-1'].memory must be a positive integer followed by Mi, Gi, or Ti",
        ),
    ],
)
def test_resource_spec_errors(resource_spec: Any, reason: str) -> None:
    fails(archive(meta_with(resource_spec=resource_spec)), reason)


@pytest.mark.parametrize(
    "resource_spec",
    [
        {},
        {"site-1": {"num_of_gpus": 1, "mem_per_gpu_in_GiB": 8}},
        {"@default": {"num_of_gpus": 0, "num_of_cpus": 2, "memory": "512Mi"}},
        # the legacy nested per-launcher form is not portable-checked without @default
        {"site-1": {"process": {"num_of_gpus": -1}, "docker": {"image": "x"}}},
        {"site-1": {"docker": {"shm_size": "2g", "entrypoint": ["a", "b"], "image": None}}},
        {"site-1": {"docker": {"shm_size": 1024, "python_path": "/usr/bin/python"}}},
    ],
)
def test_resource_spec_accepted(resource_spec: Any) -> None:
    validate_job_definition(archive(meta_with(resource_spec=resource_spec)), "job")


@pytest.mark.parametrize(
    ("launcher_spec", "reason"),
    [
        ("docker", "launcher_spec for job job must be a dict"),
        ({"site-1": "docker"}, "launcher_spec['site-1'] for job job must be a dict"),
        (
            {"site-1": {"vm": {}}},
            "launcher_spec['site-1'] for job job contains unknown launcher mode 'vm'; valid "
            "modes: ['docker', 'k8s', 'process', 'slurm']",
        ),
        ({"site-1": {"k8s": []}}, "launcher_spec['site-1']['k8s'] for job job must be a dict"),
        (
            {"default": {"docker": {"network_mode": "host"}}},
            "launcher_spec['default']['docker'] for job job contains unsupported job-controlled "
            "Docker option(s) ['network_mode']; allowed options: ['entrypoint', 'image', "
            "'num_of_gpus', 'python_path', 'shm_size']",
        ),
    ],
)
def test_launcher_spec_errors(launcher_spec: Any, reason: str) -> None:
    fails(archive(meta_with(launcher_spec=launcher_spec)), reason)


@pytest.mark.parametrize(
    ("resource_spec", "launcher_spec", "reason"),
    [
        (
            {"@default": {"memory": "1Gi"}},
            {"default": {"slurm": {"mem_per_node": "4G"}}},
            "portable resource 'memory' conflicts with launcher_spec slurm field(s) "
            "['mem_per_node'] in the default blocks",
        ),
        (
            {"site-1": {"num_of_cpus": 2}},
            {"site-1": {"k8s": {"cpu": "2", "cpu_request": "1"}}},
            "portable resource 'num_of_cpus' conflicts with launcher_spec k8s field(s) "
            "['cpu', 'cpu_request'] for site 'site-1'",
        ),
        (
            {"@default": {"num_of_gpus": 1}},
            {"site-2": {"k8s": {"num_of_gpus": 1}}},
            "portable resource 'num_of_gpus' conflicts with launcher_spec k8s field(s) "
            "['num_of_gpus'] for site 'site-2'",
        ),
        (
            {"site-1": {"process": {"num_of_gpus": 2}}},
            {"site-1": {"k8s": {"num_of_gpus": 1}}},
            "legacy process num_of_gpus (2) must match launcher_spec k8s num_of_gpus (1) for "
            "site 'site-1'",
        ),
        (
            {"site-1": {"process": {"num_of_gpus": 2}}},
            {"site-1": {"slurm": {"nodes": 3, "gpus_per_node": 1}}},
            "legacy process num_of_gpus (2) must match launcher_spec slurm total GPUs (3) for "
            "site 'site-1'",
        ),
        (
            {"site-1": {"process": {"num_of_gpus": 2}, "k8s": 5}},
            None,
            "resource_spec['site-1']['k8s'] must be a dict",
        ),
    ],
)
def test_resource_conflicts(resource_spec: Any, launcher_spec: Any, reason: str) -> None:
    fails(archive(meta_with(resource_spec=resource_spec, launcher_spec=launcher_spec)), reason)


def test_legacy_gpus_matching_the_launcher_are_fine() -> None:
    meta = meta_with(
        resource_spec={"site-1": {"process": {"num_of_gpus": 2}}},
        launcher_spec={"site-1": {"k8s": {"num_of_gpus": 2}, "slurm": {"gpus_per_node": 2}}},
    )
    validate_job_definition(archive(meta), "job")


# --- mandatory_clients -----------------------------------------------------------------------


def test_mandatory_clients_must_be_deployed() -> None:
    fails(
        archive(meta_with(mandatory_clients=["site-1", "site-9", "site-8"])),
        "Mandatory clients {'site-8', 'site-9'} are not in the deploy_map for job job",
    )
    validate_job_definition(archive(meta_with(mandatory_clients=["site-2"])), "job")


def test_mandatory_clients_must_be_a_list_of_names() -> None:
    fails(
        archive(meta_with(mandatory_clients="site-1")),
        "mandatory_clients must be a list of site names for job job",
    )


# --- order of the checks ---------------------------------------------------------------------


def test_checks_run_in_reference_order() -> None:
    # Each archive breaks two rules; the earlier rule in §3's order is the one reported.
    fails(archive({"deploy_map": {}}, {}), "deploy_map is empty for job job")
    meta = meta_with(deploy_map={"app": ["site-1"], "ghost": ["site-2"]})
    fails(archive(meta), "Missing server site in deploy_map for job job")
    meta = meta_with(deploy_map={"ghost": ["server", "site-1"]}, min_clients=0)
    fails(archive(meta), "App 'ghost' in deploy_map doesn't exist for job job")
    meta = meta_with(min_clients=9, resource_spec=[1])
    fails(archive(meta), "min 9 clients required for job job, found 2.")
    meta = meta_with(resource_spec=[1], launcher_spec=[1], mandatory_clients=["x"])
    fails(archive(meta), "Invalid resource_spec for job job")
    meta = meta_with(launcher_spec=[1], mandatory_clients=["x"])
    fails(archive(meta), "launcher_spec for job job must be a dict")


# --- study enrolment -------------------------------------------------------------------------


def test_enrollment_skipped_without_a_registry_entry() -> None:
    check_enrollment(["anything"], "cancer", None)


def test_enrollment_passes_when_every_site_is_enrolled() -> None:
    check_enrollment(["site-1", "server", "@ALL", "@all"], "cancer", {"site-1"})


def test_enrollment_names_one_site() -> None:
    with pytest.raises(InvalidJobDefinition) as info:
        check_enrollment(["site-1", "site-9"], "cancer", frozenset({"site-1"}))
    assert str(info.value) == PREFIX + "site 'site-9' is not enrolled in study 'cancer'"


def test_enrollment_names_every_site_once_in_order() -> None:
    with pytest.raises(InvalidJobDefinition) as info:
        check_enrollment(["site-3", "site-1", "site-3", "site-2"], "cancer", set())
    assert str(info.value) == (
        PREFIX + "sites 'site-3', 'site-1', 'site-2' are not enrolled in study 'cancer'"
    )


def test_enrollment_uses_the_validated_deploy_sites() -> None:
    result = validate_job_definition(archive(DEFAULT_META), "job")
    with pytest.raises(InvalidJobDefinition, match="sites 'site-1', 'site-2' are not enrolled"):
        check_enrollment(result.deploy_sites, "cancer", frozenset({"site-7"}))
