"""Batch scoring loses no row silently and writes nothing a spreadsheet would run (issue 15, items 8-10).

The invariant of every run: rows in = rows scored + rows rejected, counted from the input's lines
independently of the CSV parser, and printed at the end.
"""

import csv
import io
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from klarna_pd.batch import score_file
from klarna_pd.data.batch import Batch
from klarna_pd.data.files import read_dataset
from klarna_pd.errors import DataError

from ..helpers.paths import ROOT

pytestmark = [pytest.mark.batch]


@pytest.fixture(scope="module")
def lines(synthetic_small):
    return synthetic_small.read_text().splitlines()


@pytest.fixture(scope="module")
def expected(small_model, synthetic_small, klarna_spec):
    frame = read_dataset(synthetic_small, klarna_spec).frame
    return pd.DataFrame({"uuid": frame["uuid"], "pd": small_model.predict(Batch.from_frame(frame, klarna_spec))})


def _write(path, lines, end="\n"):
    path.write_text(end.join(lines) + end)
    return path


def _read_scores(path):
    return pd.read_csv(path, sep=";", float_precision="round_trip", dtype={"uuid": str}, keep_default_na=False)


def _read_rejects(path):
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


def _with_id(line: str, ident: str) -> str:
    """The line with its (first) id field replaced by ``ident``, quoted as CSV needs."""
    text = io.StringIO()
    csv.writer(text, delimiter=";", lineterminator="").writerow([ident])
    return text.getvalue() + line[line.index(";"):]


# -- item 8: a stray quote costs its own line, never the rest of the file -----------------------


def _unclose(line: str, nth: int = 0) -> str:
    """The line with the closing quote of its ``nth`` quoted field taken away (a stray quote)."""
    fields = line.split(";")
    i = [k for k, f in enumerate(fields) if len(f) > 1 and f[0] == f[-1] == '"'][nth]
    fields[i] = fields[i][:-1]
    return ";".join(fields)


def _replace(line: str, header: str, column: str, value: str) -> str:
    fields = line.split(";")
    fields[header.split(";").index(column)] = value
    return ";".join(fields)


@pytest.mark.parametrize(
    "case", ["unquoted file, the id", "quoted file, the id", "quoted file, a text field", "quoted file, the last line"]
)
def test_a_stray_quote_loses_only_its_own_line(small_model, lines, expected, tmp_path, case):
    rows = list(lines)
    n = len(rows) - 1
    bad = len(rows) if case.endswith("last line") else 101  # header = line 1: row 100 is line 101
    if case.startswith("unquoted"):  # as the issue found it: no other quote in the file
        rows = [r.replace('"', "") for r in rows]
        rows[bad - 1] = '"' + rows[bad - 1]
    else:
        rows[bad - 1] = _unclose(rows[bad - 1], 1 if case.endswith("text field") else 0)
    src = _write(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    summary = score_file(small_model, src, out, progress=False)  # one 8 MiB block: the whole file
    assert (summary.rows_scored, summary.rows_rejected) == (n - 1, 1)
    rejects = _read_rejects(summary.rejects)
    assert rejects["line"].tolist() == [str(bad)]
    assert "quote" in rejects["reason"].iloc[0]
    if case.startswith("unquoted"):  # with no other quote, the field runs to the end of its line
        assert "does not close on this line" in rejects["reason"].iloc[0]
    kept = expected.drop(index=[bad - 2]).reset_index(drop=True)
    pd.testing.assert_frame_equal(_read_scores(out), kept)
    assert summary.rows_in == n


def test_line_numbers_stay_right_with_blank_lines_crlf_and_stray_quotes(small_model, lines, tmp_path):
    rows = list(lines[:2001])
    rows[500] = _unclose(rows[500])  # line 501
    rows[1500] = _replace(rows[1500], lines[0], "age", "forty")  # line 1501
    rows.insert(1500, "")  # blank lines are not rows, but they are lines
    rows.insert(500, "")
    src = _write(tmp_path / "in.csv", rows, end="\r\n")
    summary = score_file(small_model, src, tmp_path / "out.csv", chunk_bytes=1 << 16, progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (1998, 2)
    rejects = _read_rejects(summary.rejects)
    assert rejects["line"].tolist() == ["502", "1503"]
    assert rejects["column"].tolist() == ["<row>", "age"]
    assert summary.rows_in == 2000


def test_a_line_with_a_quoted_line_break_is_two_rejected_lines(small_model, lines, tmp_path):
    """Fields may not span lines (as with Spark's default reader): each half is rejected on its own line."""
    rows = list(lines[:11])
    rows[5] = _replace(rows[5], lines[0], "merchant_category", '"Furni\nture"')
    summary = score_file(small_model, _write(tmp_path / "in.csv", rows), tmp_path / "out.csv", progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (9, 2) and summary.rows_in == 11
    assert _read_rejects(summary.rejects)["line"].tolist() == ["6", "7"]


def test_the_cli_prints_the_invariant_last(small_trained, lines, tmp_path):
    rows = list(lines)
    rows[100] = _unclose(rows[100])
    src = _write(tmp_path / "in.csv", rows)
    proc = subprocess.run(
        [sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag, "--input", str(src),
         "--output", str(tmp_path / "out.csv"), "--quiet"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "rows in 6,000 = scored 5,999 + rejected 1"
    assert "; rejected 1 row, reasons in" in proc.stdout
    # every row rejected: exit 1 (it was 0 without a word: a scheduler took it for a day's scores),
    # the rejects written, the output of an earlier run left as it was
    src = _write(tmp_path / "bad.csv", [rows[0], rows[100], _with_id(rows[1], "=cmd|' /C calc'!A0")])
    (tmp_path / "bad-out.csv").write_text("uuid;pd\nyesterday;0.1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag, "--input", str(src),
         "--output", str(tmp_path / "bad-out.csv"), "--quiet"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 1, proc.stderr
    rejects = f"{tmp_path / 'bad-out.csv'}.rejects.csv"
    assert f"error: none of the 2 rows could be scored; the reasons are in {rejects}\n" in proc.stderr
    assert (tmp_path / "bad-out.csv").read_text() == "uuid;pd\nyesterday;0.1\n"
    assert len(open(rejects).read().splitlines()) == 3


def test_a_run_that_cannot_account_for_every_row_fails():
    from klarna_pd.batch.local import check_rows

    check_rows(10, 9, 1)
    with pytest.raises(DataError, match=r"rows in 10,000 but scored 99 \+ rejected 1: 9,900 rows unaccounted for"):
        check_rows(10_000, 99, 1)


# -- item 9: ids are written so that they read back exactly and never run in a spreadsheet ------


ODD_IDS = ["semi;colon", 'say "hi"', "comma,id", "  spaced  ", "ünïcödé-✓"]
FORMULA_IDS = ["=cmd|' /C calc'!A0", "+46701234567", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"]


def _odd_file(lines, path, ids):
    rows = [lines[0]] + [_with_id(lines[i + 1], ident) for i, ident in enumerate(ids)] + lines[len(ids) + 1: 40]
    return _write(path, rows)


@pytest.mark.parametrize("out_name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_ids_with_separators_and_quotes_round_trip_exactly(small_model, lines, tmp_path, out_name):
    src = _odd_file(lines, tmp_path / "in.csv", ODD_IDS)
    out = tmp_path / out_name
    summary = score_file(small_model, src, out, progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (39, 0)
    got = pq.read_table(out).to_pandas() if out_name.endswith(".parquet") else _read_scores(out)
    assert got["uuid"].tolist()[:5] == ODD_IDS
    if out_name == "out.csv":
        text = out.read_text().splitlines()
        assert text[1].startswith('"semi;colon";') and text[2].startswith('"say ""hi""";')
        assert text[3].startswith("comma,id;") and text[4].startswith("  spaced  ;")  # only what needs quotes
        assert not text[6].startswith('"')
        assert len(text) == 40


def test_formula_and_control_character_ids_are_rejected_and_neutralised_in_the_rejects(small_model, lines,
                                                                                        tmp_path):
    src = _odd_file(lines, tmp_path / "in.csv", FORMULA_IDS + ["tab\tinside"])
    out = tmp_path / "out.csv"
    summary = score_file(small_model, src, out, progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (34, 5) and summary.rows_in == 39
    scores = out.read_text()
    assert "cmd|" not in scores and "+467" not in scores
    rejects = _read_rejects(summary.rejects)
    assert rejects["line"].tolist() == ["2", "3", "4", "5", "6"]
    assert rejects["column"].tolist() == ["uuid"] * 5
    # In the rejects file (for people) a formula-like cell starts with ' so that no spreadsheet runs it.
    assert rejects["uuid"].tolist() == ["'" + i for i in FORMULA_IDS] + ["tab\tinside"]
    assert "a spreadsheet" in rejects["reason"].iloc[0]
    assert "control character" in rejects["reason"].iloc[4]


def test_a_parquet_id_with_a_line_break_is_rejected_not_a_crash(small_model, synthetic_small, klarna_spec, tmp_path):
    frame = read_dataset(synthetic_small, klarna_spec).frame.head(50).copy()
    frame.loc[3, "uuid"] = "two\nlines"
    frame.loc[4, "uuid"] = 'a;b"c'
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet")
    summary = score_file(small_model, tmp_path / "in.parquet", tmp_path / "out.csv", progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (49, 1) and summary.rows_in == 50
    assert _read_scores(tmp_path / "out.csv")["uuid"].iloc[3] == 'a;b"c'


# -- the rejects file, as the README documents it (issue 17) ----------------------------------


def test_the_rejects_file_quotes_only_what_needs_it(small_model, lines, tmp_path):
    rows = list(lines[:6])
    rows[2] = _replace(rows[2], lines[0], "age", "forty")
    rows[4] = _replace(_with_id(rows[4], "x;y"), lines[0], "age", "abc")
    summary = score_file(small_model, _write(tmp_path / "in.csv", rows), tmp_path / "out.csv", progress=False)
    text = summary.rejects and open(summary.rejects).read().splitlines()
    ident = lines[2].split(";")[0].strip('"')
    assert text[0] == "line;uuid;column;reason"
    assert text[1] == f"3;{ident};age;expected a finite number from 18 to 120, got 'forty'"
    assert text[2].startswith('5;"x;y";')


# -- item 10: long lines, encodings, duplicate ids ---------------------------------------------


def test_a_line_over_the_limit_is_a_reject_with_its_line(small_model, lines, tmp_path):
    rows = list(lines[:21])
    rows[10] = rows[10] + ";" + "x" * (300 << 10)  # 300 KiB: over the 256 KiB limit
    rows[15] = rows[15] + ";" + "y" * (20 << 20)  # 20 MiB: longer than a block
    summary = score_file(small_model, _write(tmp_path / "in.csv", rows), tmp_path / "out.csv",
                         chunk_bytes=1 << 20, progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (18, 2)
    rejects = _read_rejects(summary.rejects)
    assert rejects["line"].tolist() == ["11", "16"]
    assert "longer than the limit of 262,144 bytes" in rejects["reason"].iloc[0]
    assert "20,971,7" in rejects["reason"].iloc[1]
    assert summary.rows_in == 20


# VmHWM, not ru_maxrss: a child's ru_maxrss starts from the size of the process that forked it.
_RSS_PROBE = """
import sys
from klarna_pd.data.files import iter_chunks
from klarna_pd.spec import klarna_spec
rows = sum(len(c.batch) + len(c.problems) for c in iter_chunks(sys.argv[1], klarna_spec(), strict=False))
status = open("/proc/self/status").read()
print(rows, int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


def test_a_huge_line_is_skipped_with_bounded_memory(lines, tmp_path):
    src = tmp_path / "in.csv"
    with open(src, "w") as fh:
        fh.write("\n".join(lines[:11]) + "\n")
        fh.write(lines[11][:40])
        chunk = "z" * (1 << 20)
        for _ in range(400):  # a 400 MiB line
            fh.write(chunk)
        fh.write("\n" + "\n".join(lines[12:21]) + "\n")
    proc = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(src)], capture_output=True, text=True, cwd=ROOT)
    src.unlink()
    assert proc.returncode == 0, proc.stderr
    rows, peak_mib = map(int, proc.stdout.split())
    assert rows == 20
    assert peak_mib < 300, f"peak RSS {peak_mib} MiB while reading a 400 MiB line"


def test_latin1_is_refused_with_the_line_and_byte(small_model, lines, tmp_path):
    rows = list(lines[:3001])
    rows[2999] = _replace(rows[2999], lines[0], "merchant_category", '"Möbel & Küche"')
    src = tmp_path / "in.csv"
    src.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    offset = ("\n".join(rows[:2999]) + "\n").encode("latin-1").__len__() + min(
        i for i, ch in enumerate(rows[2999]) if ord(ch) > 127)
    out = tmp_path / "out.csv"
    with pytest.raises(DataError) as err:
        score_file(small_model, src, out, progress=False)
    assert err.value.line == 3000
    assert f"byte {offset:,}" in str(err.value) and "not UTF-8" in str(err.value)
    assert not out.exists()


def test_a_later_duplicate_id_is_rejected_naming_the_first(small_model, lines, expected, tmp_path):
    rows = list(lines[:4001])
    first_id = rows[10].split(";")[0]
    rows[3500] = first_id + rows[3500][rows[3500].index(";"):]  # line 3501 repeats line 11's id
    rows[20] = rows[20].split(";")[0] + rows[40][rows[40].index(";"):]
    rows[40] = rows[20]  # line 41 repeats line 21 exactly, in the same chunk
    summary = score_file(small_model, _write(tmp_path / "in.csv", rows), tmp_path / "out.csv",
                         chunk_bytes=1 << 18, progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (3998, 2) and summary.rows_in == 4000
    rejects = _read_rejects(summary.rejects)
    assert rejects["line"].tolist() == ["41", "3501"]
    assert rejects["column"].tolist() == ["uuid", "uuid"]
    assert "first scored on line 21" in rejects["reason"].iloc[0]
    assert "first scored on line 11" in rejects["reason"].iloc[1]
    scores = _read_scores(tmp_path / "out.csv")
    assert scores["uuid"].is_unique and len(scores) == 3998


def test_strict_stops_at_a_stray_quote(small_model, lines, tmp_path):
    rows = list(lines[:200])
    rows[150] = _unclose(rows[150])
    with pytest.raises(DataError, match="line 151: .*quote"):
        score_file(small_model, _write(tmp_path / "in.csv", rows), tmp_path / "out.csv", strict=True, progress=False)
    assert not (tmp_path / "out.csv").exists()


# -- Spark: the same rows in, scored and rejected; the same bytes out --------------------------


def test_spark_keeps_the_invariant_and_the_id_policy(spark, small_trained, small_model, lines, tmp_path):
    import bentoml

    from klarna_pd.batch.spark import score_file_spark

    rows = [lines[0]] + [_with_id(lines[i + 1], x) for i, x in enumerate(ODD_IDS + FORMULA_IDS)] + lines[10:300]
    rows[150] = _unclose(rows[150])  # a stray quote
    rows[200] = rows[120]  # a duplicate
    src = _write(tmp_path / "in.csv", rows)
    model_dir = bentoml.models.get(small_trained.model_tag).path
    local = score_file(small_model, src, tmp_path / "local.csv", progress=False)
    remote = score_file_spark(model_dir, small_model.spec, str(src), tmp_path / "spark.csv")
    assert (local.rows_scored, local.rows_rejected) == (293, 6) and local.rows_in == 299
    assert (remote.rows_scored, remote.rows_rejected) == (293, 6) and remote.rows_in == 299
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert "rows in 299 = scored 293 + rejected 6" in remote.line()
    # Spark cannot know a row's line: the field is empty (it read 0, which looks like a line)
    rejected = (tmp_path / "spark.csv.rejects.csv").read_text().splitlines()[1:]
    assert {r.split(";", 1)[0] for r in rejected} == {""}


def test_spark_says_in_one_line_why_it_could_not_read_a_file(spark, small_trained, small_model, lines,
                                                               tmp_path):
    """A truncated gzip file ended the Spark run in 170 lines of Java and Python stack."""
    import gzip

    import bentoml

    from klarna_pd.batch.spark import score_file_spark
    from klarna_pd.errors import DataError

    whole = gzip.compress("\n".join(lines[:300]).encode() + b"\n")
    src = tmp_path / "cut.csv.gz"
    src.write_bytes(whole[: len(whole) // 2])
    model_dir = bentoml.models.get(small_trained.model_tag).path
    with pytest.raises(DataError) as err:
        score_file_spark(model_dir, small_model.spec, str(src), tmp_path / "out.csv")
    message = str(err.value)
    assert message.startswith(f"{src}: Spark could not score the file: ") and "\n" not in message, message
    assert "Unexpected end of input stream" in message, message
    assert not (tmp_path / "out.csv").exists()
