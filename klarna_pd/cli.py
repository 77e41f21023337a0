"""How the command-line tools end: a stop asked for from outside is not a crash.

SIGTERM (a job scheduler, ``timeout``, a pod's shutdown) raises SystemExit in the main thread, so
the tools' ``finally`` blocks still remove their temporary files (Python's default for SIGTERM
ends the process on the spot and leaves them behind); Ctrl-C prints one line, not a traceback.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import NoReturn


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run(main: Callable[[], int]) -> NoReturn:
    """Run a tool's ``main()`` and exit with its code: 143 after SIGTERM, 130 after Ctrl-C."""
    signal.signal(signal.SIGTERM, _stop)
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
