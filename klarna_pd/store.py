"""The BentoML model store: saving a trained model under ``klarna-pd:<version>`` and loading it back.

A stored model is the plain files of :mod:`klarna_pd.model` plus BentoML's ``model.yaml``, whose
metadata records the dataset spec and the sha256 of every file. Loading recomputes the digests and
refuses a model whose files differ (see :class:`klarna_pd.model.ModelError`).

    python -m klarna_pd.store push klarna-pd:TAG s3://bucket/prefix
    python -m klarna_pd.store pull s3://bucket/prefix/klarna-pd/VERSION [--dest DIR]
    python -m klarna_pd.store verify klarna-pd:TAG
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml

from .model import ModelError, PDModel
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


@dataclass(frozen=True)
class ModelRecord:
    """What a stored model's ``model.yaml`` says about it."""

    tag: str
    created: str
    metadata: dict[str, Any]

    @property
    def spec(self) -> DatasetSpec:
        raw = self.metadata.get("spec")
        if not isinstance(raw, dict):
            raise ModelError(f"{self.tag} records no dataset spec in its metadata")
        try:
            return DatasetSpec.model_validate(raw)
        except ValueError as exc:
            raise ModelError(f"{self.tag} records an invalid dataset spec: {exc}") from None

    def check_format(self) -> dict[str, str]:
        if self.metadata.get("format") != FORMAT:
            raise ModelError(f"{self.tag} is not a {FORMAT} model (metadata format {self.metadata.get('format')!r})")
        digests = self.metadata.get("sha256")
        if not isinstance(digests, dict):
            raise ModelError(f"{self.tag} records no sha256 of its files: refusing to load it")
        return digests


def record_of_stored(stored: bentoml.Model) -> ModelRecord:
    return ModelRecord(str(stored.tag), stored.info.creation_time.isoformat(), dict(stored.info.metadata))


def record_of_directory(path: str | Path) -> ModelRecord:
    """The record of a model directory pulled from S3 (BentoML's folder format)."""
    import yaml

    path = Path(path)
    try:
        info = yaml.safe_load((path / "model.yaml").read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ModelError(f"no readable model.yaml in {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ModelError(f"{path / 'model.yaml'} is not valid YAML: {exc}") from None
    if not isinstance(info, dict):
        raise ModelError(f"{path / 'model.yaml'} is not a BentoML model record")
    return ModelRecord(f"{info.get('name')}:{info.get('version')}", str(info.get("creation_time", "")), dict(info.get("metadata") or {}))


def load_stored(stored: bentoml.Model) -> PDModel:
    """Load a model from a BentoML store entry, checking every file's sha256.

    Raises:
        ModelError: a file is missing or differs from its recorded sha256, or the entry is not a
            klarna-pd model.
    """
    return PDModel.load(stored.path, sha256=record_of_stored(stored).check_format())


def load_directory(path: str | Path) -> PDModel:
    """Load a model directory (a pulled or exported store entry), checking every file's sha256."""
    return PDModel.load(path, sha256=record_of_directory(path).check_format())


def load_model(tag: str = f"{MODEL_NAME}:latest") -> PDModel:
    """Load a model by tag from the local BentoML model store."""
    return load_stored(bentoml.models.get(tag))


def stored_spec(stored: bentoml.Model) -> DatasetSpec:
    """The dataset spec recorded in a stored model's metadata (without reading its files)."""
    return record_of_stored(stored).spec


# ---------------------------------------------------------------------------------------------
# python -m klarna_pd.store


def main(argv: list[str] | None = None) -> int:
    from .remote import RemoteError, pull, push

    parser = argparse.ArgumentParser(prog="python -m klarna_pd.store", description="Move and check stored klarna-pd models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_push = sub.add_parser("push", help="upload a model from the local store to S3")
    p_push.add_argument("tag", help="model tag, e.g. klarna-pd:latest")
    p_push.add_argument("uri", help="s3://bucket/prefix (the model goes under <prefix>/<name>/<version>/)")
    p_pull = sub.add_parser("pull", help="download a model from S3, verify it, install it")
    p_pull.add_argument("uri", help="the model's S3 URI, as push printed it")
    p_pull.add_argument("--dest", type=Path, default=None, help="put the model's files here instead of the local store")
    p_verify = sub.add_parser("verify", help="check a stored model's files against their sha256")
    p_verify.add_argument("tag")
    args = parser.parse_args(argv)
    try:
        if args.command == "push":
            print(push(args.tag, args.uri, log=lambda m: print(m, file=sys.stderr)))
        elif args.command == "pull":
            print(pull(args.uri, dest=args.dest, log=lambda m: print(m, file=sys.stderr)))
        else:
            load_model(args.tag)
            print(f"{args.tag}: every file matches its recorded sha256")
    except (RemoteError, ModelError, bentoml.exceptions.NotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
