"""A header timeout and a header size limit for the HTTP server: a client that trickles its
request headers, or sends more of them than any client needs, is cut off.

uvicorn (which BentoML runs) has no header timeout: its keep-alive timer is cancelled by every
byte received, so a client sending one header byte every few seconds holds a connection forever
(slowloris). BentoML builds uvicorn's config itself and offers no option for the protocol class,
so this module registers a subclass of uvicorn's httptools protocol under uvicorn's ``auto`` name
(``uvicorn.config.HTTP_PROTOCOLS``, the table uvicorn resolves its ``http`` option from). The
subclass starts one timer when a connection opens and after each response, and cancels it when
a request's headers are complete: one ``call_later`` per request, as the keep-alive timer already
costs. Installed by service.py when the service module is imported, before uvicorn starts.

uvicorn's httptools protocol has no header size limit either: a 10 MB header line was read into
memory and answered 200, outside the byte budget that bounds request bodies (admission.py). The
bytes of each request line and its headers are counted as the parser takes them (until it says
the headers are complete); past MAX_HEADER_BYTES the connection gets a 431 and is closed.
A request its parser cannot read gets a 400 in the error envelope too (uvicorn's is plain text),
logged through the worker's throttled refusal log (uvicorn logs each as a WARNING).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

logger = logging.getLogger("klarna_pd.serving")


class _RefusalLog:
    """At most ``rate`` refusal lines a second; the rest are counted and summed up in the next line.

    A client's mistake is an INFO line, not a warning: a scanner sending garbage must not flood
    the log (or page anyone)."""

    def __init__(self, rate: float = 20.0) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()
        self.suppressed = 0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            self.suppressed += 1
            return
        self.tokens -= 1.0
        if self.suppressed:
            text += f" ({self.suppressed} more refusals not logged)"
            self.suppressed = 0
        logger.info(text)


#: The worker's refusal log: the gateway's refusals and the malformed requests below share it.
log_refusal = _RefusalLog()


class _NoParserWarning(logging.Filter):
    """uvicorn logs every request its parser cannot read as a WARNING, unthrottled; the protocol
    below answers and logs those itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."


_ENTRY = "klarna_pd.serving.protocol:HeaderTimeoutProtocol"
_timeout = 10.0
#: Request line and headers together: 64 KiB, twice nginx's default for a request's headers (4 x 8 KiB).
MAX_HEADER_BYTES = 64 * 1024
_SLICE = 4096  # header bytes fed to the parser at a time: the count overshoots by less than this
_TOO_LARGE = f"request headers over {MAX_HEADER_BYTES:,} bytes"


def _answer(status: bytes, message: str) -> bytes:
    """A whole response in the error envelope (errors.RequestError), closing the connection."""
    envelope = {"status": "error", "message": message, "errors": [{"loc": "", "msg": message}]}
    body = json.dumps(envelope).encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: nothing to install (uvicorn would use h11)
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class HeaderTimeoutProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """uvicorn's httptools protocol with a deadline for each request's headers."""

        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0

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

        _refused = False
        _in_body = False  # the parser is between a request's headers and its end

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # read and dropped until the connection closes, so that no reset eats the 431
            # Request lines and headers reach the parser in slices, each counted, until the parser
            # says a request's headers are complete; the rest of the bytes (its body) go at once.
            # So a body never counts (nor one after an early answer), a pipelined request's
            # headers always do, and the parser never buffers much past the limit.
            while data and not self._in_body:
                part, data = data[:_SLICE], data[_SLICE:]
                self._header_bytes += len(part)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._refuse()
                    return
                super().data_received(part)
                if self._refused or self.transport.is_closing():
                    return
            if data:
                super().data_received(data)

        def on_message_complete(self) -> None:
            self._in_body = False
            self._header_bytes = 0
            super().on_message_complete()

        _answer_pending = False

        def _busy(self) -> bool:
            """Whether a request before the refused one is still to be answered (pipelining)."""
            return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

        def _refuse(self) -> None:
            self._disarm()
            self._refused = True
            if self.transport.is_closing():
                return
            log_refusal(f"431 {_TOO_LARGE}")
            if self._busy():  # answers go in request order: after the requests before it
                self._answer_pending = True
                return
            self._answer_431()

        def _answer_431(self) -> None:
            self.transport.write(_answer(b"431 Request Header Fields Too Large", _TOO_LARGE))
            # Closed at once with the client's bytes unread, the kernel would answer them with a
            # reset that can reach the client before it reads the 431: end our side, drop what
            # still comes, close after a second.
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(1.0, self.transport.close)

        def send_400_response(self, msg: str) -> None:  # the parser could not read the request
            self._disarm()
            self._refused = True  # what follows on this connection is not read
            log_refusal("400 malformed HTTP request")
            self.transport.write(_answer(b"400 Bad Request", "malformed HTTP request: expected an HTTP/1.1 "
                                                             "request line and headers"))
            self.transport.close()

        def on_headers_complete(self) -> None:
            self._disarm()
            self._in_body = True
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if not self._refused:
                self._arm()
            elif self._answer_pending and not self._busy():
                self._answer_pending = False
                self._answer_431()

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
    logging.getLogger("uvicorn.error").addFilter(_NoParserWarning())
    uvicorn.config.HTTP_PROTOCOLS["auto"] = _ENTRY
    uvicorn.config.HTTP_PROTOCOLS["httptools"] = _ENTRY
    return True
