"""Train the PD model: cross-validate, calibrate, score the unlabelled rows, store the model.

    python train.py [--data PATH] [--spec SPEC.yaml] [--out DIR] [--folds 10] [--seed 0] [--reuse] [--signing-key PEM]
                    [--model-name NAME] [--no-store] [--no-monotone]
                    [--repeats R] [--tune SECONDS | --tune-trials N] [--predictor refit|folds]
                    [--compare-constraints none NAME=feature,feature ...]

Without --data it uses data/dataset.csv, or else the synthetic stand-in. A synthetic file is
recognised by its provenance record wherever it is, and said so loudly. Models are named after
the spec (klarna-pd, uci_taiwan-pd, ...) and outputs go to outputs/<spec name>/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from klarna_pd.cli import Parser
from klarna_pd.errors import DataError, ModelError, SpecError


def _int_at_least(low: int, most: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if most is not None and not low <= value <= most:
            raise argparse.ArgumentTypeError(f"expected a number from {low} to {most:,}, got {value}")
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a number of at least {low}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _constraint_set(text: str) -> tuple[str, dict[str, int | None]]:
    name, sep, items = text.partition("=")
    if not name or (not sep and name != "none"):
        raise argparse.ArgumentTypeError(f"expected NAME=feature,feature:+1,... (or 'none'), got {text!r}")
    features: dict[str, int | None] = {}
    for item in filter(None, items.split(",")):
        feature, colon, direction = item.partition(":")
        if colon and direction not in ("+1", "1", "-1"):
            raise argparse.ArgumentTypeError(f"expected a direction +1 or -1 after {feature}:, got {direction!r}")
        features[feature] = int(direction) if colon else None
    return name, features


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python train.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="CSV (.gz too) or Parquet file (default: data/dataset.csv, else the synthetic stand-in)")
    parser.add_argument("--spec", type=Path, default=None, help="dataset spec YAML (default: the built-in Klarna spec)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: outputs/<spec name>/)")
    parser.add_argument("--folds", type=_int_at_least(2), default=10, help="cross-validation folds (default: 10)")
    parser.add_argument("--seed", type=_int_at_least(0, most=2**32 - 1), default=0,
                        help="random seed, 0 to 2**32 - 1 (default: 0)")
    parser.add_argument("--model-name", default=None,
                        help="name in the BentoML model store (default: <spec name>-pd, e.g. klarna-pd)")
    parser.add_argument("--no-store", action="store_true", help="do not save the model into the BentoML model store")
    parser.add_argument("--signing-key", type=Path, default=None,
                        help="private key (PEM) to sign the stored model with (default: KLARNA_PD_SIGNING_KEY, "
                             "else this machine's development key under $BENTOML_HOME/klarna-pd-keys)")
    parser.add_argument("--reuse", action="store_true",
                        help="do not train when the newest stored model was trained from the same data (sha256), "
                             "spec and settings and its outputs are in place (make run uses this; make train does not)")
    parser.add_argument("--no-monotone", action="store_true", help="ignore the spec's monotone constraints")
    parser.add_argument("--repeats", type=_int_at_least(1), default=1,
                        help="repeated stratified CV, one seed per repeat (default: 1); all fold models are served")
    parser.add_argument("--predictor", choices=("refit", "folds"), default=None,
                        help="serve one model refit on all rows (default), or the mean of the fold models as one "
                             "booster (k times the trees: slower to score, see the README; a tuned run serves its "
                             "fold models)")
    tune = parser.add_mutually_exclusive_group()
    tune.add_argument("--tune", type=_seconds, default=0.0, metavar="SECONDS",
                      help="search the main LightGBM parameters for about this long (nested CV)")
    tune.add_argument("--tune-trials", type=_int_at_least(1), default=0, metavar="N",
                      help="search with exactly N trials per outer fold (reproducible to the bit)")
    parser.add_argument("--compare-constraints", type=_constraint_set, nargs="+", default=[], metavar="SET",
                        help="also cross-validate these constraint sets and report their AUC: 'none', or "
                             "NAME=feature,feature:+1,... (a bare feature keeps the spec's direction)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The training stack (LightGBM, scikit-learn: ~1.5 s) only once the flags are good: --help and
    # a mistyped flag answer at once.
    from klarna_pd.spec import resolve_spec
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import (
        check_model_name,
        default_model_name,
        default_out,
        resolve_data,
        run,
    )
    from klarna_pd.training.reuse import reusable_model

    try:
        config = TrainConfig(
            folds=args.folds,
            seed=args.seed,
            monotone=not args.no_monotone,
            predictor=args.predictor,  # None: TrainConfig decides (folds when tuned)
            repeats=args.repeats,
            tune_seconds=args.tune,
            tune_trials=args.tune_trials,
            constraint_sets=dict(args.compare_constraints),
        )
        config.check_settings()  # before the data is read (or the stand-in generated)
        spec = resolve_spec(args.spec)
        data = resolve_data(args.data, builtin_spec=args.spec is None, log=print)
        out = args.out or default_out(spec)
        # Checked before --reuse looks the name up in the store.
        model_name = check_model_name(args.model_name or default_model_name(spec))
        if args.reuse and not args.no_store and data.exists():
            tag, why = reusable_model(data, spec, out, config, model_name)
            if tag is not None:
                print(f"not training: reusing {why} (make train, or python train.py without --reuse, retrains)")
                return 0
            print(f"training: {why}")
        summary = run(data, spec, out, config, store=not args.no_store, model_name=model_name,
                      signing_key=args.signing_key)
    except (DataError, SpecError, ModelError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = summary.metrics
    print(
        f"CV AUC {m['cv_auc_mean']:.4f} ± {m['cv_auc_std']:.4f} | OOF AUC {m['oof_auc']:.4f} | "
        f"Brier {m['brier']:.5f} | calibration {m['calibration']['method']} | "
        f"{m['rows']['unlabelled']:,} rows scored | {m['seconds']['total']:.1f} s"
    )
    print(f"wrote {', '.join(str(summary.out / n) for n in ('predictions.csv', 'metrics.json', 'report.md', 'report.html'))}")
    if summary.model_tag:
        serve = "bentoml serve service:KlarnaPD"
        if not summary.model_tag.startswith("klarna-pd:"):
            serve = f"KLARNA_PD_MODEL_TAG={summary.model_tag.split(':')[0]}:latest {serve}"
        print(f"model: {summary.model_tag} (spec {spec.name}; serve it: {serve})")
    if summary.synthetic:
        print("NOTE: trained on the SYNTHETIC stand-in, not real data")
    return 0


if __name__ == "__main__":
    from klarna_pd.cli import run

    run(main)
