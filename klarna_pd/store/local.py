"""The BentoML model store: saving a trained model under ``<name>:<version>`` and loading it back.

A stored model is the plain files of :mod:`klarna_pd.model` plus BentoML's ``model.yaml``
(:mod:`.records`). Loading recomputes every file's sha256 and refuses a model whose files differ.
"""

from __future__ import annotations

from typing import Any

import bentoml

from ..model import PDModel
from ..spec import DatasetSpec
from .records import FORMAT, ModelRecord

MODEL_NAME = "klarna-pd"


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("cv_auc_mean", "cv_auc_std", "oof_auc", "gini", "ks", "brier", "log_loss", "ece", "default_rate")
    return {k: metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))}


def save_model(model: PDModel, *, name: str = MODEL_NAME, labels: dict[str, str] | None = None) -> str:
    """Put ``model`` into the BentoML model store.

    The model's ``metrics`` gain ``model_tag`` before they are written.

    Returns:
        The new tag, e.g. ``klarna-pd:2v3k...``.
    """
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "spec": model.spec.to_dict(),
        "metrics": _scalar_metrics(model.metrics),
    }
    with bentoml.models.create(name, labels=labels or {}, metadata=metadata) as ref:
        model.metrics = {**model.metrics, "model_tag": str(ref.tag)}
        ref.info.metadata["sha256"] = model.save(ref.path)
    return str(ref.tag)


def record_of_stored(stored: bentoml.Model) -> ModelRecord:
    return ModelRecord(str(stored.tag), stored.info.creation_time.isoformat(), dict(stored.info.metadata))


def load_stored(stored: bentoml.Model) -> PDModel:
    """Load a model from a BentoML store entry, checking every file's sha256.

    Raises:
        ModelError: a file is missing or differs from its recorded sha256, or the entry is not a
            klarna-pd model.
    """
    return PDModel.load(stored.path, sha256=record_of_stored(stored).check_format())


def load_model(tag: str = f"{MODEL_NAME}:latest") -> PDModel:
    """Load a model by tag from the local BentoML model store."""
    return load_stored(bentoml.models.get(tag))


def stored_spec(stored: bentoml.Model) -> DatasetSpec:
    """The dataset spec recorded in a stored model's metadata (without reading its files)."""
    return record_of_stored(stored).spec
