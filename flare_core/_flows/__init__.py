"""The client flows: one generator per ``SessionSpec`` method (sans-I/O).

A flow validates its arguments, yields ``flare_core._steps`` steps (plus ``Notify`` for the
monitor callback) and returns the method's result; ``flare_adapters.session`` runs them over
a transport, synchronously or asynchronously. Every behaviour of the client half lives here
once.

Each flow module's ``__all__`` is its public list; this package re-exports them as they are,
so a new flow is declared once, in its module (``_watch`` stays private: the drivers import
it directly).
"""

from flare_core._flows import _calls, _context, _jobs, _monitor, _shell, _stats, _studies, _system
from flare_core._flows._calls import *  # noqa: F403
from flare_core._flows._context import *  # noqa: F403
from flare_core._flows._jobs import *  # noqa: F403
from flare_core._flows._monitor import *  # noqa: F403
from flare_core._flows._shell import *  # noqa: F403
from flare_core._flows._stats import *  # noqa: F403
from flare_core._flows._studies import *  # noqa: F403
from flare_core._flows._system import *  # noqa: F403

__all__: list[str] = []
__all__ += _calls.__all__
__all__ += _context.__all__
__all__ += _jobs.__all__
__all__ += _monitor.__all__
__all__ += _shell.__all__
__all__ += _stats.__all__
__all__ += _studies.__all__
__all__ += _system.__all__
