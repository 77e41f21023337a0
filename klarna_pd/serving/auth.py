"""Optional API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

With no keys configured nobody is asked for one. With keys, every request except the probes and
``/metrics`` needs one. The rule, whatever the order of the headers: every credential the request
presents must be a valid key, and there must be at least one. A wrong ``X-API-Key`` beside a valid
bearer token is refused: a client that sends a wrong key has a configuration error worth hearing
about, and accepting "any one of them" would let a caller probe keys while holding one. Keys are
compared in constant time (each configured key is compared, whatever matched) and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
MESSAGE = "missing or invalid API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def presented(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """Every credential in the headers (an Authorization header that is not a bearer token counts, empty)."""
    out = []
    for name, value in headers:
        lname = name.lower()
        if lname == b"x-api-key":
            out.append(value.strip())
        elif lname == b"authorization":
            out.append(value[7:].strip() if value[:7].lower() == b"bearer " else b"")
    return out


class APIKeys:
    """The configured keys and the one rule that checks a request against them.

    Args:
        keys: accepted keys (non-empty strings).
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = [k.encode() for k in keys if k]
        if not self.keys:
            raise ValueError("APIKeys needs at least one non-empty key")

    def _valid(self, credential: bytes) -> bool:
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(credential, key)
        return ok and bool(credential)

    def allowed(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether the request presents at least one credential and every one is valid."""
        creds = presented(headers)
        results = [self._valid(c) for c in creds]  # compare every one: no early exit to time
        return bool(results) and all(results)
