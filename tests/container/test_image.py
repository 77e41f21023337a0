"""The image `bentoml containerize` builds from the Bento: what is in it and how it runs."""

import json

import pytest

from .podman import image_size, podman

pytestmark = [pytest.mark.container, pytest.mark.slow]


def _config(image: str) -> dict:
    return json.loads(podman("image", "inspect", image).stdout)[0]["Config"]


def test_it_runs_as_the_bentoml_user_and_reports_no_usage(image):
    config = _config(image)
    assert config["User"] == "bentoml"
    assert "BENTOML_DO_NOT_TRACK=True" in config["Env"]
    assert podman("run", "--rm", image, "id", "-u").stdout.strip() == "1034"


def test_it_has_no_compilers_and_no_version_control(image):
    found = podman("run", "--rm", image, "sh", "-c",
                   "for tool in gcc cc c++ make ld strip git curl uv; do command -v $tool; done; true").stdout.split()
    assert found == []


def test_the_server_user_cannot_rewrite_the_installed_packages(image):
    """The venv comes from the build stage owned by root, as BentoML's own install leaves it."""
    probe = ("import lightgbm, pathlib, os; p = pathlib.Path(lightgbm.__file__); "
             "print(os.access(p, os.W_OK), os.access(p.parent, os.W_OK), p.stat().st_uid)")
    assert podman("run", "--rm", image, "python", "-c", probe).stdout.split() == ["False", "False", "0"]


def test_lightgbm_loads_with_its_openmp_runtime(image):
    """libgomp1 comes from docker.system_packages: without the compilers nothing else brings it."""
    proc = podman("run", "--rm", image, "python", "-c", "import lightgbm; print(lightgbm.__version__)", check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_it_holds_the_servers_requirements_not_trainings(image):
    probe = ("import importlib.util as u; "
             "print(*(m for m in ('pandas', 'sklearn', 'matplotlib', 'pyspark') if u.find_spec(m)))")
    assert podman("run", "--rm", image, "python", "-c", probe).stdout.split() == []


def test_size(image):
    """Issue 12's line: under 600 MB on the stand-in base (requirements-serve.txt, venv built in its
    own stage, test suites, unused pyarrow modules and the SciPy the server never imports left out,
    libraries stripped; llvmlite's LLVM in; 747 MB before, benchmarks/results/image.md)."""
    size = image_size(image)
    print(f"image {size / 1e6:.0f} MB")
    assert size < 600_000_000
