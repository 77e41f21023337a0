"""Is a release really serving? Rollout, autoscaler, disruption budget, ingress, one live request.

Each check reads the objects the Helm chart (or ``k8s/``) creates through the Kubernetes API with
the official ``kubernetes`` client and returns :class:`Check` rows: what was seen, and whether it
is right. The functions that judge an object take the client's model objects, so the same code
runs against a real cluster and against the recorded API answers the tests serve.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

SAMPLE_APPLICANT = {"uuid": "klarna-pd-check", "age": 34, "merchant_group": "Entertainment", "has_paid": True}


@dataclass
class Check:
    name: str
    ok: bool
    seen: str
    problem: str = ""


try:
    from urllib3.exceptions import HTTPError as _Urllib3Error
except ImportError:  # pragma: no cover - urllib3 comes with the kubernetes client
    _Urllib3Error = OSError
# What the client raises when the API server does not answer (urllib3 wraps the socket errors).
_UNREACHABLE = (OSError, _Urllib3Error)


class ClusterError(RuntimeError):
    """The API cannot be reached or the release's objects cannot be found."""


def _api():
    from kubernetes import client

    return client


# -- finding the release ------------------------------------------------------------------------


def find_deployment(apps, release: str, namespace: str):
    """The release's Deployment: labelled by Helm with the release name, or named after it (k8s/)."""
    from kubernetes.client.exceptions import ApiException

    try:
        found = apps.list_namespaced_deployment(namespace, label_selector=f"app.kubernetes.io/instance={release}").items
        if found:
            return found[0]
        return apps.read_namespaced_deployment(release, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise ClusterError(f"no Deployment of release {release!r} in namespace {namespace!r} "
                               f"(looked for label app.kubernetes.io/instance={release} and name {release})") from None
        raise ClusterError(f"Kubernetes API answered {exc.status} {exc.reason} while looking for the Deployment") from None
    except _UNREACHABLE as exc:
        raise ClusterError(f"cannot reach the Kubernetes API: {exc}") from None


def _read_optional(read, name: str, namespace: str):
    from kubernetes.client.exceptions import ApiException

    try:
        return read(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise ClusterError(f"Kubernetes API answered {exc.status} {exc.reason} reading {name}") from None
    except _UNREACHABLE as exc:
        raise ClusterError(f"cannot reach the Kubernetes API: {exc}") from None


# -- judging objects ---------------------------------------------------------------------------


def rollout(deployment) -> Check:
    spec, status, meta = deployment.spec, deployment.status, deployment.metadata
    desired = spec.replicas if spec.replicas is not None else 1
    updated = status.updated_replicas or 0
    ready = status.ready_replicas or 0
    available = status.available_replicas or 0
    total = status.replicas or 0
    seen = f"{desired} desired, {updated} updated, {ready} ready, {available} available"
    conditions = {c.type: c for c in (status.conditions or [])}
    progressing = conditions.get("Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return Check("rollout", False, seen, f"rollout stuck: {progressing.message or 'progress deadline exceeded'}")
    if (status.observed_generation or 0) < (meta.generation or 0):
        return Check("rollout", False, seen, "the controller has not seen the latest spec yet")
    if desired and ready == 0:
        return Check("rollout", False, seen, "no ready pods")
    if updated < desired or total > updated or available < desired:
        return Check("rollout", False, seen, f"rollout in progress: {updated} of {desired} pods updated, {available} available")
    return Check("rollout", True, seen)


def autoscaler(hpa) -> Check:
    if hpa is None:
        return Check("autoscaler", True, "none (fixed replicas)")
    spec, status = hpa.spec, hpa.status
    target = current = None
    for metric in spec.metrics or []:
        if metric.type == "Resource" and metric.resource.name == "cpu":
            target = metric.resource.target.average_utilization
    for metric in status.current_metrics or []:
        if metric.type == "Resource" and metric.resource is not None and metric.resource.name == "cpu":
            current = metric.resource.current.average_utilization
    seen = (f"{status.current_replicas or 0} current, {status.desired_replicas or 0} desired "
            f"(min {spec.min_replicas or 1}, max {spec.max_replicas}); CPU "
            f"{'unknown' if current is None else f'{current} %'} of {target if target is not None else '?'} % target")
    for cond in status.conditions or []:
        if cond.type == "ScalingActive" and cond.status == "False":
            return Check("autoscaler", False, seen, f"HPA cannot scale: {cond.reason}: {cond.message}")
        if cond.type == "AbleToScale" and cond.status == "False":
            return Check("autoscaler", False, seen, f"HPA unable to scale: {cond.reason}: {cond.message}")
    if target is not None and current is None:
        return Check("autoscaler", False, seen, "HPA has no CPU measurement (is metrics-server running?)")
    return Check("autoscaler", True, seen)


def disruption_budget(pdb) -> Check:
    if pdb is None:
        return Check("disruption budget", True, "none")
    status = pdb.status
    seen = (f"{status.current_healthy} healthy of {status.desired_healthy} required, "
            f"{status.disruptions_allowed} disruption(s) allowed")
    if (status.current_healthy or 0) < (status.desired_healthy or 0):
        return Check("disruption budget", False, seen, "fewer healthy pods than the budget requires")
    return Check("disruption budget", True, seen)


def ingress_address(ingress) -> tuple[str | None, str | None, str | None]:
    """(address, host, path to /predict) of an Ingress; address None until the load balancer has one."""
    host = path = None
    for rule in ingress.spec.rules or []:
        host = rule.host
        for p in (rule.http.paths if rule.http else []) or []:
            if p.path and p.path.rstrip("/") in ("", "/predict"):
                path = "/predict" if p.path.rstrip("/") == "" else p.path
        break
    lb = ingress.status.load_balancer if ingress.status else None
    entries = (lb.ingress if lb else None) or []
    address = (entries[0].hostname or entries[0].ip) if entries else None
    return address, host, path or "/predict"


# -- the live request --------------------------------------------------------------------------


def _timed_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (operator-given URL)
            payload, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    return status, payload, (time.perf_counter() - started) * 1e3


def _judge_answer(route: str, status: int, payload: bytes, ms: float) -> Check:
    seen = f"{route}: HTTP {status} in {ms:.0f} ms"
    if status != 200:
        return Check("sample request", False, seen, f"the endpoint answered {status}: {payload[:200].decode('utf-8', 'replace')}")
    try:
        pd = json.loads(payload)[0]["pd"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Check("sample request", False, seen, f"unexpected answer: {payload[:200]!r}")
    if not 0.0 < pd < 1.0:
        return Check("sample request", False, seen, f"PD {pd!r} is not a probability")
    return Check("sample request", True, f"{seen}, PD {pd:.4f}")


def post_through_ingress(base_url: str, host: str | None, path: str, api_key: str | None, timeout: float) -> Check:
    headers = {"Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = json.dumps({"applicants": [SAMPLE_APPLICANT]}).encode()
    try:
        status, payload, ms = _timed_post(base_url.rstrip("/") + path, body, headers, timeout)
    except OSError as exc:
        return Check("sample request", False, f"ingress {base_url}", f"cannot reach the ingress: {exc}")
    return _judge_answer(f"ingress {base_url}{path}", status, payload, ms)


def post_through_api_proxy(api_client, service: str, port: str, namespace: str, api_key: str | None, timeout: float) -> Check:
    """POST /predict through the API server's service proxy: what a port-forward gives, without one."""
    from kubernetes.client.exceptions import ApiException

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key  # Authorization is the API server's own header
    route = f"service proxy {namespace}/{service}:{port}"
    started = time.perf_counter()
    try:
        resp = api_client.call_api(
            "/api/v1/namespaces/{namespace}/services/{name}/proxy/predict", "POST",
            path_params={"namespace": namespace, "name": f"{service}:{port}"},
            header_params=headers, body={"applicants": [SAMPLE_APPLICANT]},
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=timeout,
        )
        status, payload = resp[1], resp[0].data
    except ApiException as exc:
        status, payload = exc.status, (exc.body or b"")
        if isinstance(payload, str):
            payload = payload.encode()
    except _UNREACHABLE as exc:
        return Check("sample request", False, route, f"cannot reach the service through the API server: {exc}")
    return _judge_answer(route, status, payload, (time.perf_counter() - started) * 1e3)


# -- the whole check ---------------------------------------------------------------------------


@dataclass
class Report:
    release: str
    namespace: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def table(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"release {self.release} in namespace {self.namespace}"]
        for c in self.checks:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.seen}")
            if c.problem:
                lines.append(f"        {'':<{width}}  -> {c.problem}")
        return "\n".join(lines)


def check_release(api_client, release: str, namespace: str, *, ingress_url: str | None = None,
                  api_key: str | None = None, timeout: float = 10.0) -> Report:
    """Every check of a release, in order; the live request goes through the ingress when there is
    one (or ``ingress_url``), else through the API server's service proxy."""
    client = _api()
    apps = client.AppsV1Api(api_client)
    deployment = find_deployment(apps, release, namespace)
    name = deployment.metadata.name
    hpa = _read_optional(client.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler, name, namespace)
    pdb = _read_optional(client.PolicyV1Api(api_client).read_namespaced_pod_disruption_budget, name, namespace)
    ingress = _read_optional(client.NetworkingV1Api(api_client).read_namespaced_ingress, name, namespace)
    checks = [rollout(deployment), autoscaler(hpa), disruption_budget(pdb)]
    if ingress is not None:
        address, host, path = ingress_address(ingress)
        checks.append(Check("ingress", address is not None, f"{address or 'no address yet'} (host {host or '*'})",
                            "" if address else "the load balancer has not been given an address yet"))
        if ingress_url or address:
            checks.append(post_through_ingress(ingress_url or f"http://{address}", host, path, api_key, timeout))
    else:
        checks.append(Check("ingress", True, "none: sample request through the API server's service proxy"))
        service = _read_optional(client.CoreV1Api(api_client).read_namespaced_service, name, namespace)
        if service is None:
            checks.append(Check("sample request", False, "no Service", f"no Service named {name!r}"))
        else:
            port = service.spec.ports[0].name or str(service.spec.ports[0].port)
            checks.append(post_through_api_proxy(api_client, name, port, namespace, api_key, timeout))
    return Report(release, namespace, checks)


def wait_for_rollout(api_client, release: str, namespace: str, *, timeout: float, interval: float = 2.0,
                     log=print) -> Check:
    """Poll the Deployment until its rollout completes, or until ``timeout`` with the last reason."""
    apps = _api().AppsV1Api(api_client)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        result = rollout(find_deployment(apps, release, namespace))
        if result.ok or (result.problem.startswith("rollout stuck")):
            return result
        if last is None or result.seen != last.seen:
            log(f"waiting: {result.seen} ({result.problem})")
        last = result
        if time.monotonic() >= deadline:
            return Check("rollout", False, result.seen, f"timed out after {timeout:g} s: {result.problem}")
        time.sleep(interval)
