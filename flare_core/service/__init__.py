"""The server half of the core: ``AdminService``, its configuration and its ports.

``AdminService`` satisfies ``flare_ports.Backend``; hosts (FakeFlare, the HTTP/WS server) build
it from a ``ServiceConfig`` and ``ServicePorts`` (see ``flare_core.service.ports``).
"""

from flare_core._public import report_package
from flare_core.service._admin import AdminService
from flare_core.service._config import DEFAULT_MAX_LOG_BYTES, ServiceConfig, UserConfig
from flare_core.service._core import SiteInfo, job_blob_prefix
from flare_core.service._credentials import (
    BAD_CREDENTIALS,
    DEFAULT_SCRYPT_N,
    hash_api_key,
    hash_generated_key,
    require_api_key,
    verify_api_key,
)
from flare_core.service.ports import InlineOffload, NullLock, ServicePorts

__all__ = [
    "BAD_CREDENTIALS",
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
    "job_blob_prefix",
    "require_api_key",
    "verify_api_key",
]

report_package(globals(), __all__, __name__)
