"""How many CPUs this process may use: the CPUs it may run on and its cgroup's CPU quota.

``os.cpu_count()`` is the machine's core count. A pod limited to one CPU on a 16-core node sees
16, and sixteen LightGBM threads then share one CPU's time: measured here, training ran 8x slower
(240 s against 28 s) while one other CPU-bound job shared the two cores.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus(root: str | Path = "/") -> int:
    """CPUs this process may use: its CPU affinity, capped by the CPU quota of its cgroup and the
    cgroups above it (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``).
    A fractional quota is rounded up (1.5 CPUs: 2 threads, the second one part-time); never below 1.

    Args:
        root: the filesystem root to read ``/proc`` and ``/sys/fs/cgroup`` under (tests pass a fake one).
    """
    root = Path(root)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cpu_quota(root: str | Path = "/") -> float | None:
    """CPUs' worth of time the cgroup quota allows this process (the smallest along its cgroup
    path), or None when nothing limits it."""
    root = Path(root)
    limits = [q for d in _cgroup_dirs(root) if (q := _quota(d)) is not None]
    return min(limits) if limits else None


def _cgroup_dirs(root: Path):
    """The process's cgroup directories and their ancestors, for v2 and the v1 cpu controller.

    Inside a container the cgroup filesystem is usually the container's own cgroup at the mount
    point, while /proc/self/cgroup may still name the host's path: the mount point itself is
    always looked at, the named path where it exists."""
    fs = root / "sys" / "fs" / "cgroup"
    mounts = [fs] + [fs / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")]
    paths = {""}
    try:
        for line in (root / "proc" / "self" / "cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "" or "cpu" in controllers.split(","):
                parts = [p for p in path.split("/") if p]
                paths.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    except (OSError, ValueError):
        pass
    for mount in mounts:
        for path in paths:
            d = mount / path if path else mount
            if d.is_dir():
                yield d


def _quota(d: Path) -> float | None:
    try:
        text = (d / "cpu.max").read_text().split()  # v2: "<quota> <period>" or "max <period>"
        return None if text[0] == "max" else int(text[0]) / int(text[1])
    except (OSError, IndexError, ValueError):
        pass
    try:
        quota = int((d / "cpu.cfs_quota_us").read_text())  # v1: -1 when unlimited
        period = int((d / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None
