"""The main job: read the data, train, store the model, write predictions, metrics and report.

Outputs are staged in a hidden directory inside ``out`` and moved into place only when all of
them exist, so a failed run leaves the previous outputs as they were. Each dataset spec has its
own model name (``<spec name>-pd``: ``klarna-pd`` for the built-in spec) and its own output
directory (``outputs/<spec name>/``), so training on one file never replaces another's model.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.files import read_dataset
from ..errors import DataError, SpecError
from ..files import check_outputs, sha256_file
from ..model.levels import UncodedLevels, spelled_apart_in
from ..spec import DatasetSpec
from ..synth.provenance import read_record, record_path, true_pd_by_id
from . import report
from .cv import TrainConfig, TrainResult, train
from .evaluation import evaluate
from .metrics import FEW_EVENTS
from .reuse import training_labels

DEFAULT_DATA = Path("data/dataset.csv")
SYNTHETIC_DATA = Path("data/synthetic/dataset.csv")
SYNTHETIC_TRUTH = Path("data/synthetic/truth.csv")
OUTPUTS = Path("outputs")
OUTPUT_FILES = ("predictions.csv", "metrics.json", "report.md", "report.html")
# BentoML's tag names: lower-case letters, digits, '-', '_' and '.', at most 63 characters.
_MODEL_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class RunSummary:
    out: Path
    model_tag: str | None
    metrics: dict[str, Any]
    synthetic: bool
    result: TrainResult


def default_model_name(spec: DatasetSpec) -> str:
    """The model store name of models trained for ``spec``: ``<spec name>-pd``.

    Raises:
        SpecError: the spec's name does not make a valid BentoML model name.
    """
    name = f"{spec.name}-pd"
    try:
        return check_model_name(name)
    except ValueError as exc:
        raise SpecError(f"spec name {spec.name!r} does not make a model name: {exc}; rename the spec or pass "
                        "--model-name") from None


def check_model_name(name: str) -> str:
    """``name`` if it can name models in the store as given (a version is added at save).

    Raises:
        ValueError: it cannot (BentoML would lower-case upper-case letters: refused rather than
            stored under another name than the one asked for).
    """
    if not _MODEL_NAME.match(name):
        raise ValueError(f"expected a model name of lower-case letters, digits, '-', '_' or '.', starting "
                         f"and ending with a letter or digit, at most 63 characters and without ':version' "
                         f"(each run adds its own), got {name!r}")
    return name


def check_out(out: Path, data: Path | None = None) -> None:
    """Fail before training, not after it, when the outputs cannot be written into ``out``.

    Raises:
        DataError: ``out`` is a file, holds a directory where an output file goes, an output
            would replace ``data``, or ``out`` cannot be created or written.
    """
    if out.exists() and not out.is_dir():
        raise DataError("expected a directory for the outputs, got a file", path=out)
    for name in OUTPUT_FILES:
        if (out / name).is_dir():
            raise DataError(f"expected to write the file {name} here, found a directory of that name",
                            path=out)
    check_outputs({"--data": data}, {f"--out's {name}": out / name for name in OUTPUT_FILES})
    # Probed where the outputs (or their new directory) would go, leaving nothing behind.
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(0, f"{existing} is a file")
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=existing))
    except OSError as exc:
        raise DataError(f"cannot write the outputs here: {exc.strerror or exc}", path=out) from None


def default_out(spec: DatasetSpec) -> Path:
    """The output directory of runs on ``spec``'s data: ``outputs/<spec name>``."""
    return OUTPUTS / spec.name


def resolve_data(data: Path | None, *, builtin_spec: bool, log: Callable[[str], None]) -> Path:
    """The file to train on.

    With no ``--data``: ``data/dataset.csv`` if present; otherwise, for the built-in Klarna spec,
    the synthetic stand-in (generated once into ``data/synthetic/``). Whether a file is the
    synthetic stand-in is decided by its provenance record (:func:`run`), not by its path.
    """
    if data is not None:
        return data
    if DEFAULT_DATA.exists():
        return DEFAULT_DATA
    if not builtin_spec:
        raise FileNotFoundError(f"{DEFAULT_DATA} not found; pass --data with a file that fits the spec")
    log(f"{DEFAULT_DATA} NOT FOUND: using the synthetic stand-in {SYNTHETIC_DATA}")
    if not SYNTHETIC_DATA.exists():
        from ..synth import write_synthetic

        log(f"generating {SYNTHETIC_DATA} (99,976 rows, seed 0) and {SYNTHETIC_TRUTH}")
        write_synthetic(SYNTHETIC_DATA, rows=99_976, seed=0, truth=SYNTHETIC_TRUTH)
    return SYNTHETIC_DATA


def _synthetic_banner(data: Path, log: Callable[[str], None]) -> None:
    banner = "=" * 78
    log(banner)
    log(f"  TRAINING ON THE SYNTHETIC STAND-IN: {data}")
    log(f"  (recognised by {record_path(data)}; labels drawn from a known true PD,")
    log("   so the results describe the generator, not real customers)")
    log(banner)


def _missing(values: np.ndarray) -> np.ndarray:
    """Which values of a feature column are missing (NaN numbers, None texts)."""
    return np.equal(values, None) if values.dtype == object else np.isnan(values)


def all_missing(values: np.ndarray) -> bool:
    """Whether a feature column holds no value at all."""
    return bool(_missing(values).all())


def looks_grouped(values: np.ndarray, *, least: int = 20) -> bool:
    """Whether a numeric column looks read from text with thousands separators taken as decimal
    points ("2.006" for 2,006, as a German export writes it): every value with a fraction is at
    least 1 and has at most three decimals, most of them exactly three (prices with two, rates
    with one, halves do not), and there are ``least`` of them."""
    x = values[~np.isnan(values)]
    fractional = x[x != np.floor(x)]
    # Beyond 1e9 a float's last digits cannot tell three decimals from more (every value of a
    # column up to 1e15 passed, "thousands separators?" on plain large numbers).
    if len(fractional) < least or (np.abs(fractional) < 1).any() or (np.abs(fractional) > 1e9).any():
        return False
    thousandths = fractional * 1000
    whole = np.round(thousandths)
    if not (np.abs(thousandths - whole) <= 1e-3).all():
        return False
    return bool(np.mean(whole % 10 != 0) > 0.5)


def constant(values: np.ndarray) -> bool:
    """Whether a feature column holds one value in every row, none missing (nothing to split on;
    one value and missing ones still split on being missing)."""
    if len(values) == 0:
        return False
    return not _missing(values).any() and bool((values == values[0]).all())


#: How sure the labelled rows must be that a declared direction is the wrong way round before a
#: warning says so (Spearman's test); with 90,000 rows a slight reversal is already that sure.
DIRECTION_P = 1e-3


def directions_against_the_data(labelled, spec: DatasetSpec) -> dict[str, dict[str, float]]:
    """Declared monotone directions the labelled rows contradict: the rank correlation of the
    feature and the outcome has the other sign, at ``DIRECTION_P``. A marginal view (another
    feature may explain it), so a warning for the reviewer, not a refusal; the constraint holds
    either way and costs AUC (``--compare-constraints none`` measures how much)."""
    from scipy import stats

    y = labelled.target
    out: dict[str, dict[str, float]] = {}
    for f in spec.features:
        if not f.monotone:
            continue
        x = labelled.column(f.name)
        seen = ~np.isnan(x)
        if seen.sum() < 3 or constant(x[seen]) or constant(y[seen]):
            continue
        rho, p = stats.spearmanr(x[seen], y[seen])
        if np.sign(rho) == -f.monotone and p < DIRECTION_P:
            out[f.name] = {"declared": f.monotone, "spearman": float(rho), "p_value": float(p)}
    return out


def identical_features(labelled, spec: DatasetSpec) -> list[list[str]]:
    """Groups of number features whose columns are equal in every labelled row (missing where the
    other is missing): a constraint on one is undone by the trees splitting on its copy. Columns
    of one value where present are left out (constant or missing everywhere, said already; or
    telling only missing from present, which sparse counts of a small file share by chance)."""
    groups: dict[bytes, list[str]] = {}
    for name in spec.number_names:
        x = labelled.column(name)
        present = x[~np.isnan(x)]
        if not len(present) or constant(present):
            continue
        groups.setdefault(np.where(np.isnan(x), np.inf, x).tobytes(), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


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
    synthetic: bool | None = None,
    store: bool = True,
    model_name: str | None = None,
    signing_key: Path | None = None,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Train on ``data`` and write the outputs into ``out``.

    Args:
        data: the data file.
        spec: its spec.
        out: output directory (created if needed).
        config: training settings.
        synthetic: whether ``data`` is the synthetic stand-in; None (the default): decided by its
            provenance record (:mod:`klarna_pd.synth.provenance`). Said on the console, in
            ``metrics.json`` (``input.synthetic``) and in the report; with a record, the report
            also compares the model with the true PD.
        store: put the model into the BentoML model store.
        model_name: the model's name in the store (default: :func:`default_model_name`).
        signing_key: private key (PEM) the stored model is signed with; None:
            ``KLARNA_PD_SIGNING_KEY``, else this machine's development key.
        log: where progress lines go.

    Raises:
        DataError: the data file does not fit the spec, or ``out`` cannot take the outputs (both
            found before training; nothing is written).
        ModelError: the signing key cannot be used (nothing is written).
        ValueError: too few labelled rows for the folds asked for, or a model name the store
            cannot take.
    """
    started = time.perf_counter()
    model_name = check_model_name(model_name or default_model_name(spec))
    check_out(out, data)
    if store:
        from ..store.signing import resolve_signer

        resolve_signer(signing_key, log=log)  # a key that cannot sign fails now, not after training
    dataset = read_dataset(data, spec)
    digest = sha256_file(data)
    read_seconds = time.perf_counter() - started
    n_lab = int(dataset.is_labelled.sum())
    log(f"read {data}: {len(dataset.batch):,} rows ({n_lab:,} labelled, {len(dataset.batch) - n_lab:,} to score) in {read_seconds:.1f} s")
    record, mismatch = read_record(data, digest)
    if mismatch:
        log(f"WARNING: {mismatch}")
    synthetic = record is not None if synthetic is None else synthetic
    if synthetic:
        _synthetic_banner(data, log)
    truth = None
    if record is not None:
        try:
            all_truth = true_pd_by_id(record, dataset.batch.ids)
            truth = (all_truth[dataset.is_labelled], all_truth[~dataset.is_labelled])
        except DataError as exc:
            log(f"WARNING: no comparison with the true PD: {exc}")

    # Too few labelled rows is the error to report, not the features they leave empty.
    n_defaults = int(np.nansum(dataset.batch.target))
    config.check(n_lab, n_defaults)
    rarer = min(n_defaults, n_lab - n_defaults)
    if rarer < FEW_EVENTS:
        log(f"WARNING: {rarer:,} labelled rows of the rarer outcome (fewer than {FEW_EVENTS}): the model "
            "learns from few events, and the AUC interval and Hosmer-Lemeshow test are rough")
    if n_defaults > n_lab / 2:
        # A file coded the other way round (1 = good, as German credit is) trains without an error
        # and serves the probability of repaying as a PD.
        coding = ("default_values and repaid_values the other way round" if spec.target_texts
                  else f"{spec.target!r} coded the other way round")
        log(f"WARNING: {n_defaults:,} of {n_lab:,} labelled rows ({n_defaults / n_lab:.1%}) are defaults: is "
            f"{coding}? The model takes 1 for default, 0 for repaid")
    # A feature missing in every labelled row is usually a broken extract, not a fact about the
    # applicants: train anyway (the trees ignore it), but say so loudly and keep it on record.
    labelled = dataset.labelled()
    empty = [name for name in spec.feature_names if all_missing(labelled.column(name))]
    if empty:
        log(f"WARNING: {len(empty)} feature(s) missing in every labelled row, the model cannot use them: {', '.join(empty)}")
    grouped = [f.name for f in spec.features
               if f.kind == "numeric" and looks_grouped(labelled.column(f.name))]
    if grouped:
        # The reader takes "." as the decimal point: 2.006 (two thousand and six) became 2.006.
        log(f"WARNING: every fractional value of {', '.join(grouped)} has three decimals (as 2.006): "
            "thousands separators read as decimal points? Numbers must be written without grouping, "
            "'.' for the decimals")
    same = [name for name in spec.feature_names if constant(labelled.column(name))]
    if same:
        log(f"WARNING: {len(same)} feature(s) with the same value in every labelled row, the model cannot "
            f"use them: {', '.join(same)}")
    spelled_apart = spelled_apart_in(labelled)
    for line in spelled_apart:
        log(f"WARNING: {line}")
    against = directions_against_the_data(labelled, spec) if config.monotone else {}
    for name, d in against.items():
        log(f"WARNING: {name!r} is declared {d['declared']:+d} (the PD may only "
            f"{'rise' if d['declared'] > 0 else 'fall'} with it) but defaults "
            f"{'fall' if d['declared'] > 0 else 'rise'} with it in the labelled rows (Spearman "
            f"{d['spearman']:+.3f}, p {d['p_value']:.1e}): is the declared direction right?")
    twins = identical_features(labelled, spec)
    constrained = {f.name for f in spec.features if f.monotone and config.monotone}
    for names in twins:
        log(f"WARNING: features {', '.join(names)} are equal in every labelled row: the trees may split "
            "on any of them" + (", and a monotone constraint on one does not hold for the others"
                                if constrained.intersection(names) else ""))

    result = train(dataset, config, log=log)
    scored = UncodedLevels(result.model.encoder)
    unlabelled = dataset.unlabelled()
    scored.add(unlabelled, result.unlabelled_matrix)
    for line in scored.respelled():
        log(f"WARNING: rows to score: {line}")
    for line in scored.unknown():
        log(f"rows to score: {line}")
    result.seconds = {"read": read_seconds, **result.seconds}
    metrics = evaluate(result, true_pd=truth)
    metrics["input"] = {
        "path": str(data),
        "sha256": digest,
        "synthetic": synthetic,
        "synthetic_record": None if record is None else {"path": str(record_path(data)), "rows": record.rows, "seed": record.seed},
        "rarer_outcome_rows": rarer,
        "all_missing_features": empty,
        "constant_features": same,
        "features_with_grouped_thousands": grouped,
        "levels_spelled_apart": spelled_apart,
        "directions_against_the_data": against,
        "identical_features": twins,
        "levels_without_a_code_in_rows_to_score": scored.to_dict(),
    }
    metrics["spec_name"] = spec.name
    result.model.metrics = metrics

    tag = None
    if store:
        from ..store.local import save_model

        t0 = time.perf_counter()
        labels = {**training_labels(digest, spec, config), "synthetic": str(synthetic).lower()}
        tag = save_model(result.model, name=model_name, labels=labels, signing_key=signing_key, log=log)
        metrics = result.model.metrics
        metrics["seconds"]["store"] = round(time.perf_counter() - t0, 3)
        log(f"saved model {tag} to the BentoML model store")
    metrics["model_tag"] = tag
    metrics["seconds"]["total"] = round(time.perf_counter() - started, 3)

    context = {
        "data_path": str(data),
        "data_sha256": digest,
        "synthetic": synthetic,
        "synthetic_record": str(record_path(data)) if record is not None else None,
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
