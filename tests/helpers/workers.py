"""The suite on several pytest-xdist workers (``pytest -n 2``): CPUs per worker, groups of tests
that share a worker, and the order groups start in."""

from __future__ import annotations

import os

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
# (measured on two workers, one CPU each: 40-120 s each; of the rest, test_hardening.py is the
# longest at 48 s, and the two workers' busy times came out at 326 s each).
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
    against 757 s on one, with twice the CPU time)."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count or not MACHINE_CPUS:
        return
    cpus, n = sorted(MACHINE_CPUS), int(count)
    if n <= len(cpus):
        os.sched_setaffinity(0, cpus[int(worker.removeprefix("gw")) % n::n])
