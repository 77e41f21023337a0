"""Operating a release: rollout, autoscaler and ingress checks against the Kubernetes API."""

from .checks import Check, ClusterError, Report, check_release, wait_for_rollout

__all__ = ["Check", "ClusterError", "Report", "check_release", "wait_for_rollout"]
