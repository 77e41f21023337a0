"""Every chart value reaches the server as the type klarna_pd.settings reads.

Helm reads the numbers of values.yaml as float64 and prints those of a million or more in
exponent form; quoted into the environment, `maxBodyBytes: 16777216` became "1.6777216e+07" and
the pod never started (issue 12). Here every ci/ variant is rendered by the real Helm library and
its container environment parsed by `Settings`, as the server does at start.
"""

import copy
import re

import helm_python as helm
import pytest
import yaml

from klarna_pd.settings import Settings

from .test_chart import CHART, VARIANTS, _values, render

pytestmark = pytest.mark.deploy

DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())
# Settings fields the chart sets other than from .Values.settings, and where from.
SET_ELSEWHERE = {
    "model_dir": "model.uri: the init container's destination",
    "api_keys": "apiKeys.existingSecret: a Secret",
    "model_tag": "the model built into the image (KLARNA_PD_MODEL_TAG at bentoml build)",
    "verify_key": "modelSigning.existingSecret: the public key, mounted from a Secret",
    "allow_unsigned": "modelSigning.allowUnsigned",
    "signing_key": "training and push only: no pod signs models",
}


def _merged(overrides: dict | None) -> dict:
    def merge(base: dict, extra: dict) -> dict:
        out = copy.deepcopy(base)
        for k, v in extra.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    return merge(DEFAULTS, overrides or {})


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _server_env(values: dict | None) -> dict[str, str]:
    (dep,) = render(values)["Deployment"]
    (server,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in server["env"] if "value" in e}


def _settings_from(env: dict[str, str], monkeypatch) -> Settings:
    """Settings as the server process builds them from exactly this environment."""
    import os

    for name in [n for n in os.environ if n.startswith("KLARNA_PD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        assert isinstance(value, str), (name, value)
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_environment_parses_into_the_values_it_was_given(variant, monkeypatch):
    overrides = _values(variant)
    settings = _settings_from(_server_env(overrides), monkeypatch)
    given = _merged(overrides)["settings"]
    parsed = settings.model_dump()
    for key, value in given.items():
        got = parsed[_snake(key)]
        assert got == value, (key, value, got)
        assert type(got) is type(value) or (type(value), type(got)) == (int, float), (key, value, got)


def test_the_large_values_variant_has_what_broke_and_more():
    settings = _values("large-values")["settings"]
    assert settings["maxBodyBytes"] >= 10**6 and settings["maxApplicants"] >= 10**4
    assert settings["adaptiveBatching"] is False and settings["driftWindow"] == 0


def test_the_default_pod_does_not_batch_and_a_variant_does(monkeypatch):
    """Batching off by default: in the pod's shape BentoML's batcher served a sixth of the requests
    and, once it had seen that load, made a lone one wait ~70 ms (benchmarks/results/batching.md).
    Both values still render and parse: the hpa-off variant turns it on."""
    env = _server_env(None)
    assert env["KLARNA_PD_ADAPTIVE_BATCHING"] == "false"
    assert _settings_from(env, monkeypatch).adaptive_batching is False
    assert _server_env(_values("hpa-off"))["KLARNA_PD_ADAPTIVE_BATCHING"] == "true"


def test_integers_are_rendered_as_integers():
    env = _server_env(None)
    assert env["KLARNA_PD_MAX_BODY_BYTES"] == "16777216"  # was "1.6777216e+07"
    env = _server_env({"settings": {"maxBodyBytes": 1 << 40, "maxInflightBytes": 1 << 41}})
    assert env["KLARNA_PD_MAX_BODY_BYTES"] == str(1 << 40)
    (dep,) = render({"preStopSleepSeconds": 5_000_000, "terminationGracePeriodSeconds": 5_000_100})["Deployment"]
    server = dep["spec"]["template"]["spec"]["containers"][0]
    assert server["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5000000"]


def test_every_setting_is_set_by_the_chart():
    from_values = {_snake(k) for k in DEFAULTS["settings"]}
    assert from_values.isdisjoint(SET_ELSEWHERE)
    assert set(Settings.model_fields) == from_values | set(SET_ELSEWHERE)


def test_the_init_container_and_the_server_do_not_report_usage():
    (dep,) = render({"model": {"uri": "s3://bucket/models/klarna-pd/v1"}})["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    for container in pod["initContainers"] + pod["containers"]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["BENTOML_DO_NOT_TRACK"] == "true", container["name"]


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"settings": {"maxBodyBytes": "16MB"}}, "maxBodyBytes"),
        ({"settings": {"maxBodyBytes": 1.5e6 + 0.5}}, "maxBodyBytes"),
        ({"settings": {"adaptiveBatching": "yes"}}, "adaptiveBatching"),
        ({"settings": {"driftWindow": -1}}, "driftWindow"),
        ({"settings": {"unknownSetting": 1}}, "unknownSetting"),
        ({"settings": {"bodyTimeoutSeconds": 30.5}}, "/settings/bodyTimeoutSeconds': exclusiveMaximum"),
        ({"settings": {"maxLatencyMs": 60000}}, "/settings/maxLatencyMs': exclusiveMaximum"),
        ({"settings": {"driftRefreshSeconds": 1e10}}, "/settings/driftRefreshSeconds': maximum"),
    ],
)
def test_the_schema_refuses_wrong_types_by_name(values, needle):
    with pytest.raises(helm.HelmError) as err:
        helm.Chart.load(CHART).render(values, name="klarna-pd", namespace="risk")
    assert needle in str(err.value)


@pytest.mark.parametrize(
    "settings",
    [
        {"maxBatchSize": 64, "batchMaxApplicants": 64},
        {"maxBatchSize": 63, "batchMaxApplicants": 64},
        {"maxInflightBytes": 16777216, "maxBodyBytes": 16777216},
        {"maxInflightBytes": 16777215, "maxBodyBytes": 16777216},
        # Past the request timeout (30 s) BentoML's 504 came first; past a day the drift refresher died.
        {"bodyTimeoutSeconds": 29.999}, {"bodyTimeoutSeconds": 30}, {"maxLatencyMs": 29999}, {"maxLatencyMs": 30000},
        {"driftRefreshSeconds": 86400}, {"driftRefreshSeconds": 86400.5},
    ],
)
def test_the_chart_refuses_exactly_the_settings_the_server_refuses(settings, monkeypatch):
    """The rules between two settings live in Settings; the chart repeats them (templates/_validate.tpl)
    so that `helm install` fails instead of the pods: both sides must agree at the boundary."""
    values = _merged({"settings": settings})
    env = {f"KLARNA_PD_{_snake(k).upper()}": str(v) for k, v in values["settings"].items()}
    try:
        _settings_from(env, monkeypatch)
        server_error = None
    except ValueError as exc:
        server_error = str(exc)
    try:
        render({"settings": settings})
        chart_error = None
    except helm.HelmError as exc:
        chart_error = str(exc)
    assert (server_error is None) == (chart_error is None), (server_error, chart_error)


# Blocks handed to Kubernetes as they are (their schema is Kubernetes'), or free-form maps.
UNTYPED = {"podSecurityContext", "securityContext", "resources", "strategy", "livenessProbe", "readinessProbe",
           "startupProbe", "topologySpreadConstraints", "nodeSelector", "tolerations", "affinity",
           "podAnnotations", "podLabels", "imagePullSecrets", "ingress.annotations", "ingress.tls",
           "serviceAccount.annotations", "autoscaling.behavior", "networkPolicy.ingressFrom", "monitoring.labels"}


def _leaves(values: dict, prefix: str = ""):
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in UNTYPED:
            yield from _leaves(value, f"{path}.")
        else:
            yield path


def test_the_schema_types_every_value():
    schema = __import__("json").loads((CHART / "values.schema.json").read_text())
    untyped = []
    for path in _leaves(DEFAULTS):
        node = schema
        for part in path.split("."):
            node = node.get("properties", {}).get(part)
            if node is None:
                break
        if node is None or not ({"type", "enum"} & set(node)):
            untyped.append(path)
    assert not untyped, f"values without a type in values.schema.json: {untyped}"
