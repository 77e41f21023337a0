"""Move and check stored klarna-pd models.

    python -m klarna_pd.store push klarna-pd:TAG s3://bucket/prefix
    python -m klarna_pd.store pull s3://bucket/prefix/klarna-pd/VERSION [--dest DIR]
    python -m klarna_pd.store verify klarna-pd:TAG
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ModelError, RemoteError


def main(argv: list[str] | None = None) -> int:
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
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    try:
        # BentoML is imported only where the local store is used: the chart's init container pulls
        # into a directory, and importing it would add seconds to every pod start.
        if args.command == "pull":
            from .s3 import pull

            print(pull(args.uri, dest=args.dest, log=log))
            return 0
        from bentoml.exceptions import NotFound

        try:
            if args.command == "push":
                from .s3 import push

                print(push(args.tag, args.uri, log=log))
            else:
                from .local import load_model

                load_model(args.tag)
                print(f"{args.tag}: every file matches its recorded sha256")
        except NotFound as exc:
            raise ModelError(str(exc)) from None
    except (RemoteError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
