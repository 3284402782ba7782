"""The client flows: one generator per ``SessionSpec`` method (sans-I/O).

A flow validates its arguments, yields ``flare_core.steps`` steps (plus ``Notify`` for the
monitor callback) and returns the method's result; ``flare_adapters.session`` runs them over
a transport, synchronously or asynchronously. Every behaviour of the client half lives here
once.

Each flow module's ``__all__`` is its public list; this package re-exports them as they are,
so a new flow is declared once, in its module. The flow modules are public (the drivers call
them as namespaces: ``jobs.submit_job``); ``_calls`` and ``_context`` hold the shared parts.
"""

from flare_core._public import report_package
from flare_core.flows import _calls, _context, jobs, monitor, shell, stats, studies, system
from flare_core.flows._calls import *  # noqa: F403
from flare_core.flows._context import *  # noqa: F403
from flare_core.flows.jobs import *  # noqa: F403
from flare_core.flows.monitor import *  # noqa: F403
from flare_core.flows.shell import *  # noqa: F403
from flare_core.flows.stats import *  # noqa: F403
from flare_core.flows.studies import *  # noqa: F403
from flare_core.flows.system import *  # noqa: F403

__all__: list[str] = []
__all__ += _calls.__all__
__all__ += _context.__all__
__all__ += jobs.__all__
__all__ += monitor.__all__
__all__ += shell.__all__
__all__ += stats.__all__
__all__ += studies.__all__
__all__ += system.__all__

report_package(globals(), __all__, __name__)
