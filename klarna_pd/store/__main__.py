"""Move, sign and check stored klarna-pd models.

    python -m klarna_pd.store keygen --out DIR
    python -m klarna_pd.store push klarna-pd:TAG s3://bucket/prefix [--signing-key PEM]
    python -m klarna_pd.store pull s3://bucket/prefix/klarna-pd/VERSION [--dest DIR]
    python -m klarna_pd.store verify klarna-pd:TAG|DIR [--key PEM]

Keys and policy come from ``KLARNA_PD_SIGNING_KEY``, ``KLARNA_PD_VERIFY_KEY`` and
``KLARNA_PD_ALLOW_UNSIGNED`` (:mod:`klarna_pd.store.signing`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import Parser, run
from ..errors import ModelError, RemoteError
from ..gbm import import_for_scoring


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m klarna_pd.store", description="Move, sign and check stored klarna-pd models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_keygen = sub.add_parser("keygen", help="make an Ed25519 key pair for signing models")
    p_keygen.add_argument("--out", type=Path, required=True,
                          help="directory for signing-key.pem (private, mode 0600) and verify-key.pem (public)")
    p_push = sub.add_parser("push", help="upload a model from the local store to S3, signed")
    p_push.add_argument("tag", help="model tag, e.g. klarna-pd:latest")
    p_push.add_argument("uri", help="s3://bucket/prefix (the model goes under <prefix>/<name>/<version>/)")
    p_push.add_argument("--signing-key", type=Path, default=None,
                        help="private key (PEM) to sign the model with as it is pushed (default: KLARNA_PD_SIGNING_KEY; "
                             "without either, the model's own signature is carried)")
    p_pull = sub.add_parser("pull", help="download a model from S3, verify it (signature included), install it")
    p_pull.add_argument("uri", help="the model's S3 URI, as push printed it")
    p_pull.add_argument("--dest", type=Path, default=None, help="put the model's files here instead of the local store")
    p_verify = sub.add_parser("verify", help="check a stored model's signature and every file's sha256")
    p_verify.add_argument("tag", help="model tag in the local store, or a model directory")
    p_verify.add_argument("--key", type=Path, default=None,
                          help="public key (PEM) to verify with (default: KLARNA_PD_VERIFY_KEY, see README)")
    return parser


def _verify(ref: str, key: Path | None) -> str:
    from .records import load_checked, record_of_directory
    from .signing import Trust, signer_of

    trust = Trust.of_key(key) if key is not None else Trust.from_env()
    if Path(ref).is_dir():
        path, record = Path(ref), record_of_directory(ref)
    else:
        from .local import get_stored, record_of_stored

        stored = get_stored(ref)
        path, record = Path(stored.path), record_of_stored(stored)
    load_checked(path, record, trust)
    signer = signer_of(path)
    if signer is None:
        return f"{record.tag}: NOT SIGNED (accepted: KLARNA_PD_ALLOW_UNSIGNED); every file matches its recorded sha256"
    if trust.key is None:
        return f"{record.tag}: signature by {signer} NOT CHECKED (no key; KLARNA_PD_ALLOW_UNSIGNED); every file matches its recorded sha256"
    return f"{record.tag}: signed by {signer}, verified with {trust.source}; every file matches its signed sha256"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "keygen":  # the others load models: LightGBM first (klarna_pd/gbm.py)
        import_for_scoring()
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    try:
        # BentoML is imported only where the local store is used: the chart's init container pulls
        # into a directory, and importing it would add seconds to every pod start.
        if args.command == "keygen":
            from .signing import fingerprint, generate_keys, load_public_key

            private, public = generate_keys(args.out)
            print(f"wrote {private} (private: keep it out of the image, the repository and the bucket) and {public} "
                  f"(public, key {fingerprint(load_public_key(public))})")
            return 0
        if args.command == "pull":
            from .s3 import pull

            print(pull(args.uri, dest=args.dest, log=log))
            return 0
        if args.command == "push":
            from .s3 import push

            print(push(args.tag, args.uri, signing_key=args.signing_key, log=log))
        else:
            print(_verify(args.tag, args.key))
    except (RemoteError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
