"""What a call leaves for Python's cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Callable


def cycles_left(call: Callable[[], object], times: int, *, attempts: int = 3) -> int:
    """Objects in reference cycles (freed only by the collector) that ``times`` calls of ``call``
    leave behind; the collector is off meanwhile, so none is freed before they are counted.

    The collector counts the whole process: another thread of a test worker (xdist's, Spark's py4j)
    may leave garbage in the same window (129 objects once, against a bound of 100), so the least
    of ``attempts`` windows is returned; a leak per call shows in every one."""
    counts = []
    for _ in range(attempts):
        gc.collect()
        gc.disable()
        try:
            for _ in range(times):
                call()
            counts.append(gc.collect())
        finally:
            gc.enable()
    return min(counts)
