"""What a stored model says about itself (BentoML's ``model.yaml``), and loading a model directory.

A model directory is the plain files of :mod:`klarna_pd.model` plus BentoML's ``model.yaml``,
whose metadata records the dataset spec and the sha256 of every file, plus ``signature.json``
(:mod:`.signing`). Nothing here imports BentoML: the chart's init container and the server read
pulled directories with this alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..model import PDModel
from ..spec import DatasetSpec
from .signing import Trust, verify_directory

FORMAT = "klarna-pd/1"


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


def record_of_directory(path: str | Path) -> ModelRecord:
    """The record of a model directory pulled from S3 (BentoML's folder format)."""
    import yaml

    path = Path(path)
    where = path / "model.yaml"
    try:
        info = yaml.safe_load(where.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ModelError(f"no readable model.yaml in {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"{where} is not UTF-8 text (byte {exc.start}): not a model record") from None
    except yaml.YAMLError as exc:
        raise ModelError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("metadata") or {}, dict):
        raise ModelError(f"{where} is not a BentoML model record")
    created = info.get("creation_time", "")
    # BentoML writes it quoted; an unquoted one is read as a datetime: the same instant either way.
    created = created.isoformat() if isinstance(created, datetime) else str(created)
    return ModelRecord(f"{info.get('name')}:{info.get('version')}", created, dict(info.get("metadata") or {}))


def load_checked(path: str | Path, record: ModelRecord, trust: Trust | None = None) -> PDModel:
    """Load the model in ``path`` described by ``record``: its signature (as ``trust`` says, see
    :func:`.signing.verify_directory`), every file's sha256, then the files themselves.

    Raises:
        ModelError: unsigned or wrongly signed (unless allowed), altered, missing or malformed files.
    """
    recorded = record.check_format()
    signed = verify_directory(path, record, trust)
    return PDModel.load(path, sha256=signed if signed is not None else recorded)


def load_directory(path: str | Path, *, trust: Trust | None = None) -> PDModel:
    """Load a model directory (a pulled or exported store entry), checking its signature and every
    file's sha256 (``trust``: the key to check with; None reads it from the environment)."""
    return load_checked(path, record_of_directory(path), trust)
