"""Client flows of the target shell commands (reference §7.1; DECISIONS §4, §5, §17).

Arguments are validated locally by ``check_shell_args`` (nothing is sent on failure); the
server runs the command confined to the target's workspace and returns its text output,
which is returned as is: file content is data, never scanned for keywords (DECISIONS §5).
"""

from __future__ import annotations

from flare_core.errors import InternalError
from flare_core.flows._calls import call
from flare_core.flows._context import ClientFlow, FlowContext
from flare_core.shell import check_shell_args

__all__ = ["run_shell"]


def run_shell(
    ctx: FlowContext,
    verb: str,
    target: str,
    options: str | None = None,
    path: str | None = None,
    file: str | None = None,
    pattern: str | None = None,
) -> ClientFlow[str]:
    """Run ``ls``/``cat``/``head``/``tail``/``grep``/``pwd`` on ``target``; return its output.

    Raises:
        InvalidArgumentError: an argument breaks the §7.1 rules (nothing is sent).
        InvalidTarget: the target is not the server or a connected client.
    """
    command = check_shell_args(verb, target, options, path, file, pattern)
    output = yield from call(ctx, command)
    if output is None:
        return ""
    if not isinstance(output, str):
        raise InternalError(f"{verb} returned {type(output).__name__}, not text")
    return output
