"""What a call leaves for Python's cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Callable


def cycles_left(call: Callable[[], object], times: int) -> int:
    """Objects in reference cycles (freed only by the collector) that ``times`` calls of ``call``
    leave behind; the collector is off meanwhile, so none is freed before they are counted."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(times):
            call()
        return gc.collect()
    finally:
        gc.enable()
