"""What arrives on the wire, checked before anything is built from it: content type, size, UTF-8,
JSON syntax, NaN tokens, duplicate keys. Every refusal is a :class:`RequestError` (400/413/415/422).

JSON is parsed by pydantic-core's parser (jiter): fast, strict about UTF-8, and bounded in depth
(a 5,000-deep nesting is a 400, not a crash).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pydantic_core

from .errors import RequestError

_TOKENS = (b"NaN", b"Infinity")
#: Arrays and objects the JSON parser (pydantic-core's jiter) nests at most; a test pins it.
MAX_DEPTH = 201
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


def check_content_type(headers: Iterable[tuple[bytes, bytes]], *, accept: tuple[str, ...] = ("application/json",)) -> str:
    """The request's media type, refused (415) unless JSON (or one of ``accept``). No header: JSON.

    JSON is UTF-8 (RFC 8259): a ``charset`` other than UTF-8 is refused by name, rather than its
    bytes read as UTF-8 anyway (a Latin-1 body was a 400 "not UTF-8", or scored when ASCII)."""
    for name, value in headers:
        if name.lower() == b"content-type":
            raw = value.decode("latin-1")
            media, *params = (part.strip() for part in raw.split(";"))
            media = media.lower()
            json_media = media == "application/json" or media.endswith("+json")
            if media in accept or (json_media and "application/json" in accept):
                if json_media:
                    _check_charset(params, raw)
                return media
            raise RequestError(415, f"expected Content-Type {' or '.join(accept)}, got {raw!r}")
    return "application/json"


def _check_charset(params: list[str], raw: str) -> None:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestError(415, "expected JSON in UTF-8 (charset=utf-8, or no charset), got Content-Type "
                                    f"{raw!r}")


def check_content_encoding(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Refuse (415) a body sent compressed: it would be read as the JSON or Arrow it is not (a gzip
    body was a 400 "not UTF-8"; a plain one labelled gzip was answered as if nothing were said)."""
    for name, value in headers:
        if name.lower() == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            raise RequestError(415, f"expected an uncompressed body (no Content-Encoding), got Content-Encoding "
                                    f"{value.decode('latin-1')!r}")


def declared_length(headers: Iterable[tuple[bytes, bytes]], max_bytes: int) -> int | None:
    """The Content-Length, refused (413) past ``max_bytes`` before a byte of the body is read."""
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                size = int(value)
            except ValueError:
                raise RequestError(400, f"Content-Length must be a number, got {value.decode('latin-1')!r}") from None
            if size > max_bytes:
                raise RequestError(413, f"request body of {size:,} bytes is over the limit of {max_bytes:,} bytes")
            return size
    return None


def parse_json(body: bytes, *, nan_is_missing: bool = False) -> Any:
    """The JSON value of a body (then call :func:`refuse_duplicate_keys` with the keys it holds).

    Args:
        body: the raw bytes.
        nan_is_missing: read the ``NaN`` token as null (the legacy endpoint's clients send it,
            Python's ``json.dumps`` writes it); otherwise NaN and Infinity are refused.
    """
    if not body.strip():
        raise RequestError(400, "empty request body; expected a JSON object")
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=nan_is_missing)
    except ValueError as exc:
        raise _syntax_error(body, exc) from None
    return value


def _syntax_error(body: bytes, exc: ValueError) -> RequestError:
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return RequestError(400, "malformed JSON: UTF-16 text (it starts with a UTF-16 byte-order mark); "
                                 "JSON must be UTF-8")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return RequestError(
            400, f"malformed JSON: not UTF-8 text (byte 0x{body[bad.start]:02x} at offset {bad.start}); JSON must be UTF-8"
        )
    if any(t in body for t in _TOKENS):
        try:
            pydantic_core.from_json(body, allow_inf_nan=True)
        except ValueError:
            pass
        else:  # the tokens were the only problem
            token = next(t for t in (b"-Infinity", b"Infinity", b"NaN") if t in body).decode()
            return RequestError(400, f"malformed JSON: {token} is not a JSON value; send null for a missing value")
    if str(exc).startswith("recursion limit exceeded"):
        return RequestError(400, f"malformed JSON: arrays and objects nested more than {MAX_DEPTH} deep "
                                 f"({str(exc).removeprefix('recursion limit exceeded ')})")
    return RequestError(400, f"malformed JSON: {exc}")


def refuse_duplicate_keys(body: bytes, keys_parsed: int) -> None:
    """Refuse an object that names a field twice (``{"age": 20, "age": 70}``).

    The parser keeps the last value; a checkout system and this service reading the same request
    differently is worse than refusing it. Every key is followed by one colon, so when the body
    holds no more colons than the parsed objects have keys, no key can repeat: a byte count
    settles the usual case, and only bodies with colons inside strings are parsed again.
    """
    if body.count(b":") <= keys_parsed:
        return

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise RequestError(422, f"field {name!r} appears twice in one object; send each field once",
                                   [{"loc": name, "msg": "appears twice in one object"}])
            seen.add(name)
        return {}

    try:
        json.loads(body, object_pairs_hook=unique, parse_constant=lambda _: None)
    except RequestError:
        raise
    except (ValueError, RecursionError):
        pass  # the parser above accepted it; nothing more to learn here


def refuse_too_many_objects(body: bytes, max_objects: int) -> None:
    """Refuse (422) a body with more JSON objects than ``max_objects`` applicants plus the request
    object, before the parser builds them: 16 MB of ``[{},{},...]`` are 5.6 million dicts, seconds
    of CPU and gigabytes of memory, for a request that is refused anyway. A byte count settles it
    unless strings hold braces; only then are the strings cut out and the braces counted again."""
    limit = max_objects + 1
    if body.count(b"{") <= limit:
        return
    if _STRINGS.sub(b"", body).count(b"{") > limit:
        # Objects nested in values count too: the message must not read as "too many applicants" only.
        raise RequestError(422, f"applicants: expected at most {max_objects} applicants per request, each an "
                                f"object of plain values; the body holds more than {limit} JSON objects",
                           [{"loc": "applicants", "msg": f"expected at most {max_objects} applicants per request"}])
