"""Copies of stored models to damage: signed like the original, then altered the way an attacker
with write access to the store (but not the signing key) would alter them."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml


def dev_signer():
    """The session's development signer (the key training signs with when none is configured)."""
    from klarna_pd.store.signing import PRIVATE_KEY_FILE, Signer, dev_key_dir, generate_keys, load_private_key

    private = dev_key_dir() / PRIVATE_KEY_FILE
    if not private.exists():
        generate_keys(dev_key_dir())
    return Signer(load_private_key(private), f"the development key {private}")


def signed_copy(src_tag: str, bentoml_home: Path, name: str, *, signer=None) -> tuple[str, Path]:
    """A copy of the stored model ``src_tag`` in the store as ``name:v1``, signed by ``signer``
    (default: the session's development key) as a model of that name.

    Returns:
        The copy's tag and its directory.
    """
    import bentoml

    from klarna_pd.store.records import record_of_directory
    from klarna_pd.store.signing import sign_directory

    src = bentoml.models.get(src_tag)
    dst = bentoml_home / "models" / name / "v1"
    shutil.rmtree(dst.parent, ignore_errors=True)
    shutil.copytree(src.path, dst)
    (dst.parent / "latest").write_text("v1")
    info = yaml.safe_load((dst / "model.yaml").read_text())
    info["name"], info["version"] = name, "v1"
    (dst / "model.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    sign_directory(dst, record_of_directory(dst), signer or dev_signer())
    return f"{name}:v1", dst


def redigest(model_dir: Path) -> None:
    """Recompute the sha256 that ``model.yaml`` records of every model file (what anyone who can
    write to the store can do)."""
    info = yaml.safe_load((model_dir / "model.yaml").read_text())
    info["metadata"]["sha256"] = {
        name: hashlib.sha256((model_dir / name).read_bytes()).hexdigest() for name in info["metadata"]["sha256"]
    }
    (model_dir / "model.yaml").write_text(yaml.safe_dump(info, sort_keys=False))


def edit_record(model_dir: Path, change: Callable[[dict], None]) -> None:
    """Apply ``change`` to the parsed ``model.yaml`` and write it back."""
    info = yaml.safe_load((model_dir / "model.yaml").read_text())
    change(info)
    (model_dir / "model.yaml").write_text(yaml.safe_dump(info, sort_keys=False))


def certain_default_booster(model_dir: Path) -> None:
    """Rewrite ``booster.txt`` (consistently, through LightGBM) so that every applicant gets a PD
    of about 1, and recompute the recorded digests: the tampering of issue 15, item 11."""
    import lightgbm as lgb

    booster = lgb.Booster(model_str=(model_dir / "booster.txt").read_text())
    dump = booster.dump_model()["tree_info"][0]
    for leaf in range(dump["num_leaves"]):
        booster.set_leaf_output(0, leaf, 50.0)
    (model_dir / "booster.txt").write_text(booster.model_to_string())
    redigest(model_dir)
