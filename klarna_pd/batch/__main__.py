"""python -m klarna_pd.batch: score a file of any size, on this machine or on Spark."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..cli import Parser, run
from ..errors import DataError, ModelError, RemoteError, SparkStartError
from ..gbm import import_for_scoring


def _output(text: str) -> str:
    # Kept as text: Path("s3a://bucket/x") would fold the URI into the local path "s3a:/bucket/x".
    if not text.lower().endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise argparse.ArgumentTypeError(f"expected a .csv, .csv.gz or .parquet output file, got {text!r}")
    return text


def _rejects(text: str) -> Path:
    if not text.lower().endswith(".csv"):
        raise argparse.ArgumentTypeError(f"expected a .csv rejects file (line, id, column, reason), "
                                         f"got {text!r}")
    return Path(text)


def _chunk_mb(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of MiB, got {text!r}") from None
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"expected 1 to 1024 MiB, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m klarna_pd.batch",
        description="Score every row of a CSV (.gz) or Parquet file with a stored klarna-pd model.",
    )
    parser.add_argument("--model", default="klarna-pd:latest",
                        help="model tag in the BentoML store, a pulled model directory, or an s3:// model URI")
    parser.add_argument("--input", required=True, help="rows to score: CSV (.gz) with the spec's separator, or Parquet")
    parser.add_argument("--output", required=True, type=_output, help="<id>;pd CSV (.csv, .csv.gz) or Parquet")
    parser.add_argument("--engine", choices=("local", "spark"), default="local",
                        help="local: stream on this machine (default); spark: mapInPandas on a Spark cluster")
    parser.add_argument("--rejects", type=_rejects, default=None,
                        help="where rows that fail validation go (default: <output>.rejects.csv, only if any)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad row; write nothing")
    parser.add_argument("--chunk-mb", type=_chunk_mb, default=8, help="input read per chunk, MiB (local engine; default 8)")
    parser.add_argument("--spark-master", default=None, help="Spark master, e.g. local[4] (default: from spark-submit)")
    parser.add_argument("--compiled-trees", action="store_true",
                        help="score with the trees compiled to machine code (lleaves): the same PDs, "
                             "faster; compiling takes seconds")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


@contextlib.contextmanager
def _model_dir(ref: str) -> Iterator[Path]:
    """A local directory holding the model's verified files."""
    if ref.startswith("s3://"):
        from ..store.s3 import pull

        with tempfile.TemporaryDirectory(prefix="klarna-pd-model-") as tmp:
            dest = Path(tmp) / "model"
            pull(ref, dest=dest, log=lambda m: print(m, file=sys.stderr))
            yield dest
    elif Path(ref).is_dir():
        yield Path(ref)
    else:
        from ..store.local import get_stored

        yield Path(get_stored(ref).path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_for_scoring()  # before the model's modules import LightGBM (klarna_pd/gbm.py)
    from ..files import check_outputs
    from ..store.records import load_directory
    from .local import default_rejects

    remote = "://" in args.output  # Spark writes it (and <output>_rejects) itself
    if remote and args.engine != "spark":
        print(f"error: --output {args.output!r} is a URI: only --engine spark writes to one", file=sys.stderr)
        return 2
    if remote and args.rejects is not None:
        print(f"error: with a URI --output, rejected rows go to {args.output.rstrip('/')}_rejects; "
              "--rejects is for a local output", file=sys.stderr)
        return 2
    rejects = args.rejects if args.rejects is not None or remote else default_rejects(Path(args.output))
    rejects_name = "--rejects" if args.rejects is not None else f"the rejects file ({rejects})"
    try:
        check_outputs({"--input": args.input}, {"--output": args.output, rejects_name: rejects})
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with _model_dir(args.model) as model_dir:
            model = load_directory(model_dir)
            if args.engine == "local":
                from .local import score_file

                if args.compiled_trees and not model.compile_trees():
                    print("warning: scoring with LightGBM, the trees could not be compiled (see above)", file=sys.stderr)
                summary = score_file(model, args.input, args.output, rejects_path=args.rejects, strict=args.strict,
                                     chunk_bytes=args.chunk_mb << 20, progress=not args.quiet)
            else:
                from ..model import compiled
                from .spark import score_file_spark

                if args.compiled_trees and not compiled.available():  # the executors would only log it
                    print("warning: lleaves is not installed here (requirements-serve.txt); executors "
                          "without it score with LightGBM", file=sys.stderr)
                summary = score_file_spark(model_dir, model.spec, args.input, args.output, rejects_path=args.rejects,
                                           strict=args.strict, master=args.spark_master,
                                           compiled_trees=args.compiled_trees)
    except (DataError, ModelError, RemoteError, SparkStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if summary.rows_in == 0:  # not an error (an empty day's partition), but rarely what was meant
        print(f"warning: {args.input} holds no rows to score: {args.output} holds none", file=sys.stderr)
    for line in summary.respelled:
        print(f"warning: {line}", file=sys.stderr)
    print(summary.line())
    return 0


if __name__ == "__main__":
    run(main)
