"""The server half of the core: ``AdminService``, its configuration and its ports.

``AdminService`` satisfies ``flare_ports.Backend``; hosts (FakeFlare, the HTTP/WS server) build
it from a ``ServiceConfig`` and ``ServicePorts`` (see ``flare_core._service.ports``).
"""

from flare_core._service._admin import AdminService
from flare_core._service._config import DEFAULT_MAX_LOG_BYTES, ServiceConfig, UserConfig
from flare_core._service._core import SiteInfo
from flare_core._service._credentials import (
    DEFAULT_SCRYPT_N,
    hash_api_key,
    hash_generated_key,
    verify_api_key,
)
from flare_core._service.ports import InlineOffload, NullLock, ServicePorts

__all__ = [
    "DEFAULT_MAX_LOG_BYTES",
    "DEFAULT_SCRYPT_N",
    "AdminService",
    "InlineOffload",
    "NullLock",
    "ServiceConfig",
    "ServicePorts",
    "SiteInfo",
    "UserConfig",
    "hash_api_key",
    "hash_generated_key",
    "verify_api_key",
]
