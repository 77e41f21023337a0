"""Stored models are signed and every load checks the signature (issue 15, item 11); a damaged
booster is a ModelError, never a crash (item 12)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from klarna_pd.errors import ModelError

from ..helpers.models import certain_default_booster, edit_record, signed_copy
from ..helpers.paths import ROOT


def _store(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m klarna_pd.store ...`` with the session's environment (and ``env`` on top)."""
    return subprocess.run([sys.executable, "-m", "klarna_pd.store", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def copy(small_trained, bentoml_home, request):
    """A signed copy of the small model under a name of its own, free to be damaged."""
    return signed_copy(small_trained.model_tag, bentoml_home, f"integrity-{request.node.name.split('[')[0][5:40].replace('_', '-')}")


def test_the_trained_model_is_signed_and_verifies(small_trained):
    proc = _store("verify", small_trained.model_tag)
    assert proc.returncode == 0, proc.stderr
    assert "signed by ed25519:" in proc.stdout and "every file matches its signed sha256" in proc.stdout


def test_a_booster_rewritten_with_recomputed_digests_is_refused(copy, sample_records):
    """The PD of every applicant near 1, every recorded digest made to match: refused by the signature."""
    tag, path = copy
    certain_default_booster(path)
    for env in ({}, {"KLARNA_PD_ALLOW_UNSIGNED": "true"}):  # a bad signature is not an absent one
        proc = _store("verify", tag, env=env)
        assert proc.returncode == 1, proc.stdout
        assert "booster.txt does not match its recorded sha256 in the signed manifest" in proc.stderr
    from klarna_pd.store.local import load_model

    with pytest.raises(ModelError, match="signed manifest"):
        load_model(tag)


@pytest.mark.parametrize(
    "change, needle",
    [
        # /predict's request types come from model.yaml's spec: a changed kind gave 500s.
        (lambda info: info["metadata"]["spec"]["features"][5].update(kind="numeric"), "model.yaml's spec differs from the signed one"),
        (lambda info: info["metadata"].update(format="klarna-pd/0"), "is not a klarna-pd/1 model"),
        (lambda info: info.update(creation_time="2020-01-01T00:00:00+00:00"), "model.yaml's created differs"),
    ],
)
def test_a_changed_model_yaml_is_refused(copy, change, needle):
    tag, path = copy
    edit_record(path, change)
    proc = _store("verify", tag)
    assert proc.returncode == 1 and needle in proc.stderr, proc.stdout + proc.stderr


def test_an_unsigned_model_is_refused_unless_allowed_for_development(copy):
    tag, path = copy
    (path / "signature.json").unlink()
    proc = _store("verify", tag)
    assert proc.returncode == 1
    assert f"{tag} is not signed" in proc.stderr and "KLARNA_PD_ALLOW_UNSIGNED=true" in proc.stderr
    allowed = _store("verify", tag, env={"KLARNA_PD_ALLOW_UNSIGNED": "true"})
    assert allowed.returncode == 0 and "NOT SIGNED" in allowed.stdout


def test_a_file_the_signature_does_not_cover_is_refused(copy):
    tag, path = copy
    (path / "custom_objects.pkl").write_bytes(b"BentoML unpickles this file if anything asks for custom objects")
    proc = _store("verify", tag)
    assert proc.returncode == 1 and "files not covered by the signature: ['custom_objects.pkl']" in proc.stderr


def test_a_symlink_in_the_model_directory_is_refused(copy, tmp_path):
    tag, path = copy
    shutil.move(path / "reference.json", tmp_path / "reference.json")
    (path / "reference.json").symlink_to(tmp_path / "reference.json")  # same bytes, so the digest matches
    proc = _store("verify", tag)
    assert proc.returncode == 1 and "holds a symlink, 'reference.json'" in proc.stderr


def test_keygen_makes_an_owner_only_private_key_and_never_overwrites(tmp_path):
    out = tmp_path / "keys"
    proc = _store("keygen", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((out / "signing-key.pem").stat().st_mode) == 0o600
    assert (out / "verify-key.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "key ed25519:" in proc.stdout
    before = (out / "signing-key.pem").read_bytes()
    again = _store("keygen", "--out", str(out))
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    assert (out / "signing-key.pem").read_bytes() == before


def test_a_model_signed_by_another_key_is_refused_and_verifies_with_that_key(small_trained, bentoml_home, tmp_path):
    from klarna_pd.store.signing import Signer, generate_keys, load_private_key

    private, public = generate_keys(tmp_path / "other")
    tag, _ = signed_copy(small_trained.model_tag, bentoml_home, "integrity-other-key",
                         signer=Signer(load_private_key(private), str(private)))
    proc = _store("verify", tag)  # the session trusts its development key
    assert proc.returncode == 1 and "not by the trusted key" in proc.stderr
    assert _store("verify", tag, "--key", str(public)).returncode == 0
    assert _store("verify", tag, env={"KLARNA_PD_VERIFY_KEY": str(public)}).returncode == 0
    # With a verify key configured, the development key is no longer trusted.
    refused = _store("verify", small_trained.model_tag, env={"KLARNA_PD_VERIFY_KEY": str(public)})
    assert refused.returncode == 1 and f"KLARNA_PD_VERIFY_KEY={public}" in refused.stderr


def test_no_key_at_all_refuses_even_a_signed_model(small_trained, tmp_path):
    """A machine (a pod) with neither a verify key nor a development key accepts nothing."""
    env = {"BENTOML_HOME": str(tmp_path / "empty-home")}
    model_dir = tmp_path / "model"
    import bentoml

    shutil.copytree(bentoml.models.get(small_trained.model_tag).path, model_dir)
    proc = _store("verify", str(model_dir), env=env)
    assert proc.returncode == 1 and "no key to verify it with: set KLARNA_PD_VERIFY_KEY" in proc.stderr


def test_training_signs_with_the_configured_key(synthetic_small, klarna_spec, tmp_path, bentoml_home):
    import bentoml

    from klarna_pd.store.signing import fingerprint, load_public_key, signer_of
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import run

    with pytest.raises(ModelError, match="cannot read the signing key"):  # before any training
        run(synthetic_small, klarna_spec, tmp_path / "o", TrainConfig(folds=2), signing_key=tmp_path / "absent.pem",
            log=lambda *_: None)
    assert _store("keygen", "--out", str(tmp_path / "k")).returncode == 0
    private, public = tmp_path / "k" / "signing-key.pem", tmp_path / "k" / "verify-key.pem"
    summary = run(synthetic_small, klarna_spec, tmp_path / "out", TrainConfig(folds=2, seed=0), signing_key=private,
                  model_name="integrity-release", log=lambda *_: None)
    stored = bentoml.models.get(summary.model_tag)
    assert signer_of(stored.path) == fingerprint(load_public_key(public))
    assert _store("verify", summary.model_tag, "--key", str(public)).returncode == 0


# -- item 12: a damaged booster.txt ---------------------------------------------------------------

_CHILD = """
import sys
from klarna_pd.gbm import import_for_scoring
import_for_scoring()  # as a server worker does
import numpy as np
from klarna_pd.errors import ModelError
from klarna_pd.model import PDModel
try:
    model = PDModel.load(sys.argv[1], sha256=None)  # None: as if the digests had been recomputed
    model.predict_matrix(np.zeros((3, model.encoder.n_features)))
    print("LOADED")
except ModelError as exc:
    print("ModelError:", exc)
"""


def _cut(fraction: float):
    return lambda data: data[: int(len(data) * fraction)]


def _replace(old: bytes, new: bytes):
    def damage(data: bytes) -> bytes:
        assert old in data
        return data.replace(old, new, 1)

    return damage


def _first_line_edit(prefix: bytes, edit):
    def damage(data: bytes) -> bytes:
        start = data.index(prefix)
        end = data.index(b"\n", start)
        return data[:start] + edit(data[start:end]) + data[end:]

    return damage


@pytest.mark.parametrize(
    "damage",
    [
        # Truncations: inside the header, inside trees (early, middle, late), in the parameters.
        pytest.param(_cut(0.01), id="cut-1%"),
        pytest.param(_cut(0.05), id="cut-5%"),
        pytest.param(_cut(0.3), id="cut-30%"),
        pytest.param(_cut(0.5), id="cut-50%"),
        pytest.param(_cut(0.97), id="cut-97%"),
        pytest.param(_cut(0.999), id="cut-99.9%"),
        pytest.param(lambda d: d[: d.index(b"end of trees")], id="cut-before-end-of-trees"),
        # Corruptions that keep every tree where tree_sizes says it is.
        pytest.param(_first_line_edit(b"leaf_value=", lambda line: line.rsplit(b" ", 1)[0]), id="leaf-value-missing"),
        pytest.param(_first_line_edit(b"left_child=", lambda line: b"left_child=9" + line[len(b"left_child=") + 1:]), id="child-out-of-range"),
        pytest.param(_first_line_edit(b"split_feature=", lambda line: b"split_feature=99" + line[len(b"split_feature=") + 2:]), id="feature-out-of-range"),
        pytest.param(_replace(b"num_leaves=", b"num_leaves=x"), id="num-leaves-not-a-number"),
        pytest.param(_first_line_edit(b"tree_sizes=", lambda line: line.replace(b" ", b" 1", 1)), id="tree-sizes-off"),
        pytest.param(lambda d: d[:5000] + b"\0" + d[5001:], id="nul-byte"),
        pytest.param(lambda d: d[:100_000] + bytes([d[100_000] ^ 0x40]) + d[100_001:], id="flipped-bit"),
        pytest.param(lambda d: d[:60_000] + d[61_000:], id="kilobyte-missing"),
    ],
)
def test_a_damaged_booster_is_a_model_error_never_a_crash(small_trained, tmp_path, damage):
    import bentoml

    model_dir = tmp_path / "model"
    shutil.copytree(bentoml.models.get(small_trained.model_tag).path, model_dir)
    booster = model_dir / "booster.txt"
    booster.write_bytes(damage(booster.read_bytes()))
    # In a child process: LightGBM used to abort (SIGABRT) or fault (SIGSEGV) on these.
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(model_dir)], cwd=ROOT, capture_output=True, timeout=120)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, f"the process died ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}"
    assert out.startswith("ModelError:") and "booster.txt" in out, out


def test_the_booster_check_accepts_what_training_writes(small_trained):
    import bentoml

    from klarna_pd.model.booster import check_booster_text

    text = (Path(bentoml.models.get(small_trained.model_tag).path) / "booster.txt").read_bytes()
    assert check_booster_text(text) == text.decode()


def test_redigest_alone_is_what_the_old_check_accepted(copy):
    """The old check (digests in model.yaml) accepts an altered file once its digest is recomputed:
    the reason for the signature."""
    from klarna_pd.model import PDModel
    from klarna_pd.store.records import record_of_directory

    tag, path = copy
    certain_default_booster(path)
    model = PDModel.load(path, sha256=record_of_directory(path).check_format())
    assert np.all(model.predict_matrix(np.zeros((4, model.encoder.n_features))) > 0.9)


def test_store_paths_that_cannot_be_used_are_refused_before_any_work(tmp_path):
    """A model.yaml that is not text, keys asked into a file, a pull into a file: each was a traceback."""
    from klarna_pd.errors import RemoteError
    from klarna_pd.store.records import record_of_directory
    from klarna_pd.store.s3 import pull
    from klarna_pd.store.signing import generate_keys

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.yaml").write_bytes(b"name: \xff\xfe klarna\n")
    with pytest.raises(ModelError, match="model.yaml is not UTF-8 text"):
        record_of_directory(model)
    a_file = tmp_path / "a-file"
    a_file.write_text("x\n")
    with pytest.raises(ModelError, match="expected a directory for the key pair, got the file"):
        generate_keys(a_file)
    with pytest.raises(RemoteError, match="expected a directory for the model"):
        pull("s3://klarna-pd-models/models/klarna-pd/v1", dest=a_file)  # refused before any network
    assert a_file.read_text() == "x\n"
