"""Reading files: every bad-input case gets one clear error naming file, line, column and value."""

import gzip
import os
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from klarna_pd.data.files import DataWarning, iter_chunks, read_dataset
from klarna_pd.errors import DataError
from klarna_pd.spec import load_spec

from ..helpers.paths import ROOT, UCI

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def good_lines(synthetic_small):
    return synthetic_small.read_text().splitlines()


def _write(tmp_path, lines, name="d.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _replace_field(line: str, index: int, value: str) -> str:
    fields = line.split(";")
    fields[index] = value
    return ";".join(fields)


def test_fast_and_text_parsing_agree(synthetic_small, klarna_spec):
    fast = pd.concat([c.frame for c in iter_chunks(synthetic_small, klarna_spec, chunk_bytes=1 << 18)])
    text = pd.concat([c.frame for c in iter_chunks(synthetic_small, klarna_spec, chunk_bytes=1 << 18, fast=False)])
    pd.testing.assert_frame_equal(fast, text)


@pytest.mark.parametrize("bad_line", [2, 3000, 5990])
def test_a_bad_value_late_in_the_file_switches_to_text_without_losing_rows(good_lines, klarna_spec, tmp_path,
                                                                          synthetic_small, bad_line):
    """Chunks before the bad one come from the fast path; the rest are read again as text."""
    age = klarna_spec.columns.index("age")
    lines = synthetic_small.read_text().splitlines()
    lines[bad_line - 1] = _replace_field(lines[bad_line - 1], age, "old")
    path = _write(tmp_path, lines)
    chunks = list(iter_chunks(path, klarna_spec, chunk_bytes=1 << 17, strict=False))
    kept = np.concatenate([c.lines for c in chunks])
    assert [p.line for c in chunks for p in c.problems] == [bad_line]
    assert list(kept) == [n for n in range(2, len(lines) + 1) if n != bad_line]
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert frame["uuid"].tolist() == [ln.split(";")[0].strip('"') for i, ln in enumerate(lines[1:], start=2) if i != bad_line]


def test_streaming_holds_a_few_chunks_not_the_file(good_lines, klarna_spec, tmp_path):
    """pyarrow's own streaming reader read a whole 1 GB file ahead of a slow consumer; ours must not."""
    body = "\n".join(good_lines[1:])
    path = tmp_path / "big.csv"
    with open(path, "w") as fh:
        fh.write(good_lines[0] + "\n")
        for _ in range(30):  # about 40 MB
            fh.write(body + "\n")
    before = pa.total_allocated_bytes()
    chunks = iter_chunks(path, klarna_spec, chunk_bytes=1 << 20)
    first = next(chunks)
    held = pa.total_allocated_bytes() - before
    assert len(first.frame) > 1000
    assert held < 8 << 20, f"{held >> 20} MiB held by pyarrow after one 1 MiB chunk of a {path.stat().st_size >> 20} MiB file"
    assert sum(len(c.frame) for c in chunks) + len(first.frame) == 30 * (len(good_lines) - 1)


def test_byte_order_mark_and_missing_final_newline(good_lines, klarna_spec, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(good_lines[:51]).encode())  # no newline after the last row
    chunks = list(iter_chunks(path, klarna_spec, chunk_bytes=4096))
    assert sum(len(c.frame) for c in chunks) == 50
    assert chunks[-1].lines[-1] == 51


def test_line_numbers_stay_right_across_chunks_with_short_rows(good_lines, klarna_spec, tmp_path):
    lines = list(good_lines[:2001])
    lines[1500] = "only;three;fields"
    path = _write(tmp_path, lines)
    chunks = list(iter_chunks(path, klarna_spec, chunk_bytes=1 << 15, strict=False))
    assert [p.line for c in chunks for p in c.problems] == [1501]
    kept = np.concatenate([c.lines for c in chunks])
    assert list(kept) == [n for n in range(2, 2002) if n != 1501]
    with pytest.raises(DataError, match="line 1501"):
        list(iter_chunks(path, klarna_spec, chunk_bytes=1 << 15, strict=True))


def test_the_synthetic_file_reads_typed(synthetic_small, klarna_spec):
    ds = read_dataset(synthetic_small, klarna_spec)
    f = ds.frame
    assert list(f.columns) == klarna_spec.columns
    assert len(f) == 6_000
    assert f["has_paid"].isin([0.0, 1.0]).all()
    assert f["merchant_group"].map(type).eq(str).all()
    assert len(ds.labelled()) + len(ds.unlabelled()) == 6_000
    assert np.isnan(ds.unlabelled().target).all()
    assert set(ds.labelled().target) <= {0.0, 1.0}


def test_gzip_and_parquet_read_the_same(synthetic_small, klarna_spec, tmp_path):
    plain = read_dataset(synthetic_small, klarna_spec).frame
    for name in ("d.csv.gz", "D.CSV.GZ", "d.csv.gzip"):  # upper case was read as raw bytes ("not UTF-8")
        gz = tmp_path / name
        gz.write_bytes(gzip.compress(synthetic_small.read_bytes()))
        pd.testing.assert_frame_equal(read_dataset(gz, klarna_spec).frame, plain)
    pq_path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(plain, preserve_index=False), pq_path)
    pd.testing.assert_frame_equal(read_dataset(pq_path, klarna_spec).frame, plain)


def test_uci_file_with_crlf_reads(tmp_path):
    if not UCI.exists():
        pytest.skip("../shared/data/uci_taiwan is not beside the checkout")
    ds = read_dataset(UCI, load_spec(ROOT / "specs" / "uci_taiwan.yaml"))
    assert len(ds.frame) == 30_000
    assert ds.frame["Y"].mean() == pytest.approx(0.2212)
    assert ds.frame["X2"].isin(["1", "2"]).all()


def test_booleans_accept_every_spelling(good_lines, klarna_spec, tmp_path):
    """The spec's tokens, spaces around them ignored (as around numbers), and the tokens that are
    numbers by value: pandas writes a boolean column with a gap as 1.0 and 0.0."""
    col = klarna_spec.columns.index("has_paid")
    tokens = ["TRUE", "FALSE", "True", "False", "true", "false", "1", "0", " true", "FALSE\t", "1.0", "0.0",
              " 1e0 ", "-0", "NA", ""]
    lines = [good_lines[0]] + [_replace_field(good_lines[i + 1], col, t) for i, t in enumerate(tokens)]
    f = read_dataset(_write(tmp_path, lines), klarna_spec).frame
    np.testing.assert_array_equal(f["has_paid"].to_numpy()[:14], [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    assert f["has_paid"].iloc[14:].isna().all()
    for other in ("2", "0.5", "yes", "T RUE", "nan"):
        with pytest.raises(DataError) as err:
            read_dataset(_write(tmp_path, [good_lines[0], _replace_field(good_lines[1], col, other)]),
                         klarna_spec)
        assert err.value.column == "has_paid" and "expected one of ['TRUE'" in str(err.value), other


def test_empty_fields_are_missing(good_lines, klarna_spec, tmp_path):
    col = klarna_spec.columns.index("age")
    lines = [good_lines[0], _replace_field(good_lines[1], col, "")]
    assert np.isnan(read_dataset(_write(tmp_path, lines), klarna_spec).frame["age"].iloc[0])


# (mutation of the good file, expected line, expected column, text the message must hold)
CASES = {
    "text in a numeric column": (lambda L, s: [L[0], L[1], _replace_field(L[2], s.columns.index("age"), "abc")],
                                 3, "age", "expected a finite number from 18 to 120, got 'abc'"),
    "NaN token in a numeric column": (lambda L, s: [L[0], _replace_field(L[1], s.columns.index("age"), "nan")],
                                      2, "age", "got 'nan'"),
    "target outside 0/1": (lambda L, s: [L[0], L[1], L[2], _replace_field(L[3], 1, "2")],
                           4, "default", "expected 0, 1 or missing ('NA'/''), got '2'"),
    "non-integer code": (lambda L, s: [L[0], _replace_field(L[1], s.columns.index("account_status"), "1.5")],
                         2, "account_status", "expected an integer code of at least 0, got '1.5'"),
    "bad boolean": (lambda L, s: [L[0], _replace_field(L[1], s.columns.index("has_paid"), "yes")],
                    2, "has_paid", "expected one of ["),
    "missing id": (lambda L, s: [L[0], _replace_field(L[1], 0, "NA")], 2, "uuid", "the id is missing"),
    "duplicate id": (lambda L, s: [L[0], L[1], L[2], _replace_field(L[3], 0, L[1].split(";")[0])],
                     2, "uuid", "also on line 4"),
    "row with a field too few": (lambda L, s: [L[0], L[1], L[2].rsplit(";", 1)[0]],
                                 3, None, "expected 43 fields, got 42"),
    "missing column": (lambda L, s: [";".join(x.split(";")[:-1]) for x in L[:3]],
                       1, None, "missing columns ['worst_status_active_inv']"),
    # An export with stray spaces or another case in its header said only "is the separator right?".
    "header names a little off": (
        lambda L, s: [L[0].replace("default", "Default").replace(";age;", "; age;"), *L[1:3]], 1, None,
        "missing columns ['default', 'age']; the header has 43 columns (near misses: 'default' is perhaps "
        "'Default', 'age' is perhaps ' age')"),
    "header only": (lambda L, s: [L[0]], None, None, "header but no rows"),
    "wrong separator": (lambda L, s: [x.replace(";", ",") for x in L[:3]],
                        1, None, "expected ';'-separated columns, the file looks ','-separated"),
    "repeated column": (lambda L, s: [L[0] + ";age"] + [x + ";1" for x in L[1:3]],
                        1, None, "columns repeated in the header: ['age']"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_files_get_one_clear_error(case, good_lines, klarna_spec, tmp_path):
    mutate, line, column, needle = CASES[case]
    path = _write(tmp_path, mutate(good_lines[:6], klarna_spec))
    with pytest.raises(DataError) as err:
        read_dataset(path, klarna_spec)
    e = err.value
    assert needle in str(e), str(e)
    assert str(path) in str(e)
    assert e.line == line
    assert e.column == column


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "file is empty"),
        (b"\n\n", "file is empty"),
        (b"\xef\xbb\xbf\r\n", "file is empty"),  # a byte-order mark alone: was "missing columns"
        (b"uuid;default\ra;1\rb;0\r" * 3000, "lines end with CR alone"),  # was "header line is longer"
        (b"uuid;default\ra;1\r", "lines end with CR alone"),  # a small one: was "missing columns"
        (b"\x00\x01\x02\xff\xfe" * 100, "not UTF-8 text"),
    ],
)
def test_unusable_files(tmp_path, klarna_spec, content, needle):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=needle):
        read_dataset(path, klarna_spec)


@pytest.mark.parametrize("tail", [b"abc\xf6;1\n", b"x\xf6"], ids=["short row", "last line without newline"])
def test_a_byte_not_utf8_on_a_short_row_names_its_line(synthetic_small, klarna_spec, tmp_path, capfd, tail):
    """pyarrow decodes a row with too few fields for the invalid-row handler: such a byte ended in
    a traceback on stderr and 'Row #1: Expected 43 columns' instead of the line and the byte."""
    head = synthetic_small.read_bytes().split(b"\n")[:50]
    path = tmp_path / "d.csv"
    path.write_bytes(b"\n".join(head) + b"\n" + tail)
    for read in (lambda: read_dataset(path, klarna_spec),
                 lambda: list(iter_chunks(path, klarna_spec, strict=False))):
        with pytest.raises(DataError, match="line 51: not UTF-8 text: byte [0-9,]+ \\(0xf6\\)"):
            read()
    assert "Traceback" not in capfd.readouterr().err


def test_unreadable_paths(tmp_path, klarna_spec):
    with pytest.raises(DataError, match="file not found"):
        read_dataset(tmp_path / "nope.csv", klarna_spec)
    with pytest.raises(DataError, match="expected a file, got a directory"):
        read_dataset(tmp_path, klarna_spec)
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)  # as /dev/stdin or <(...) hand it over: was "cannot read file: lseek failed"
    said = []

    def read():  # in a daemon thread: opening a FIFO nobody writes to would block for ever
        try:
            read_dataset(fifo, klarna_spec)
        except DataError as exc:
            said.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), "blocked on the pipe"
    assert said and "expected a regular file, got a pipe or device" in said[0]
    bad_gz = tmp_path / "d.csv.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a valid gz file"):
        read_dataset(bad_gz, klarna_spec)
    bad_pq = tmp_path / "d.parquet"
    bad_pq.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_dataset(bad_pq, klarna_spec)


def test_extra_columns_warn_and_are_ignored(good_lines, klarna_spec, tmp_path):
    lines = [good_lines[0] + ";note"] + [x + ";hello" for x in good_lines[1:5]]
    with pytest.warns(DataWarning, match=r"ignoring 1 column\(s\) the spec does not name: \['note'\]"):
        f = read_dataset(_write(tmp_path, lines), klarna_spec).frame
    assert "note" not in f.columns and len(f) == 4


def test_lenient_streaming_reports_bad_rows_and_keeps_the_rest(good_lines, klarna_spec, tmp_path):
    age = klarna_spec.columns.index("age")
    lines = [good_lines[0], good_lines[1], _replace_field(good_lines[2], age, "old"), good_lines[3].rsplit(";", 2)[0], good_lines[4]]
    chunks = list(iter_chunks(_write(tmp_path, lines), klarna_spec, strict=False))
    frame = pd.concat([c.frame for c in chunks])
    problems = [p for c in chunks for p in c.problems]
    assert len(frame) == 2
    assert [p.line for p in problems] == [3, 4]
    assert list(np.concatenate([c.lines for c in chunks])) == [2, 5]
    assert "got 'old'" in problems[0].reason


def test_train_writes_nothing_on_bad_data(good_lines, klarna_spec, tmp_path):
    bad = _write(tmp_path, [good_lines[0], _replace_field(good_lines[1], klarna_spec.columns.index("age"), "x")])
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "train.py", "--data", str(bad), "--out", str(out), "--no-store"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "line 2, column 'age': expected a finite number from 18 to 120, got 'x'" in proc.stderr
    assert not out.exists()


def test_spaces_around_a_number_read_the_same_whatever_else_is_in_the_block(good_lines, klarna_spec, tmp_path):
    """pyarrow's typed columns ignore them, the text path refused them: a spaced value was accepted,
    or rejected when another row of its block was bad (so with the chunk size)."""
    age, bills = klarna_spec.columns.index("age"), klarna_spec.columns.index("num_active_inv")
    lines = list(good_lines[:400])
    for n in (2, 150, 399):
        lines[n - 1] = _replace_field(lines[n - 1], age, f" {lines[n - 1].split(';')[age]}\t")
    plain = read_dataset(_write(tmp_path, good_lines[:400], "plain.csv"), klarna_spec).frame
    lines[200 - 1] = _replace_field(lines[200 - 1], bills, "abc")
    path = _write(tmp_path, lines)
    for chunk_bytes in (1 << 12, 1 << 20):
        chunks = list(iter_chunks(path, klarna_spec, chunk_bytes=chunk_bytes, strict=False,
                                  require_target=True))
        assert [p.line for c in chunks for p in c.problems] == [200]
        frame = pd.concat([c.frame for c in chunks], ignore_index=True)
        pd.testing.assert_frame_equal(frame, plain.drop(index=198).reset_index(drop=True))
    as_text = pa.table({c: pa.array([None if v in ("", "NA") else v for v in col])
                        for c, col in zip(lines[0].split(";"), zip(*(ln.split(";") for ln in lines[1:199])))})
    pq.write_table(as_text.set_column(age, "age", pa.array([" 28", *as_text["age"].to_pylist()[1:]])),
                   tmp_path / "d.parquet")
    assert read_dataset(tmp_path / "d.parquet", klarna_spec).frame["age"].iloc[0] == 28.0


# -- a target given as texts (default_values / repaid_values) --------------------------------------

OWN_MISSING = {"name": "own", "id": "id", "target": "y", "missing_values": ["NA", "", "-1"], "features": [
    # Home Credit's DAYS_EMPLOYED: 365243 means "not employed", far beyond any real day count
    {"name": "days", "kind": "numeric", "min": 0, "max": 50_000, "missing_values": ["NA", "", "365243"]},
    {"name": "score", "kind": "numeric"},
    {"name": "flag", "kind": "boolean"},
    {"name": "code", "kind": "categorical"},
    {"name": "country", "kind": "categorical", "missing_values": [""]},  # NA is Namibia here
]}


@pytest.mark.parametrize("spec_change", [{}, {"features": OWN_MISSING["features"][:4]}],
                         ids=["Namibia: every column as text", "numbers parsed by pyarrow"])
def test_a_features_own_missing_tokens_and_numbers_by_value_on_every_path(tmp_path, spec_change):
    """A feature's own missing_values replace the spec's for it; a missing token that is a number is
    missing by value from any source (the text 365243.0, JSON 365243, an Arrow integer). Before,
    one list served every column (NA could not be a level) and -1 was missing only as those two
    characters: -1.0 in a file, -1 in JSON or Parquet were scored as minus one."""
    from klarna_pd.data.arrow import read_table
    from klarna_pd.data.records import read_records
    from klarna_pd.spec import DatasetSpec

    spec = DatasetSpec.model_validate({**OWN_MISSING, **spec_change})
    names = spec.feature_names
    rows = [  # one applicant per row, as a file's fields and as JSON values
        (["365243", "-1.0", "1", "-1", "NA"], [365243, -1, True, -1, "NA"]),
        (["365243.0", " -1 ", "NA", "8", ""], [365243.0, -1.0, None, 8, ""]),
        ([" 365243 ", "2.5", "0.0", "7", "SE"], [365243, 2.5, False, "7", "SE"]),
        (["120", "NA", "true", "NA", "NA"], [120, None, True, None, "NA"]),
    ]
    header = ",".join(["id", "y", *names])
    lines = [header] + [",".join([f"r{i}", "0", *fields[:len(names)]]) for i, (fields, _) in enumerate(rows)]
    from_file = read_dataset(_write(tmp_path, lines), spec).batch
    records = [{"id": f"r{i}", **dict(zip(names, values))} for i, (_, values) in enumerate(rows)]
    from_json = read_records(records, spec)
    # and as Parquet writers store them: integer days, float scores, booleans and codes as integers
    table = pa.table({"id": [f"r{i}" for i in range(4)], "y": [0] * 4, "days": [365243, 365243, 365243, 120],
                      "score": [-1.0, -1.0, 2.5, None], "flag": [1, None, 0, 1], "code": [-1, 8, 7, None],
                      "country": ["NA", "", "SE", "NA"]}).select(["id", "y", *names])
    pq.write_table(table, tmp_path / "d.parquet")
    from_arrow, _, problems = read_table(table, spec, first_line=0)
    from_parquet = read_dataset(tmp_path / "d.parquet", spec).batch
    assert problems == []
    for batch in (from_file, from_json, from_arrow, from_parquet):
        np.testing.assert_array_equal(batch.numbers, [[np.nan, np.nan, 1], [np.nan, np.nan, np.nan],
                                                      [np.nan, 2.5, 0], [120, np.nan, 1]])
        assert batch.texts["code"].tolist() == [None, "8", "7", None]
        if "country" in names:
            assert batch.texts["country"].tolist() == ["NA", None, "SE", "NA"]
    # A value out of range that is not the sentinel is refused, as before
    bad = _write(tmp_path, [header, ",".join(["r0", "0", "400000", *rows[0][0][1:len(names)]])])
    with pytest.raises(DataError, match="'days': expected a finite number from 0 to 50000, got '400000'"):
        read_dataset(bad, spec)


TEXT_TARGET = {"name": "loans", "id": "id", "target": "loan_status",
               "features": [{"name": "x", "kind": "numeric"}],
               "default_values": ["Charged Off", "Default"], "repaid_values": ["Fully Paid"]}


def test_a_target_given_as_texts_reads_as_1_0_and_missing(tmp_path):
    """Lending Club's loan_status, German credit's 1/2: every such file had to be rewritten to 0/1 first."""
    from klarna_pd.spec import DatasetSpec

    spec = DatasetSpec.model_validate(TEXT_TARGET)
    path = tmp_path / "loans.csv"
    path.write_text("id,loan_status,x\na,Charged Off,1\nb,Fully Paid,2\nc,,3\nd, Default ,4\ne,NA,5\n")
    ds = read_dataset(path, spec)
    assert list(ds.batch.target[:2]) == [1.0, 0.0] and np.isnan(ds.batch.target[[2, 4]]).all()
    assert ds.batch.target[3] == 1.0 and list(ds.is_labelled) == [True, True, False, True, False]
    pq.write_table(pa.table({"id": ["a", "b", "c"], "loan_status": [2, 1, None], "x": [1.0, 2.0, 3.0]}),
                   tmp_path / "german.parquet")
    german = DatasetSpec.model_validate({**TEXT_TARGET, "default_values": ["2"], "repaid_values": ["1"]})
    assert read_dataset(tmp_path / "german.parquet", german).batch.target[:2].tolist() == [1.0, 0.0]
    # pandas writes German credit's codes as floats once the column has a gap
    path.write_text("id,loan_status,x\na,2.0,1\nb,1.0,2\nc,,3\n")
    assert read_dataset(path, german).batch.target[:2].tolist() == [1.0, 0.0]
    path.write_text("id,loan_status,x\na,Charged Off,1\nb,Current,2\n")
    chunks = list(iter_chunks(path, spec, strict=False))  # scoring: running loans are the ones to score
    assert [c.problems for c in chunks] == [[]] and chunks[0].batch.ids.tolist() == ["a", "b"]
    with pytest.raises(DataError) as err:
        read_dataset(path, spec)
    assert ("expected one of ['Charged Off', 'Default'] (default), ['Fully Paid'] (repaid) or missing "
            "('NA'/''), got 'Current'") in str(err.value)
    assert err.value.line == 3 and err.value.column == "loan_status"


@pytest.mark.parametrize("change, needle", [
    ({"repaid_values": None}, "default_values and repaid_values go together"),
    ({"repaid_values": []}, "repaid_values is empty"),
    ({"repaid_values": ["Default"]}, "texts ['Default'] are in both default_values and repaid_values"),
    ({"missing_values": ["NA", "Fully Paid"]},
     "texts ['Fully Paid'] are in both repaid_values and missing_values"),
    ({"default_values": [" Charged Off"]},
     "default_values [' Charged Off']: spaces around a text never match"),
    ({"default_values": ["2"], "repaid_values": ["2.0", "1"]},
     "default_values '2' and repaid_values '2.0' are one number"),
    ({"true_values": ["Y", "1"], "false_values": ["N", "1.0"]},
     "true_values '1' and false_values '1.0' are one number"),
    ({"true_values": ["Y", "Yes "]}, "true_values ['Yes ']: spaces around a text never match"),
    ({"features": [{"name": "b", "kind": "boolean", "missing_values": ["NA", "0.0"]}]},
     "the missing_values of feature 'b' ['0.0'] would also be values of the boolean 'b'"),
    ({"missing_values": ["NA", "False"], "features": [{"name": "b", "kind": "boolean"}]},
     "missing_values ['False'] would also be values of the boolean 'b'"),
    # the mapped 1 and 0 too: with true Y and false N, a token 0 made every N missing
    ({"true_values": ["Y"], "false_values": ["N"], "missing_values": ["NA", "0"],
      "features": [{"name": "b", "kind": "boolean"}]},
     "missing_values ['0'] would also be values of the boolean"),
    ({"missing_values": ["NA", "2.0"], "default_values": ["2"], "repaid_values": ["1"]},
     "texts ['2.0'] are in both default_values and missing_values"),
    ({"missing_values": ["NA", "1.0"], "default_values": None, "repaid_values": None},
     "missing_values ['1.0'] would make the target's 0 or 1 missing"),
    ({"features": [{"name": "o", "kind": "ordinal", "missing_values": ["1.5", "99999999999999999999"]}]},
     "['1.5', '99999999999999999999'] cannot be codes of the ordinal 'o'"),
    ({"true_values": ["Y"], "false_values": ["N", "Y"]},
     "texts ['Y'] are in both true_values and false_values"),
    ({"features": [{"name": "loan amount", "kind": "numeric"}, {"name": "loan_amount", "kind": "numeric"}]},
     "features 'loan amount' and 'loan_amount' are one name to LightGBM, which writes spaces as _"),
    ({"features": [{"name": "two\nlines", "kind": "numeric"}]}, "with \\n in it"),
])
def test_spec_texts_that_cannot_work_are_refused(change, needle):
    from klarna_pd.errors import SpecError
    from klarna_pd.spec import _validate

    with pytest.raises(SpecError, match=None) as err:
        _validate({**TEXT_TARGET, **change}, "loans.yaml")
    assert needle in str(err.value)


def test_an_id_column_of_the_wrong_type_is_named_not_a_traceback(klarna_spec, tmp_path):
    """A Parquet bool or list id column ended batch scoring and training in a TypeError traceback
    (and an Arrow request body in a 500); a fractional id was said to be missing."""
    from klarna_pd.data.arrow import read_table

    def table(ids: pa.Array) -> pa.Table:
        empty = {f: pa.array([None] * len(ids), pa.float64()) for f in klarna_spec.number_names}
        empty |= {f: pa.array([None] * len(ids), pa.string()) for f in klarna_spec.text_names}
        return pa.table({"uuid": ids, **empty})

    for ids, kind in ((pa.array([True, False]), "bool"), (pa.array([[1], [2]]), "list<")):
        pq.write_table(table(ids), tmp_path / "ids.parquet")
        with pytest.raises(DataError, match=f"column 'uuid': expected a text id of at most 200 characters, "
                                            f"the column has type {kind}") as err:
            list(iter_chunks(tmp_path / "ids.parquet", klarna_spec, strict=False))
        assert err.value.path == str(tmp_path / "ids.parquet")
    # NaN, infinities and floats beyond int64 in a float id column: refused rows (an ArrowInvalid traceback)
    _, _, problems = read_table(table(pa.array([float("nan"), float("inf"), 1e19, 1e17])), klarna_spec,
                                first_line=2)
    assert [p.line for p in problems] == [2, 3, 4]
    _, _, problems = read_table(table(pa.array([1.5, 2.0])), klarna_spec, first_line=2)
    assert [(p.line, p.reason) for p in problems] == [
        (2, "expected a text id of at most 200 characters, got 1.5")]
