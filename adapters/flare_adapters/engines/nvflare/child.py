"""The engine's child process: NVFlare's simulator on one job, tied to the server's life.

Run as ``python -m flare_adapters.engines.nvflare.child JOB_FOLDER -w WS -c SITES -t N``
(the arguments of ``nvflare simulator``) in a process group of its own. Its standard input is a
lifeline: the server holds the write end and never writes to it, so end-of-file means the
server is gone (crashed, killed, or closed the engine). The child then kills its whole process
group - the simulator's server, its client workers and the multiprocessing manager - so no
computation outlives the server that launched it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

__all__ = ["main"]


def _watch_lifeline() -> None:
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    except OSError:
        pass
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """Run the simulator on one job folder; its return code becomes the exit code."""
    threading.Thread(target=_watch_lifeline, name="lifeline", daemon=True).start()
    from nvflare.private.fed.app.simulator.simulator import (
        define_simulator_parser,
        run_simulator,
    )

    parser = argparse.ArgumentParser(prog="flare-core-simulator")
    define_simulator_parser(parser)
    status = run_simulator(parser.parse_args(argv))
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
