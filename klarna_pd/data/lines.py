"""CSV text as lines: blocks cut at line ends, bounded line length, rows counted without the parser.

The rules (README, "Batch scoring"):

- A line ends at LF, or CRLF. A row is a line that is not blank; blank lines are skipped (as pyarrow,
  pandas and Spark skip them) and are not rows, but they are lines, so line numbers stay what an
  editor shows (the header is line 1).
- A field may be quoted (``"a;b"``, with ``""`` for a quote inside), but a quoted field may not run
  past the end of its line: each line is one row, as with Spark's default reader (``multiLine``
  off). A line whose quoted field does not close is rejected on its own, with its line number, so a
  stray quote costs one row, never the rest of the file. A carriage return inside a line is refused
  the same way (pyarrow and Spark would cut the row there).
- A line longer than :data:`MAX_LINE_BYTES` is rejected with its line number, and skipped without
  ever being held whole: memory stays at a block plus the limit whatever the file holds.

"Rows in" is the number of non-blank lines after the header, counted here from the bytes
(:func:`scan`), never from what the CSV parser returns, so the two can be checked against each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import DataError

MAX_LINE_BYTES = 256 << 10
"""Longest line, in bytes. A Klarna row is about 500 bytes and 43 fields of at most 200 characters
stay under 10 KiB; a line past this is a broken file or an attack (a single 1 GB line once took
4.45 GB of memory), not a row."""


@dataclass(frozen=True)
class Block:
    """Complete lines of a file, in order."""

    data: bytes
    first_line: int
    """Line number of ``data``'s first line."""
    offset: int
    """Byte offset of ``data`` in the (uncompressed) text."""


@dataclass(frozen=True)
class LongLine:
    """A line over the limit, skipped while reading: only its number and size are kept."""

    line: int
    size: int


def long_line_reason(size: int, limit: int) -> str:
    return f"the line has {size:,} bytes, longer than the limit of {limit:,} bytes for one row"


def cut(read: Callable[[int], bytes], chunk_bytes: int, *, max_line: int = MAX_LINE_BYTES,
        path: object = None) -> Iterator[Block | LongLine]:
    """The text after its header line as blocks of about ``chunk_bytes`` ending at a line end, and
    the lines over ``max_line`` bytes, in file order.

    Blocks are cut here rather than by pyarrow's streaming reader because that reader reads ahead
    without bound when the consumer is slower than the disk. The reader never holds more than
    ``chunk_bytes + max_line`` bytes of the file.

    Args:
        read: reads up to n bytes (b"" at the end).
        chunk_bytes: bytes read at a time.
        max_line: longest line kept; longer ones come out as :class:`LongLine`.
        path: named in errors.

    Raises:
        DataError: the header line is longer than ``max_line``.
    """
    carry = b""
    pos = 0  # offset of carry[0]
    line = 1
    header_done = False
    skipping: list[int] | None = None  # [line, bytes so far] of a long line being skipped
    while data := read(chunk_bytes):
        if skipping is not None:
            end = data.find(b"\n")
            if end < 0:
                skipping[1] += len(data)
                pos += len(data)
                continue
            yield LongLine(skipping[0], skipping[1] + end)
            skipping = None
            line += 1
            pos += end + 1
            data = data[end + 1:]
        buf = carry + data if carry else data
        if not header_done:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > max_line:
                    raise DataError(f"the header line is longer than {max_line:,} bytes", path=path, line=1)
                carry = buf
                continue
            header_done, line, pos, buf = True, 2, pos + end + 1, buf[end + 1:]
        end = buf.rfind(b"\n")
        if end < 0:
            carry = buf
        else:
            block, carry = buf[: end + 1], buf[end + 1:]
            yield Block(block, line, pos)
            line += block.count(b"\n")
            pos += end + 1
        if len(carry) > max_line:
            skipping = [line, len(carry)]
            pos += len(carry)
            carry = b""
    if skipping is not None:
        yield LongLine(skipping[0], skipping[1])
    elif header_done and carry:
        yield Block(carry, line, pos)


@dataclass(frozen=True)
class Lines:
    """The rows (non-blank lines) of a block."""

    numbers: np.ndarray
    """Each row's line number."""
    starts: np.ndarray
    ends: np.ndarray
    """Each row's bytes in the block, line end (LF or CRLF) excluded."""
    lone_cr: np.ndarray
    """Positions (among the rows) of rows holding a carriage return that does not end the line."""

    def __len__(self) -> int:
        return len(self.numbers)


def scan(block: bytes, first_line: int) -> Lines:
    """Where the rows of a block are, from its bytes alone (no CSV parsing)."""
    a = np.frombuffer(block, dtype=np.uint8)
    nl = np.flatnonzero(a == 0x0A)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(a)]))
    if len(a) and a[-1] == 0x0A:
        starts, ends = starts[:-1], ends[:-1]
    lone_cr = np.empty(0, dtype=np.int64)
    if b"\r" in block:
        ends = ends - ((ends > starts) & (a[np.maximum(ends - 1, 0)] == 0x0D))
        cr = np.flatnonzero(a == 0x0D)
        inside = cr[np.isin(cr, ends, invert=True)]
        if len(inside):
            lone_cr = np.unique(np.searchsorted(starts, inside, side="right") - 1)
    numbers = first_line + np.arange(len(starts))
    filled = ends > starts
    if not filled.all():
        kept = np.flatnonzero(filled)
        remap = np.full(len(starts), -1)
        remap[kept] = np.arange(len(kept))
        lone_cr = remap[lone_cr]
        lone_cr = lone_cr[lone_cr >= 0]
        numbers, starts, ends = numbers[kept], starts[kept], ends[kept]
    return Lines(numbers, starts, ends, lone_cr)


@lru_cache(maxsize=8)
def _open_quote(separator: str) -> re.Pattern[bytes]:
    """A line (without its line end) whose last field opens a quote that does not close.

    pyarrow's reading of quotes, written out: a quote opens a quoted field only at the start of a
    field; inside it ``""`` is a quote and a lone ``"`` closes it; after that (and in a field that
    did not start with a quote) quotes are plain text. Possessive quantifiers and alternatives that
    start differently keep the match linear in the line's length.
    """
    s = re.escape(separator.encode())
    c = rb"[^" + s + rb"]"
    field = rb'(?:"(?:[^"]|"")*+"' + c + rb"*+|(?!\")" + c + rb"++|)"
    return re.compile(rb"(?:" + field + s + rb")*+" + rb'"(?:[^"]|"")*+\Z', re.S)


def open_quote(line: bytes, separator: str) -> bool:
    """Whether a quoted field runs past the end of ``line`` (a line without its line end)."""
    return b'"' in line and _open_quote(separator).match(line) is not None


def open_quote_rows(block: bytes, lines: Lines, separator: str, among: np.ndarray) -> np.ndarray:
    """Those of the rows at positions ``among`` whose quoted field does not close (their positions)."""
    pattern = _open_quote(separator)
    bad = [int(i) for i in among if pattern.match(block[lines.starts[i]:lines.ends[i]]) is not None]
    return np.asarray(bad, dtype=np.int64)


def quote_counts(block: bytes, lines: Lines) -> np.ndarray:
    """Number of ``"`` in each row."""
    a = np.frombuffer(block, dtype=np.uint8)
    q = np.flatnonzero(a == 0x22)
    row = np.searchsorted(lines.starts, q, side="right") - 1
    inside = (row >= 0) & (q < lines.ends[np.maximum(row, 0)])
    return np.bincount(row[inside], minlength=len(lines))


def open_quote_reason() -> str:
    return ("a quoted field does not close on this line (a stray quote?); fields may not span lines, "
            "so a line break inside a field cannot be read")


def lone_cr_reason() -> str:
    return "a carriage return inside the line; lines end with LF or CRLF"


def not_utf8(data: bytes, offset: int, first_line: int, path: object) -> DataError | None:
    """A :class:`DataError` naming the line and byte of the first bytes that are not UTF-8, if any.

    Args:
        data: complete lines.
        offset: byte offset of ``data`` in the text.
        first_line: line number of ``data``'s first line.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start
        line = first_line + data.count(b"\n", 0, at)
        return DataError(
            f"not UTF-8 text: byte {offset + at:,} (0x{data[at]:02x}) of the file; expected a UTF-8 CSV "
            "file (a Latin-1 or Windows-1252 export? convert it, e.g. iconv -f latin1 -t utf-8)",
            path=path,
            line=line,
        )
    return None
