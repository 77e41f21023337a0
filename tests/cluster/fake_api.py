"""A local HTTP server that answers the Kubernetes API paths the cluster checks call.

It holds real-shaped objects (the chart rendered with the Helm library, plus the ``status`` the
controllers would write) and answers like an API server: JSON objects, lists, 404 ``Status``
objects, and the service proxy (forwarded to a real ``bentoml serve``, or answered 503 as an API
server does when a Service has no ready endpoints). The ``kubernetes`` client talks to it over
HTTP through a kubeconfig, unmodified.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

_COLLECTIONS = {
    ("apps/v1", "deployments"): "Deployment",
    ("autoscaling/v2", "horizontalpodautoscalers"): "HorizontalPodAutoscaler",
    ("policy/v1", "poddisruptionbudgets"): "PodDisruptionBudget",
    ("networking.k8s.io/v1", "ingresses"): "Ingress",
    ("v1", "services"): "Service",
}
_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+/[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/?]+)(?:/(?P<name>[^/?]+))?(?P<rest>/[^?]*)?")


class FakeAPI:
    def __init__(self, objects: list[dict], namespace: str, backend: str | None = None) -> None:
        self.objects = objects
        self.namespace = namespace
        self.backend = backend  # where service-proxy requests go; None: "no endpoints" (503)
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll: serve_forever's default (0.5 s) is how long each shutdown() waited.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FakeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": self.namespace}}],
        }))
        return path

    def find(self, kind: str, name: str | None = None) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, payload) -> None:
                body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self, kind: str, name: str) -> None:
                self._send(404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": f'{kind.lower()}s "{name}" not found', "reason": "NotFound", "code": 404})

            def _route(self):
                api.requests.append(f"{self.command} {self.path}")
                m = _PATH.match(urllib.request.unquote(self.path))
                if not m or m["ns"] != api.namespace:
                    self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
                    return None
                return m

            def do_GET(self) -> None:
                m = self._route()
                if m is None:
                    return
                version = m["core"] or m["group"]
                kind = _COLLECTIONS.get((version, m["plural"]))
                if kind is None:
                    self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
                elif m["name"]:
                    found = api.find(kind, m["name"])
                    self._send(200, found[0]) if found else self._not_found(kind, m["name"])
                else:
                    items = api.find(kind)
                    selector = re.search(r"labelSelector=([^&]+)", self.path)
                    if selector:
                        key, _, value = urllib.request.unquote(selector.group(1)).partition("=")
                        items = [o for o in items if o["metadata"].get("labels", {}).get(key) == value]
                    self._send(200, {"kind": f"{kind}List", "apiVersion": version, "metadata": {}, "items": items})

            def do_POST(self) -> None:
                m = self._route()
                if m is None:
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if m["plural"] != "services" or not (m["rest"] or "").startswith("/proxy/"):
                    self._send(405, {"kind": "Status", "status": "Failure", "reason": "MethodNotAllowed", "code": 405})
                    return
                service = m["name"].split(":")[0]
                if not api.find("Service", service):
                    self._not_found("Service", service)
                    return
                if api.backend is None:
                    self._send(503, {"kind": "Status", "status": "Failure", "code": 503, "reason": "ServiceUnavailable",
                                     "message": f'no endpoints available for service "{service}"'})
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "x-api-key")}
                request = urllib.request.Request(api.backend + m["rest"].removeprefix("/proxy"), data=body,
                                                 headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        self._send(resp.status, resp.read())
                except urllib.error.HTTPError as exc:
                    self._send(exc.code, exc.read())

        return Handler


def with_status(objects: dict[str, list[dict]], *, replicas: int = 2, ready: int | None = None,
                stuck: bool = False, hpa_metrics: bool = True, lb_hostname: str | None = "k8s-risk-klarnapd.elb.example.com") -> list[dict]:
    """The rendered objects with the status their controllers would report."""
    for doc in objects.get("Deployment", []):
        replicas = doc["spec"].get("replicas", replicas)  # fixed by the chart when the HPA is off
    ready = replicas if ready is None else ready
    out = []
    for kind, docs in objects.items():
        for doc in docs:
            doc = json.loads(json.dumps(doc))
            doc["metadata"].setdefault("namespace", "risk")
            doc["metadata"]["generation"] = 1
            if kind == "Deployment":
                # The chart leaves replicas to the HPA; the API server's object has the HPA's count.
                doc["spec"].setdefault("replicas", replicas)
                progressing = ({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                "message": f'ReplicaSet "{doc["metadata"]["name"]}-7d9f" has timed out progressing.'}
                               if stuck else {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"})
                doc["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": ready if stuck else replicas,
                                 "readyReplicas": ready, "availableReplicas": ready,
                                 "conditions": [{"type": "Available", "status": "True" if ready else "False"}, progressing]}
            elif kind == "HorizontalPodAutoscaler":
                status = {"currentReplicas": replicas, "desiredReplicas": replicas}
                if hpa_metrics:
                    status["currentMetrics"] = [{"type": "Resource", "resource": {
                        "name": "cpu", "current": {"averageUtilization": 23, "averageValue": "230m"}}}]
                    status["conditions"] = [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
                                            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]
                else:
                    status["conditions"] = [
                        {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
                        {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
                         "message": "the HPA was unable to compute the replica count: failed to get cpu utilization: "
                                    "unable to get metrics for resource cpu: no metrics returned from resource metrics API"}]
                doc["status"] = status
            elif kind == "PodDisruptionBudget":
                doc["status"] = {"currentHealthy": ready, "desiredHealthy": 1, "disruptionsAllowed": max(ready - 1, 0),
                                 "expectedPods": replicas, "observedGeneration": 1}
            elif kind == "Ingress":
                doc["status"] = {"loadBalancer": {"ingress": [{"hostname": lb_hostname}] if lb_hostname else []}}
            out.append(doc)
    return out
