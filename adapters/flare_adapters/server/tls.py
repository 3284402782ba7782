"""TLS and client certificates for the server socket, through an ordinary ``ssl`` context."""

from __future__ import annotations

import ssl

from flare_adapters.server.config import ConfigError, TlsConfig, WorkspacePaths

__all__ = ["server_ssl_context"]


def server_ssl_context(tls: TlsConfig, paths: WorkspacePaths) -> ssl.SSLContext:
    """Build the listening socket's TLS context (TLS 1.2 or newer).

    Args:
        tls: the workspace's TLS settings.
        paths: the workspace (relative file names resolve against it).

    Returns:
        A server-side context; with ``client_ca_file`` it verifies client certificates
        (required when ``require_client_cert``, else optional).

    Raises:
        ConfigError: a certificate, key or CA file is missing or invalid.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(paths.resolve(tls.cert_file), paths.resolve(tls.key_file))
        if tls.client_ca_file is not None:
            context.load_verify_locations(cafile=paths.resolve(tls.client_ca_file))
            context.verify_mode = (
                ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
            )
        elif tls.require_client_cert:
            raise ConfigError("tls: require_client_cert needs client_ca_file")
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: cannot load certificates: {exc}") from None
    return context
