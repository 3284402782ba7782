"""Job-definition rules: the folder name, the uploaded folder's layout and its meta (§2.1, §3).

``validate_job_definition`` runs the reference validator's checks, in its order, over an
``ArchiveView`` of the uploaded folder and returns the cleaned meta and deploy plan; any
violation raises ``InvalidJobDefinition("invalid job definition: <reason>")`` with the
reference's reason. Only JSON metas are parsed (``meta.conf``/``.yml``/``.yaml`` are
recognised and refused). ``check_enrollment`` is the study check that follows it (§2.3).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Any

import msgspec

from flare_core.archive import ArchiveView, split_wrapper
from flare_core.deploy_plan import DeployPlan
from flare_core.errors import InvalidJobDefinition
from flare_core.nesting import NestingTooDeep, decode_json
from flare_core.site_names import ALL_SITES, SERVER_SITE, is_all_sites

__all__ = [
    "CONFIG_EXTENSIONS",
    "CONFIG_READ_LIMIT",
    "FOLDER_NAME_PATTERN",
    "MAX_CLIENTS",
    "META_READ_LIMIT",
    "JobDefinition",
    "check_enrollment",
    "check_folder_name",
    "plan_from_meta",
    "validate_job_definition",
]

FOLDER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""A job folder (and app) name: starts with a letter or digit; then letters, digits, ``._-``."""

CONFIG_EXTENSIONS: tuple[str, ...] = (
    ".json",
    ".conf",
    ".yml",
    ".yaml",
    ".json.default",
    ".conf.default",
    ".yml.default",
    ".yaml.default",
)
"""Extensions of meta and app config files, in the order they are looked for."""

META_READ_LIMIT = 1024 * 1024
"""The largest meta file read, in bytes; a larger one is refused."""

CONFIG_READ_LIMIT = 8 * 1024 * 1024
"""The largest JSON server config read (to derive the Flower flag), in bytes."""

MAX_CLIENTS = 1_000_000
"""The largest ``min_clients`` accepted."""

_JSON_EXTENSIONS = frozenset({".json", ".json.default"})
_NAME_RE = re.compile(FOLDER_NAME_PATTERN)
_DEPLOY_ENTRY_KEYS = ["sites", "targets"]
_BYOC = "byoc"
_FLOWER_PREDEPLOYED = "flower_predeployed"
_FLOWER_APP_PATH = "flower_app_path"
# Meta keys the server owns: a job id is always server-generated (DECISIONS §12) and a
# submit token is submission metadata, never job meta (§2.3 step 3).
_STRIPPED_META_KEYS = ("job_id", "submit_token")


class _Invalid(ValueError):
    """A job-definition rule failed; the message is the reference's reason."""


class JobDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """A validated job folder.

    Attributes:
        meta: the user's meta, without ``submit_token`` and ``job_id``; ``byoc`` is True when
            an app has a ``custom/`` folder and absent otherwise (a user-supplied value is
            never trusted); likewise ``flower_predeployed`` for a JSON server config that
            names a ``flower_app_path``.
        folder_name: the job folder's name.
        deploy_sites: the client sites of the deploy map, in first-appearance order, without
            ``server`` and ``@ALL``.
        uses_all: the deploy map targets ``@ALL`` (every site, server included).
        apps: app name -> the sites it is deployed to, as written in the deploy map.
    """

    meta: dict[str, Any]
    folder_name: str
    deploy_sites: list[str]
    uses_all: bool
    apps: dict[str, list[str]]

    @property
    def plan(self) -> DeployPlan:
        """The deploy plan the service stores beside the job (``apps`` as data)."""
        return DeployPlan(apps=self.apps)


def _folder_name_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return f"job folder name must be str but got {type(name)}"
    if not _NAME_RE.fullmatch(name):
        return (
            f"job folder name '{name}' contains unsupported characters. Use only letters, "
            "numbers, dots, underscores, and hyphens, with no spaces."
        )
    return None


def check_folder_name(name: str) -> None:
    """Check a job folder's name before anything is uploaded (§2.1 step 3).

    Args:
        name: the folder's basename (after normalising away a trailing ``/``).

    Raises:
        InvalidJobDefinition: the name does not match ``FOLDER_NAME_PATTERN`` (e.g.
            ``fox training poc``, ``.hidden-job``, ``-flaggy-job``).
    """
    problem = _folder_name_problem(name)
    if problem is not None:
        raise InvalidJobDefinition(problem)


def check_enrollment(deploy_sites: Sequence[str], study: str, enrolled: Set[str] | None) -> None:
    """Check that every deploy-map client site is enrolled in the study (§2.3 step 4).

    Args:
        deploy_sites: the job's client sites (``JobDefinition.deploy_sites``); ``server`` and
            ``@ALL`` are exempt if present.
        study: the session's study, for the message.
        enrolled: the study's enrolled sites; None when the registry has no such study (or
            there is no registry), which means no check.

    Raises:
        InvalidJobDefinition: ``invalid job definition: site 'x' is not enrolled in study
            'y'``, or ``sites 'a', 'b' are not enrolled ...`` naming every such site once, in
            order.
    """
    if enrolled is None:
        return
    missing: list[str] = []
    for site in deploy_sites:
        if site == SERVER_SITE or is_all_sites(site):
            continue
        if site not in enrolled and site not in missing:
            missing.append(site)
    if len(missing) == 1:
        reason = f"site '{missing[0]}' is not enrolled in study '{study}'"
    elif missing:
        quoted = ", ".join(f"'{site}'" for site in missing)
        reason = f"sites {quoted} are not enrolled in study '{study}'"
    else:
        return
    raise InvalidJobDefinition(f"invalid job definition: {reason}")


def validate_job_definition(archive: ArchiveView, folder_name: str) -> JobDefinition:
    """Validate an uploaded job folder (§3, server side), every check in the reference's order.

    The members may sit under one wrapper directory (normally ``<folder_name>/``, any name is
    accepted) or at the top level. A folder counts as present when it has a directory entry
    or any member under it.

    Args:
        archive: the uploaded folder.
        folder_name: the folder's name as the client reported it (used in messages and as
            ``job_folder_name``).

    Returns:
        The cleaned meta and the deploy plan.

    Raises:
        InvalidJobDefinition: ``"invalid job definition: <reason>"`` for a bad folder name, a
            missing/empty/non-JSON/malformed/oversized meta, or any deploy map, app folder,
            config, ``min_clients``, ``resource_spec``, ``launcher_spec`` or
            ``mandatory_clients`` rule.
    """
    try:
        return _validate(archive, folder_name)
    except _Invalid as exc:
        raise InvalidJobDefinition(f"invalid job definition: {exc}") from None


def plan_from_meta(meta: Mapping[str, Any]) -> DeployPlan:
    """The deploy plan of a stored job's meta, read with the submit-time rules (§3 steps 3-6).

    For jobs stored before the service kept their plan: their ``deploy_map`` passed these
    same rules at submit, so reading it again gives the plan they were accepted with.

    Args:
        meta: the job's meta (its ``deploy_map``; ``job_folder_name`` names it in messages).

    Returns:
        The plan.

    Raises:
        InvalidJobDefinition: the deploy map breaks a rule (never for an accepted job).
    """
    folder = str(meta.get("job_folder_name") or "job")
    try:
        apps, _ = _deploy_plan(meta, folder)
    except _Invalid as exc:
        raise InvalidJobDefinition(f"invalid job definition: {exc}") from None
    return DeployPlan(apps=apps)


# --- layout ---------------------------------------------------------------------------------


class _Layout:
    """The folder's members relative to its wrapper: files (-> archive name) and dirs."""

    def __init__(self, names: Sequence[str]) -> None:
        wrapper, _ = split_wrapper(names)
        prefix = f"{wrapper}/" if wrapper else ""
        self.files: dict[str, str] = {}
        self.dirs: set[str] = set()
        for name in names:
            relative = name[len(prefix) :]
            if not relative:
                continue
            if relative.endswith("/"):
                self.dirs.add(relative)
                continue
            self.files[relative] = name
            parts = relative.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                self.dirs.add("/".join(parts[:depth]) + "/")

    def find_config(self, folder: str, base: str) -> str | None:
        """The first ``<folder><base><ext>`` present, in ``CONFIG_EXTENSIONS`` order."""
        return next(
            (
                f"{folder}{base}{ext}"
                for ext in CONFIG_EXTENSIONS
                if f"{folder}{base}{ext}" in self.files
            ),
            None,
        )


def _read(archive: ArchiveView, layout: _Layout, relative: str, limit: int) -> bytes:
    name = layout.files[relative]
    too_large = f"{relative} is too large (the limit is {limit} bytes)"
    if archive.size(name) > limit:
        raise _Invalid(too_large)
    data = bytearray()
    for chunk in archive.open(name):
        data += chunk
        if len(data) > limit:  # the declared size is not trusted
            raise _Invalid(too_large)
    return bytes(data)


def _read_json(archive: ArchiveView, layout: _Layout, relative: str, limit: int) -> object:
    data = _read(archive, layout, relative, limit)
    try:
        return decode_json(data, relative)
    except NestingTooDeep as exc:
        raise _Invalid(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _Invalid(f"{relative} is not valid JSON: {exc}") from None


def _load_meta(archive: ArchiveView, layout: _Layout, folder: str) -> dict[str, Any]:
    meta: object = None
    for ext in CONFIG_EXTENSIONS:
        relative = f"meta{ext}"
        if relative not in layout.files:
            continue
        if ext not in _JSON_EXTENSIONS:
            raise _Invalid(f"{relative} is not supported; use meta.json")
        meta = _read_json(archive, layout, relative, META_READ_LIMIT)
        if not isinstance(meta, dict) and meta:
            raise _Invalid(f"{relative} must hold a JSON object")
        break
    if not meta or not isinstance(meta, dict):
        raise _Invalid(
            f"meta.[json|conf|yml] not existing for job {folder}, possible in legacy job format."
            "  Please upgrade the job structure."
        )
    return meta


# --- deploy map -----------------------------------------------------------------------------


def _set_text(values: Iterable[object]) -> str:
    # A set's repr, in a stable order (the reference prints Python sets as they iterate).
    return "{" + ", ".join(repr(v) for v in sorted(values, key=str)) + "}"


def _check_app_name(app: str) -> None:
    if not app:
        raise _Invalid("job app name must be a non-empty string")
    if not _NAME_RE.fullmatch(app):
        raise _Invalid(
            f"invalid job app name '{app}': name={app} is ill-formatted for "
            f"entity_type=job_name based on regex_pattern={FOLDER_NAME_PATTERN}"
        )


def _participants(deployments: object) -> list[str]:
    """The sites of one deploy-map value (str, list, ``{"targets"|"sites": [...]}``, mixed)."""
    entries: object = deployments
    if isinstance(entries, str):
        entries = [entries]
    elif isinstance(entries, dict):
        if "targets" in entries:
            entries = entries["targets"]
        elif "sites" in entries:
            entries = entries["sites"]
        else:
            raise _Invalid(
                f"invalid participant entry keys {list(entries)}: expected 'targets' or 'sites'"
            )
    if not isinstance(entries, list):
        raise _Invalid(f"participants must be list/str/dict, but got {type(entries)}")
    sites: list[str] = []
    for item in entries:
        if isinstance(item, str):
            sites.append(item)
        elif isinstance(item, dict):
            group = item.get("sites")
            if group is None:
                group = item.get("targets")
            if not isinstance(group, list):
                raise _Invalid(
                    f"site list must be list in participant entry {item}: "
                    "expected 'targets' or 'sites'"
                )
            for site in group:
                if not isinstance(site, str):
                    raise _Invalid(f"site names must be str, but got {type(site)}")
                sites.append(site)
        else:
            raise _Invalid(f"Must be type of str or dict, but got {type(item)}")
    return sites


def _deploy_plan(meta: Mapping[str, Any], folder: str) -> tuple[dict[str, list[str]], list[str]]:
    """Check the deploy map (§3 steps 3-6); return app -> sites and the site list."""
    deploy_map = meta.get("deploy_map")
    if not deploy_map:
        raise _Invalid(f"deploy_map is empty for job {folder}")
    if not isinstance(deploy_map, dict):
        raise _Invalid(f"deploy_map must be a dictionary for job {folder}")
    apps: dict[str, list[str]] = {}
    site_list: list[str] = []
    for app, deployments in deploy_map.items():
        _check_app_name(app)
        if isinstance(deployments, list):
            for item in deployments:
                unknown = set(item) - set(_DEPLOY_ENTRY_KEYS) if isinstance(item, dict) else None
                if unknown:
                    raise _Invalid(
                        f"Unknown keys {_set_text(unknown)} in deploy_map entry for job "
                        f"{folder}. Valid keys are: {_DEPLOY_ENTRY_KEYS}"
                    )
        apps[app] = _participants(deployments)
        site_list.extend(apps[app])
    if not site_list:
        raise _Invalid(f"No site is specified in deploy_map for job {folder}")
    if any(is_all_sites(site) for site in site_list):
        if len(site_list) > 1:
            raise _Invalid(
                f"No other site can be specified if {ALL_SITES} is used for job {folder}"
            )
        return apps, site_list
    if SERVER_SITE not in site_list:
        raise _Invalid(f"Missing server site in deploy_map for job {folder}")
    duplicates = [site for site, count in Counter(site_list).items() if count > 1]
    if duplicates:
        raise _Invalid(
            f"Multiple apps to be deployed to following sites {duplicates} for job {folder}"
        )
    return apps, site_list


# --- app folders ----------------------------------------------------------------------------


def _has_flower_app_path(config: object) -> bool:
    if isinstance(config, dict):
        return any(
            (key == _FLOWER_APP_PATH and bool(value)) or _has_flower_app_path(value)
            for key, value in config.items()
        )
    if isinstance(config, list):
        return any(_has_flower_app_path(item) for item in config)
    return False


def _check_apps(
    archive: ArchiveView, layout: _Layout, apps: Mapping[str, list[str]], folder: str
) -> tuple[bool, bool]:
    """Check every app folder and its configs (§3 step 7); return (byoc, flower)."""
    byoc = flower = False
    for app, sites in apps.items():
        config_dir = f"{app}/config/"
        if config_dir not in layout.dirs:
            raise _Invalid(f"App '{app}' in deploy_map doesn't exist for job {folder}")
        all_sites = any(is_all_sites(site) for site in sites)
        if all_sites or SERVER_SITE in sites:
            server_config = layout.find_config(config_dir, "config_fed_server")
            if server_config is None:
                raise _Invalid(
                    f"App '{app}' will be deployed to server but server config is missing"
                )
            if any(server_config.endswith(ext) for ext in _JSON_EXTENSIONS):
                loaded = _read_json(archive, layout, server_config, CONFIG_READ_LIMIT)
                flower = flower or _has_flower_app_path(loaded)
        to_clients = all_sites or any(site != SERVER_SITE for site in sites)
        if to_clients and layout.find_config(config_dir, "config_fed_client") is None:
            raise _Invalid(f"App '{app}' will be deployed to client but client config is missing")
        if f"{app}/custom/" in layout.dirs:
            byoc = True
    return byoc, flower


# --- min_clients and mandatory_clients ------------------------------------------------------


def _check_min_clients(
    meta: Mapping[str, Any], clients: Set[str], uses_all: bool, folder: str
) -> None:
    value = meta.get("min_clients")
    if value is None:
        return
    if isinstance(value, int):
        min_clients = value
    else:
        try:
            min_clients = int(value)
        except (TypeError, ValueError, OverflowError):
            raise _Invalid(f"invalid data type for {value},can't not convert to Int") from None
    if min_clients <= 0:
        raise _Invalid(f"min_clients {min_clients} must be positive for job {folder}")
    if min_clients > MAX_CLIENTS:
        raise _Invalid(
            f"min_clients {min_clients} must be less than {MAX_CLIENTS}  for job {folder}"
        )
    if not uses_all and len(clients) < min_clients:
        raise _Invalid(
            f"min {min_clients} clients required for job {folder}, found {len(clients)}."
        )


def _check_mandatory_clients(
    meta: Mapping[str, Any], clients: Set[str], uses_all: bool, folder: str
) -> None:
    if uses_all:
        return
    mandatory = meta.get("mandatory_clients")
    if not mandatory:
        return
    if not isinstance(mandatory, list) or not all(isinstance(s, str) for s in mandatory):
        raise _Invalid(f"mandatory_clients must be a list of site names for job {folder}")
    missing = set(mandatory) - set(clients)
    if missing:
        raise _Invalid(
            f"Mandatory clients {_set_text(missing)} are not in the deploy_map for job {folder}"
        )


# --- resource_spec and launcher_spec --------------------------------------------------------

_LAUNCHER_MODES = frozenset({"process", "docker", "k8s", "slurm"})
_PORTABLE_DEFAULT = "@default"
_PORTABLE_KEYS = ("num_of_gpus", "num_of_cpus", "memory")
_MEMORY_RE = re.compile(r"^([1-9][0-9]*)(Mi|Gi|Ti)$")
_SHM_SIZE_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:[bB]|[kKmMgG](?:[bB])?)?$")
_SHM_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_MAX_SHM_SIZE = (1 << 63) - 1
_PORTABLE_NATIVE_KEYS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "docker": {
        "num_of_gpus": frozenset({"device_requests", "num_of_gpus"}),
        "num_of_cpus": frozenset({"nano_cpus"}),
        "memory": frozenset({"mem_limit"}),
    },
    "k8s": {
        "num_of_gpus": frozenset({"num_of_gpus"}),
        "num_of_cpus": frozenset({"cpu", "cpu_request"}),
        "memory": frozenset({"memory", "memory_request"}),
    },
    "slurm": {
        "num_of_cpus": frozenset({"cpus_per_node"}),
        "memory": frozenset({"mem_per_node"}),
    },
}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shm_size_bytes(value: str) -> int | None:
    if not _SHM_SIZE_RE.fullmatch(value):
        return None
    text = value.lower().removesuffix("b")
    unit, amount = ("b", text)
    if text and text[-1] in "kmg":
        unit, amount = text[-1], text[:-1]
    try:
        size = int(float(amount) * _SHM_UNITS[unit])
    except (OverflowError, ValueError):
        return None
    return size if size <= _MAX_SHM_SIZE else None


def _is_shm_size(value: object) -> bool:
    if _is_count(value):
        return isinstance(value, int) and value <= _MAX_SHM_SIZE
    return isinstance(value, str) and _shm_size_bytes(value) is not None


def _is_entrypoint(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(arg, str) and arg.strip() for arg in value)
    )


_DOCKER_OPTIONS: Mapping[str, tuple[Callable[[object], bool], str]] = {
    "image": (lambda v: v is None or isinstance(v, str), "must be a string or null"),
    "python_path": (
        lambda v: isinstance(v, str) and bool(v.strip()),
        "must be a non-empty string",
    ),
    "entrypoint": (
        _is_entrypoint,
        "must be a non-empty string or a non-empty list of non-empty strings",
    ),
    "num_of_gpus": (_is_count, "must be an integer greater than or equal to 0"),
    "shm_size": (
        _is_shm_size,
        "must be a non-negative integer or decimal byte-size string within Docker's signed "
        "64-bit limit",
    ),
}


def _check_docker_options(spec: object, label: str) -> None:
    if not isinstance(spec, dict):
        raise _Invalid(f"{label} must be a dict")
    unsupported = sorted(set(spec) - set(_DOCKER_OPTIONS), key=str)
    if unsupported:
        raise _Invalid(
            f"{label} contains unsupported job-controlled Docker option(s) {unsupported}; "
            f"allowed options: {sorted(_DOCKER_OPTIONS)}"
        )
    for option, value in spec.items():
        valid, error = _DOCKER_OPTIONS[option]
        if not valid(value):
            raise _Invalid(f"{label} field '{option}' {error}")


def _check_portable_values(spec: Mapping[str, Any], label: str) -> None:
    gpus = spec.get("num_of_gpus")
    if "num_of_gpus" in spec and not _is_count(gpus):
        raise _Invalid(f"{label}.num_of_gpus must be an integer greater than or equal to 0")
    cpus = spec.get("num_of_cpus")
    if "num_of_cpus" in spec and (not _is_count(cpus) or cpus == 0):
        raise _Invalid(f"{label}.num_of_cpus must be an integer greater than or equal to 1")
    memory = spec.get("memory")
    if "memory" in spec and (not isinstance(memory, str) or not _MEMORY_RE.fullmatch(memory)):
        raise _Invalid(f"{label}.memory must be a positive integer followed by Mi, Gi, or Ti")


def _site_mode_spec(site_spec: object, mode: str, site: str) -> dict[str, Any]:
    """One launcher mode's part of a site's resource spec (nested or legacy flat form)."""
    if not site_spec or not isinstance(site_spec, dict):
        return {}
    if any(key in site_spec for key in _LAUNCHER_MODES):
        part = site_spec.get(mode, {})
        if not isinstance(part, dict):
            raise _Invalid(f"resource_spec['{site}']['{mode}'] must be a dict")
        return part
    return site_spec if mode == "process" else {}


def _check_resource_spec(meta: Mapping[str, Any], folder: str) -> None:
    spec = meta.get("resource_spec")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise _Invalid(f"Invalid resource_spec for job {folder}")
    for key, value in spec.items():
        if not isinstance(value, dict):
            raise _Invalid(f"value for key {key} in resource spec is expecting a dictionary")
        docker = value.get("docker")
        if docker is not None:
            _check_docker_options(docker, f"resource_spec['{key}']['docker'] for job {folder}")
    if not spec:
        return
    default = spec.get(_PORTABLE_DEFAULT)
    if default is not None:
        unknown = set(default) - set(_PORTABLE_KEYS)
        if unknown:
            raise _Invalid(
                f"resource_spec['{_PORTABLE_DEFAULT}'] contains unsupported field(s): "
                f"{sorted(unknown)}"
            )
        _check_portable_values(default, f"resource_spec['{_PORTABLE_DEFAULT}']")
    for site, site_spec in spec.items():
        if site == _PORTABLE_DEFAULT:
            continue
        if default is None and any(key in site_spec for key in _LAUNCHER_MODES):
            continue  # the legacy nested per-launcher form, unless @default opts in
        effective = (
            _site_mode_spec(site_spec, "process", site) if default is not None else site_spec
        )
        _check_portable_values(effective, f"resource_spec['{site}']")


def _check_launcher_spec(meta: Mapping[str, Any], folder: str) -> None:
    spec = meta.get("launcher_spec")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise _Invalid(f"launcher_spec for job {folder} must be a dict")
    for site, modes in spec.items():
        if not isinstance(modes, dict):
            raise _Invalid(f"launcher_spec['{site}'] for job {folder} must be a dict")
        for mode, options in modes.items():
            if mode not in _LAUNCHER_MODES:
                raise _Invalid(
                    f"launcher_spec['{site}'] for job {folder} contains unknown launcher mode "
                    f"'{mode}'; valid modes: {sorted(_LAUNCHER_MODES)}"
                )
            if not isinstance(options, dict):
                raise _Invalid(f"launcher_spec['{site}']['{mode}'] for job {folder} must be a dict")
            if mode == "docker":
                _check_docker_options(
                    options, f"launcher_spec['{site}']['docker'] for job {folder}"
                )


def _launcher_mode_spec(meta: Mapping[str, Any], site: str, mode: str) -> dict[str, Any]:
    """A site's effective launcher options for a mode (default block, site block, legacy)."""
    launcher = meta.get("launcher_spec") or {}
    default = (launcher.get("default") or {}).get(mode) or {}
    own = (launcher.get(site) or {}).get(mode)
    if default or own is not None:
        return {**default, **(own or {})}
    resources = meta.get("resource_spec") or {}
    return _site_mode_spec(resources.get(site), mode, site)


def _portable_for_site(meta: Mapping[str, Any], site: str) -> dict[str, Any]:
    resources = meta.get("resource_spec") or {}
    site_spec = resources.get(site) or {}
    if _PORTABLE_DEFAULT in resources:
        default = resources.get(_PORTABLE_DEFAULT) or {}
        resolved = {**default, **_site_mode_spec(site_spec, "process", site)}
    elif any(key in site_spec for key in _LAUNCHER_MODES):
        resolved = {}  # legacy nested specs are launcher-specific, not portable
    else:
        resolved = site_spec
    portable = {key: resolved[key] for key in _PORTABLE_KEYS if key in resolved}
    _check_portable_values(portable, f"resource_spec for site '{site}'")
    return portable


def _check_legacy_gpus(meta: Mapping[str, Any], site: str, resources: Mapping[str, Any]) -> None:
    site_spec = resources.get(site) or {}
    if not any(key in site_spec for key in _LAUNCHER_MODES):
        return
    process = _site_mode_spec(site_spec, "process", site)
    if "num_of_gpus" not in process:
        return
    reserved = process["num_of_gpus"]
    specs = {mode: _launcher_mode_spec(meta, site, mode) for mode in ("docker", "k8s", "slurm")}
    if "device_requests" in specs["docker"]:
        raise _Invalid(
            "legacy process num_of_gpus conflicts with launcher_spec docker field "
            f"'device_requests' for site '{site}'"
        )
    for mode in ("docker", "k8s"):
        gpus = specs[mode].get("num_of_gpus", reserved)
        if gpus != reserved:
            raise _Invalid(
                f"legacy process num_of_gpus ({reserved}) must match launcher_spec {mode} "
                f"num_of_gpus ({gpus}) for site '{site}'"
            )
    nodes = specs["slurm"].get("nodes", 1)
    per_node = specs["slurm"].get("gpus_per_node")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (reserved, nodes, per_node)):
        launched = nodes * per_node
        if launched != reserved:
            raise _Invalid(
                f"legacy process num_of_gpus ({reserved}) must match launcher_spec slurm total "
                f"GPUs ({launched}) for site '{site}'"
            )


def _check_resource_conflicts(meta: Mapping[str, Any]) -> None:
    """Portable resources must not clash with launcher-native fields (§3 step 11)."""
    resources = meta.get("resource_spec") or {}
    launcher = meta.get("launcher_spec") or {}
    sites = (set(resources) - {_PORTABLE_DEFAULT}) | (set(launcher) - {"default"})
    for site in sorted(sites):  # sorted: the first conflict reported is deterministic
        _check_legacy_gpus(meta, site, resources)
        site_spec = resources.get(site) or {}
        legacy_gpus = any(key in site_spec for key in _LAUNCHER_MODES) and (
            "num_of_gpus" in _site_mode_spec(site_spec, "process", site)
        )
        portable = _portable_for_site(meta, site)
        for mode, mapping in _PORTABLE_NATIVE_KEYS.items():
            native = _launcher_mode_spec(meta, site, mode)
            for key, native_keys in mapping.items():
                clashes = sorted(native_keys & set(native)) if key in portable else []
                if key == "num_of_gpus" and clashes == ["num_of_gpus"] and legacy_gpus:
                    continue
                if clashes:
                    raise _Invalid(
                        f"portable resource '{key}' conflicts with launcher_spec {mode} "
                        f"field(s) {clashes} for site '{site}'"
                    )
    default_portable = resources.get(_PORTABLE_DEFAULT) or {}
    default_launcher = launcher.get("default") or {}
    for mode, mapping in _PORTABLE_NATIVE_KEYS.items():
        native = default_launcher.get(mode) or {}
        for key, native_keys in mapping.items():
            clashes = sorted(native_keys & set(native)) if key in default_portable else []
            if clashes:
                raise _Invalid(
                    f"portable resource '{key}' conflicts with launcher_spec {mode} field(s) "
                    f"{clashes} in the default blocks"
                )


# --- the whole check ------------------------------------------------------------------------


def _validate(archive: ArchiveView, folder: str) -> JobDefinition:
    problem = _folder_name_problem(folder)
    if problem is not None:
        raise _Invalid(problem)
    layout = _Layout(list(archive.names()))
    meta = dict(_load_meta(archive, layout, folder))
    for key in _STRIPPED_META_KEYS:
        meta.pop(key, None)
    apps, site_list = _deploy_plan(meta, folder)
    byoc, flower = _check_apps(archive, layout, apps, folder)
    for key, derived in ((_BYOC, byoc), (_FLOWER_PREDEPLOYED, flower)):
        if derived:
            meta[key] = True
        else:
            meta.pop(key, None)
    uses_all = any(is_all_sites(site) for site in site_list)
    clients = set() if uses_all else {s for s in site_list if s != SERVER_SITE}
    _check_min_clients(meta, clients, uses_all, folder)
    _check_resource_spec(meta, folder)
    _check_launcher_spec(meta, folder)
    _check_resource_conflicts(meta)
    _check_mandatory_clients(meta, clients, uses_all, folder)
    deploy_sites: list[str] = []
    for site in site_list:
        if site != SERVER_SITE and not is_all_sites(site) and site not in deploy_sites:
            deploy_sites.append(site)
    return JobDefinition(
        meta=meta, folder_name=folder, deploy_sites=deploy_sites, uses_all=uses_all, apps=apps
    )
