"""``make soak-schemathesis``: schemathesis against ``/v1/openapi.json`` of a served system.

schemathesis runs from its own virtualenv (``.venv-schemathesis``; see the Makefile): it pins
its own hypothesis, which must not leak into the project's test environment. Every
operation is called with an admin's bearer token; the check is ``not_a_server_error``. The
routes that end the session or stop the server are left out, or every later case would only
see 401/503.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.soak.client import Raw, login
from tests.soak.served import ServerProcess, make_workspace

EXCLUDED = ("/v1/sessions/current", "/v1/system/shutdown", "/v1/system/restart")


def main(argv: list[str]) -> int:
    st = Path(argv[0]) if argv else Path(".venv-schemathesis/bin/st")
    examples = argv[1] if len(argv) > 1 else "30"
    with tempfile.TemporaryDirectory(prefix="flare-st-") as workdir:
        root = str(Path(workdir) / "st")
        keys = make_workspace(root)
        server = ServerProcess(root)
        server.start()
        try:
            token = login(Raw(server.port), "admin@nvidia.com", keys["admin@nvidia.com"])
            command = [
                str(st),
                "run",
                f"{server.url}/v1/openapi.json",
                "-H",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error",
                "-n",
                examples,
                "--request-timeout",
                "30",
                "--no-color",
            ]
            for path in EXCLUDED:
                command += ["--exclude-path", path]
            return subprocess.run(command, check=False).returncode
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
