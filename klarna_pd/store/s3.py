"""Stored models in S3: push a model's files, pull and verify them, so images need not carry models.

Layout of a pushed model (plain files, as BentoML's "folder" export)::

    s3://bucket/prefix/<name>/<version>/model.yaml, booster.txt, encoder.json, ...
    s3://bucket/prefix/<name>/<version>/manifest.json   written last: every file's size and sha256

A pull reads the manifest, downloads every file into a temporary directory, checks each size and
sha256 and that the model loads (its own recorded digests included), and only then moves the model
into place. A missing, partial or altered object stops the pull with the reason, and whatever was
there before (the local model store, or the destination directory) is left as it was.

Credentials and endpoint come from the usual AWS chain (IRSA on EKS); ``AWS_ENDPOINT_URL`` points
boto3 at another S3 API (the tests use moto's server on loopback).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError, RemoteError
from ..files import sha256_file
from .records import load_directory

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "klarna-pd-model-manifest/1"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        if not uri.startswith("s3://"):
            raise RemoteError(f"expected an s3://bucket/prefix URI, got {uri!r}")
        bucket, _, prefix = uri[len("s3://"):].partition("/")
        if not bucket:
            raise RemoteError(f"expected an s3://bucket/prefix URI with a bucket, got {uri!r}")
        return cls(bucket, prefix.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"


def _client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60))


def _explain(exc: Exception, what: str, loc: S3Location) -> RemoteError:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket",):
            return RemoteError(f"{what}: bucket {loc.bucket!r} does not exist")
        if code in ("NoSuchKey", "404", "NotFound"):
            return RemoteError(f"{what}: no object at {loc.uri()}")
        if code in ("AccessDenied", "403"):
            return RemoteError(f"{what}: access denied to s3://{loc.bucket} (check the role or credentials)")
        return RemoteError(f"{what}: S3 answered {code or 'an error'}: {exc}")
    if isinstance(exc, EndpointConnectionError):
        return RemoteError(f"{what}: cannot reach S3 ({exc})")
    if isinstance(exc, NoCredentialsError):
        return RemoteError(f"{what}: no AWS credentials found")
    return RemoteError(f"{what}: {exc}")


def push(tag: str, uri: str, *, log: Callable[[str], None] = print) -> str:
    """Upload a model from the local BentoML store to ``uri``.

    Args:
        tag: the model's tag, e.g. ``klarna-pd:latest``.
        uri: ``s3://bucket/prefix``; the model goes under ``<prefix>/<name>/<version>/``.

    Returns:
        The model's S3 URI, to give to :func:`pull` (or the chart's ``model.uri``).
    """
    import bentoml
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    from .local import load_stored

    base = S3Location.parse(uri)
    stored = bentoml.models.get(tag)
    load_stored(stored)  # never publish a model that does not verify here
    loc = S3Location(base.bucket, base.key(stored.tag.name, stored.tag.version))
    root = Path(stored.path)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    manifest = {
        "format": MANIFEST_FORMAT,
        "tag": str(stored.tag),
        "files": {str(p.relative_to(root)): {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in files},
    }
    s3 = _client()
    try:
        s3.head_bucket(Bucket=loc.bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
            raise RemoteError(f"pushing {stored.tag}: bucket {loc.bucket!r} does not exist") from None
        raise _explain(exc, f"pushing {stored.tag}", loc) from None
    except BotoCoreError as exc:
        raise _explain(exc, f"pushing {stored.tag}", loc) from None
    try:
        for p in files:
            s3.upload_file(str(p), loc.bucket, loc.key(str(p.relative_to(root))))
        # The manifest goes last: a pull never sees a model whose files are not all there.
        s3.put_object(Bucket=loc.bucket, Key=loc.key(MANIFEST), Body=json.dumps(manifest, indent=1).encode())
    except S3UploadFailedError as exc:
        raise RemoteError(f"pushing {stored.tag}: {exc}") from None
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, f"pushing {stored.tag}", loc) from None
    log(f"pushed {stored.tag} ({len(files)} files) to {loc.uri()}")
    return loc.uri()


def _download(uri: str, into: Path) -> dict[str, Any]:
    """Download and check every file of the model at ``uri`` into the empty directory ``into``."""
    from botocore.exceptions import BotoCoreError, ClientError

    loc = S3Location.parse(uri)
    s3 = _client()
    try:
        raw = s3.get_object(Bucket=loc.bucket, Key=loc.key(MANIFEST))["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, f"pulling {uri}", S3Location(loc.bucket, loc.key(MANIFEST))) from None
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict) or not files:
            raise ValueError("unexpected format")
    except (ValueError, KeyError, TypeError):
        raise RemoteError(f"pulling {uri}: {MANIFEST} is not a {MANIFEST_FORMAT} manifest") from None
    for name, expected in files.items():
        target = (into / name).resolve()
        if into.resolve() not in target.parents:
            raise RemoteError(f"pulling {uri}: manifest names a file outside the model: {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            s3.download_file(loc.bucket, loc.key(name), str(target))
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, f"pulling {uri}: file {name!r}", S3Location(loc.bucket, loc.key(name))) from None
        size, digest = target.stat().st_size, sha256_file(target)
        if size != expected["bytes"] or digest != expected["sha256"]:
            raise RemoteError(
                f"pulling {uri}: {name} does not match the manifest (expected {expected['bytes']} bytes, "
                f"sha256 {expected['sha256'][:12]}..., got {size} bytes, {digest[:12]}...): refusing the model"
            )
    return manifest


def pull(uri: str, *, dest: str | Path | None = None, log: Callable[[str], None] = print) -> str:
    """Fetch a pushed model, verify it, and install it.

    Args:
        uri: the model's S3 URI (as :func:`push` returned it).
        dest: a directory to hold the model's files (replaced only once the new model verified);
            None installs the model into the local BentoML model store.

    Returns:
        The model's tag.

    Raises:
        RemoteError: S3 unreachable, bucket or objects missing, or files that do not verify.
    """
    staging_parent = Path(dest).resolve().parent if dest is not None else Path(tempfile.gettempdir())
    staging_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=staging_parent))
    try:
        manifest = _download(uri, staging)
        try:
            load_directory(staging)  # the model's own sha256 records, and that its files parse
        except ModelError as exc:
            raise RemoteError(f"pulling {uri}: {exc}") from None
        tag = manifest["tag"]
        if dest is None:
            _install_into_store(staging, tag)
            log(f"pulled {tag} from {uri} into the local model store")
        else:
            _replace_dir(staging, Path(dest))
            log(f"pulled {tag} from {uri} into {dest}")
        return tag
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install_into_store(folder: Path, tag: str) -> None:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        if existing.info.metadata.get("sha256") == _yaml_metadata(folder).get("sha256"):
            return  # the same model is already there
        raise RemoteError(f"{tag} is already in the local model store with different files; not replacing it")
    bentoml.models.import_model(str(folder), input_format="folder")


def _yaml_metadata(folder: Path) -> dict[str, Any]:
    import yaml

    return (yaml.safe_load((folder / "model.yaml").read_text()) or {}).get("metadata", {})


def _replace_dir(new: Path, dest: Path) -> None:
    """Put ``new`` at ``dest``; an existing ``dest`` is swapped out only after the rename."""
    dest = dest.resolve()
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    try:
        os.replace(new, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
