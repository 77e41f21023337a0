"""A header timeout for the HTTP server: a client that trickles its request headers is cut off.

uvicorn (which BentoML runs) has no header timeout: its keep-alive timer is cancelled by every
byte received, so a client sending one header byte every few seconds holds a connection forever
(slowloris). BentoML builds uvicorn's config itself and offers no option for the protocol class,
so this module registers a subclass of uvicorn's httptools protocol under uvicorn's ``auto`` name
(``uvicorn.config.HTTP_PROTOCOLS``, the table uvicorn resolves its ``http`` option from). The
subclass starts one timer when a connection opens and after each response, and cancels it when
a request's headers are complete: one ``call_later`` per request, as the keep-alive timer already
costs. Installed by service.py when the service module is imported, before uvicorn starts.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger("klarna_pd.serving")

_ENTRY = "klarna_pd.serving.protocol:HeaderTimeoutProtocol"
_timeout = 10.0

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: nothing to install (uvicorn would use h11)
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class HeaderTimeoutProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """uvicorn's httptools protocol with a deadline for each request's headers."""

        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                logger.info("closing a connection whose request headers took over %.0f s", _timeout)
                self.transport.close()

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc) -> None:  # type: ignore[override]
            self._disarm()
            super().connection_lost(exc)


def install(timeout: float) -> bool:
    """Make uvicorn's ``auto`` HTTP protocol the header-timeout one; False when it cannot be."""
    global _timeout
    if HttpToolsProtocol is None:
        return False
    import uvicorn.config

    _timeout = timeout
    uvicorn.config.HTTP_PROTOCOLS["auto"] = _ENTRY
    uvicorn.config.HTTP_PROTOCOLS["httptools"] = _ENTRY
    return True
