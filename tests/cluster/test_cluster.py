"""The cluster checks, run by the real ``kubernetes`` client against a local API server that holds
the chart's rendered objects with controller status, and against a real ``bentoml serve``.

A ``cluster`` marker runs ``check`` against a real cluster when KUBECONFIG is set.
"""

import os
import urllib.parse

import pytest

from klarna_pd.cluster.__main__ import main

from ..deploy.test_chart import _values, render
from .fake_api import FakeAPI, with_status

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def rendered():
    return {"default": render(None), "ingress-off": render(_values("ingress-off")), "hpa-off": render(_values("hpa-off"))}


def _run(capsys, api: FakeAPI, tmp_path, *args: str) -> tuple[int, str, str]:
    config = api.kubeconfig(tmp_path / "kubeconfig")
    code = main([args[0], "--release", "klarna-pd", "--namespace", "risk", "--kubeconfig", str(config), *args[1:]])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_healthy_release_through_the_ingress(rendered, server, tmp_path, capsys):
    with FakeAPI(with_status(rendered["default"]), "risk") as api:
        code, out, _ = _run(capsys, api, tmp_path, "check", "--ingress-url", server)
    assert code == 0, out
    assert "ok    rollout            2 desired, 2 updated, 2 ready, 2 available" in out
    assert "ok    autoscaler         2 current, 2 desired (min 2, max 10); CPU 23 % of 60 % target" in out
    assert "ok    disruption budget  2 healthy of 1 required, 1 disruption(s) allowed" in out
    assert "ok    ingress            k8s-risk-klarnapd.elb.example.com (host pd.internal.example.com)" in out
    assert f"ok    sample request     ingress {server}/predict: HTTP 200 in" in out and ", PD 0." in out


def test_no_ingress_goes_through_the_api_servers_service_proxy(rendered, server, tmp_path, capsys):
    with FakeAPI(with_status(rendered["ingress-off"]), "risk", backend=server) as api:
        code, out, _ = _run(capsys, api, tmp_path, "check")
        proxied = [urllib.parse.unquote(r) for r in api.requests if r.startswith("POST")]
    assert code == 0, out
    assert "none: sample request through the API server's service proxy" in out
    assert "ok    sample request     service proxy risk/klarna-pd:http: HTTP 200" in out
    assert proxied == ["POST /api/v1/namespaces/risk/services/klarna-pd:http/proxy/predict"]


def test_fixed_replicas_without_an_autoscaler(rendered, server, tmp_path, capsys):
    with FakeAPI(with_status(rendered["hpa-off"]), "risk") as api:
        code, out, _ = _run(capsys, api, tmp_path, "check", "--ingress-url", server)
    assert code == 0, out
    assert "ok    rollout            3 desired, 3 updated, 3 ready, 3 available" in out
    assert "ok    autoscaler         none (fixed replicas)" in out


def test_a_stuck_rollout_fails_with_the_reason(rendered, server, tmp_path, capsys):
    with FakeAPI(with_status(rendered["default"], ready=1, stuck=True), "risk") as api:
        code, out, _ = _run(capsys, api, tmp_path, "check", "--ingress-url", server)
    assert code == 1
    assert "FAIL  rollout" in out and "-> rollout stuck: ReplicaSet \"klarna-pd-7d9f\" has timed out progressing." in out


def test_an_autoscaler_without_metrics_fails(rendered, server, tmp_path, capsys):
    with FakeAPI(with_status(rendered["default"], hpa_metrics=False), "risk") as api:
        code, out, _ = _run(capsys, api, tmp_path, "check", "--ingress-url", server)
    assert code == 1
    assert "CPU unknown of 60 % target" in out
    assert "-> HPA cannot scale: FailedGetResourceMetric: the HPA was unable to compute the replica count" in out


def test_no_ready_pods_and_a_service_without_endpoints(rendered, tmp_path, capsys):
    with FakeAPI(with_status(rendered["ingress-off"], ready=0), "risk", backend=None) as api:
        code, out, _ = _run(capsys, api, tmp_path, "check")
    assert code == 1
    assert "-> no ready pods" in out
    assert "-> the endpoint answered 503" in out and "no endpoints available for service" in out


def test_an_endpoint_answering_non_200_fails(rendered, server, tmp_path, capsys):
    with FakeAPI(with_status(rendered["default"]), "risk") as api:
        code, out, _ = _run(capsys, api, tmp_path, "check", "--ingress-url", server + "/nowhere")
    assert code == 1
    assert "FAIL  sample request" in out and "-> the endpoint answered 404" in out


def test_a_missing_release_and_an_unreachable_api(rendered, tmp_path, capsys):
    with FakeAPI([], "risk") as api:
        code, _, err = _run(capsys, api, tmp_path, "check")
    assert code == 2 and "no Deployment of release 'klarna-pd' in namespace 'risk'" in err
    code, _, err = _run(capsys, api, tmp_path, "check")  # the server is gone now
    assert code == 2 and "cannot reach the Kubernetes API" in err


def test_wait_returns_at_once_when_rolled_out_and_times_out_with_the_reason(rendered, tmp_path, capsys):
    with FakeAPI(with_status(rendered["default"]), "risk") as api:
        code, out, _ = _run(capsys, api, tmp_path, "wait", "--timeout", "5")
    assert code == 0 and out.startswith("rolled out: 2 desired, 2 updated, 2 ready, 2 available")
    objects = with_status(rendered["default"])
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["status"].update(updatedReplicas=1, availableReplicas=1, readyReplicas=1, replicas=3)
    with FakeAPI(objects, "risk") as api:
        code, out, err = _run(capsys, api, tmp_path, "wait", "--timeout", "1")
    assert code == 1
    assert "NOT rolled out" in out and "timed out after 1 s: rollout in progress: 1 of 2 pods updated, 1 available" in out
    assert "waiting:" in err


@pytest.mark.parametrize("args, needle", [
    (["check", "--timeout", "0"], "expected a positive, finite number of seconds, got '0'"),
    (["wait", "--timeout", "nan"], "expected a positive, finite number of seconds, got 'nan'"),  # waited for ever
    (["wait", "--timeout", "inf"], "expected a positive, finite number of seconds, got 'inf'"),
    (["wait", "--timeout", "soon"], "expected a number of seconds, got 'soon'"),
    (["status"], "invalid choice: 'status'"),
])
def test_bad_flags(args, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("content, needle", [
    (None, "expected a kubeconfig file, no such file"),
    ("uuid;pd\na;0.1\n", "not a kubeconfig (expected YAML with clusters, contexts and users)"),
    ("apiVersion: v1\nclusters: [\n", "while parsing"),
])
def test_a_kubeconfig_that_cannot_be_used_is_named_with_the_reason(content, needle, tmp_path, capsys):
    """A CSV given as --kubeconfig was a TypeError traceback (exit 1); a missing file did not say so."""
    config = tmp_path / "kubeconfig"
    if content is not None:
        config.write_text(content)
    assert main(["check", "--kubeconfig", str(config)]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(config) in err


@pytest.mark.cluster
@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG is not set: no real cluster to check")
def test_a_real_cluster():
    release = os.environ.get("KLARNA_PD_RELEASE", "klarna-pd")
    namespace = os.environ.get("KLARNA_PD_NAMESPACE", "risk")
    assert main(["check", "--release", release, "--namespace", namespace]) == 0
