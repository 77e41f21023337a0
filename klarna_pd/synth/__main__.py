"""python -m klarna_pd.synth: write a Klarna-like dataset.csv with a known true PD."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import Parser, run
from ..errors import DataError
from ..files import check_outputs
from ..progress import Progress
from .dataset import UNLABELLED_SHARE, write_synthetic
from .provenance import record_path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed of 0 or more, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {value}")
    return value


def _out(text: str) -> Path:
    path = Path(text)
    name = path.name.lower()
    if not name.endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise argparse.ArgumentTypeError(f"expected a .csv, .csv.gz or .parquet file, got {text!r}")
    return path


def _truth(text: str) -> Path:
    if not Path(text).name.lower().endswith(".csv"):  # written as uuid;true_pd text, never compressed
        raise argparse.ArgumentTypeError(f"expected a .csv file, got {text!r}")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m klarna_pd.synth",
        description="Write a synthetic stand-in for the Klarna case-study dataset.csv, "
        "generated from the published column profile, with labels drawn from a known true PD.",
    )
    parser.add_argument("--rows", type=_positive_int, default=99_976, help="number of rows (default: 99976, as the real file)")
    parser.add_argument("--out", type=_out, default=Path("data/dataset.csv"), help="file to write: .csv, .csv.gz or .parquet (default: data/dataset.csv)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    parser.add_argument("--truth", type=_truth, default=None,
                        help="also write uuid;true_pd to this .csv file")
    shares = parser.add_mutually_exclusive_group()
    shares.add_argument("--unlabelled-share", type=_share, default=UNLABELLED_SHARE,
                        help="share of rows, at the end, with default=NA (default: 10000/99976)")
    shares.add_argument("--unlabelled-only", action="store_true",
                        help="every row with default=NA: a file to score, as batch scoring receives it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_outputs({}, {"--out": args.out, "--truth": args.truth, "the record beside --out": record_path(args.out)})
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = Progress("synth", args.rows)
    try:
        write_synthetic(
            args.out,
            rows=args.rows,
            seed=args.seed,
            truth=args.truth,
            unlabelled_share=1.0 if args.unlabelled_only else args.unlabelled_share,
            progress=lambda done, total, _: progress.update(done),
        )
    except DataError as exc:
        progress.interrupt()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    progress.finish(args.rows)
    print(f"wrote {args.out}" + (f" and {args.truth}" if args.truth else "")
          + f" (SYNTHETIC: recorded as such in {record_path(args.out)})")
    return 0


if __name__ == "__main__":
    run(main)
