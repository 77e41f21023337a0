"""Signed models: an Ed25519 signature over a manifest of everything the server reads.

The sha256 of each file recorded in ``model.yaml`` catches corruption, but whoever can rewrite a
file can rewrite its digest too. A signature cannot be rewritten without the private key, which
lives outside the model store, the bucket and the image. ``signature.json`` beside the model's
files holds:

- ``manifest``: the model's name, version and creation time, the parts of ``model.yaml`` the
  server acts on (``format``, ``spec``: the request types of ``/predict``, and the recorded
  ``sha256``), and the size and sha256 of every other file in the directory;
- ``key``: the fingerprint of the public key that verifies it, and ``signature``: Ed25519 over the
  manifest's canonical JSON (sorted keys, no spaces, ASCII).

:func:`verify_directory` is the one check every load goes through (server start, batch scoring,
Spark executors, ``pull``, ``verify``). Which key it trusts is :class:`Trust`: ``KLARNA_PD_VERIFY_KEY``,
else the public half of ``KLARNA_PD_SIGNING_KEY``, else this machine's development key (made by the
first training run that had no signing key, under ``$BENTOML_HOME``). Unsigned models are refused
unless ``KLARNA_PD_ALLOW_UNSIGNED=true`` (local development only); a signature that does not
verify is refused always.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from ..files import atomic_write_bytes, sha256_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from .records import ModelRecord

logger = logging.getLogger("klarna_pd.store")

SIGNATURE_FILE = "signature.json"
RECORD_FILE = "model.yaml"
SIGNATURE_FORMAT = "klarna-pd-signature/1"
MANIFEST_FORMAT = "klarna-pd-signed-manifest/1"
PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "verify-key.pem"
DEV_KEY_DIR = "klarna-pd-keys"
ALLOW_UNSIGNED_HINT = "KLARNA_PD_ALLOW_UNSIGNED=true serves unsigned models (local development only)"


# -- keys ---------------------------------------------------------------------------------------


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``ed25519:`` and the first 16 hex digits of the sha256 of the raw public key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _public_pem(public_key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def generate_keys(out: str | Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into ``out`` (created if needed, mode 0700 when new).

    Returns:
        ``(private key path, public key path)``: ``signing-key.pem`` (PKCS#8 PEM, mode 0600) and
        ``verify-key.pem`` (SubjectPublicKeyInfo PEM).

    Raises:
        ModelError: either file exists already (keys are never overwritten).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModelError(f"expected a directory for the key pair, got the file {out}")
    private, public = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    existing = [str(p) for p in (private, public) if p.exists() or p.is_symlink()]
    if existing:
        raise ModelError(f"refusing to overwrite existing key files {existing}")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: never write a private key through a file (or symlink) someone else put there.
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ModelError(f"cannot write the key pair into {out}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(private, 0o600)  # whatever the umask
    atomic_write_bytes(public, _public_pem(key.public_key()))
    return private, public


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (unencrypted PKCS#8, as ``keygen`` writes it)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise ModelError(f"cannot read the signing key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelError(f"{path} holds a {type(key).__name__}, expected an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (as ``keygen`` writes ``verify-key.pem``)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise ModelError(f"cannot read the verify key {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelError(f"{path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ModelError(f"{path} holds a {type(key).__name__}, expected an Ed25519 public key")
    return key


def dev_key_dir() -> Path:
    """Where this machine's development key pair lives: ``$BENTOML_HOME/klarna-pd-keys``."""
    home = os.environ.get("BENTOML_HOME") or os.path.join(os.path.expanduser("~"), "bentoml")
    return Path(home) / DEV_KEY_DIR


@dataclass(frozen=True)
class Signer:
    """A private key and where it came from (said in logs)."""

    key: Ed25519PrivateKey
    source: str

    @property
    def key_id(self) -> str:
        return fingerprint(self.key.public_key())


def resolve_signer(path: str | Path | None = None, *, log=None) -> Signer:
    """The key training signs with: ``path``, else ``KLARNA_PD_SIGNING_KEY``, else the development key.

    The development key pair is generated under ``$BENTOML_HOME/klarna-pd-keys`` the first time
    it is needed, so that a fresh clone trains and serves signed models with no set-up.
    """
    if path is None:
        path = read_settings().signing_key
    if path is not None:
        return Signer(load_private_key(path), f"the signing key {path}")
    keys = dev_key_dir()
    private = keys / PRIVATE_KEY_FILE
    if not private.exists():
        generate_keys(keys)
        if log is not None:
            log(f"generated a development signing key pair in {keys} (set KLARNA_PD_SIGNING_KEY for release models)")
    return Signer(load_private_key(private), f"the development key {private}")


def read_settings():
    """The ``KLARNA_PD_*`` settings (:class:`klarna_pd.settings.Settings`); invalid ones are a ModelError."""
    from ..settings import Settings

    try:
        return Settings()
    except ValueError as exc:
        raise ModelError(f"KLARNA_PD_* settings are invalid: {exc}") from None


@dataclass(frozen=True)
class Trust:
    """Which signatures a load accepts.

    Args:
        key: the public key models must be signed with (None: none configured).
        source: where the key came from, for messages.
        allow_unsigned: accept unsigned models, and signed ones when no key is configured.
    """

    key: Ed25519PublicKey | None
    source: str
    allow_unsigned: bool = False

    @classmethod
    def from_env(cls, *, signing_key: bool = True) -> Trust:
        """``KLARNA_PD_VERIFY_KEY``, else the public half of ``KLARNA_PD_SIGNING_KEY`` (unless
        ``signing_key`` is False), else the development key of this machine (if one was made), with
        ``KLARNA_PD_ALLOW_UNSIGNED``."""
        settings = read_settings()
        allow = settings.allow_unsigned
        if settings.verify_key is not None:
            return cls(load_public_key(settings.verify_key), f"KLARNA_PD_VERIFY_KEY={settings.verify_key}", allow)
        if signing_key and settings.signing_key is not None:
            key = load_private_key(settings.signing_key).public_key()
            return cls(key, f"the public half of KLARNA_PD_SIGNING_KEY={settings.signing_key}", allow)
        dev = dev_key_dir() / PUBLIC_KEY_FILE
        if dev.is_file():
            return cls(load_public_key(dev), f"the development key {dev}", allow)
        return cls(None, "no key configured (KLARNA_PD_VERIFY_KEY)", allow)

    @classmethod
    def of_key(cls, path: str | Path, *, allow_unsigned: bool = False) -> Trust:
        """Trust exactly the public key in ``path``."""
        return cls(load_public_key(path), str(path), allow_unsigned)

    def to_wire(self) -> tuple[bytes | None, str, bool]:
        """Plain values to ship to another process (Spark executors), for :meth:`from_wire`."""
        return (None if self.key is None else _public_pem(self.key), self.source, self.allow_unsigned)

    @classmethod
    def from_wire(cls, wire: tuple[bytes | None, str, bool]) -> Trust:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pem, source, allow = wire
        return cls(None if pem is None else load_pem_public_key(pem), source, allow)  # type: ignore[arg-type]


# -- manifests ----------------------------------------------------------------------------------


def canonical(document: Any) -> bytes:
    """The bytes that are signed: JSON with sorted keys, no spaces, ASCII only."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def model_files(directory: str | Path) -> list[str]:
    """The names of the regular files in a model directory, sorted.

    Raises:
        ModelError: a symlink, a sub-directory or any other non-regular entry (a model directory
            is flat; a symlink would publish or load whatever it points at).
    """
    directory = Path(directory)
    names = []
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise ModelError(f"cannot list the model directory {directory}: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.is_symlink():
            raise ModelError(f"model directory {directory} holds a symlink, {entry.name!r}: refusing it (copy the file in)")
        if not entry.is_file(follow_symlinks=False):
            raise ModelError(f"model directory {directory} holds {entry.name!r}, which is not a regular file: refusing it")
        names.append(entry.name)
    return sorted(names)


def _model_section(record: ModelRecord) -> dict[str, Any]:
    name, _, version = record.tag.partition(":")
    meta = record.metadata
    return {
        "name": name,
        "version": version,
        "created": record.created,
        "format": meta.get("format"),
        "spec": meta.get("spec"),
        "sha256": meta.get("sha256"),
    }


def manifest_of(directory: str | Path, record: ModelRecord) -> dict[str, Any]:
    """The manifest to sign: the record's content that matters and every other file's sha256."""
    directory = Path(directory)
    files = {
        name: {"sha256": sha256_file(directory / name), "bytes": (directory / name).stat().st_size}
        for name in model_files(directory)
        if name not in (SIGNATURE_FILE, RECORD_FILE)
    }
    manifest = {"format": MANIFEST_FORMAT, "model": _model_section(record), "files": files}
    canonical(manifest)  # fails now, not at load, on a value JSON cannot carry (NaN)
    return manifest


def signature_document(directory: str | Path, record: ModelRecord, signer: Signer) -> bytes:
    """``signature.json``'s bytes for the model in ``directory`` described by ``record``."""
    manifest = manifest_of(directory, record)
    doc = {
        "format": SIGNATURE_FORMAT,
        "algorithm": "ed25519",
        "key": signer.key_id,
        "manifest": manifest,
        "signature": base64.b64encode(signer.key.sign(canonical(manifest))).decode("ascii"),
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def sign_directory(directory: str | Path, record: ModelRecord, signer: Signer) -> Path:
    """Write ``signature.json`` into ``directory`` (atomically) and return its path."""
    path = Path(directory) / SIGNATURE_FILE
    atomic_write_bytes(path, signature_document(directory, record, signer))
    return path


def _read_signature(path: Path, tag: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise ModelError(f"{tag}: cannot read {SIGNATURE_FILE}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelError(f"{tag}: {SIGNATURE_FILE} is not JSON: {exc}") from None
    problems = []
    if not isinstance(doc, dict):
        raise ModelError(f"{tag}: {SIGNATURE_FILE} is not a JSON object")
    if doc.get("format") != SIGNATURE_FORMAT or doc.get("algorithm") != "ed25519":
        problems.append(f"format {doc.get('format')!r} / algorithm {doc.get('algorithm')!r}, expected {SIGNATURE_FORMAT!r} / 'ed25519'")
    for field, kind in (("key", str), ("signature", str), ("manifest", dict)):
        if not isinstance(doc.get(field), kind):
            problems.append(f"{field!r} is {type(doc.get(field)).__name__}, expected {kind.__name__}")
    if problems:
        raise ModelError(f"{tag}: {SIGNATURE_FILE} is malformed: {'; '.join(problems)}")
    return doc


def verify_directory(directory: str | Path, record: ModelRecord, trust: Trust | None = None) -> dict[str, str] | None:
    """Check a model directory against its signature, as ``trust`` says.

    Args:
        directory: the model's files (``model.yaml`` included).
        record: what ``model.yaml`` says (tag, creation time, metadata).
        trust: the key and policy; None reads them from the environment (:meth:`Trust.from_env`).

    Returns:
        The signed sha256 of every file (checked here), or None for a model accepted without a
        signature check (unsigned, or no key, under ``allow_unsigned``).

    Raises:
        ModelError: unsigned (and not allowed), signed by another key, a signature that does not
            verify, or files and record that differ from what was signed.
    """
    from cryptography.exceptions import InvalidSignature

    directory = Path(directory)
    trust = trust if trust is not None else Trust.from_env()
    tag = record.tag
    names = model_files(directory)
    if SIGNATURE_FILE not in names:
        if trust.allow_unsigned:
            logger.warning("%s is not signed; loading it because KLARNA_PD_ALLOW_UNSIGNED is set", tag)
            return None
        raise ModelError(
            f"{tag} is not signed (no {SIGNATURE_FILE} in {directory}): refusing it. Sign it when training "
            f"or pushing (see README, 'Model integrity'); {ALLOW_UNSIGNED_HINT}"
        )
    doc = _read_signature(directory / SIGNATURE_FILE, tag)
    if trust.key is None:
        if trust.allow_unsigned:
            logger.warning("%s: no verify key configured; its signature is NOT checked (KLARNA_PD_ALLOW_UNSIGNED)", tag)
            return None
        raise ModelError(
            f"{tag} is signed by {doc['key']} but there is no key to verify it with: set KLARNA_PD_VERIFY_KEY "
            f"to the public key (PEM); {ALLOW_UNSIGNED_HINT}"
        )
    trusted = fingerprint(trust.key)
    if doc["key"] != trusted:
        raise ModelError(f"{tag} is signed by key {doc['key']}, not by the trusted key {trusted} ({trust.source}): refusing it")
    manifest = doc["manifest"]
    try:
        trust.key.verify(base64.b64decode(doc["signature"], validate=True), canonical(manifest))
    except (InvalidSignature, ValueError):
        raise ModelError(
            f"{tag}: the signature in {SIGNATURE_FILE} does not verify with key {trusted}: its manifest was altered "
            "or signed by another key: refusing it"
        ) from None
    # The manifest is authentic from here on: compare the directory with it.
    signed_files = manifest.get("files")
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(signed_files, dict):
        raise ModelError(f"{tag}: the signed manifest is not a {MANIFEST_FORMAT} manifest")
    present = set(names) - {SIGNATURE_FILE, RECORD_FILE}
    if RECORD_FILE not in names:
        raise ModelError(f"{tag}: {RECORD_FILE} is missing from {directory}")
    extra, missing = sorted(present - set(signed_files)), sorted(set(signed_files) - present)
    if extra:
        raise ModelError(f"{tag}: files not covered by the signature: {extra}: refusing the model")
    if missing:
        raise ModelError(f"model at {directory} is missing files {missing} (signed by {trusted})")
    digests = {}
    for name in sorted(signed_files):
        expected = signed_files[name].get("sha256") if isinstance(signed_files[name], Mapping) else None
        actual = sha256_file(directory / name)
        if actual != expected:
            raise ModelError(
                f"model file {directory / name} does not match its recorded sha256 in the signed manifest "
                f"(expected {str(expected)[:12]}..., got {actual[:12]}...): refusing to load it"
            )
        digests[name] = actual
    signed_model, actual_model = manifest.get("model"), _model_section(record)
    if not isinstance(signed_model, dict):
        raise ModelError(f"{tag}: the signed manifest has no model section")
    for field in ("name", "version", "created", "format", "spec", "sha256"):
        if canonical(signed_model.get(field)) != canonical(actual_model[field]):
            raise ModelError(
                f"{tag}: {RECORD_FILE}'s {field} differs from the signed one "
                f"({_short(actual_model[field])} instead of {_short(signed_model.get(field))}): refusing the model"
            )
    return digests


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def signer_of(directory: str | Path) -> str | None:
    """The key fingerprint ``signature.json`` names (unchecked), or None for an unsigned model."""
    path = Path(directory) / SIGNATURE_FILE
    if not path.is_file():
        return None
    try:
        key = json.loads(path.read_bytes()).get("key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None

