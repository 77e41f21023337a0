"""Plain k8s/ manifests (kustomize) and terraform/: rendered, validated, formatted, policy-checked."""

import shutil
import subprocess

import pytest

from ..helpers.paths import ROOT
from .policy import documents, hcl, run_checkov, validate

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def eks_manifests():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed on this machine: `kubectl kustomize` cannot run")
    proc = subprocess.run(["kubectl", "kustomize", str(ROOT / "k8s" / "overlays" / "eks")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_eks_overlay_renders_and_validates(eks_manifests):
    objs = documents(eks_manifests)
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "PodDisruptionBudget",
                     "Service", "ServiceAccount"]
    for obj in objs:
        validate(obj)
        assert obj["metadata"]["namespace"] == "risk"
    dep = next(o for o in objs if o["kind"] == "Deployment")
    assert "replicas" not in dep["spec"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(".amazonaws.com/klarna-pd:0.1.0")
    sa = next(o for o in objs if o["kind"] == "ServiceAccount")
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]


def test_kustomize_and_chart_agree_on_what_matters(eks_manifests):
    """The two ways to deploy must not drift apart on probes, security and scaling."""
    from .test_chart import render

    chart = render(None)
    kz = {o["kind"]: o for o in documents(eks_manifests)}
    c_pod = chart["Deployment"][0]["spec"]["template"]["spec"]
    k_pod = kz["Deployment"]["spec"]["template"]["spec"]
    for key in ("livenessProbe", "readinessProbe", "startupProbe", "securityContext", "resources", "ports"):
        assert c_pod["containers"][0][key] == k_pod["containers"][0][key], key
    assert c_pod["securityContext"] == k_pod["securityContext"]
    # The key models must be signed with: the same Secret, mounted read-only, in both.
    key = "model-verify-key"
    assert {v["name"]: v for v in c_pod["volumes"]}[key] == {v["name"]: v for v in k_pod["volumes"]}[key]
    for pod in (c_pod, k_pod):
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["KLARNA_PD_VERIFY_KEY"] == "/etc/klarna-pd/signing/verify-key.pem"
    for key in ("minReplicas", "maxReplicas", "metrics"):
        assert chart["HorizontalPodAutoscaler"][0]["spec"][key] == kz["HorizontalPodAutoscaler"]["spec"][key]


def test_checkov_on_the_eks_overlay(eks_manifests, tmp_path):
    (tmp_path / "eks.yaml").write_text(eks_manifests)
    result = run_checkov(tmp_path, "kubernetes")
    assert not result["failed"], result["failed"]
    for skip in result["skipped"]:
        assert skip["reason"].strip(), f"skipped without a reason: {skip['check_id']} {skip['resource']}"


def _terraform() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not installed on this machine")
    return path


def test_terraform_fmt():
    proc = subprocess.run([_terraform(), "fmt", "-check", "-recursive", "-diff"], cwd=ROOT / "terraform",
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_terraform_validate(tmp_path):
    work = tmp_path / "terraform"
    shutil.copytree(ROOT / "terraform", work)
    init = subprocess.run([_terraform(), "init", "-backend=false", "-input=false", "-no-color"], cwd=work,
                          capture_output=True, text=True, timeout=300)
    if init.returncode != 0:
        reason = next((line.strip() for line in init.stderr.splitlines() if "registry.terraform.io" in line or "dial tcp" in line),
                      init.stderr.strip().splitlines()[-1] if init.stderr.strip() else "unknown")
        pytest.skip(f"terraform init cannot download providers and modules here: {reason}")
    proc = subprocess.run([_terraform(), "validate", "-no-color"], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checkov_on_terraform():
    result = run_checkov(ROOT / "terraform", "terraform")
    assert not result["failed"], result["failed"]
    assert result["passed"] > 50
    for skip in result["skipped"]:
        assert skip["reason"].strip(), f"skipped without a reason: {skip['check_id']} {skip['resource']}"


def test_terraform_has_what_the_readme_uses():
    text = "".join(p.read_text() for p in (ROOT / "terraform").glob("*.tf"))
    for output in ("ecr_repository_url", "model_bucket", "model_reader_role_arn", "model_pusher_policy_arn",
                   "cluster_name", "region"):
        assert f'output "{output}"' in text
    for must in ('status = "Enabled"', "block_public_acls       = true", 'sse_algorithm     = "aws:kms"',
                 '"s3:GetObject"', 'image_tag_mutability = "IMMUTABLE"', "eks_managed_node_groups"):
        assert must in text, must


def _policy_statements(name: str) -> list[dict]:
    """The statements of terraform/irsa.tf's aws_iam_policy_document ``name`` (the parser wraps each value in a list)."""
    docs = [d["aws_iam_policy_document"] for d in hcl(ROOT / "terraform" / "irsa.tf")["data"] if "aws_iam_policy_document" in d]
    (doc,) = [d[name] for d in docs if name in d]
    return [{key: (value[0] if isinstance(value, list) and len(value) == 1 else value) for key, value in st.items()}
            for st in doc["statement"]]


def test_the_model_roles_allow_what_pull_and_push_do_and_no_more():
    """The pods read; the release job writes and reads (a push reads the version's manifest first)
    and lists the bucket: without s3:ListBucket S3 answers a new version's missing manifest with 403,
    and README step 6 sent pushers off with a policy whose every first push failed. No one deletes."""
    reader, pusher = _policy_statements("model_reader"), _policy_statements("model_pusher")
    actions = {name: {a for st in sts for a in st["actions"]} for name, sts in (("reader", reader), ("pusher", pusher))}
    assert actions["reader"] == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}
    assert actions["pusher"] == {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListBucket",
                                 "kms:GenerateDataKey", "kms:Decrypt"}
    (listing,) = [st for st in pusher if "s3:ListBucket" in st["actions"]]
    assert "condition" not in listing  # the 404 for a missing key needs the bucket-wide permission
    (listing,) = [st for st in reader if "s3:ListBucket" in st["actions"]]
    assert listing["condition"]["variable"] == ["s3:prefix"]  # the pods list their prefix only


def test_kustomize_pods_run_with_the_chart_default_settings(eks_manifests, monkeypatch):
    """The base is "the chart's defaults" (README): its server must build the same Settings (the
    base left the compiled trees off, the chart's default on, and reported usage to BentoML)."""
    from .test_chart import render
    from .test_chart_env import SET_ELSEWHERE, _settings_from

    def env_of(deployment):
        (server,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "klarna-pd"]
        return {e["name"]: e["value"] for e in server["env"] if "value" in e}

    chart_env = env_of(render(None)["Deployment"][0])
    kz_env = env_of({o["kind"]: o for o in documents(eks_manifests)}["Deployment"])
    chart, kz = (_settings_from(env, monkeypatch).model_dump(exclude=set(SET_ELSEWHERE)) for env in (chart_env, kz_env))
    assert kz == chart, {k: (kz[k], chart[k]) for k in chart if kz[k] != chart[k]}
    assert kz_env.get("BENTOML_DO_NOT_TRACK") == chart_env.get("BENTOML_DO_NOT_TRACK") == "true"
