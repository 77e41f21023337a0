"""The BentoML model store: saving a trained model under ``<name>:<version>`` and loading it back.

A stored model is the plain files of :mod:`klarna_pd.model` plus BentoML's ``model.yaml``
(:mod:`.records`) and ``signature.json`` (:mod:`.signing`). Loading checks the signature and every
file's sha256 and refuses a model that is unsigned (unless allowed), wrongly signed or altered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import bentoml

from ..errors import ModelError
from ..model import PDModel
from ..spec import DatasetSpec
from .records import FORMAT, ModelRecord, load_checked
from .signing import Trust, resolve_signer, sign_directory

MODEL_NAME = "klarna-pd"


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("cv_auc_mean", "cv_auc_std", "oof_auc", "gini", "ks", "brier", "log_loss", "ece", "default_rate")
    return {k: metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))}


def save_model(
    model: PDModel,
    *,
    name: str = MODEL_NAME,
    labels: dict[str, str] | None = None,
    signing_key: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> str:
    """Put ``model`` into the BentoML model store, signed.

    The model's ``metrics`` gain ``model_tag`` before they are written.

    Args:
        model: the trained model.
        name: its name in the store.
        labels: BentoML labels.
        signing_key: private key (PEM) to sign with; None: ``KLARNA_PD_SIGNING_KEY``, else this
            machine's development key (:func:`.signing.resolve_signer`).
        log: where a note on the key used goes.

    Returns:
        The new tag, e.g. ``klarna-pd:2v3k...``.
    """
    signer = resolve_signer(signing_key, log=log)
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "spec": model.spec.to_dict(),
        "metrics": _scalar_metrics(model.metrics),
    }
    with bentoml.models.create(name, labels=labels or {}, metadata=metadata) as ref:
        model.metrics = {**model.metrics, "model_tag": str(ref.tag)}
        ref.info.metadata["sha256"] = model.save(ref.path)
        # Signed before BentoML writes model.yaml: the manifest carries what model.yaml will say.
        sign_directory(ref.path, ModelRecord(str(ref.tag), ref.info.creation_time.isoformat(), dict(ref.info.metadata)), signer)
    if log is not None:
        log(f"signed {ref.tag} with {signer.source} ({signer.key_id})")
    return str(ref.tag)


def latest_model(name: str) -> tuple[str, dict[str, str]] | None:
    """The tag and labels of the newest model called ``name`` in the local store (None: there is none)."""
    try:
        stored = bentoml.models.get(f"{name}:latest")
    except bentoml.exceptions.NotFound:
        return None
    return str(stored.tag), dict(stored.info.labels)


def get_stored(ref: str) -> bentoml.Model:
    """The store entry a tag names (``klarna-pd:latest``, ``klarna-pd:<version>``, ``klarna-pd``).

    Raises:
        ModelError: no such model, or ``ref`` is not a tag (a mistyped directory or URI included).
    """
    expected = "expected a model tag such as klarna-pd:latest, a model directory or an s3:// model URI"
    if "://" in ref:
        raise ModelError(f"{expected}, got {ref!r} (a model URI starts with s3://, in lower case)")
    if "/" in ref:  # a path; a bare name is a tag, whatever the working directory holds
        what = "not a directory" if Path(ref).exists() else "no such directory"
        raise ModelError(f"{expected}, got {ref!r} ({what})")
    try:
        return bentoml.models.get(ref)
    except bentoml.exceptions.NotFound as exc:
        if Path(ref).is_file():
            raise ModelError(f"{expected}, got {ref!r}: no such model in the store, and the file here of "
                             "that name is not a model directory") from None
        raise ModelError(str(exc)) from None
    except (bentoml.exceptions.BentoMLException, ValueError) as exc:
        raise ModelError(f"{expected}, got {ref!r} ({exc})") from None


def record_of_stored(stored: bentoml.Model) -> ModelRecord:
    return ModelRecord(str(stored.tag), stored.info.creation_time.isoformat(), dict(stored.info.metadata))


def load_stored(stored: bentoml.Model, *, trust: Trust | None = None) -> PDModel:
    """Load a model from a BentoML store entry, checking its signature and every file's sha256.

    Args:
        stored: the store entry.
        trust: the key to check the signature with; None reads it from the environment.

    Raises:
        ModelError: unsigned (unless allowed) or wrongly signed, a file missing or altered, or the
            entry is not a klarna-pd model.
    """
    return load_checked(stored.path, record_of_stored(stored), trust)


def load_model(tag: str = f"{MODEL_NAME}:latest", *, trust: Trust | None = None) -> PDModel:
    """Load a model by tag from the local BentoML model store (checked as :func:`load_stored`)."""
    return load_stored(get_stored(tag), trust=trust)


def stored_spec(stored: bentoml.Model) -> DatasetSpec:
    """The dataset spec recorded in a stored model's metadata (without reading its files)."""
    return record_of_stored(stored).spec
