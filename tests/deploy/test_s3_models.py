"""Models in S3, against a real S3 API: moto's server mode on loopback."""

import fcntl
import json
import os
import subprocess
import sys
import threading
import time

import boto3
import httpx
import numpy as np
import pytest

from klarna_pd.data.batch import Batch
from klarna_pd.errors import ModelError, RemoteError
from klarna_pd.store.records import load_directory
from klarna_pd.store.s3 import pull, push

from ..helpers.models import signed_copy
from ..helpers.paths import ROOT
from ..helpers.servers import free_port, start_server, stop_server, wait_ready

pytestmark = [pytest.mark.deploy]

BUCKET = "models-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-north-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    try:
        yield url, env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def pushed(s3_endpoint, small_trained):
    return push(small_trained.model_tag, f"s3://{BUCKET}/models", log=lambda *_: None)


def test_push_writes_files_and_a_manifest_last(pushed, small_trained):
    name, version = small_trained.model_tag.split(":")
    assert pushed == f"s3://{BUCKET}/models/{name}/{version}"
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="models/")["Contents"]}
    prefix = f"models/{name}/{version}/"
    assert {prefix + f for f in ("manifest.json", "model.yaml", "booster.txt", "encoder.json", "calibrator.json")} <= keys


def test_pull_into_a_directory_verifies_and_predicts_the_same(pushed, small_model, tmp_path, sample_records):
    dest = tmp_path / "model"
    tag = pull(pushed, dest=dest, log=lambda *_: None)
    assert tag == str(small_model.metrics["model_tag"])
    frame, _ = sample_records
    np.testing.assert_array_equal(load_directory(dest).predict(Batch.from_frame(frame, small_model.spec)), small_model.predict(Batch.from_frame(frame, small_model.spec)))


def _tamper(pushed: str, name: str, data: bytes | None) -> None:
    bucket, _, prefix = pushed[len("s3://"):].partition("/")
    s3 = boto3.client("s3")
    if data is None:
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/{name}")
    else:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)


@pytest.fixture()
def repushed(s3_endpoint, small_trained):
    """A fresh copy of the model under its own prefix, free to be damaged."""
    return push(small_trained.model_tag, f"s3://{BUCKET}/damaged-{time.monotonic_ns()}", log=lambda *_: None)


@pytest.mark.parametrize(
    "damage, needle",
    [
        (("booster.txt", b"tree\n"), "booster.txt is 5 bytes, the manifest says"),  # refused before downloading
        (("calibrator.json", None), "file 'calibrator.json': no object at"),
        (("booster.txt", None), "file 'booster.txt': no object at"),
        (("manifest.json", b"{not json"), "manifest.json is not a klarna-pd-model-manifest/1 manifest"),
        (("manifest.json", None), "no object at"),
    ],
)
def test_a_damaged_model_is_refused_and_the_destination_kept(pushed, repushed, tmp_path, damage, needle):
    dest = tmp_path / "model"
    pull(pushed, dest=dest, log=lambda *_: None)  # the model served before
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    _tamper(repushed, *damage)
    with pytest.raises(RemoteError) as err:
        pull(repushed, dest=dest, log=lambda *_: None)
    assert needle in str(err.value)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_consistent_rewrite_is_still_caught_by_the_models_own_record(repushed, tmp_path):
    """Files and manifest altered together: the sha256 in model.yaml still refuses the model."""
    import hashlib

    bucket, _, prefix = repushed[len("s3://"):].partition("/")
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read())
    booster = s3.get_object(Bucket=bucket, Key=f"{prefix}/booster.txt")["Body"].read().replace(b"shrinkage=", b"shrinkage=5", 1)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/booster.txt", Body=booster)
    manifest["files"]["booster.txt"] = {"sha256": hashlib.sha256(booster).hexdigest(), "bytes": len(booster)}
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())
    with pytest.raises(RemoteError, match="booster.txt does not match its recorded sha256"):
        pull(repushed, dest=tmp_path / "model", log=lambda *_: None)


def test_missing_bucket_and_unreachable_s3(s3_endpoint, small_trained, tmp_path, monkeypatch):
    with pytest.raises(RemoteError, match="bucket 'no-such-bucket' does not exist"):
        pull("s3://no-such-bucket/models/klarna-pd/v1", dest=tmp_path / "m", log=lambda *_: None)
    with pytest.raises(RemoteError, match="bucket 'no-such-bucket' does not exist"):
        push(small_trained.model_tag, "s3://no-such-bucket/models", log=lambda *_: None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RemoteError, match="cannot reach S3"):
        pull("s3://models-test/models/klarna-pd/v1", dest=tmp_path / "m", log=lambda *_: None)
    assert not (tmp_path / "m").exists()


def test_unreachable_s3_leaves_the_previous_model_in_place(pushed, small_model, tmp_path, monkeypatch, sample_records):
    """A pod restarting while S3 is down keeps (and can serve) the model it pulled before."""
    dest = tmp_path / "model"
    pull(pushed, dest=dest, log=lambda *_: None)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RemoteError, match="cannot reach S3"):
        pull(pushed, dest=dest, log=lambda *_: None)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    _, records = sample_records
    np.testing.assert_array_equal(load_directory(dest).predict_records(records), small_model.predict_records(records))


def test_pull_into_the_local_store(pushed, small_trained, tmp_path, s3_endpoint):
    """Into a fresh model store (another BENTOML_HOME), through the CLI."""
    from klarna_pd.store.signing import PUBLIC_KEY_FILE, dev_key_dir

    home = tmp_path / "bentoml"
    # A fresh home has no development key: trust the session's one explicitly, as a pod would.
    env = {**os.environ, **s3_endpoint[1], "BENTOML_HOME": str(home), "KLARNA_PD_VERIFY_KEY": str(dev_key_dir() / PUBLIC_KEY_FILE)}
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", pushed], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == small_trained.model_tag
    verify = subprocess.run([sys.executable, "-m", "klarna_pd.store", "verify", small_trained.model_tag], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert verify.returncode == 0 and "every file matches" in verify.stdout
    again = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", pushed], cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0  # the same model again: nothing to do


def test_a_damaged_model_leaves_the_local_store_untouched(repushed, tmp_path, s3_endpoint):
    home = tmp_path / "bentoml"
    env = {**os.environ, **s3_endpoint[1], "BENTOML_HOME": str(home)}
    bucket, _, prefix = repushed[len("s3://"):].partition("/")
    original = boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/calibrator.json")["Body"].read()
    _tamper(repushed, "calibrator.json", original[::-1])  # the size it should have, other bytes
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", repushed], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "calibrator.json does not match the manifest" in proc.stderr
    models = home / "models"
    assert not models.exists() or not any(models.rglob("model.yaml"))


def test_cli_errors_are_one_line(s3_endpoint, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", "http://not-s3/x", "--dest", str(tmp_path / "m")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: expected an s3://bucket/prefix URI, got 'http://not-s3/x'"


def test_the_server_serves_a_pulled_model(pushed, small_model, tmp_path, sample_records):
    """What the chart's init container does: pull into a directory, serve it with KLARNA_PD_MODEL_DIR."""
    dest = tmp_path / "pulled"
    pull(pushed, dest=dest, log=lambda *_: None)
    proc, url = start_server("service:KlarnaPD", env={"KLARNA_PD_MODEL_DIR": str(dest), "KLARNA_PD_MODEL_TAG": "absent:v0"})
    try:
        wait_ready(url)
        _, records = sample_records
        resp = httpx.post(f"{url}/predict", json={"applicants": records[:20]}, timeout=30)
        assert [r["pd"] for r in resp.json()] == small_model.predict_records(records[:20]).tolist()
        meta = httpx.get(f"{url}/metadata").json()
        assert meta["source"] == str(dest) and meta["model_tag"] == small_model.metrics["model_tag"]
    finally:
        stop_server(proc)


# -- signatures (issue 15, item 11) ----------------------------------------------------------------


def _objects(pushed: str) -> tuple[str, str]:
    bucket, _, prefix = pushed[len("s3://"):].partition("/")
    return bucket, prefix


def _copied(pushed: str, version_key: str) -> str:
    """Every object of a pushed model copied under ``<the push's prefix>/<version_key>``; its URI."""
    bucket, prefix = _objects(pushed)
    target = f"{prefix.rsplit('/', 2)[0]}/{version_key}"
    s3 = boto3.client("s3")
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]:
        s3.copy_object(Bucket=bucket, Key=target + obj["Key"][len(prefix):], CopySource={"Bucket": bucket, "Key": obj["Key"]})
    return f"s3://{bucket}/{target}"


def test_a_rewrite_with_every_digest_recomputed_is_refused_by_the_signature(repushed, tmp_path):
    """Booster, model.yaml's digests and the manifest altered together: only the signature is left."""
    import hashlib

    import yaml

    bucket, prefix = _objects(repushed)
    s3 = boto3.client("s3")
    get = lambda name: s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()  # noqa: E731
    model_dir = tmp_path / "altered"
    model_dir.mkdir()
    for name in ("booster.txt", "model.yaml"):
        (model_dir / name).write_bytes(get(name))
    (model_dir / "booster.txt").write_bytes(get("booster.txt").replace(b"shrinkage=1\n", b"shrinkage=2\n", 1))
    info = yaml.safe_load((model_dir / "model.yaml").read_text())
    info["metadata"]["sha256"]["booster.txt"] = hashlib.sha256((model_dir / "booster.txt").read_bytes()).hexdigest()
    (model_dir / "model.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    manifest = json.loads(get("manifest.json"))
    for name in ("booster.txt", "model.yaml"):
        body = (model_dir / name).read_bytes()
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)
        manifest["files"][name] = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())
    with pytest.raises(RemoteError, match="does not match its recorded sha256 in the signed manifest"):
        pull(repushed, dest=tmp_path / "model", log=lambda *_: None)
    assert not (tmp_path / "model").exists()


@pytest.fixture(scope="module")
def release_keys(tmp_path_factory):
    from klarna_pd.store.signing import generate_keys

    return generate_keys(tmp_path_factory.mktemp("release") / "keys")


def test_push_signs_with_the_release_key_and_pods_verify_with_it(s3_endpoint, small_trained, release_keys, tmp_path, monkeypatch):
    """Trained with the development key, signed with the release key as it is pushed; a pod that
    trusts only the release key pulls it, and refuses the same model signed with the development key."""
    private, public = release_keys
    released = push(small_trained.model_tag, f"s3://{BUCKET}/release", signing_key=private, log=lambda *_: None)
    dev_signed = push(small_trained.model_tag, f"s3://{BUCKET}/dev", log=lambda *_: None)
    monkeypatch.setenv("KLARNA_PD_VERIFY_KEY", str(public))
    assert pull(released, dest=tmp_path / "released", log=lambda *_: None) == small_trained.model_tag
    with pytest.raises(RemoteError, match="not by the trusted key"):
        pull(dev_signed, dest=tmp_path / "dev", log=lambda *_: None)
    # The init container's command, with no development key on the pod.
    env = {**os.environ, **s3_endpoint[1], "BENTOML_HOME": str(tmp_path / "pod-home"), "KLARNA_PD_VERIFY_KEY": str(public)}
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", released, "--dest", str(tmp_path / "pod")],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env.pop("KLARNA_PD_VERIFY_KEY")
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", released, "--dest", str(tmp_path / "pod2")],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "set KLARNA_PD_VERIFY_KEY" in proc.stderr


def test_push_refuses_an_unsigned_model_without_a_key(s3_endpoint, small_trained, bentoml_home, monkeypatch):
    tag, path = signed_copy(small_trained.model_tag, bentoml_home, "klarna-pd-unsigned")
    (path / "signature.json").unlink()
    monkeypatch.setenv("KLARNA_PD_ALLOW_UNSIGNED", "true")  # loads here, for development
    with pytest.raises(ModelError, match="is not signed: give --signing-key"):
        push(tag, f"s3://{BUCKET}/unsigned", log=lambda *_: None)
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="unsigned/")


# -- item 13: symlinks, malformed manifests, a tag that is not the model's ---------------------------


def test_push_refuses_a_symlink_in_the_model_directory(s3_endpoint, small_trained, bentoml_home, tmp_path):
    """A symlinked file used to be followed and its target uploaded."""
    import shutil

    tag, path = signed_copy(small_trained.model_tag, bentoml_home, "klarna-pd-symlinked")
    shutil.move(path / "metrics.json", tmp_path / "metrics.json")
    (path / "metrics.json").symlink_to(tmp_path / "metrics.json")
    with pytest.raises((ModelError, RemoteError), match="symlink, 'metrics.json'"):
        push(tag, f"s3://{BUCKET}/symlinked", log=lambda *_: None)
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="symlinked/")


def _manifest_edit(change):
    def edit(manifest: dict) -> dict:
        change(manifest)
        return manifest

    return edit


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m: [], "expected a JSON object, got list"),
        (_manifest_edit(lambda m: m.pop("tag")), "tag is None"),
        (_manifest_edit(lambda m: m.update(tag=7)), "tag is 7"),
        (_manifest_edit(lambda m: m.update(files=["booster.txt"])), "files is ['booster.txt']"),
        (_manifest_edit(lambda m: m.update(files={})), "files is {}"),
        (_manifest_edit(lambda m: m["files"].update({"booster.txt": "abc"})), "files['booster.txt'] is 'abc'"),
        (_manifest_edit(lambda m: m["files"]["booster.txt"].pop("bytes")), "files['booster.txt'] is {'sha256'"),
        (_manifest_edit(lambda m: m["files"]["booster.txt"].update(bytes="12")), "files['booster.txt'].bytes is '12'"),
        (_manifest_edit(lambda m: m["files"]["booster.txt"].update(sha256=None)), "files['booster.txt'].sha256 is None"),
        (_manifest_edit(lambda m: m["files"].update({"../escape": m["files"]["booster.txt"]})), "file name '../escape'"),
        (_manifest_edit(lambda m: m["files"].update({"/etc/cron.d/x": m["files"]["booster.txt"]})), "file name '/etc/cron.d/x'"),
        (_manifest_edit(lambda m: m["files"].pop("model.yaml")), "it lists no model.yaml"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_what_is_wrong(repushed, tmp_path, edit, needle):
    bucket, prefix = _objects(repushed)
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(edit(manifest)).encode())
    with pytest.raises(RemoteError) as err:
        pull(repushed, dest=tmp_path / "model", log=lambda *_: None)
    assert "manifest.json is not a klarna-pd-model-manifest/1 manifest" in str(err.value)
    assert needle in str(err.value)
    assert not (tmp_path / "model").exists()


def test_a_manifest_whose_tag_is_not_the_models_is_refused(repushed, small_trained, tmp_path, s3_endpoint):
    """pull printed the manifest's tag but installed the model under the one in its model.yaml (the
    model's files under another version's key, with a manifest naming that version)."""
    uri = _copied(repushed, "klarna-pd/someotherversion")
    bucket, moved = _objects(uri)
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{moved}/manifest.json")["Body"].read())
    manifest["tag"] = "klarna-pd:someotherversion"
    s3.put_object(Bucket=bucket, Key=f"{moved}/manifest.json", Body=json.dumps(manifest).encode())
    with pytest.raises(RemoteError, match=f"says klarna-pd:someotherversion but the model's model.yaml says {small_trained.model_tag}"):
        pull(uri, dest=tmp_path / "model", log=lambda *_: None)
    home = tmp_path / "bentoml"
    env = {**os.environ, **s3_endpoint[1], "BENTOML_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", uri], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "someotherversion" in proc.stderr and proc.stdout == ""
    assert not (home / "models").exists() or not any((home / "models").rglob("model.yaml"))


# -- a hostile or unlucky bucket and destination --------------------------------------------------


def test_pull_never_empties_a_directory_that_holds_other_things(pushed, tmp_path):
    """`--dest .` in a project replaced the project by the model (exit 0)."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.py").write_text("print('mine')\n")
    (project / "settings.toml").write_text("a = 1\n")
    with pytest.raises(RemoteError, match=r"holds other things than a model's files \(settings.toml, src/\)"):
        pull(pushed, dest=project, log=lambda *_: None)
    assert (project / "src" / "app.py").read_text() == "print('mine')\n" and (project / "settings.toml").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.store", "pull", pushed, "--dest", "."], cwd=project,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "holds other things" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (project / "src" / "app.py").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    pull(pushed, dest=empty, log=lambda *_: None)  # an empty directory, then the model pulled before
    pull(pushed, dest=empty, log=lambda *_: None)
    assert (empty / "model.yaml").is_file()


def test_pulls_into_one_place_take_turns_and_clear_what_a_killed_pull_left(pushed, tmp_path):
    """A SIGKILLed pull (an init container killed and restarted in the same emptyDir) left its
    staging copy of the model beside the destination, one more per attempt."""
    left = tmp_path / ".model.pull-k1ll3d"
    left.mkdir()
    (left / "booster.txt").write_bytes(b"tree\n" * 1000)
    others = tmp_path / ".other.pull-x1"  # another destination's: not this pull's to remove
    others.mkdir()
    swapped = tmp_path / ".model.old-4242"  # killed between the two renames of the swap
    swapped.mkdir()
    (swapped / "booster.txt").write_bytes(b"tree\n")
    running = os.open(tmp_path, os.O_RDONLY)  # a pull beside it, still running for a second
    fcntl.flock(running, fcntl.LOCK_EX)
    said = []
    started = time.monotonic()
    threading.Timer(1.0, os.close, [running]).start()
    pull(pushed, dest=tmp_path / "model", log=said.append)
    assert time.monotonic() - started >= 1.0 and said[0] == f"waiting for another pull into {tmp_path} to end"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pull-x1", "model"]


def test_a_failed_pull_leaves_no_directories_it_made(s3_endpoint, tmp_path):
    """`pull --dest a/b/model` of a version that is not there left a/b behind."""
    with pytest.raises(RemoteError, match="no object at"):
        pull(f"s3://{BUCKET}/models/klarna-pd/nosuchversion", dest=tmp_path / "a" / "b" / "model", log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_a_pushed_version_is_never_replaced_and_a_retry_of_the_same_push_succeeds(s3_endpoint, small_trained,
                                                                                  release_keys, tmp_path):
    """Pushed again with another key, a version silently changed its signature under the pods that
    trust the first (and a failed re-push broke it for every key)."""
    private, _ = release_keys
    uri = f"s3://{BUCKET}/immutable-{time.monotonic_ns()}"
    first = push(small_trained.model_tag, uri, log=lambda *_: None)
    bucket, _, prefix = first[len("s3://"):].partition("/")
    manifest = boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read()
    assert push(small_trained.model_tag, uri, log=lambda *_: None) == first  # the same push, retried
    with pytest.raises(RemoteError, match="already holds this version with other files or another signature"):
        push(small_trained.model_tag, uri, signing_key=private, log=lambda *_: None)
    assert boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read() == manifest
    assert pull(first, dest=tmp_path / "m", log=lambda *_: None) == small_trained.model_tag


def test_the_signing_key_works_alike_as_flag_and_variable(s3_endpoint, small_trained, release_keys, bentoml_home,
                                                          monkeypatch):
    """KLARNA_PD_SIGNING_KEY made push check the development-signed model against the release key
    (refused) where --signing-key did not; and a model trained with the release key (README's
    release steps) is pushed with it either way."""
    from klarna_pd.store.signing import Signer, load_private_key

    private, _ = release_keys
    monkeypatch.setenv("KLARNA_PD_SIGNING_KEY", str(private))
    assert push(small_trained.model_tag, f"s3://{BUCKET}/by-variable", log=lambda *_: None)
    monkeypatch.delenv("KLARNA_PD_SIGNING_KEY")
    tag, _ = signed_copy(small_trained.model_tag, bentoml_home, "klarna-pd-release-signed",
                         signer=Signer(load_private_key(private), "release"))
    assert push(tag, f"s3://{BUCKET}/release-trained", signing_key=private, log=lambda *_: None)


def test_an_object_larger_than_its_manifest_says_is_refused_before_it_is_downloaded(repushed, tmp_path):
    _tamper(repushed, "booster.txt", b"x" * 5_000_000)
    with pytest.raises(RemoteError, match=r"booster.txt is 5,000,000 bytes, the manifest says [0-9,]+: refusing"):
        pull(repushed, dest=tmp_path / "m", log=lambda *_: None)
    _tamper(repushed, "manifest.json", b" " * (2 << 20))
    with pytest.raises(RemoteError, match="manifest.json is over 1,048,576 bytes"):
        pull(repushed, dest=tmp_path / "m", log=lambda *_: None)
    assert not (tmp_path / "m").exists()



@pytest.mark.parametrize("moved_to", ["klarna-pd/v9", "other-pd/{version}"])
def test_a_model_copied_under_another_version_is_not_served_as_that_version(repushed, moved_to, tmp_path):
    """A pull installed whatever signed model it found: objects copied under .../klarna-pd/v9 were
    pulled and served as the release the chart's model.uri pinned, saying only 'pulled <the old tag>'."""
    name, version = _objects(repushed)[1].rsplit("/", 2)[1:]
    uri = _copied(repushed, moved_to.format(version=version))
    with pytest.raises(RemoteError) as err:
        pull(uri, dest=tmp_path / "m", log=lambda *_: None)
    assert (f"the manifest there is {name}:{version}'s, which push puts under <prefix>/{name}/{version}, "
            f"not {moved_to.format(version=version)}: refusing") in str(err.value)
    assert not (tmp_path / "m").exists()
    assert pull(repushed, dest=tmp_path / "m", log=lambda *_: None) == f"{name}:{version}"


def test_access_denied_names_the_object_and_that_it_may_be_missing(small_trained, tmp_path, monkeypatch):
    """S3 answers a missing key with 403 to a role without s3:ListBucket (the pods' lists only its
    prefix): a mistyped version read "access denied to s3://bucket (check the role or credentials)"."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Forbidden(BaseHTTPRequestHandler):  # what S3 sends a caller it refuses
        def _refuse(self):
            body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = _refuse

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()  # shutdown() waits a poll
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "eu-north-1")):
            monkeypatch.setenv(name, value)
        with pytest.raises(RemoteError) as err:
            pull("s3://models/m/klarna-pd/v9", dest=tmp_path / "m", log=lambda *_: None)
        with pytest.raises(RemoteError) as pushing:
            push(small_trained.model_tag, "s3://models/m", log=lambda *_: None)
    finally:
        server.shutdown()
    assert "access denied to s3://models/m/klarna-pd/" in str(pushing.value)
    assert str(pushing.value).endswith(": a push needs s3:ListBucket on the bucket and s3:PutObject and s3:GetObject "
                                       "under the prefix (terraform output model_pusher_policy_arn)")
    assert str(err.value) == (
        "pulling s3://models/m/klarna-pd/v9: access denied to s3://models/m/klarna-pd/v9/manifest.json: the role "
        "or credentials may not read it, or nothing is there (S3 answers 403 for a missing object to a caller "
        "without s3:ListBucket)")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "uri, needle",
    [
        ("s3://Models/x", "expected an S3 bucket name (3-63 lowercase letters, digits, '.' and '-'), got 'Models'"),
        ("s3://my_bucket/x", "got 'my_bucket'"),
        ("s3://ab/x", "got 'ab'"),
        ("s3://models:443/x", "got 'models:443'"),
        ("s3://models-test/a//b", "expected a prefix of names between single slashes, got 'a//b'"),
        ("s3://models-test/../up", "got '../up'"),
    ],
)
def test_uris_that_s3_would_read_otherwise_are_refused(uri, needle, small_trained, tmp_path):
    with pytest.raises(RemoteError) as err:
        pull(uri, dest=tmp_path / "m", log=lambda *_: None)
    assert needle in str(err.value)
    with pytest.raises(RemoteError) as err:
        push(small_trained.model_tag, uri, log=lambda *_: None)
    assert needle in str(err.value)


def test_an_altered_model_signed_by_the_release_key_is_refused_for_what_it_is(s3_endpoint, small_trained, release_keys,
                                                                             bentoml_home):
    """The check before a push named the wrong cause ("not by the trusted key") when the model was
    signed with the key it was being pushed with and one of its files was altered."""
    from klarna_pd.store.signing import Signer, load_private_key

    private, _ = release_keys
    tag, path = signed_copy(small_trained.model_tag, bentoml_home, "klarna-pd-release-altered",
                            signer=Signer(load_private_key(private), "release"))
    (path / "calibrator.json").write_text((path / "calibrator.json").read_text()[::-1])
    with pytest.raises(ModelError) as err:
        push(tag, f"s3://{BUCKET}/altered", signing_key=private, log=lambda *_: None)
    assert "calibrator.json" in str(err.value) and "trusted key" not in str(err.value), str(err.value)
