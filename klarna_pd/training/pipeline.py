"""The main job: read the data, train, store the model, write predictions, metrics and report.

Outputs are staged in a hidden directory inside ``out`` and moved into place only when all of
them exist, so a failed run leaves the previous outputs as they were.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.files import read_dataset
from ..files import sha256_file
from ..spec import DatasetSpec
from . import report
from .cv import TrainConfig, TrainResult, train
from .evaluation import evaluate

DEFAULT_DATA = Path("data/dataset.csv")
SYNTHETIC_DATA = Path("data/synthetic/dataset.csv")
SYNTHETIC_TRUTH = Path("data/synthetic/truth.csv")
OUTPUT_FILES = ("predictions.csv", "metrics.json", "report.md", "report.html")


@dataclass(frozen=True)
class RunSummary:
    out: Path
    model_tag: str | None
    metrics: dict[str, Any]
    synthetic: bool
    result: TrainResult


def resolve_data(data: Path | None, *, builtin_spec: bool, log: Callable[[str], None]) -> tuple[Path, bool]:
    """The file to train on, and whether it is the synthetic stand-in.

    With no ``--data``: ``data/dataset.csv`` if present; otherwise, for the built-in Klarna spec,
    the synthetic stand-in (generated once into ``data/synthetic/``).
    """
    if data is not None:
        return data, False
    if DEFAULT_DATA.exists():
        return DEFAULT_DATA, False
    if not builtin_spec:
        raise FileNotFoundError(f"{DEFAULT_DATA} not found; pass --data with a file that fits the spec")
    banner = "=" * 78
    log(banner)
    log(f"  {DEFAULT_DATA} NOT FOUND: USING THE SYNTHETIC STAND-IN {SYNTHETIC_DATA}")
    log("  (generated from ../shared/data/klarna/profile.json facts, labels from a known true PD;")
    log("   results describe the generator, not real customers)")
    log(banner)
    if not SYNTHETIC_DATA.exists():
        from ..synth import write_synthetic

        log(f"generating {SYNTHETIC_DATA} (99,976 rows, seed 0) and {SYNTHETIC_TRUTH}")
        write_synthetic(SYNTHETIC_DATA, rows=99_976, seed=0, truth=SYNTHETIC_TRUTH)
    return SYNTHETIC_DATA, True


def all_missing(values: np.ndarray) -> bool:
    """Whether a feature column holds no value at all (NaN numbers, None texts)."""
    if values.dtype == object:
        return bool(np.equal(values, None).all())
    return bool(np.isnan(values).all())


def predictions_csv(result: TrainResult, separator: str) -> str:
    """``<id><sep>pd`` lines for the unlabelled rows, PDs at full (round-trip) precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=separator, lineterminator="\n")
    writer.writerow([result.model.spec.id, "pd"])
    for ident, p in zip(result.unlabelled_ids, result.unlabelled_pd):
        writer.writerow([ident, repr(float(p))])
    return buf.getvalue()


def run(
    data: Path,
    spec: DatasetSpec,
    out: Path,
    config: TrainConfig,
    *,
    synthetic: bool = False,
    store: bool = True,
    model_name: str = "klarna-pd",
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Train on ``data`` and write the outputs into ``out``.

    Args:
        data: the data file.
        spec: its spec.
        out: output directory (created if needed).
        config: training settings.
        synthetic: ``data`` is the synthetic stand-in (said in the report).
        store: put the model into the BentoML model store.
        model_name: the model's name in the store.
        log: where progress lines go.

    Raises:
        DataError: the data file does not fit the spec (nothing is written).
        ValueError: too few labelled rows for the folds asked for.
    """
    started = time.perf_counter()
    dataset = read_dataset(data, spec)
    read_seconds = time.perf_counter() - started
    n_lab = int(dataset.is_labelled.sum())
    log(f"read {data}: {len(dataset.batch):,} rows ({n_lab:,} labelled, {len(dataset.batch) - n_lab:,} to score) in {read_seconds:.1f} s")

    # A feature missing in every labelled row is usually a broken extract, not a fact about the
    # applicants: train anyway (the trees ignore it), but say so loudly and keep it on record.
    labelled = dataset.labelled()
    empty = [name for name in spec.feature_names if all_missing(labelled.column(name))]
    if empty:
        log(f"WARNING: {len(empty)} feature(s) missing in every labelled row, the model cannot use them: {', '.join(empty)}")

    result = train(dataset, config, log=log)
    result.seconds = {"read": read_seconds, **result.seconds}
    metrics = evaluate(result)
    metrics["input"] = {"path": str(data), "sha256": sha256_file(data), "synthetic": synthetic, "all_missing_features": empty}
    result.model.metrics = metrics

    tag = None
    if store:
        from ..store.local import save_model

        t0 = time.perf_counter()
        tag = save_model(result.model, name=model_name, labels={"spec": spec.name, "synthetic": str(synthetic).lower()})
        metrics = result.model.metrics
        metrics["seconds"]["store"] = round(time.perf_counter() - t0, 3)
        log(f"saved model {tag} to the BentoML model store")
    metrics["model_tag"] = tag
    metrics["seconds"]["total"] = round(time.perf_counter() - started, 3)

    context = {
        "data_path": str(data),
        "data_sha256": metrics["input"]["sha256"],
        "synthetic": synthetic,
        "model_tag": tag or "not stored",
    }
    markdown = report.render_markdown(result, metrics, context)
    texts = {
        "predictions.csv": predictions_csv(result, spec.separator),
        "metrics.json": json.dumps(metrics, indent=1) + "\n",
        "report.md": markdown,
        "report.html": report.render_html(result, metrics, context, markdown),
    }
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
            os.chmod(staging / name, 0o644)
        for name in OUTPUT_FILES:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RunSummary(out=out, model_tag=tag, metrics=metrics, synthetic=synthetic, result=result)
