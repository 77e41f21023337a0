"""CSV lines (klarna_pd.data.lines): rows counted from the bytes, quotes read as pyarrow reads them,
long lines skipped with bounded memory, non-UTF-8 named by line and byte."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klarna_pd.data.files import Tally, iter_chunks, read_dataset
from klarna_pd.data.lines import Block, LongLine, cut, open_quote, scan
from klarna_pd.errors import DataError

pytestmark = pytest.mark.data


def _records(line: bytes) -> int:
    """How many records pyarrow makes of ``line`` followed by one plain line."""
    rows = []
    text = line + b"\nend;end\n"
    table = pa_csv.read_csv(
        pa.BufferReader(text),
        read_options=pa_csv.ReadOptions(column_names=["a", "b"], use_threads=False, block_size=len(text) + 1),
        parse_options=pa_csv.ParseOptions(delimiter=";", invalid_row_handler=lambda r: rows.append(r) or "skip"),
        convert_options=pa_csv.ConvertOptions(column_types={"a": pa.string(), "b": pa.string()}),
    )
    return table.num_rows + len(rows)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='ab;" ', min_size=1, max_size=12).map(str.encode))
def test_the_open_quote_rule_is_pyarrows(line):
    """A line runs into the next (pyarrow makes one record of two lines) exactly when the rule says
    its quote does not close."""
    if not line.strip(b" "):
        return
    assert (_records(line) == 1) == open_quote(line, ";")


def test_scan_counts_rows_and_keeps_line_numbers():
    block = b'a;1\r\n\r\nb;2\n\nc;"x"\rd\n"e;3'
    rows = scan(block, first_line=2)
    assert rows.numbers.tolist() == [2, 4, 6, 7]  # blank lines 3 and 5 are no rows
    assert [block[s:e] for s, e in zip(rows.starts, rows.ends)] == [b"a;1", b"b;2", b'c;"x"\rd', b'"e;3']
    assert rows.lone_cr.tolist() == [2]


def test_the_cutter_never_holds_a_long_line():
    body = b"h;h\n" + b"a;1\n" * 3 + b"x" * (5 << 20) + b"\n" + b"b;2\n" + b"y" * 300 + b"\n"
    stream = io.BytesIO(body)
    biggest = 0

    def read(n):
        nonlocal biggest
        data = stream.read(n)
        biggest = max(biggest, n)
        return data

    pieces = list(cut(read, 1 << 16, max_line=1 << 10))
    long_lines = [p for p in pieces if isinstance(p, LongLine)]
    assert [(p.line, p.size) for p in long_lines] == [(5, 5 << 20)]
    blocks = [p for p in pieces if isinstance(p, Block)]
    assert all(len(b.data) <= (1 << 16) + (1 << 10) for b in blocks)
    assert b"".join(b.data for b in blocks) == b"a;1\n" * 3 + b"b;2\n" + b"y" * 300 + b"\n"
    assert [b.first_line for b in blocks][-1] >= 6 and biggest == 1 << 16


def test_a_header_over_the_limit_is_refused(tmp_path, klarna_spec):
    path = tmp_path / "d.csv"
    path.write_text("uuid;" + "x" * (300 << 10) + "\n1;2\n")
    with pytest.raises(DataError, match="header line is longer than 65,536 bytes"):
        list(iter_chunks(path, klarna_spec, strict=False))


def test_latin1_near_the_top_names_the_line_and_byte(synthetic_small, klarna_spec, tmp_path):
    lines = synthetic_small.read_text().splitlines()[:20]
    fields = lines[4].split(";")
    fields[lines[0].split(";").index("merchant_category")] = '"Möbel"'
    lines[4] = ";".join(fields)
    path = tmp_path / "d.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_dataset(path, klarna_spec)
    at = ("\n".join(lines[:4]) + "\n").encode().__len__() + lines[4].index("ö")
    assert err.value.line == 5 and f"byte {at:,} (0xf6)" in str(err.value)


def test_the_tally_counts_rows_without_the_parser(synthetic_small, klarna_spec, tmp_path):
    lines = synthetic_small.read_text().splitlines()[:101]
    lines[50] = "only;three;fields"
    lines.insert(20, "")
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n\n")
    tally = Tally()
    chunks = list(iter_chunks(path, klarna_spec, strict=False, chunk_bytes=1 << 12, tally=tally))
    assert tally.complete and tally.rows_in == 100
    assert sum(len(c.batch) for c in chunks) == 99
    assert [p.line for c in chunks for p in c.problems] == [52]
    assert np.concatenate([c.lines for c in chunks])[18:21].tolist() == [20, 22, 23]


def test_an_open_quote_with_an_even_count_of_quotes_costs_its_line_only(synthetic_small, klarna_spec, tmp_path):
    """`a"b` (a quote inside an unquoted field is text) and an unclosed field: an even count, still open."""
    lines = synthetic_small.read_text().splitlines()[:301]
    fields = lines[150].split(";")
    fields[0] = 'a"b'
    last = max(i for i, f in enumerate(fields) if len(f) > 1 and f[0] == f[-1] == '"')
    fields[last] = fields[last][:-1]  # the last quoted field: nothing after it closes it
    lines[150] = ";".join(fields)
    assert lines[150].count('"') % 2 == 0
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    tally = Tally()
    chunks = list(iter_chunks(path, klarna_spec, strict=False, tally=tally))
    problems = [p for c in chunks for p in c.problems]
    assert [p.line for p in problems] == [151] and "does not close on this line" in problems[0].reason
    assert sum(len(c.batch) for c in chunks) == 299 and tally.rows_in == 300


@pytest.mark.parametrize(
    "tail, bad_line, reason",
    [
        ('"{row}', 3, "does not close on this line"),  # the last line, without a line end
        ("{row}\r{row}\n", 3, "carriage return inside the line"),
        ('"{row}\n', 3, "does not close on this line"),
    ],
)
def test_a_block_whose_every_row_is_set_aside(synthetic_small, klarna_spec, tmp_path, tail, bad_line, reason):
    """A block can hold only rows set aside (the file's last piece often holds one line)."""
    lines = synthetic_small.read_text().splitlines()
    row = lines[2].replace('"', "")
    path = tmp_path / "d.csv"
    path.write_text(lines[0] + "\n" + lines[1] + "\n" + tail.format(row=row))
    tally = Tally()
    chunks = list(iter_chunks(path, klarna_spec, strict=False, tally=tally))
    problems = [p for c in chunks for p in c.problems]
    assert [p.line for p in problems] == [bad_line] and reason in problems[0].reason
    assert sum(len(c.batch) for c in chunks) == 1 and tally.rows_in == 2
