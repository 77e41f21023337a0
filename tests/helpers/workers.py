"""The suite on several pytest-xdist workers (``pytest -n 2``): CPUs per worker, groups of tests
that share a worker, and the order groups start in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

# The CPUs this run may use, read before a worker pins itself to its share.
MACHINE_CPUS: frozenset[int] = (
    frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
)

# Tests that share a worker, beside each module's own tests (its module fixtures, such as servers,
# start once): these modules' session fixtures are too dear to make twice (the image, the local
# Spark session's JVM).
SHARED_WORKER = {
    "tests/container/": "container",
    "tests/batch/test_batch.py": "spark",
    "tests/batch/test_safety.py": "spark",
    "tests/data/test_skew.py": "spark",
}
# The longest groups start first, so that no worker is left alone with one of them at the end
# (measured on two workers, one CPU each: these took 33-120 s, every other group at most 35 s,
# and the two workers' busy times came out at 326 s each).
LONGEST_FIRST = [
    "container", "tests/training/test_training.py", "spark", "tests/training/test_model_integrity.py",
    "tests/service/test_hardening.py", "tests/docs/test_readme.py", "tests/service/test_fuzz.py",
]


def group(nodeid: str) -> str:
    """The group a test runs in: its module's path, or the shared group of its module."""
    path = nodeid.split("::", 1)[0]
    return next((g for prefix, g in SHARED_WORKER.items() if path.startswith(prefix)), path)


def pin_to_share() -> None:
    """Pin this worker (and every server and CLI it starts) to its share of the CPUs, so LightGBM's
    threads follow ``available_cpus()`` down to that share. Unpinned, two workers' OpenMP threads
    spin against each other on 2 cores (measured: the whole suite took 966 s on two workers
    against 757 s on one, with twice the CPU time). Affinity only: under a cgroup quota smaller than
    the CPUs' count, each worker still sees min(its share, the quota) and together they ask more."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count or not MACHINE_CPUS:
        return
    index = worker.removeprefix("gw")
    cpus, n = sorted(MACHINE_CPUS), int(count)
    if index.isdigit() and n <= len(cpus):  # xdist names its workers gw0, gw1, ...
        os.sched_setaffinity(0, cpus[int(index) % n::n])


@contextmanager
def every_cpu() -> Iterator[None]:
    """This process (and what it starts meanwhile) on every CPU of the run, even when
    :func:`pin_to_share` pinned it: for tests about how many CPUs a process sees."""
    if not MACHINE_CPUS:
        yield
        return
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, MACHINE_CPUS)
    try:
        yield
    finally:
        os.sched_setaffinity(0, pinned)
