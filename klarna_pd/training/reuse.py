"""Whether to train again: the labels that name what a stored model was trained from.

``make run`` trains only when something changed since the newest stored model of the spec: the
input file's bytes, the spec, a training setting, or the klarna-pd or LightGBM version. ``make
train`` always trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from ..files import sha256_file
from ..spec import DatasetSpec
from ..versions import library_versions
from .cv import TrainConfig


def training_labels(data_sha256: str, spec: DatasetSpec, config: TrainConfig) -> dict[str, str]:
    """Model store labels naming what a model was trained from, to tell when it can be reused.

    ``data_sha256`` is the input file's; ``settings_sha256`` covers the spec, every training
    setting and the versions of klarna-pd and LightGBM.
    """
    versions = library_versions()
    settings = json.dumps(
        {"spec": spec.to_dict(), "config": dataclasses.asdict(config),
         "versions": {k: versions[k] for k in ("klarna-pd", "lightgbm")}},
        sort_keys=True, default=str,
    )
    return {"spec": spec.name, "data_sha256": data_sha256,
            "settings_sha256": hashlib.sha256(settings.encode()).hexdigest()}


def reusable_model(data: Path, spec: DatasetSpec, out: Path, config: TrainConfig, model_name: str) -> tuple[str | None, str]:
    """The stored model to serve instead of training again, if nothing it was trained from changed.

    A model is reused when the newest ``model_name`` in the store was trained from the same bytes
    (sha256), spec and settings, and ``out`` still holds that run's outputs.

    Returns:
        ``(tag, why)``: the tag to reuse (None: train) and the reason, for the console.
    """
    from ..store.local import latest_model

    found = latest_model(model_name)
    if found is None:
        return None, f"no model {model_name} in the store yet"
    tag, labels = found
    wanted = training_labels(sha256_file(data), spec, config)
    if labels.get("data_sha256") != wanted["data_sha256"]:
        return None, f"{data} changed since {tag} was trained (sha256 differs)"
    if labels.get("settings_sha256") != wanted["settings_sha256"]:
        return None, f"the spec or training settings changed since {tag} was trained"
    try:
        written = json.loads((out / "metrics.json").read_text(encoding="utf-8")).get("model_tag")
    except (OSError, ValueError):
        written = None
    if written != tag:
        return None, f"{out / 'metrics.json'} is missing or describes another model than {tag}"
    return tag, f"{tag} was trained from the same data (sha256), spec and settings; its outputs are in {out}"
