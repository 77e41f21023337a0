"""python -m klarna_pd.cluster: is the release rolled out, scaling and answering?

    python -m klarna_pd.cluster check --release klarna-pd --namespace risk [--context CTX]
    python -m klarna_pd.cluster wait --release klarna-pd --namespace risk --timeout 300

Exit status 0 when everything is right, 1 with the reasons when not, 2 for bad flags or an API
that cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..cli import Parser, run
from .checks import ClusterError, check_release, wait_for_rollout


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):  # NaN fails too: a wait without an end
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m klarna_pd.cluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("check", "rollout, autoscaler, disruption budget, ingress and one live request"),
                       ("wait", "block until the rollout completes")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--release", default="klarna-pd", help="Helm release (or the Deployment's name for k8s/)")
        p.add_argument("--namespace", default="default")
        p.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
        p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
        if name == "check":
            p.add_argument("--ingress-url", default=None,
                           help="base URL to post the sample to instead of the ingress's own address (e.g. an internal ALB via a tunnel)")
            p.add_argument("--timeout", type=_positive, default=10.0, help="seconds for the sample request (default 10)")
        else:
            p.add_argument("--timeout", type=_positive, default=300.0, help="seconds to wait (default 300)")
    return parser


def _api_client(kubeconfig: str | None, context: str | None):
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    if kubeconfig and not os.path.isfile(kubeconfig):
        raise ClusterError(f"--kubeconfig {kubeconfig}: expected a kubeconfig file, "
                           f"{'got a directory' if os.path.isdir(kubeconfig) else 'no such file'}")
    source = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    from_file = bool(kubeconfig or os.environ.get("KUBECONFIG")) or os.path.exists(source)
    try:
        if from_file:
            return config.new_client_from_config(config_file=kubeconfig, context=context)
        config.load_incluster_config()
        return client.ApiClient()
    except (ConfigException, OSError, yaml.YAMLError, TypeError, AttributeError, KeyError) as exc:
        # The client reads a malformed file as far as it can and fails in its own code.
        where = (source if from_file
                 else "in-cluster service account (no kubeconfig: set --kubeconfig or KUBECONFIG)")
        detail = (str(exc) if isinstance(exc, (ConfigException, OSError, yaml.YAMLError))
                  else "not a kubeconfig (expected YAML with clusters, contexts and users)")
        raise ClusterError(f"no usable Kubernetes configuration from {where}: {detail}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api_key = os.environ.get("KLARNA_PD_API_KEY") or None
    try:
        api = _api_client(args.kubeconfig, args.context)
        if args.command == "check":
            report = check_release(api, args.release, args.namespace, ingress_url=args.ingress_url,
                                   api_key=api_key, timeout=args.timeout)
            print(report.table())
            return 0 if report.ok else 1
        result = wait_for_rollout(api, args.release, args.namespace, timeout=args.timeout,
                                  log=lambda m: print(m, file=sys.stderr))
        print(f"{'rolled out' if result.ok else 'NOT rolled out'}: {result.seen}" + (f"; {result.problem}" if result.problem else ""))
        return 0 if result.ok else 1
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    run(main)
