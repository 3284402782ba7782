"""``https://`` and ``wss://`` with ordinary ``ssl`` contexts: server verification and client
certificates (DECISIONS §18)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flare_core.errors import NoConnection
from tests.transports.conftest import FAST_RETRY, factory
from tests.transports.servers import ADMIN, VirtualServer, virtual_server


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def _pair(
    openssl: str, directory: Path, name: str, ca: tuple[Path, Path], san: str
) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _run(
        openssl,
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key,
        "-out",
        csr,
        "-subj",
        f"/CN={name}",
    )
    _run(
        openssl,
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca[1],
        "-CAkey",
        ca[0],
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        cert,
        "-extfile",
        ext,
    )
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make test certificates")
    directory = tmp_path_factory.mktemp("pki")
    ca = directory / "ca.key", directory / "ca.crt"
    _run(
        openssl,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        ca[0],
        "-out",
        ca[1],
        "-subj",
        "/CN=test-ca",
    )
    server = _pair(openssl, directory, "server", ca, "IP:127.0.0.1")
    client = _pair(openssl, directory, "client", ca, "")
    return {
        "ca": ca[1],
        "server_key": server[0],
        "server_cert": server[1],
        "client_key": client[0],
        "client_cert": client[1],
    }


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, Path]) -> Iterator[VirtualServer]:
    """A server that requires client certificates signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    context.load_verify_locations(cafile=pki["ca"])
    context.verify_mode = ssl.CERT_REQUIRED
    with virtual_server(ssl_context=context) as running:
        yield running


def _client_context(pki: dict[str, Path], *, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if with_cert:
        context.load_cert_chain(pki["client_cert"], pki["client_key"])
    return context


def _connect(scheme: str, server: VirtualServer, **options: Any) -> Any:
    return factory(scheme).connect(
        server.url(scheme),
        user=ADMIN,
        api_key=ADMIN,
        study="default",
        retry=FAST_RETRY,
        **options,
    )


def test_a_trusted_server_and_a_client_certificate_connect(
    scheme: str, tls_server: VirtualServer, pki: dict[str, Path]
) -> None:
    assert tls_server.url(scheme).startswith(("https://", "wss://"))
    with _connect(scheme, tls_server, ssl=_client_context(pki)) as session:
        assert session.get_system_info().server_info.status == "started"


def test_an_untrusted_server_is_no_connection(scheme: str, tls_server: VirtualServer) -> None:
    with pytest.raises(NoConnection, match=r"certificate|TLS"):
        _connect(scheme, tls_server)  # the system's CAs do not know the test CA


def test_a_missing_client_certificate_is_no_connection(
    scheme: str, tls_server: VirtualServer, pki: dict[str, Path]
) -> None:
    with pytest.raises(NoConnection):
        _connect(scheme, tls_server, ssl=_client_context(pki, with_cert=False))
