"""Where a session command connects to, and as whom: flags, environment, profile file.

Each setting is taken from the first place that has it: the command line, the environment
(``FLARE_CORE_URL``, ``FLARE_CORE_USER``, ``FLARE_CORE_STUDY``, ``FLARE_CORE_API_KEY_FILE``),
then the profile. The profile file is TOML, by default ``$XDG_CONFIG_HOME/flare-core/config.toml``
(``~/.config/flare-core/config.toml``), overridden by ``--config`` or ``FLARE_CORE_CONFIG``::

    default_profile = "local"

    [profiles.local]
    url = "http://127.0.0.1:8003"
    user = "admin@nvidia.com"
    api_key_file = "~/.config/flare-core/admin.key"   # a file holding the key, mode 0600
    study = "default"
    ca_file = "/path/ca.pem"          # https/wss: trust this CA bundle
    cert_file = "/path/client.pem"    # https/wss: present this client certificate
    key_file = "/path/client.key"

The API key is never an argument (the command line ends up in shell histories and process
listings): it comes from a key file, or from ``FLARE_CORE_API_KEY`` for CI systems that inject
secrets as environment variables.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["PROFILE_KEYS", "ConnectionSettings", "ProfileError", "default_config_path", "resolve"]

PROFILE_KEYS: Final = (
    "url",
    "user",
    "api_key_file",
    "study",
    "ca_file",
    "cert_file",
    "key_file",
)
"""The keys a profile may hold (unknown keys are refused: a typo must not go unnoticed)."""

_ENV: Final = {
    "url": "FLARE_CORE_URL",
    "user": "FLARE_CORE_USER",
    "api_key_file": "FLARE_CORE_API_KEY_FILE",
    "study": "FLARE_CORE_STUDY",
}


class ProfileError(ValueError):
    """The profile file or a setting is unusable; the message says which and why."""


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything a session command needs to connect (secrets included: never print it)."""

    url: str
    user: str
    api_key: str | None
    study: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context for https/wss when the settings name a CA or a client certificate."""
        if not (self.ca_file or self.cert_file):
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def default_config_path(environ: Mapping[str, str]) -> str:
    """The profile file used when neither ``--config`` nor ``FLARE_CORE_CONFIG`` is given."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "flare-core", "config.toml")


def _load_profile(path: str, name: str | None, explicit: bool) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        if explicit or name is not None:
            raise ProfileError(f"no profile file {path}") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"cannot read profile file {path}: {exc}") from None
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ProfileError(f"{path}: 'profiles' must be a table")
    chosen = name or document.get("default_profile") or "default"
    profile = profiles.get(chosen)
    if profile is None:
        if name is not None or "default_profile" in document:
            known = ", ".join(sorted(profiles)) or "none"
            raise ProfileError(f"{path}: no profile {chosen!r} (profiles: {known})")
        return {}
    if not isinstance(profile, dict):
        raise ProfileError(f"{path}: profile {chosen!r} must be a table")
    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if unknown:
        raise ProfileError(f"{path}: profile {chosen!r}: unknown keys {unknown}")
    for key, value in profile.items():
        if not isinstance(value, str):
            raise ProfileError(f"{path}: profile {chosen!r}: {key} must be a string")
    return {key: os.path.expanduser(value) for key, value in profile.items()}


def _read_key(path: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            key = handle.read().strip()
    except OSError as exc:
        raise ProfileError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if not key:
        raise ProfileError(f"the API key file {path} is empty")
    return key


def resolve(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> ConnectionSettings:
    """Merge the command line, the environment and the profile into connection settings.

    Args:
        flags: the command-line values (``url``, ``user``, ``api_key_file``, ``study``,
            ``ca_file``, ``cert_file``, ``key_file``, ``config``, ``profile``; None: not
            given).
        environ: the process environment.

    Raises:
        ProfileError: an unreadable profile or key file, or no URL or user anywhere.
    """
    config = flags.get("config") or environ.get("FLARE_CORE_CONFIG")
    name = flags.get("profile") or environ.get("FLARE_CORE_PROFILE")
    path = config or default_config_path(environ)
    profile = _load_profile(path, name, explicit=config is not None)
    merged: dict[str, str | None] = {}
    for key in PROFILE_KEYS:
        env_name = _ENV.get(key)
        merged[key] = (
            flags.get(key) or (environ.get(env_name) if env_name else None) or profile.get(key)
        )
    url, user = merged["url"], merged["user"]
    if not url or not user:
        raise ProfileError(
            "no server to talk to: give --url and --user, set FLARE_CORE_URL and "
            f"FLARE_CORE_USER, or write a profile in {path}"
        )
    key_file = merged["api_key_file"]
    api_key = _read_key(key_file) if key_file else environ.get("FLARE_CORE_API_KEY") or None
    return ConnectionSettings(
        url=url,
        user=user,
        api_key=api_key,
        study=merged["study"] or "default",
        ca_file=merged["ca_file"],
        cert_file=merged["cert_file"],
        key_file=merged["key_file"],
    )
