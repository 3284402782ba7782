"""NVFlare's exceptions, translated to flare-core's in exactly one place.

NVFlare raises its own classes (module ``nvflare.fuel.flare_api.api_spec``) with the same names
and attributes as ours, and built-in ``ValueError``/``TypeError``/``SyntaxError``/
``AssertionError`` for bad arguments. ``translate`` maps the first by name (keeping
``existing_job_id``, ``auth_code``, ...) and, for the backend, the built-ins to
``InvalidArgumentError`` (DECISIONS §4); ``same_name`` does only the first, which is all the
certification wrapper over NVFlare's own ``Session`` may do.
"""

from __future__ import annotations

import inspect

from flare_core import errors as ours
from flare_core.errors import (
    CommandError,
    InternalError,
    InvalidArgumentError,
    NoConnection,
)

__all__ = ["NVFLARE_MODULE_PREFIX", "same_name", "translate"]

NVFLARE_MODULE_PREFIX = "nvflare."

_BY_NAME: dict[str, type[Exception]] = {
    name: getattr(ours, name) for name in ours.__all__ if isinstance(getattr(ours, name), type)
}
_ARGUMENT_ERRORS = (ValueError, TypeError, SyntaxError, AssertionError)


def _from_nvflare(exc: BaseException) -> Exception | None:
    cls = type(exc)
    if not cls.__module__.startswith(NVFLARE_MODULE_PREFIX):
        return None
    target = _BY_NAME.get(cls.__name__)
    if target is None:
        return None
    if target is CommandError:
        return CommandError(
            str(getattr(exc, "error_code", "") or ""),
            str(getattr(exc, "message", "") or ""),
            str(getattr(exc, "hint", "") or ""),
            int(getattr(exc, "exit_code", 1) or 1),
        )
    message = str(exc.args[0]) if exc.args else ""
    # The attributes our constructor takes beyond the message, read off NVFlare's instance.
    init = target.__dict__.get("__init__")
    names = list(inspect.signature(init).parameters)[2:] if init is not None else []
    kwargs = {name: getattr(exc, name, None) for name in names}
    return target(message, **kwargs)


def same_name(exc: BaseException) -> BaseException:
    """NVFlare's exception as flare-core's class of the same name; anything else unchanged."""
    translated = _from_nvflare(exc)
    return exc if translated is None else translated


def translate(exc: BaseException) -> Exception:
    """Any exception an NVFlare admin call raised, as the flare-core exception to report.

    Most specific first: NVFlare's own classes by name; a lost connection; the built-ins its
    argument checks raise (``InvalidArgumentError``); anything else an opaque
    ``InternalError`` naming the foreign type.
    """
    translated = _from_nvflare(exc)
    if translated is not None:
        return translated
    if isinstance(exc, ours.NoConnection | InvalidArgumentError) or type(exc) in _BY_NAME.values():
        assert isinstance(exc, Exception)
        return exc
    if isinstance(exc, ConnectionError | TimeoutError):
        return NoConnection(f"cannot connect to server: {exc}")
    if isinstance(exc, _ARGUMENT_ERRORS):
        return InvalidArgumentError(str(exc))
    return InternalError(f"nvflare {type(exc).__name__}: {exc}")
