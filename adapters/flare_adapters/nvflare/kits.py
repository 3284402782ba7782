"""Admin startup kits: which NVFlare identity each flare-core user acts as.

NVFlare knows an admin user by the certificate in that user's startup kit, so the backend's
config maps every flare-core user name to a kit folder (the folder holding ``startup/``).
The user's org and role are read from the kit's certificate (NVFlare writes them into the
subject as ``O`` and ``unstructuredName``); NVFlare itself still authorizes every command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flare_core.errors import InvalidArgumentError

__all__ = ["KitIdentity", "KitUser", "kit_identity"]

_CERT = os.path.join("startup", "client.crt")
_FED_ADMIN = os.path.join("startup", "fed_admin.json")


@dataclass(frozen=True, kw_only=True)
class KitUser:
    """One flare-core user and the NVFlare admin kit that user acts through.

    Attributes:
        name: the user name (NVFlare's admin user name, e.g. ``admin@nvidia.com``).
        kit: the admin startup kit folder (it holds ``startup/fed_admin.json``).
        api_key_hash: the hashed API key the gateway checks at login (``hash_api_key``);
            None for in-process use, where reading the kit is the credential.
    """

    name: str
    kit: str
    api_key_hash: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError("a kit user needs a non-empty name")
        if not isinstance(self.kit, str) or not os.path.isabs(self.kit):
            raise InvalidArgumentError(f"the kit of {self.name!r} must be an absolute path")

    def check(self) -> None:
        """Raise ``InvalidArgumentError`` unless the kit folder looks like an admin kit."""
        if not os.path.isfile(os.path.join(self.kit, _FED_ADMIN)):
            raise InvalidArgumentError(
                f"{self.kit!r} is not an NVFlare admin startup kit (no {_FED_ADMIN})"
            )


@dataclass(frozen=True)
class KitIdentity:
    """The org and role an admin kit's certificate names (empty when unreadable)."""

    org: str = ""
    role: str = ""


def kit_identity(kit: str) -> KitIdentity:
    """Read the org and role from ``<kit>/startup/client.crt`` (best effort)."""
    try:
        from cryptography import x509  # ships with the nvflare extra
        from cryptography.x509.oid import NameOID

        with open(os.path.join(kit, _CERT), "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except (ImportError, OSError, ValueError):
        return KitIdentity()

    def first(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return KitIdentity(org=first(NameOID.ORGANIZATION_NAME), role=first(NameOID.UNSTRUCTURED_NAME))
