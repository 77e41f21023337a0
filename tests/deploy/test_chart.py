"""The Helm chart, linted and rendered by the real Helm library (helm-python-sdk), then checked."""


import helm_python as helm
import pytest
import yaml

from ..helpers.paths import ROOT
from .policy import KUBE_VERSION, documents, run_checkov, validate

pytestmark = pytest.mark.deploy

CHART = ROOT / "helm" / "klarna-pd"
VARIANTS = {"default": None, **{p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*-values.yaml"))}}


def _values(name: str) -> dict | None:
    path = VARIANTS[name]
    return yaml.safe_load(path.read_text()) if path else None


def render(values: dict | None) -> dict[str, list[dict]]:
    """Objects by kind, rendered as `helm install klarna-pd -n risk` would."""
    out = helm.Chart.load(CHART).render(values, name="klarna-pd", namespace="risk", is_install=True)
    objects: dict[str, list[dict]] = {}
    for path, text in out.items():
        if path.endswith(".yaml"):
            for doc in documents(text):
                objects.setdefault(doc["kind"], []).append(doc)
    return objects


def test_there_are_variants_for_hpa_off_ingress_off_and_s3_models():
    assert {"default", "hpa-off", "ingress-off", "s3-model", "network-policy"} <= set(VARIANTS)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lint_strict(variant):
    report = helm.lint(CHART, _values(variant), strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_rendered_object_validates_against_the_eks_schema(variant):
    objects = render(_values(variant))
    assert sum(len(v) for v in objects.values()) >= 6
    for kind, items in objects.items():
        for obj in items:
            if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # Prometheus Operator CRDs: not in the Kubernetes schema; test_monitoring checks them
            validate(obj)
            assert obj["metadata"]["namespace"] == "risk", (kind, obj["metadata"]["name"])


def _deployment(values):
    (dep,) = render(values)["Deployment"]
    return dep


def test_deployment_defaults():
    dep = _deployment(None)
    spec = dep["spec"]
    assert "replicas" not in spec  # the HPA owns it
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    assert c["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["allowPrivilegeEscalation"] is False
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["KLARNA_PD_WORKERS"] == "1" and env["KLARNA_PD_MAX_LATENCY_MS"] == "300"
    assert "KLARNA_PD_MODEL_DIR" not in env and "initContainers" not in pod
    # The writable places of a read-only root filesystem.
    assert {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")} == {"/tmp", "/var/lib/bentoml"}
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]


def test_hpa_and_pdb():
    objs = render(None)
    (hpa,) = objs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    (pdb,) = objs["PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1


def test_hpa_off_sets_replicas():
    objs = render(_values("hpa-off"))
    assert "HorizontalPodAutoscaler" not in objs
    assert objs["Deployment"][0]["spec"]["replicas"] == 3


def test_ingress_routes_predict_through_the_alb():
    (ing,) = render(None)["Ingress"]
    assert ing["spec"]["ingressClassName"] == "alb"
    assert ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    (path,) = ing["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"  # so POST /predict reaches the service
    (svc,) = render(None)["Service"]
    assert path["backend"]["service"]["name"] == svc["metadata"]["name"]
    assert path["backend"]["service"]["port"]["number"] == svc["spec"]["ports"][0]["port"]
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert "Ingress" not in render(_values("ingress-off"))


def test_s3_model_variant_pulls_before_serving():
    values = _values("s3-model")
    objs = render(values)
    pod = objs["Deployment"][0]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"][:4] == ["python", "-m", "klarna_pd.store", "pull"]
    assert init["command"][4] == values["model"]["uri"]
    dest = init["command"][init["command"].index("--dest") + 1]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["KLARNA_PD_MODEL_DIR"]["value"] == dest
    assert env["KLARNA_PD_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "klarna-pd-api-keys"
    (sa,) = objs["ServiceAccount"]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/klarna-pd-model-reader")


def test_a_new_model_uri_rolls_the_pods():
    a = _deployment({"model": {"uri": "s3://bucket/models/klarna-pd/v1"}})
    b = _deployment({"model": {"uri": "s3://bucket/models/klarna-pd/v2"}})
    key = "checksum/model-and-settings"
    assert a["spec"]["template"]["metadata"]["annotations"][key] != b["spec"]["template"]["metadata"]["annotations"][key]


def test_helm_test_pod_posts_an_applicant_to_predict():
    (pod,) = render(None)["Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "/predict" in script and '"applicants"' in script and "--fail-with-body" in script
    keyed = render(_values("s3-model"))["Pod"][0]
    assert "Authorization: Bearer $API_KEY" in keyed["spec"]["containers"][0]["args"][0]


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"settings": {"workers": 0}}, "workers"),
        ({"model": {"uri": "http://example.com/model"}}, "uri"),
        ({"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": 150}}, "targetCPUUtilizationPercentage"),
        ({"replicaCount": "two"}, "replicaCount"),
        ({"unknownKey": 1}, "unknownKey"),
        # Past 2**53 Helm's float64 is no longer a whole number and the env value overflowed to < 0.
        ({"settings": {"maxBodyBytes": 1e19}}, "/settings/maxBodyBytes': maximum"),
        ({"image": {"repository": "repo.example.com/klarna-pd:v1"}}, "/image/repository"),
        ({"imagePullSecrets": ["regcred"]}, "/imagePullSecrets/0"),
        ({"podAnnotations": {"prometheus.io/scrape": True}}, "/podAnnotations/prometheus.io~1scrape"),
        # The project's container rules (README "Reliability and security"), not only defaults.
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "/securityContext/readOnlyRootFilesystem"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "/securityContext/allowPrivilegeEscalation"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext/runAsUser"),
        ({"securityContext": None}, "missing property 'securityContext'"),
        ({"resources": None}, "missing property 'resources'"),
        ({"resources": {"requests": {"cpu": None}, "limits": {"cpu": None}}}, "missing property 'cpu'"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": None}}, "targetCPUUtilizationPercentage"),
        ({"ingress": {"hosts": []}}, "/ingress/hosts': minItems"),
        ({"ingress": {"hosts": [{"host": "pd.example.com", "paths": [{"path": "/"}]}]}}, "pathType"),
        ({"ingress": {"hosts": [{"host": "https://pd.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]}},
         "/ingress/hosts/0/host"),
        ({"ingress": {"tls": [{"hosts": "pd.example.com"}]}}, "/ingress/tls/0/hosts"),
        ({"podDisruptionBudget": {"minAvailable": "abc"}}, "/podDisruptionBudget/minAvailable"),
        ({"tests": {"apiKeySecretKey": ""}}, "/tests/apiKeySecretKey"),
        # Each rendered before, then failed in the cluster or silently did nothing (a helper's probe).
        ({"resources": {"requests": {"memory": "1.5GB"}}}, "/resources/requests/memory"),
        ({"resources": {"limits": {"memory": 1536}}}, "/resources/limits/memory"),  # bytes: no container starts
        ({"resources": {"limits": {"memory": "1536m"}}}, "/resources/limits/memory"),  # millibytes
        ({"resources": {"limits": {"cpu": "1 core"}}}, "/resources/limits/cpu"),
        ({"strategy": {"rollingUpdate": {"maxSurge": "1"}}}, "/strategy/rollingUpdate/maxSurge"),
        ({"monitoring": {"serviceMonitor": {"interval": "30s1m"}}}, "/monitoring/serviceMonitor/interval"),
        ({"image": {"tag": "sha256:" + "a" * 64}}, "/image/tag"),
        ({"image": {"repository": "ECR.example.com/Klarna-PD"}}, "/image/repository"),
        ({"fullnameOverride": "klarna.pd"}, "/fullnameOverride"),
        ({"nameOverride": "klarna pd"}, "/nameOverride"),
        ({"podLabels": {"team": "credit risk"}}, "/podLabels/team"),
        ({"podLabels": {"team name": "risk"}}, "invalid propertyName 'team name'"),
        ({"preStopSleepSeconds": None}, "missing property 'preStopSleepSeconds'"),  # rendered `sleep ""`
        ({"terminationGracePeriodSeconds": None}, "missing property 'terminationGracePeriodSeconds'"),
        ({"monitoring": {"prometheusRule": {"psiWatch": None}}}, "missing property 'psiWatch'"),  # invalid PromQL
        ({"podDisruptionBudget": {"minAvailable": None}}, "missing property 'minAvailable'"),
        ({"modelSigning": {"secretKey": None}}, "missing property 'secretKey'"),
        ({"networkPolicy": None}, "missing property 'networkPolicy'"),  # was a nil pointer
        ({"networkPolicy": {"metricsFrom": {"namespaceSelector": {}}}}, "/networkPolicy/metricsFrom"),
    ],
)
def test_values_schema_refuses_bad_values(values, needle):
    with pytest.raises(helm.HelmError) as err:
        helm.Chart.load(CHART).render(values, name="klarna-pd", namespace="risk")
    assert needle in str(err.value)


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}, "autoscaling.minReplicas (5) must not exceed"),
        ({"strategy": {"rollingUpdate": {"maxSurge": 0}}}, "maxSurge and maxUnavailable are both 0"),
        ({"preStopSleepSeconds": 30}, "preStopSleepSeconds (30) must be less than terminationGracePeriodSeconds (30)"),
        ({"monitoring": {"prometheusRule": {"enabled": True, "psiWatch": 0.5}}}, "psiWatch (0.5) must be below psiAct"),
        ({"modelSigning": {"existingSecret": ""}}, "the server would refuse every model"),
        ({"podLabels": {"app.kubernetes.io/name": "other"}}, "podLabels: app.kubernetes.io/name is one of the chart's own"),
        ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                                         "labelSelector": {}}]}, "topologySpreadConstraints[0].labelSelector"),
        # A budget that keeps every pod blocks node drains and cluster upgrades for ever.
        ({"autoscaling": {"minReplicas": 1}},
         "podDisruptionBudget.minAvailable (1) keeps every pod of the fewest the Deployment may run "
         "(autoscaling.minReplicas 1)"),
        ({"autoscaling": {"enabled": False}, "replicaCount": 1}, "(1) keeps every pod of the fewest the Deployment "
                                                                 "may run (replicaCount 1)"),
        ({"podDisruptionBudget": {"minAvailable": "60%"}}, "(60%) keeps every pod"),  # rounded up: 2 of 2
        ({"autoscaling": {"minReplicas": 1}, "podDisruptionBudget": {"minAvailable": "50%"}}, "(50%) keeps every pod"),
        # Found by rendering what a user would plausibly set: each rendered, then failed in the cluster.
        ({"resources": {"requests": {"cpu": "2"}}}, "resources.requests.cpu (2) is more than resources.limits.cpu (1)"),
        ({"resources": {"limits": {"memory": "512Mi"}}},
         "resources.requests.memory (768Mi) is more than resources.limits.memory (512Mi)"),
        ({"livenessProbe": {"tcpSocket": {"port": "http"}}}, "livenessProbe: a probe takes exactly one handler (httpGet, "
         "tcpSocket, exec or grpc), got 2 (httpGet, tcpSocket); values merge into the chart's httpGet, so to use another "
         "set livenessProbe.httpGet to null"),
        ({"readinessProbe": {"httpGet": None}}, "readinessProbe: no handler left (httpGet, tcpSocket, exec or grpc); "
                                                 "give one, or set readinessProbe itself to null"),
        ({"resources": {"requests": {"cpu": None}, "limits": {"cpu": "4"}}},  # the request defaults to the limit
         "at most 25% of resources.limits.cpu (4): below autoscaling.targetCPUUtilizationPercentage (60)"),
        ({"resources": {"requests": {"cpu": "0m"}}}, "resources.requests.cpu is 0: the HPA scales on CPU use"),
        ({"model": {"uri": "s3://models/klarna-pd/V1"}}, "name and version in lower case"),
        # A shared ALB with a path per service (/pd) routed only 404s: an ALB does not rewrite paths.
        ({"ingress": {"hosts": [{"host": "api.example.com",
                                 "paths": [{"path": "/pd", "pathType": "Prefix"}]}]}},
         "ingress.hosts[0].paths[0].path /pd: an ALB forwards the path as it came (it cannot rewrite it)"),
        ({"ingress": {"annotations": {"alb.ingress.kubernetes.io/target-type": "instance"}}},
         "ingress: the ALB's target-type instance sends traffic to a node port, and service.type ClusterIP has none"),
        ({"settings": {"workers": 4}}, "settings.workers (4) is more than resources.limits.cpu (1) can run"),
        ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}},
         "settings.workers (1) use about one CPU each, at most 50% of resources.requests.cpu (2): below "
         "autoscaling.targetCPUUtilizationPercentage (60), the HPA would never add a pod"),
        ({"monitoring": {"serviceMonitor": {"enabled": True, "interval": "5s"}}},
         "scrapeTimeout (10s) is longer than its interval (5s): the Prometheus Operator skips"),
        ({"monitoring": {"prometheusRule": {"enabled": True}}}, "prometheusRule needs monitoring.serviceMonitor.enabled"),
        ({"monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
          "settings": {"driftWindow": 0}}, "settings.driftWindow is 0"),
        ({"model": {"uri": "s3://models/klarna-pd//v1"}}, "model.uri: expected s3://bucket/<prefix>/<name>/<version>"),
        ({"model": {"uri": "s3://models/a/../klarna-pd/v1"}}, 'got "s3://models/a/../klarna-pd/v1"'),
        ({"model": {"uri": "s3://my..models/klarna-pd/v1"}}, "model.uri: expected"),
        ({"model": {"uri": "s3://models/klarna-pd"}}, "model.uri: expected"),  # no version
        ({"serviceAccount": {"create": False, "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}}},
         "serviceAccount.annotations are set but serviceAccount.create is false"),
        # Rendered, and Prometheus's scrapes then timed out at the NetworkPolicy: no series, no drift alerts.
        ({"networkPolicy": {"ingressFrom": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]},
          "monitoring": {"serviceMonitor": {"enabled": True}}},
         "networkPolicy.ingressFrom admits only the listed sources, so Prometheus cannot scrape /metrics: "
         "list its pods in networkPolicy.metricsFrom "
         "(for example a namespaceSelector for the monitoring namespace)"),
    ],
)
def test_rules_between_values_fail_the_install_with_the_reason(values, needle):
    """What the schema cannot say (it checks each value alone) would otherwise render objects the API
    server refuses or pods that never become ready (templates/_validate.tpl)."""
    with pytest.raises(helm.HelmError) as err:
        helm.Chart.load(CHART).render(values, name="klarna-pd", namespace="risk")
    assert needle in str(err.value)


def test_values_near_the_rules_still_render():
    assert _deployment({"image": {"repository": "localhost:5000/klarna-pd"}})  # a registry's port is not a tag
    assert _deployment({"autoscaling": {"minReplicas": 3, "maxReplicas": 3}, "preStopSleepSeconds": 29})
    assert _deployment({"podLabels": {"team": "risk"}, "monitoring": {"serviceMonitor": {"interval": "1m30s"}}})
    limits_only = _deployment({"resources": {"requests": None}})  # Kubernetes takes the requests from them
    assert "requests" not in limits_only["spec"]["template"]["spec"]["containers"][0]["resources"]
    for budget in ({"minAvailable": 0}, {"enabled": False}):  # the one pod may go
        assert _deployment({"autoscaling": {"minReplicas": 1}, "podDisruptionBudget": budget})
    assert _deployment({"autoscaling": {"minReplicas": 3}, "podDisruptionBudget": {"minAvailable": 2}})
    assert _deployment({"autoscaling": {"minReplicas": 3}, "podDisruptionBudget": {"minAvailable": "50%"}})  # 2 of 3
    assert _deployment({"resources": {"requests": {"cpu": "1000m", "memory": "1536Mi"}, "limits": {"memory": "1.5Gi"}}})
    assert _deployment({"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": 1.5}}})  # 1 worker: 200 % of 0.5
    assert _deployment({"settings": {"workers": 2}, "resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": 2}}})
    assert _deployment({"monitoring": {"serviceMonitor": {"enabled": True, "interval": "1m", "scrapeTimeout": "1m"},
                                       "prometheusRule": {"enabled": True}}})
    assert _deployment({"model": {"uri": "s3://models/klarna-pd/v1"}})  # a push to the bucket's root
    assert _deployment({"serviceAccount": {"create": False, "name": "risk-models"}})
    assert _deployment({"ingress": {"annotations": {"alb.ingress.kubernetes.io/target-type": "instance"}},
                        "service": {"type": "NodePort"}})
    assert _deployment({"livenessProbe": {"grpc": None}})  # a null the defaults lack stays in the values
    assert _deployment({"resources": {"requests": {"memory": "2147483648"}, "limits": {"memory": 4e9}},
                        "nameOverride": "2fa"})
    tcp = _deployment({"livenessProbe": {"httpGet": None, "tcpSocket": {"port": "http"}}})  # a handler switched
    assert tcp["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert "httpGet" not in tcp["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert _deployment({"image": {"tag": "1.10"}, "nameOverride": "pd", "podLabels": {"example.com/team": "risk_2"},
                        "strategy": {"rollingUpdate": {"maxSurge": "25%"}}})
    recreate = _deployment({"strategy": {"type": "Recreate"}})["spec"]["strategy"]
    assert recreate == {"type": "Recreate"}  # values.yaml's rollingUpdate block is not carried along
    scraped = {"monitoring": {"serviceMonitor": {"enabled": True}}}
    assert _deployment({**scraped, "networkPolicy": {"ingressFrom": INGRESS_FROM, "metricsFrom": PROMETHEUS}})
    assert _deployment({**scraped, "networkPolicy": {"enabled": False, "ingressFrom": INGRESS_FROM}})  # none


INGRESS_FROM = [{"ipBlock": {"cidr": "10.0.0.0/16"}}]  # the ALB's addresses in the VPC (target-type ip)
PROMETHEUS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_the_network_policy_admits_any_source_while_ingress_from_is_empty():
    """Prometheus and the helm test pod are in with everyone else: metricsFrom changes nothing then."""
    (policy,) = render(None)["NetworkPolicy"]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    scraped = {"monitoring": {"serviceMonitor": {"enabled": True}}}
    assert render({**scraped, "networkPolicy": {"metricsFrom": PROMETHEUS}}) == render(scraped)


@pytest.mark.parametrize(
    "values",
    [
        _values("network-policy"),  # with the ServiceMonitor and Prometheus's peers
        {"networkPolicy": {"ingressFrom": [{"namespaceSelector": {"matchLabels": {"team": "checkout"}}},
                                           {"podSelector": {"matchLabels": {"app": "gateway"}}}]},
         "nameOverride": "pd"},
    ],
    ids=["network-policy", "ingress-from-only"],
)
def test_a_network_policy_listing_sources_still_admits_the_helm_test_pod_and_prometheus(values):
    """Listing ingressFrom (say, only the ingress controller) shut out the chart's own clients on port
    http: `helm test` timed out and Prometheus scraped nothing."""
    objects = render(values)
    (policy,) = objects["NetworkPolicy"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]  # /predict and /metrics alike
    listed = values["networkPolicy"]["ingressFrom"]
    metrics = values["networkPolicy"].get("metricsFrom", [])
    assert rule["from"][: len(listed)] == listed
    assert [peer for peer in metrics if peer not in rule["from"]] == []
    (test_peer,) = [peer for peer in rule["from"][len(listed):] if peer not in metrics]
    # A podSelector alone selects pods of the policy's namespace, where the test pod runs.
    selected = test_peer.pop("podSelector").pop("matchLabels")
    assert test_peer == {} and selected
    (test_pod,) = objects["Pod"]
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["metadata"]["namespace"] == policy["metadata"]["namespace"]
    assert selected.items() <= test_pod["metadata"]["labels"].items()
    # Labels only the test pod carries: not the server's pods, and the policy does not select the test pod.
    server = objects["Deployment"][0]["spec"]["template"]["metadata"]["labels"]
    assert not selected.items() <= server.items()
    assert not policy["spec"]["podSelector"]["matchLabels"].items() <= test_pod["metadata"]["labels"].items()


def test_the_alb_may_route_every_path_the_server_answers_and_others_elsewhere():
    """The chart's list of the server's routes (templates/_validate.tpl) is the gateway's."""
    from klarna_pd.serving.gateway import Gateway, Limits

    routes = Gateway(None, state=None, limits=Limits(1024, 1, 0, 1024, 1.0)).routes
    hosts = [{"host": "pd.example.com", "paths": [{"path": path, "pathType": "Exact"} for path in routes]}]
    (ingress,) = render({"ingress": {"hosts": hosts}})["Ingress"]
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == list(routes)
    def one_path(path: str, **ingress) -> dict:
        paths = [{"path": path, "pathType": "Prefix"}]
        return {"ingress": {**ingress, "hosts": [{"host": "pd.example.com", "paths": paths}]}}

    with pytest.raises(helm.HelmError, match="an ALB forwards the path as it came"):
        render(one_path("/predict-v2"))
    other = render(one_path("/pd", className="nginx"))  # a controller that rewrites paths: not ours to check
    assert other["Ingress"][0]["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/pd"


# Blocks handed to Kubernetes as they are: one comment on the block, not on each field.
VERBATIM = {"podSecurityContext", "securityContext", "resources", "strategy", "livenessProbe",
            "readinessProbe", "startupProbe", "topologySpreadConstraints"}


def test_every_value_has_a_comment():
    lines = (CHART / "values.yaml").read_text().splitlines()
    block = None
    for i, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith(("#", "-")):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, rest = text.partition(":")
        if indent == 0:
            block = key
        is_leaf = rest.strip() != ""
        needs = (indent == 0 and block in VERBATIM) or (is_leaf and indent <= 2 and block not in VERBATIM)
        if needs:
            assert lines[i - 1].strip().startswith("#"), f"values.yaml line {i + 1} has no comment: {line!r}"


def test_notes_render():
    out = helm.Chart.load(CHART).render(None, name="klarna-pd", namespace="risk")
    notes = next(text for path, text in out.items() if path.endswith("NOTES.txt"))
    assert "helm test klarna-pd" in notes and "/predict" in notes


def test_checkov_passes_on_every_variant(tmp_path):
    for name in VARIANTS:
        out = helm.Chart.load(CHART).render(_values(name), name="klarna-pd", namespace="risk", is_install=True)
        text = "\n---\n".join(t for p, t in out.items() if p.endswith(".yaml") and t.strip())
        (tmp_path / f"{name}.yaml").write_text(text)
    result = run_checkov(tmp_path, "kubernetes")
    assert not result["failed"], result["failed"]
    assert result["passed"] > 100
    for skip in result["skipped"]:
        assert skip["reason"].strip(), f"skipped without a reason: {skip['check_id']} {skip['resource']}"


def test_monitoring_objects_are_off_by_default_and_match_the_service():
    assert "ServiceMonitor" not in render(None) and "PrometheusRule" not in render(None)
    objects = render(_values("monitoring"))
    (monitor,) = objects["ServiceMonitor"]
    (service,) = objects["Service"]
    (rule,) = objects["PrometheusRule"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(rules) == {"KlarnaPDScoreDriftWatch", "KlarnaPDScoreDriftAct", "KlarnaPDFeatureDriftAct"}
    assert rules["KlarnaPDScoreDriftWatch"]["expr"].endswith("> 0.1")
    assert rules["KlarnaPDScoreDriftAct"]["expr"].endswith("> 0.25")
    assert 'service="klarna-pd"' in rules["KlarnaPDFeatureDriftAct"]["expr"]
    # The alerts read the gauges the service exports under these names.
    exported = (ROOT / "klarna_pd" / "serving" / "monitoring.py").read_text()
    for r in rules.values():
        metric = r["expr"].split("(")[1].split("{")[0] if "by (" not in r["expr"] else r["expr"].split(") (")[1].split("{")[0]
        assert f'"{metric}"' in exported, metric
    assert rules["KlarnaPDScoreDriftAct"]["annotations"]["summary"].startswith("PD distribution of klarna-pd has shifted (PSI {{ $value")


def test_pods_verify_models_with_a_key_from_a_secret_mounted_read_only():
    """Both the init container's pull and the server's load check the signature (issue 15, item 11)."""
    pod = render(_values("s3-model"))["Deployment"][0]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-verify-key"]["secret"]["secretName"] == "klarna-pd-model-verify-key"
    for container in (pod["initContainers"][0], pod["containers"][0]):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["KLARNA_PD_VERIFY_KEY"] == "/etc/klarna-pd/signing/verify-key.pem"
        assert "KLARNA_PD_ALLOW_UNSIGNED" not in env
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "model-verify-key"]
        assert mount["readOnly"] is True and mount["mountPath"] == "/etc/klarna-pd/signing"
    dev = _deployment({"modelSigning": {"existingSecret": "", "allowUnsigned": True}})["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in dev["containers"][0]["env"]}
    assert env["KLARNA_PD_ALLOW_UNSIGNED"] == "true" and "KLARNA_PD_VERIFY_KEY" not in env
    assert "model-verify-key" not in {v["name"] for v in dev["volumes"]}
    with pytest.raises(helm.HelmError, match="allowUnsigned"):
        helm.Chart.load(CHART).render({"modelSigning": {"allowUnsigned": "yes"}}, name="klarna-pd", namespace="risk")
