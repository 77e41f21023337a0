"""available_cpus(): affinity and the cgroup CPU quota, read from fake /proc and /sys/fs/cgroup trees."""

import os

import pytest

from klarna_pd.cpus import available_cpus, cpu_quota

from ..helpers import workers

pytestmark = pytest.mark.unit

# Every CPU of the run: on a pytest-xdist worker pinned to one CPU, each case below would expect
# 1 and a quota that is not applied could not show (the fixture widens the affinity to match).
AFFINITY = len(workers.MACHINE_CPUS)


@pytest.fixture(autouse=True)
def every_cpu():
    with workers.every_cpu():
        yield


def _tree(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


V1_CONTAINER = {"proc/self/cgroup": "4:memory:/pod\n2:cpu,cpuacct:/kubepods/pod1/abc\n0::/\n"}
V2 = {"proc/self/cgroup": "0::/kubepods.slice/pod1.scope\n"}


@pytest.mark.parametrize(
    "files, quota",
    [
        # cgroup v2 at the mount point (a container's own cgroup namespace)
        ({"sys/fs/cgroup/cpu.max": "100000 100000\n", **V2}, 1.0),
        ({"sys/fs/cgroup/cpu.max": "max 100000\n", **V2}, None),
        ({"sys/fs/cgroup/cpu.max": "150000 100000\n", **V2}, 1.5),
        # v2 on a host: the limit is set on the process's own cgroup below the root, or above it
        ({"sys/fs/cgroup/kubepods.slice/pod1.scope/cpu.max": "50000 100000\n", **V2}, 0.5),
        ({"sys/fs/cgroup/kubepods.slice/cpu.max": "300000 100000\n",
          "sys/fs/cgroup/kubepods.slice/pod1.scope/cpu.max": "max 100000\n", **V2}, 3.0),
        # cgroup v1, the container's cgroup mounted at cpu/ while /proc names the host's path
        ({"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "100000\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
          **V1_CONTAINER}, 1.0),
        ({"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
          **V1_CONTAINER}, None),
        ({"sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/abc/cpu.cfs_quota_us": "250000\n",
          "sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/abc/cpu.cfs_period_us": "100000\n", **V1_CONTAINER}, 2.5),
        # nothing to read: no limit
        ({}, None),
        ({"sys/fs/cgroup/cpu.max": "garbage\n", "proc/self/cgroup": "not a cgroup line\n"}, None),
    ],
)
def test_cpu_quota(tmp_path, files, quota):
    assert cpu_quota(_tree(tmp_path, files)) == quota


@pytest.mark.parametrize(
    "cpu_max, expected",
    [
        ("100000 100000", 1),
        ("50000 100000", 1),  # half a CPU: still one thread
        ("150000 100000", min(2, AFFINITY)),  # rounded up, but never above the CPUs it may run on
        ("6400000 100000", AFFINITY),
        ("max 100000", AFFINITY),
    ],
)
def test_available_cpus_is_the_affinity_capped_by_the_quota(tmp_path, cpu_max, expected):
    assert available_cpus(_tree(tmp_path, {"sys/fs/cgroup/cpu.max": cpu_max, **V2})) == expected


def test_the_real_machine(tmp_path):
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
