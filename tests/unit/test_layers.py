"""Layers point down: the package's imports, checked statically and by scoring without the training stack."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers.paths import ROOT

pytestmark = pytest.mark.unit

PACKAGE = ROOT / "klarna_pd"

# A layer may import the layers listed for it (and itself); nothing else of the package.
ALLOWED = {
    "errors": set(),
    "spec": {"errors"},
    "files": {"errors"},
    "progress": set(),
    "cli": set(),
    "versions": set(),
    "settings": {"cpus"},
    "cpus": set(),
    "gbm": set(),
    "data": {"errors", "spec", "files"},
    "model": {"errors", "spec", "files", "data", "cpus"},
    "store": {"errors", "spec", "files", "data", "model", "settings", "gbm", "cli"},
    "training": {"errors", "spec", "files", "data", "model", "store", "versions", "synth", "settings", "cpus", "progress"},
    "synth": {"errors", "spec", "files", "data", "progress", "cli"},
    "serving": {"errors", "spec", "files", "data", "model", "versions", "settings"},
    "batch": {"errors", "spec", "files", "data", "model", "store", "progress", "settings", "cpus", "gbm", "cli"},
    "cluster": {"cli"},
    "client": set(),
}


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _imports(path: Path, module: str, *, top_level_only: bool) -> list[tuple[str, list[str]]]:
    """(imported module, names) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # `from . import x`: x is a module of the package
                out += [(f"{target}.{a.name}", []) for a in node.names]
            else:
                out.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def test_every_import_points_down():
    wrong = []
    for module, path in _modules():
        layer = _layer(module)
        for target, names in _imports(path, module, top_level_only=False):
            if not target.startswith("klarna_pd."):
                continue
            to = _layer(target)
            if to != layer and to not in ALLOWED[layer]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_module_reaches_into_another_package_s_private_names():
    wrong = []
    for module, path in _modules():
        for target, names in _imports(path, module, top_level_only=False):
            if target.startswith("klarna_pd.") and _layer(target) != _layer(module):
                wrong += [f"{module} imports {target}.{n}" for n in names if n.startswith("_")]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    graph = {}
    for module, path in _modules():
        graph[module] = {t for t, _ in _imports(path, module, top_level_only=True) if t.startswith("klarna_pd.")}
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            cycle = stack[stack.index(node):] + [node]
            raise AssertionError(" -> ".join(cycle))
        if node in seen or node not in graph:
            return
        stack.append(node)
        for nxt in graph[node]:
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in graph:
        visit(node)


def test_the_store_and_s3_do_not_import_each_other():
    local = {t for t, _ in _imports(PACKAGE / "store" / "local.py", "klarna_pd.store.local", top_level_only=False)}
    assert "klarna_pd.store.s3" not in local


def test_scoring_needs_no_pandas_pyarrow_or_scikit_learn(small_trained):
    """The server's path, from a request body to a PD, with those libraries made unimportable."""
    code = f"""
import importlib.abc
import sys

class Absent(importlib.abc.MetaPathFinder):  # as in the server image, where they are not installed
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pandas", "pyarrow", "sklearn"):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Absent())
import bentoml
from klarna_pd.serving.applicants import parse_predict
from klarna_pd.serving.scorer import Scorer
from klarna_pd.store.local import load_stored
model = load_stored(bentoml.models.get({small_trained.model_tag!r}))
apps = parse_predict(b'{{"applicants": [{{"age": 40, "reasons": 2}}]}}', model.spec, max_applicants=10, max_reasons=4)
result = Scorer(model, info={{}}).score(apps)
assert 0 < result[0]["pd"] < 1, result
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_servers_and_clis_load_lightgbm_without_its_scikit_learn_and_pandas_glue(small_trained, bentoml_home,
                                                                                 synthetic_small, tmp_path):
    """Where scikit-learn and pandas are installed (the dev venv), a server worker importing the
    service, and the batch CLI scoring a file, still do not load scikit-learn through LightGBM (1 s
    of every start, klarna_pd/gbm.py); it stays importable. A process using klarna_pd.model as a
    library, or training, keeps LightGBM whole."""
    serving = """
import sys
import service, lightgbm.compat
loaded = sorted(m for m in ("sklearn", "pandas") if m in sys.modules)
assert not loaded and not lightgbm.compat.SKLEARN_INSTALLED, loaded
import pandas, sklearn.base
print("ok")
"""
    batch = f"""
import sys
from klarna_pd.batch.__main__ import main
assert main(["--model", {small_trained.model_tag!r}, "--input", {str(synthetic_small)!r},
             "--output", {str(tmp_path / "scores.csv")!r}, "--quiet"]) == 0
import lightgbm.compat
assert "sklearn" not in sys.modules and not lightgbm.compat.SKLEARN_INSTALLED
print("ok")
"""
    library = """
import klarna_pd.model, lightgbm
lightgbm.LGBMClassifier()  # raises where lightgbm.compat found no scikit-learn
print("ok")
"""
    training = """
import klarna_pd.training, lightgbm.compat
assert lightgbm.compat.SKLEARN_INSTALLED and lightgbm.compat.PANDAS_INSTALLED
print("ok")
"""
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "KLARNA_PD_MODEL_TAG": small_trained.model_tag}
    for code in (serving, batch, library, training):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
        assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
