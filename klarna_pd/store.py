"""The BentoML model store: saving a trained model under ``klarna-pd:<version>`` and loading it back.

A stored model is the plain files of :mod:`klarna_pd.model` plus BentoML's ``model.yaml``, whose
metadata records the sha256 of every file. Loading recomputes them and refuses a model whose files
differ (see :class:`klarna_pd.model.ModelError`).
"""

from __future__ import annotations

from typing import Any

import bentoml

from .model import PDModel
from .spec import DatasetSpec

MODEL_NAME = "klarna-pd"
FORMAT = "klarna-pd/1"


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
        "spec": model.spec.model_dump(mode="json"),
        "metrics": _scalar_metrics(model.metrics),
    }
    with bentoml.models.create(name, labels=labels or {}, metadata=metadata) as ref:
        model.metrics = {**model.metrics, "model_tag": str(ref.tag)}
        ref.info.metadata["sha256"] = model.save(ref.path)
    return str(ref.tag)


def load_stored(stored: bentoml.Model) -> PDModel:
    """Load a model from a BentoML store entry, checking every file's sha256.

    Raises:
        ModelError: a file is missing or differs from its recorded sha256, or the entry is not a
            klarna-pd model.
    """
    from .model import ModelError

    meta = stored.info.metadata
    if meta.get("format") != FORMAT:
        raise ModelError(f"{stored.tag} is not a {FORMAT} model (metadata format {meta.get('format')!r})")
    digests = meta.get("sha256")
    if not isinstance(digests, dict):
        raise ModelError(f"{stored.tag} records no sha256 of its files: refusing to load it")
    return PDModel.load(stored.path, sha256=digests)


def stored_spec(stored: bentoml.Model) -> DatasetSpec:
    """The dataset spec recorded in a stored model's metadata (without reading its files)."""
    from .model import ModelError

    raw = stored.info.metadata.get("spec")
    if not isinstance(raw, dict):
        raise ModelError(f"{stored.tag} records no dataset spec in its metadata")
    try:
        return DatasetSpec.model_validate(raw)
    except ValueError as exc:
        raise ModelError(f"{stored.tag} records an invalid dataset spec: {exc}") from None


def load_model(tag: str = f"{MODEL_NAME}:latest") -> PDModel:
    """Load a model by tag from the local BentoML model store."""
    return load_stored(bentoml.models.get(tag))
