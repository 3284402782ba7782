"""Client administration (remove/disable/enable, reference §6.11) and shell commands (§7.2,
DECISIONS §17).

Shell commands run in-process over the target site's workspace ``FileTree`` through
``flare_core.shell.run_shell``; the target is ``server`` or one connected (enrolled) client,
and the policy right is the verb itself (category ``shell_commands``).
"""

from __future__ import annotations

import functools
from typing import Any

from flare_core.commands import DisableClient, EnableClient, RemoveClient, ShellCommand
from flare_core.errors import InvalidArgumentError, InvalidTarget, NoClientsAvailable
from flare_core.principal import Principal
from flare_core.service._core import OutsideLock, ServiceCore
from flare_core.service._scheduler import schedule
from flare_core.shell import run_shell

__all__ = ["disable_client", "enable_client", "remove_client", "run_shell_command"]


def _client_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("client_name must be a non-empty str")
    return name


def remove_client(core: ServiceCore, principal: Principal, command: RemoveClient) -> None:
    """Drop a connected client's session (it may reconnect).

    Raises:
        NoClientsAvailable: no client is connected.
        InvalidTarget: ``"invalid client(s): <name>"`` - not connected.
    """
    core.authorize(principal, command.right)
    name = _client_name(command.client_name)
    connected = core.connected_clients()
    if not connected:
        raise NoClientsAvailable("no clients available")
    if name not in connected:
        raise InvalidTarget(f"invalid client(s): {name}")
    core.disconnect(name)


def disable_client(
    core: ServiceCore, principal: Principal, command: DisableClient
) -> dict[str, Any]:
    """Disable a client (connected or not; idempotent); a connected one is disconnected."""
    core.authorize(principal, command.right)
    name = _client_name(command.client_name)
    already = name in core.ports.sites.disabled()
    core.ports.sites.set_disabled(name, True)
    removed = core.disconnect(name)
    row = {
        "client_name": name,
        "state": "disabled",
        "already_disabled": already,
        "active_session_removed": removed,
        "credential_revoked": False,
        "rejoin_allowed": False,
    }
    return {"clients": [row]}


def enable_client(core: ServiceCore, principal: Principal, command: EnableClient) -> dict[str, Any]:
    """Enable a client again (idempotent); it may then reconnect."""
    core.authorize(principal, command.right)
    name = _client_name(command.client_name)
    was_disabled = name in core.ports.sites.disabled()
    core.ports.sites.set_disabled(name, False)
    schedule(core)
    row = {
        "client_name": name,
        "state": "enabled",
        "was_disabled": was_disabled,
        "credential_revoked": False,
        "rejoin_allowed": True,
    }
    return {"clients": [row]}


def run_shell_command(
    core: ServiceCore, principal: Principal, command: ShellCommand
) -> OutsideLock:
    """Run ``ls``/``cat``/``head``/``tail``/``grep``/``pwd`` in a site's workspace.

    The right is checked before the target, so a user without it cannot tell which sites
    exist (403 either way, issue 10). The checks run under the service lock; the file work
    runs after it is released (the returned ``OutsideLock``), so a large file or a costly
    pattern never stalls other users.

    Raises:
        AuthorizationError: the policy denies the verb.
        InvalidTarget: not ``server`` nor a connected, enrolled client.
        InvalidArgumentError: the options or file break the reference's rules (raised by
            the deferred work).
    """
    core.authorize(principal, command.verb)
    site = core.resolve_site(principal, command.target)
    tree = core.ports.workspaces.tree(site)
    if tree is None:
        raise InvalidTarget(f"invalid target: {command.target}")
    return OutsideLock(functools.partial(run_shell, command, tree))
