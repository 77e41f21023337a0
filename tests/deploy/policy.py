"""Helpers of the deployment tests: schema validation and checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ..helpers.paths import ROOT

#: A current EKS version: rendered objects must validate against its schemas.
KUBE_VERSION = "1.35.0"


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def validate(obj: dict) -> None:
    """Validate one object against the Kubernetes schema of KUBE_VERSION (strict: no unknown fields)."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def checkov() -> str:
    """Path of the checkov CLI (installed by `make test` into its own venv), or skip with why."""
    for candidate in (os.environ.get("CHECKOV"), str(ROOT / ".venv-checkov" / "bin" / "checkov"), shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("checkov is not installed: `make test` puts it in .venv-checkov (its pins clash with ours)")


def run_checkov(directory: Path, framework: str) -> dict:
    """Run checkov offline on a directory; return its JSON summary and failures."""
    proc = subprocess.run(
        [checkov(), "-d", str(directory), "--framework", framework, "--compact", "-o", "json", "--skip-download"],
        capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    if not proc.stdout.strip():
        raise AssertionError(f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    reports = data if isinstance(data, list) else [data]
    failed = [f"{f['check_id']} {f['resource']} ({f['file_path']})" for r in reports for f in r["results"]["failed_checks"]]
    skipped = [
        {"check_id": s["check_id"], "resource": s["resource"], "reason": s["check_result"].get("suppress_comment", "")}
        for r in reports
        for s in r["results"]["skipped_checks"]
    ]
    passed = sum(r["summary"]["passed"] for r in reports)
    return {"failed": failed, "skipped": skipped, "passed": passed}


def hcl(path: Path) -> dict:
    """A Terraform file parsed by the HCL2 parser checkov ships (in checkov's venv: its pins clash with ours)."""
    python = Path(checkov()).with_name("python")
    if not python.exists():
        pytest.skip(f"no python beside {checkov()} to parse HCL with")
    code = "import hcl2, json, sys; print(json.dumps(hcl2.load(open(sys.argv[1]))))"
    proc = subprocess.run([str(python), "-c", code, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)

