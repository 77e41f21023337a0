"""Podman for the container tests and benchmarks/image.py: the Bento's image built with
`bentoml containerize --backend podman`, and the chart's Deployment started with `podman kube play`.

Set-up: scripts/container-tools.sh (podman, run by `make test`), scripts/standin-base.sh (the base
image), scripts/containers.conf (podman's configuration for these machines).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "klarna-pd"
PODMAN_ENV = {
    "CONTAINERS_CONF": str(ROOT / "scripts" / "containers.conf"),
    # Builds run their steps in a chroot: no user namespaces for RUN steps on these machines.
    "BUILDAH_ISOLATION": "chroot",
}
SERVER = "klarna-pd"  # the chart's container name
INIT = "pull-model"  # the chart's init container


class PodmanError(RuntimeError):
    pass


def _env() -> dict[str, str]:
    return {**os.environ, **PODMAN_ENV}


def podman(*args: str, check: bool = True, timeout: float = 120, input: str | bytes | None = None) -> subprocess.CompletedProcess:
    if isinstance(input, bytes):  # binary in, text out
        proc = subprocess.run(["podman", *args], env=_env(), capture_output=True, timeout=timeout, input=input)
        proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    else:
        proc = subprocess.run(["podman", *args], env=_env(), capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])} ... exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def check_tools() -> None:
    """Podman as scripts/container-tools.sh leaves it (it installs podman when missing, as root)."""
    proc = subprocess.run([str(ROOT / "scripts" / "container-tools.sh")], env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise PodmanError(f"scripts/container-tools.sh failed (podman is needed; make test installs it):\n{proc.stderr}")


def ensure_base_image() -> float:
    """The stand-in for python:3.11-slim (built only when missing); seconds it took."""
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / "scripts" / "standin-base.sh")], env=_env(), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise PodmanError(f"scripts/standin-base.sh failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


def containerize(bento: str, image: str, *opts: str) -> str:
    """`bentoml containerize` of a Bento in the current BENTOML_HOME; returns the build log.

    Run from the temporary directory: since 1.4.36 BentoML refuses a Bento's Dockerfile template
    that does not lie under the working directory, and it copies the Bento to a temporary build
    context first (bentoml/BentoML#5566, open)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bentoml", "containerize", "--backend", "podman", "--opt", "network=host",
         *(f"--opt={o}" for o in opts), bento, "-t", image],
        env=_env(), capture_output=True, text=True, timeout=1800, cwd=tempfile.gettempdir(),
    )
    if proc.returncode != 0:
        raise PodmanError(f"bentoml containerize {bento} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def image_size(image: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)


def layers(image: str) -> list[tuple[int, str]]:
    """(bytes, instruction) of each layer, oldest first."""
    rows = json.loads(podman("history", "--format", "json", "--no-trunc", image).stdout)
    return [(int(r.get("size", 0)), r.get("CreatedBy") or r.get("createdBy", "")) for r in reversed(rows)]


def remove_image(image: str) -> None:
    """The image, and the untagged images of Dockerfile.template's build stage (about 1 GB a build)."""
    podman("image", "rm", "--force", image, check=False)
    podman("image", "prune", "--force", "--filter", "label=org.klarna-pd.build-stage=python-env", check=False)


def chart_deployment(values: dict | None, image: str, *, verify_key: Path) -> dict:
    """The Deployment as `helm install klarna-pd -n risk` renders it (the real Helm library), changed
    for podman on one shared host: the locally built image in every container, a name of its own
    (podman keeps pods machine-wide), and what podman 4.3 gets wrong (comments below).

    Args:
        verify_key: the public key models are checked with, which the chart mounts from the Secret
            ``modelSigning.existingSecret`` (README, deploy step 6).
    """
    import helm_python as helm

    out = helm.Chart.load(CHART).render(values, name="klarna-pd", namespace="risk", is_install=True)
    (deployment,) = [
        doc for path, text in out.items() if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text) if doc and doc.get("kind") == "Deployment"
    ]
    deployment["metadata"]["name"] = f"klarna-pd-{secrets.token_hex(4)}"
    pod = deployment["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        container["image"] = image
        # podman 4.3 publishes every containerPort on the same port of the host (3000, shared by
        # everything on the machine); a kubelet publishes none. Bind a free loopback port instead.
        for port in container.get("ports", []):
            port["hostIP"], port["hostPort"] = "127.0.0.1", free_port()
    for volume in pod.get("volumes", []):
        source = volume.get("secret")
        if source is None:
            continue
        if volume["name"] != "model-verify-key":
            raise PodmanError(f"no test data for the Secret of volume {volume['name']!r}")
        # podman 4.3 writes a Secret's data into the volume still base64-encoded
        # (containers/podman#16625, fixed in 4.4): the same files from a directory instead, at the
        # chart's mount path, read-only as the chart mounts them.
        keys = Path(tempfile.mkdtemp(prefix="verify-key-"))
        keys.chmod(0o755)
        for item in source["items"]:
            (keys / item["path"]).write_bytes(Path(verify_key).read_bytes())
            (keys / item["path"]).chmod(0o444)
        del volume["secret"]
        volume["hostPath"] = {"path": str(keys), "type": "Directory"}
    return deployment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Run inside a container of the pod: one HTTP call on loopback, answered as JSON on stdout.
_HTTP = """
import json, sys, urllib.request, urllib.error
method, url, content_type = sys.argv[1:4]
body = sys.stdin.buffer.read() or None
req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
try:
    with urllib.request.urlopen(req, timeout=60) as resp:
        status, text = resp.status, resp.read().decode()
except urllib.error.HTTPError as exc:
    status, text = exc.code, exc.read().decode()
print(json.dumps({"status": status, "body": text}))
"""

# Polls /readyz from inside the pod for a few seconds; exit 0 once it answers 200.
_READY = """
import sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
"""


class Pod:
    """One pod of a Deployment, started by `podman kube play` as a kubelet would start it."""

    def __init__(self, deployment: dict, *, port: int = 3000) -> None:
        self.deployment = deployment
        self.port = port
        self.id: str | None = None
        self._file = Path(tempfile.mkdtemp(prefix="kube-play-")) / "deployment.yaml"
        self._file.write_text(yaml.safe_dump(deployment))

    def play(self, *, check: bool = True, timeout: float = 180) -> Pod:
        """`podman kube play`: returns once the init containers finished and the server started.
        With ``check=False`` a pod that did not start is returned too, ``failure`` saying why."""
        self.started = time.monotonic()
        proc = podman("kube", "play", str(self._file), timeout=timeout, check=False)
        self.id = self._find()
        self.failure = proc.stderr if proc.returncode != 0 else None
        if check and self.failure:
            raise PodmanError(f"podman kube play failed:\n{self.failure[-3000:]}\n{self.describe()}")
        return self

    def _find(self) -> str | None:
        name = self.deployment["metadata"]["name"]
        out = podman("pod", "ps", "--filter", f"name=^{name}-pod", "--format", "{{.ID}}").stdout.split()
        return out[0] if out else None

    def container(self, name: str) -> str:
        """The podman name of the chart's container `name`."""
        info = json.loads(podman("pod", "inspect", self.id).stdout)
        info = info[0] if isinstance(info, list) else info
        for c in info["Containers"]:
            if c["Name"].endswith(f"-{name}"):
                return c["Name"]
        raise PodmanError(f"no container {name!r} in pod {self.id}: {[c['Name'] for c in info['Containers']]}")

    def state(self, name: str) -> dict:
        info = json.loads(podman("container", "inspect", self.container(name)).stdout)[0]
        return {"status": info["State"]["Status"], "exit_code": info["State"]["ExitCode"],
                "restarts": info.get("RestartCount", 0), "started_at": info["State"]["StartedAt"]}

    def logs(self, name: str) -> str:
        proc = podman("logs", self.container(name), check=False)
        return proc.stdout + proc.stderr

    def exec(self, name: str, *argv: str, input: str | bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return podman("exec", "-i", self.container(name), *argv, input=input, timeout=timeout, check=False)

    def http(self, method: str, path: str, body: object = None, *, content_type: str = "application/json",
             via: str = SERVER) -> tuple[int, str]:
        """One request to the server on the pod's loopback, made by python inside container `via`.
        ``body``: JSON-able, or bytes sent as they are."""
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        proc = self.exec(via, "python", "-c", _HTTP, method, f"http://127.0.0.1:{self.port}{path}", content_type,
                         input=data)
        if proc.returncode != 0:
            raise PodmanError(f"{method} {path} inside the pod failed:\n{proc.stderr[-2000:]}")
        answer = json.loads(proc.stdout)
        return answer["status"], answer["body"]

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from `kube play` until /readyz answered 200 inside the pod. Fails at once, with the
        server's log, when the server exits or restarts: a crash loop never becomes ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(SERVER)
            if state["restarts"] or state["status"] in ("exited", "stopped"):
                raise PodmanError(f"the server container {state['status']} (restarts: {state['restarts']}, exit code "
                                  f"{state['exit_code']}) before it was ready:\n{self.logs(SERVER)[-4000:]}")
            if state["status"] == "running":
                proc = self.exec(SERVER, "python", "-c", _READY, f"http://127.0.0.1:{self.port}/readyz", "3")
                if proc.returncode == 0:
                    return time.monotonic() - self.started
            else:
                time.sleep(0.5)
        raise PodmanError(f"not ready after {timeout} s:\n{self.describe()}\n{self.logs(SERVER)[-4000:]}")

    def describe(self) -> str:
        if self.id is None:
            return "(no pod)"
        return podman("ps", "-a", "--pod", "--filter", f"pod={self.id}", "--format",
                      "{{.Names}} {{.Status}}", check=False).stdout

    def remove(self) -> None:
        if self.id is not None:
            podman("pod", "rm", "--force", "--time", "0", self.id, check=False)
        for volume in self.deployment["spec"]["template"]["spec"].get("volumes", []):
            if volume["name"] == "model-verify-key":
                shutil.rmtree(volume["hostPath"]["path"], ignore_errors=True)
        shutil.rmtree(self._file.parent, ignore_errors=True)  # the rendered Deployment (470 were left)
