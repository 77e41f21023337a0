"""What one worker takes in at once, so that no client can hurt the others.

- **Bytes in flight**: request bodies held by the worker, bounded by ``max_inflight_bytes``. A
  request that would pass the bound is refused at once with 503 "overloaded" and ``Retry-After``,
  before its body is read. This bounds memory (the bodies, and the objects parsed from them) and
  time: the work queued behind a request is at most the bound's worth, about a second at this
  service's rate, so overload clears as soon as the burst does: there is no state to get stuck in.
- **Heavy work off the event loop**: parsing, checking and scoring a large body runs in one worker
  thread, so the event loop keeps answering probes and small requests between its slices of the
  GIL. Small bodies (the checkout's one applicant) are handled inline: a thread hop would cost
  more than the work.

Everything here runs on the event loop's thread, so plain counters need no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

INLINE_BYTES = 64 * 1024
"""Bodies up to this size (about 50 applicants) are parsed and scored on the event loop."""


class Overloaded(Exception):
    """The worker holds too much already; the request should come back in a moment."""


class Admission:
    """The in-flight byte budget of one worker and its thread for heavy requests.

    Args:
        max_inflight_bytes: most body bytes held at once.
        on_change: called with the bytes held after every change (a gauge on /metrics).
    """

    def __init__(self, max_inflight_bytes: int, on_change: Callable[[int], None] | None = None) -> None:
        self.limit = max_inflight_bytes
        self.held = 0
        self.on_change = on_change
        self._executor: ThreadPoolExecutor | None = None

    def reserve(self, n: int) -> None:
        """Hold ``n`` more bytes, or raise :class:`Overloaded` (a body is never refused on an idle worker)."""
        if self.held and self.held + n > self.limit:
            raise Overloaded(
                f"overloaded: {self.held:,} bytes of requests in flight, {n:,} more would pass the budget "
                f"of {self.limit:,}; retry in a moment"
            )
        self.held += n
        if self.on_change is not None:
            self.on_change(self.held)

    def release(self, n: int) -> None:
        self.held -= n
        if self.on_change is not None:
            self.on_change(self.held)

    async def run(self, size: int, func: Callable[[], T]) -> T:
        """``func()`` inline for small bodies, in the worker's heavy-work thread for large ones."""
        if size <= INLINE_BYTES:
            return func()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="klarna-pd-heavy")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)
