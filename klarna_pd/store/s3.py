"""Stored models in S3: push a model's files, pull and verify them, so images need not carry models.

Layout of a pushed model (plain files, as BentoML's "folder" export)::

    s3://bucket/prefix/<name>/<version>/model.yaml, booster.txt, encoder.json, ..., signature.json
    s3://bucket/prefix/<name>/<version>/manifest.json   written last: every file's size and sha256

A push publishes only a model that verifies here, from a flat directory of regular files (no
symlinks), signed: with ``--signing-key`` (or ``KLARNA_PD_SIGNING_KEY``) it signs the model as it
uploads it, otherwise it carries the signature the model was saved with, and refuses an unsigned one.

A pull reads the manifest (refusing a malformed one, or one whose tag is not the model's or not the
name and version the URI ends with), downloads every file into a temporary directory, checks each
size and sha256, the model's signature against
the trusted key (:mod:`.signing`) and that the model loads, and only then moves the model into
place. A missing, partial, altered or wrongly signed object stops the pull with the reason, and
whatever was there before (the local model store, or the destination directory) is left as it was.
The manifest only guards the transfer: a model is trusted for its signature, not for its manifest.

Credentials and endpoint come from the usual AWS chain (IRSA on EKS); ``AWS_ENDPOINT_URL`` points
boto3 at another S3 API (the tests use moto's server on loopback).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError, RemoteError
from ..files import first_missing, remove_empty, sha256_file
from .records import load_directory, record_of_directory
from .signing import SIGNATURE_FILE, Signer, load_private_key, model_files, signature_document

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "klarna-pd-model-manifest/1"
# BentoML's rule for the name and the version of a tag (and a safe S3 key and file name).
_TAG_PART = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?", re.ASCII)
# A model directory is flat: a file name, never a path.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
# S3's rule for bucket names (the general-purpose buckets').
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
#: A manifest lists a handful of files: far less than this.
MAX_MANIFEST_BYTES = 1 << 20
# The error codes S3 (and moto) give a missing object, and a refused request.
_NOT_FOUND = ("NoSuchKey", "404", "NotFound")
_DENIED = ("AccessDenied", "403", "Forbidden")


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
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise RemoteError("expected an S3 bucket name (3-63 lowercase letters, digits, '.' and '-'), "
                              f"got {bucket!r} in {uri!r}")
        prefix = prefix.strip("/")
        if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
            raise RemoteError(f"expected a prefix of names between single slashes, got {prefix!r} in {uri!r}")
        return cls(bucket, prefix)

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"


#: Seconds without a byte from S3 before a read is given up (then retried): a pod's init container
#: waited 4 minutes for a stalled S3 with 60 s, over 9 when a download stalled mid-file.
READ_TIMEOUT = 15


def _client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                                            read_timeout=READ_TIMEOUT))


def _transfer():
    """s3transfer retries a stalled download itself (5 attempts by default) on top of botocore's."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(num_download_attempts=2)


def _explain(exc: Exception, what: str, loc: S3Location, *, writing: bool = False) -> RemoteError:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket",):
            return RemoteError(f"{what}: bucket {loc.bucket!r} does not exist")
        if code in _NOT_FOUND:
            return RemoteError(f"{what}: no object at {loc.uri()}")
        if code in _DENIED and writing:
            return RemoteError(f"{what}: access denied to {loc.uri()}: a push needs s3:ListBucket on the bucket and "
                               "s3:PutObject and s3:GetObject under the prefix (terraform output model_pusher_policy_arn)")
        if code in _DENIED:
            # S3 answers a missing key with 403, not 404, to a caller who may not list the bucket:
            # a mistyped version must not send its reader off to debug IAM alone.
            return RemoteError(f"{what}: access denied to {loc.uri()}: the role or credentials may not read it, or "
                               "nothing is there (S3 answers 403 for a missing object to a caller without s3:ListBucket)")
        return RemoteError(f"{what}: S3 answered {code or 'an error'}: {exc}")
    if isinstance(exc, EndpointConnectionError):
        return RemoteError(f"{what}: cannot reach S3 ({exc})")
    if isinstance(exc, NoCredentialsError):
        return RemoteError(f"{what}: no AWS credentials found")
    return RemoteError(f"{what}: {exc}")


def push(
    tag: str,
    uri: str,
    *,
    signing_key: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> str:
    """Upload a model from the local BentoML store to ``uri``, signed.

    Args:
        tag: the model's tag, e.g. ``klarna-pd:latest``.
        uri: ``s3://bucket/prefix``; the model goes under ``<prefix>/<name>/<version>/``.
        signing_key: private key (PEM) to sign the model with as it is pushed; None:
            ``KLARNA_PD_SIGNING_KEY``, else the signature the model was saved with.

    Returns:
        The model's S3 URI, to give to :func:`pull` (or the chart's ``model.uri``).

    Raises:
        ModelError: the model does not verify here, holds a symlink, or is unsigned and no key was given.
        RemoteError: S3 unreachable, the bucket missing, or an upload that failed.
    """
    from boto3.exceptions import Boto3Error, S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    from .local import get_stored, record_of_stored
    from .signing import read_settings

    base = S3Location.parse(uri)
    stored = get_stored(tag)
    key_path = signing_key if signing_key is not None else read_settings().signing_key
    signer = None if key_path is None else Signer(load_private_key(key_path), f"the signing key {key_path}")
    _verify_here(stored, signer)  # never publish a model that does not verify here
    loc = S3Location(base.bucket, base.key(stored.tag.name, stored.tag.version))
    root = Path(stored.path)
    names = model_files(root)  # a flat directory of regular files: a symlink is refused, never followed
    bodies: dict[str, bytes] = {}
    if signer is not None:
        bodies[SIGNATURE_FILE] = signature_document(root, record_of_stored(stored), signer)
        log(f"signing {stored.tag} with {signer.source} ({signer.key_id})")
    elif SIGNATURE_FILE not in names:
        raise ModelError(
            f"{stored.tag} is not signed: give --signing-key (or set KLARNA_PD_SIGNING_KEY) to sign it as it is pushed"
        )
    files = sorted(set(names) | set(bodies))

    def describe(name: str) -> dict[str, Any]:
        if name in bodies:
            return {"sha256": hashlib.sha256(bodies[name]).hexdigest(), "bytes": len(bodies[name])}
        return {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}

    manifest = {"format": MANIFEST_FORMAT, "tag": str(stored.tag), "files": {name: describe(name) for name in files}}
    manifest_bytes = json.dumps(manifest, indent=1).encode()
    s3 = _client()
    try:
        s3.head_bucket(Bucket=loc.bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
            raise RemoteError(f"pushing {stored.tag}: bucket {loc.bucket!r} does not exist") from None
        raise _explain(exc, f"pushing {stored.tag}", loc, writing=True) from None
    except BotoCoreError as exc:
        raise _explain(exc, f"pushing {stored.tag}", loc, writing=True) from None
    published = _published_manifest(s3, loc, f"pushing {stored.tag}")
    if published is not None and published != manifest_bytes:
        # A pod may be pulling it now, trusting the key it was signed with; and a push that failed
        # half-way would leave files that no longer match the manifest. A release is immutable.
        raise RemoteError(f"pushing {stored.tag}: {loc.uri()} already holds this version with other files or "
                          "another signature; a pushed version is never replaced (push to another prefix, or "
                          "train a new version)")
    try:
        for name in files:
            if name in bodies:
                s3.put_object(Bucket=loc.bucket, Key=loc.key(name), Body=bodies[name])
            else:
                s3.upload_file(str(root / name), loc.bucket, loc.key(name))
        # The manifest goes last: a pull never sees a model whose files are not all there.
        s3.put_object(Bucket=loc.bucket, Key=loc.key(MANIFEST), Body=manifest_bytes)
    except S3UploadFailedError as exc:
        raise RemoteError(f"pushing {stored.tag}: {exc}") from None
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise _explain(exc, f"pushing {stored.tag}", loc, writing=True) from None
    log(f"pushed {stored.tag} ({len(files)} files) to {loc.uri()}")
    return loc.uri()


def _verify_here(stored, signer: Signer | None) -> None:
    """The stored model verifies on this machine: signed by the key it is about to be signed with
    again, or by a key this machine trusts (KLARNA_PD_VERIFY_KEY, else its development key). The
    signing key counts the same whether given as --signing-key or KLARNA_PD_SIGNING_KEY."""
    from .local import load_stored
    from .signing import Trust, signer_of

    if signer is not None and signer_of(stored.path) == signer.key_id:
        # Signed by that key already: any refusal (an altered file) is the model's, reported as such.
        load_stored(stored, trust=Trust(signer.key.public_key(), signer.source))
    else:
        load_stored(stored, trust=Trust.from_env(signing_key=False))


def _published_manifest(s3, loc: S3Location, what: str) -> bytes | None:
    """The manifest already at ``loc``, or None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return s3.get_object(Bucket=loc.bucket, Key=loc.key(MANIFEST))["Body"].read(MAX_MANIFEST_BYTES + 1)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return None
        raise _explain(exc, what, loc, writing=True) from None
    except BotoCoreError as exc:
        raise _explain(exc, what, loc, writing=True) from None


def _parse_manifest(raw: bytes, uri: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The tag and files of a manifest, every field checked (a pull trusts nothing it downloads)."""

    def refuse(why: str) -> RemoteError:
        return RemoteError(f"pulling {uri}: {MANIFEST} is not a {MANIFEST_FORMAT} manifest: {why}")

    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise refuse(f"not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise refuse(f"expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise refuse(f"format is {manifest.get('format')!r}")
    tag = manifest.get("tag")
    name, _, version = tag.partition(":") if isinstance(tag, str) else ("", "", "")
    if not (_TAG_PART.fullmatch(name) and _TAG_PART.fullmatch(version)):
        raise refuse(f"tag is {tag!r}, expected <name>:<version> of lowercase letters, digits, '.', '_' and '-'")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise refuse(f"files is {files!r:.80}, expected an object of file name -> sha256 and bytes")
    for fname, entry in files.items():
        if not _FILE_NAME.fullmatch(fname) or fname == MANIFEST:
            raise refuse(f"file name {fname!r} is not a plain file name of the model directory")
        if not isinstance(entry, dict) or set(entry) != {"sha256", "bytes"}:
            raise refuse(f"files[{fname!r}] is {entry!r:.80}, expected {{\"sha256\": ..., \"bytes\": ...}}")
        digest, size = entry["sha256"], entry["bytes"]
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise refuse(f"files[{fname!r}].sha256 is {digest!r:.80}, expected 64 lowercase hex digits")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise refuse(f"files[{fname!r}].bytes is {size!r:.80}, expected a whole number of bytes")
    if "model.yaml" not in files:
        raise refuse("it lists no model.yaml")
    return tag, files


def _download(uri: str, into: Path) -> str:
    """Download and check every file of the model at ``uri`` into the empty directory ``into``.

    Returns:
        The model's tag, as the manifest and the model's own ``model.yaml`` both say.
    """
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    loc = S3Location.parse(uri)
    s3 = _client()
    try:
        raw = s3.get_object(Bucket=loc.bucket, Key=loc.key(MANIFEST))["Body"].read(MAX_MANIFEST_BYTES + 1)
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, f"pulling {uri}", S3Location(loc.bucket, loc.key(MANIFEST))) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise RemoteError(f"pulling {uri}: {MANIFEST} is over {MAX_MANIFEST_BYTES:,} bytes; a manifest lists "
                          "a handful of files: refusing the model")
    tag, files = _parse_manifest(raw, uri)
    named = loc.prefix.split("/")[-2:]
    if named != tag.split(":"):
        # A release pinned by its URI (the chart's model.uri) gets that version or nothing: objects
        # copied under another version's key would be served, signed and verified, as the one asked for.
        raise RemoteError(f"pulling {uri}: the manifest there is {tag}'s, which push puts under "
                          f"<prefix>/{tag.replace(':', '/')}, not {'/'.join(named)}: refusing a model other than "
                          "the one the URI names")
    for name, expected in files.items():
        target = into / name  # a plain file name (checked): never outside ``into``
        where = S3Location(loc.bucket, loc.key(name))
        try:
            # The size first: a replaced object is refused before its bytes fill the disk.
            size = s3.head_object(Bucket=loc.bucket, Key=loc.key(name))["ContentLength"]
            if size != expected["bytes"]:
                raise RemoteError(f"pulling {uri}: {name} is {size:,} bytes, the manifest says "
                                  f"{expected['bytes']:,}: refusing the model")
            s3.download_file(loc.bucket, loc.key(name), str(target), Config=_transfer())
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise _explain(exc, f"pulling {uri}: file {name!r}", where) from None
        except OSError as exc:  # the disk full, say
            why = exc.strerror or exc
            raise RemoteError(f"pulling {uri}: cannot write {name} into {into.parent}: {why}") from None
        size, digest = target.stat().st_size, sha256_file(target)
        if size != expected["bytes"] or digest != expected["sha256"]:
            raise RemoteError(
                f"pulling {uri}: {name} does not match the manifest (expected {expected['bytes']} bytes, "
                f"sha256 {expected['sha256'][:12]}..., got {size} bytes, {digest[:12]}...): refusing the model"
            )
    try:
        recorded = record_of_directory(into).tag
    except ModelError as exc:
        raise RemoteError(f"pulling {uri}: {exc}") from None
    if recorded != tag:
        # BentoML installs a model under what its model.yaml says: refuse rather than print one
        # name and install another.
        raise RemoteError(f"pulling {uri}: {MANIFEST} says {tag} but the model's model.yaml says {recorded}: refusing it")
    return tag


def pull(uri: str, *, dest: str | Path | None = None, log: Callable[[str], None] = print) -> str:
    """Fetch a pushed model, verify it, and install it.

    Args:
        uri: the model's S3 URI (as :func:`push` returned it).
        dest: a directory to hold the model's files (replaced only once the new model verified);
            None installs the model into the local BentoML model store.

    Returns:
        The model's tag.

    Raises:
        RemoteError: S3 unreachable, bucket or objects missing, a malformed manifest, or a model
            that does not verify (altered, unsigned, or signed by another key than the trusted one).
    """
    if dest is not None:
        _check_dest(Path(dest))
    with _staging(None if dest is None else Path(dest), log) as staging:
        tag = _download(uri, staging)
        try:
            load_directory(staging)  # its signature, the model's own sha256 records, and that its files parse
        except ModelError as exc:
            raise RemoteError(f"pulling {uri}: {exc}") from None
        if dest is None:
            _install_into_store(staging, tag)
            log(f"pulled {tag} from {uri} into the local model store")
        else:
            _replace_dir(staging, Path(dest))
            log(f"pulled {tag} from {uri} into {dest}")
        return tag


@contextmanager
def _staging(dest: Path | None, log: Callable[[str], None]) -> Iterator[Path]:
    """A new directory to download into: beside ``dest`` (one rename from it), else in the
    temporary directory; removed afterwards.

    Pulls beside one another (into one parent directory) take turns: a lock on the directory, which
    the kernel releases when a process dies, even by SIGKILL. The pull holding it may remove what a
    killed pull into the same ``dest`` left: a pod's init container, restarted in the same emptyDir,
    left a copy of the model per attempt. Where the file system has no such locks, nothing is removed."""
    target = dest.resolve() if dest is not None else None
    parent = target.parent if target is not None else Path(tempfile.gettempdir())
    prefix = _beside(target, "pull") if target is not None else ".pull-"
    made = first_missing(parent)
    try:  # before any download: a destination that cannot be written fails at once
        parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(parent, os.O_RDONLY)
    except OSError as exc:
        raise RemoteError(f"cannot write into {parent}: {exc.strerror or exc}") from None
    try:
        if target is not None and _lock(fd, parent, log):
            for kind in ("pull", "old"):
                for stale in parent.glob(glob.escape(_beside(target, kind)) + "*"):
                    shutil.rmtree(stale, ignore_errors=True)
        try:
            staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        except OSError as exc:
            raise RemoteError(f"cannot write into {parent}: {exc.strerror or exc}") from None
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        remove_empty(parent, up_to=made)  # a failed pull leaves no directories it made for the model
        raise
    finally:
        os.close(fd)  # and the lock with it


def _beside(dest: Path, kind: str) -> str:
    """The name's start of what a pull keeps beside ``dest`` for a while: its download ("pull") and
    the model it replaces ("old"), hidden, and removable by the next pull once left behind."""
    return f".{dest.name}.{kind}-"


def _lock(fd: int, parent: Path, log: Callable[[str], None]) -> bool:
    """Take the lock on ``parent`` (waiting for another pull); False where the file system has no
    such locks (NFS refuses them on a directory): the pull goes on, leaving others' files alone."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"waiting for another pull into {parent} to end")
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        return False
    return True


def _check_dest(dest: Path) -> None:
    """``dest`` is new, empty, or holds a model pulled before (only a model's files): it is replaced
    whole, so anything else in it would be lost (``--dest .`` in a project emptied the project)."""
    from ..model import MODEL_FILES

    if dest.exists() and not dest.is_dir():
        raise RemoteError("expected a directory for the model (a new one, or one pulled before), got the "
                          f"file {dest}")
    if not dest.is_dir():
        return
    model = {"model.yaml", SIGNATURE_FILE, *MODEL_FILES}
    other = sorted(p.name + ("/" if p.is_dir() else "") for p in dest.iterdir()
                   if p.name not in model or p.is_symlink() or not p.is_file())
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise RemoteError(f"--dest {dest} holds other things than a model's files ({shown}); it would be "
                          "replaced whole: expected a new or empty directory, or a model pulled before")


def _install_into_store(folder: Path, tag: str) -> None:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        if _digests(Path(existing.path)) == _digests(folder):
            return  # the same model is already there
        raise RemoteError(
            f"{tag} is already in the local model store with different files (or another signature); not replacing it"
        )
    bentoml.models.import_model(str(folder), input_format="folder")


def _digests(folder: Path) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in model_files(folder)}


def _replace_dir(new: Path, dest: Path) -> None:
    """Put ``new`` at ``dest``; an existing ``dest`` is swapped out only after the rename."""
    dest = dest.resolve()
    old = dest.with_name(f"{_beside(dest, 'old')}{os.getpid()}") if dest.exists() else None
    try:
        if old is not None:
            os.replace(dest, old)
        os.replace(new, dest)
    except BaseException:  # SIGTERM (SystemExit) between the two renames too: put the old model back
        if old is not None and old.exists() and not dest.exists():
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
