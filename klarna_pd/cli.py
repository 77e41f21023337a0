"""How the command-line tools end: a stop asked for from outside is not a crash.

SIGTERM (a job scheduler, ``timeout``, a pod's shutdown) raises SystemExit in the main thread, so
the tools' ``finally`` blocks still remove their temporary files (Python's default for SIGTERM
ends the process on the spot and leaves them behind); Ctrl-C prints one line, not a traceback.
The project's own warnings (an ignored column, say) print as ``warning: ...`` lines, not in
Python's format with a source line of ours after them. Flags are spelled out: argparse's default
takes any unambiguous prefix (``--fold 3`` for ``--folds``), so a script using one breaks, or
changes meaning, the day another flag with that prefix is added.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from collections.abc import Callable
from typing import NoReturn

_show_default = warnings.showwarning


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    if category.__module__.startswith("klarna_pd."):
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        _show_default(message, category, filename, lineno, file, line)


class Parser(argparse.ArgumentParser):
    """The tools' argument parser: whole flag names only (sub-commands' parsers too)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run(main: Callable[[], int]) -> NoReturn:
    """Run a tool's ``main()`` and exit with its code: 143 after SIGTERM, 130 after Ctrl-C."""
    signal.signal(signal.SIGTERM, _stop)
    warnings.showwarning = _show
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
