"""The Bento's image: size, size per layer, build time, cold start of the chart's pod to ready.

    python benchmarks/image.py [--starts 3] [--variants default-template,full,serve,serve-no-pyarrow]

Builds the image the way the tests do (tests/container/podman.py: ``bentoml build``, then
``bentoml containerize --backend podman`` without the layer cache, on the stand-in base image of
scripts/standin-base.sh) with a small model, once per requirement set:

- ``default-template``: requirements.txt with BentoML's own Debian template (build-essential, git),
  the image before issue 12;
- ``full``: requirements.txt (server, training, evaluation, batch scoring), for its size only: the
  template's SciPy trim leaves scikit-learn unable to import there;
- ``serve``: requirements-serve.txt (what the server and the init container need), as bentofile.yaml;
- ``serve-no-pyarrow``: that without pyarrow (Arrow request bodies then fail).

Cold start: `podman kube play` of the chart's Deployment with default values until /readyz answers
200 inside the pod, ``--starts`` times (median). Needs podman (scripts/container-tools.sh) and root.
Writes benchmarks/results/image.md (and .json).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from harness import RESULTS, ROOT, write_results

# The tests' podman harness: one way to build and start the image, for tests and benchmark alike.
sys.path.insert(0, str(ROOT))
from tests.container.podman import (  # noqa: E402
    Pod, PodmanError, chart_deployment, check_tools, containerize, ensure_base_image, image_size, layers, remove_image,
)

def _serve_without_pyarrow() -> str:
    return "".join(line for line in (ROOT / "requirements-serve.txt").read_text().splitlines(True)
                   if not line.startswith("pyarrow=="))


# name: (requirements, BentoML's own Dockerfile template rather than Dockerfile.template)
VARIANTS = {
    "default-template": (lambda: (ROOT / "requirements.txt").read_text(), True),
    "full": (lambda: (ROOT / "requirements.txt").read_text(), False),
    "serve": (lambda: (ROOT / "requirements-serve.txt").read_text(), False),
    "serve-no-pyarrow": (_serve_without_pyarrow, False),
}


def _flat(text: str) -> str:
    """A requirements text with its `-r file` lines replaced by the files' lines."""
    out = []
    for line in text.splitlines():
        if line.startswith("-r "):
            out.append(_flat((ROOT / line.split(None, 1)[1]).read_text()))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def build(variant: str, model_tag: str) -> tuple[str, float]:
    """A Bento whose requirements are the variant's, containerized; (image, seconds to containerize)."""
    reqs = RESULTS / f"image-{variant}-requirements.tmp"
    requirements, bentoml_template = VARIANTS[variant]
    reqs.write_text(_flat(requirements()))
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    bentofile["python"]["requirements_txt"] = f"./{reqs.relative_to(ROOT)}"
    if bentoml_template:
        for key in ("dockerfile_template", "system_packages"):
            bentofile["docker"].pop(key, None)
    spec = RESULTS / f"image-{variant}-bentofile.tmp"
    spec.write_text(yaml.safe_dump(bentofile))
    try:
        proc = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", str(spec), "-o", "tag"], cwd=ROOT,
                              env={**os.environ, "KLARNA_PD_MODEL_TAG": model_tag}, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bentoml build failed:\n{proc.stderr[-3000:]}")
    finally:
        reqs.unlink()
        spec.unlink()
    bento = proc.stdout.strip().rsplit("__tag__:", 1)[-1]
    image = f"localhost/klarna-pd-bench:{variant}"
    started = time.monotonic()
    containerize(bento, image, "no-cache")
    return image, time.monotonic() - started


def cold_start(image: str) -> float | str:
    """Seconds from `kube play` to ready, or why the pod did not get ready."""
    from klarna_pd.store.signing import PUBLIC_KEY_FILE, dev_key_dir

    pod = Pod(chart_deployment(None, image, verify_key=dev_key_dir() / PUBLIC_KEY_FILE))
    try:
        pod.play()
        return pod.wait_ready(timeout=180)
    except PodmanError as exc:
        errors = [line.strip() for line in str(exc).splitlines() if re.search(r"\b\w*(Error|Exception): ", line)]
        return (errors or str(exc).strip().splitlines())[-1][:160]
    finally:
        pod.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    check_tools()
    base_s = ensure_base_image()
    from klarna_pd.spec import klarna_spec
    from klarna_pd.synth import write_synthetic
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import run

    shipped = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["python"]["requirements_txt"]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        tmp = Path(tmp)
        os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
        data = tmp / "dataset.csv"
        write_synthetic(data, rows=6_000, seed=1)
        tag = run(data, klarna_spec(), tmp / "out", TrainConfig(folds=3), synthetic=True, log=lambda *_: None).model_tag
        for variant in args.variants.split(","):
            image, build_s = build(variant, tag)
            try:
                starts = [cold_start(image) for _ in range(args.starts)]
                results[variant] = {"size": image_size(image), "build_s": build_s, "starts": starts,
                                    "layers": layers(image)}
            finally:
                remove_image(image)
            print(variant, {k: v for k, v in results[variant].items() if k != "layers"}, file=sys.stderr)

    rows = []
    for variant, r in results.items():
        ready = [s for s in r["starts"] if isinstance(s, float)]
        start = f"{statistics.median(ready):.1f} s" if len(ready) == len(r["starts"]) else f"not ready: {r['starts'][0]}"
        rows.append([variant, f"{r['size'] / 1e6:,.0f} MB", "yes" if r["size"] < 600e6 else "no", f"{r['build_s']:.0f} s", start])
    notes = [
        f"The bentofile builds with `{shipped}`. Build: `bentoml containerize --backend podman --opt no-cache` "
        "(Dockerfile.template: BentoML's Debian template without compilers, the venv built in a stage of its own, test suites, unused pyarrow modules and the SciPy the server never imports left out, libraries stripped; `default-template`: BentoML's own; every variant carries lleaves and llvmlite's LLVM, the compiled trees), "
        "network and package index of this machine. "
        f"Cold start: median of {args.starts} `podman kube play` runs of the chart's Deployment (default values, model "
        "built into the image) to /readyz 200 inside the pod. "
        + (f"Stand-in base image built in {base_s:.0f} s (debootstrap)." if base_s > 5 else "Stand-in base image already present."),
        "",
    ]
    for variant, r in results.items():
        notes += [f"Layers of `{variant}` (bytes over 100 kB):", "", "| size | instruction |", "|---|---|"]
        for size, created in r["layers"]:
            if size > 100_000:
                what = created.split("/bin/sh -c ", 1)[-1].replace("|", "\\|").strip()[:110]
                notes.append(f"| {size / 1e6:,.1f} MB | `{what}` |")
        notes.append("")
    write_results("image", "The service image: size, build time, cold start",
                  ["requirements", "size", "< 600 MB", "build (no cache)", "cold start to ready"], rows, notes, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
