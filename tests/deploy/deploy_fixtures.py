"""Helpers for the chart tests: the `helm` binary (built by `make helm`), rendering, documents by kind."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from grove.devcluster import default_bin_dir

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "grove-py"


def helm_binary() -> Path:
    """`$HELM`, else `helm` in the bin dir. Missing is a failure, not a skip: run `make helm`."""
    path = Path(os.environ.get("HELM") or default_bin_dir() / "helm")
    if not os.access(path, os.X_OK):
        pytest.fail(f"helm not found at {path}: run `make helm` (or `make install`)", pytrace=False)
    return path


def helm(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(helm_binary()), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def template(*sets: str, namespace: str = "grove-system", release: str = "grove-py") -> list[dict[str, Any]]:
    """`helm template` with `--set` values; the documents rendered."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for value in sets:
        args += ["--set", value]
    return [d for d in yaml.safe_load_all(helm(*args).stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


# ----------------------------------------------------------------------------------------- against a cluster

NAMESPACE = "grove-system"
RELEASE = "grove-py"
OPERATOR_SA = "grove-py-operator"


def helm_env(home: Path) -> dict[str, str]:
    """Keep helm's cache/config/data out of $HOME."""
    return {f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}


def service_account_kubeconfig(cluster: Any, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount namespace/name with a TokenRequest token: how an
    operator pod authenticates, out of cluster (KWOK runs no containers)."""
    from kubernetes import client

    request = {"spec": {"expirationSeconds": 3600}}
    token = client.CoreV1Api(cluster.api_client).create_namespaced_service_account_token(name, namespace, request)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": cluster.server, "certificate-authority": str(cluster.pki.ca_cert)}}
        ],
        "users": [{"name": name, "user": {"token": token.status.token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": name}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """`grove operator` in a subprocess with its own kubeconfig, metrics and health ports, killable."""

    def __init__(self, kubeconfig: Path, log: Path, *args: str, identity: str = "") -> None:
        self.metrics_port, self.health_port = free_port(), free_port()
        self.identity = identity
        self.log = log
        extra = [f"--identity={identity}"] if identity else []
        argv = [sys.executable, "-m", "grove.cli", "operator", *args, *extra]
        argv += [f"--metrics-port={self.metrics_port}", f"--health-port={self.health_port}"]
        out = open(log, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=out, stderr=subprocess.STDOUT
        )

    def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        url = f"http://127.0.0.1:{port or (self.metrics_port if path == '/metrics' else self.health_port)}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics: (name, sorted labels) -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        status, text = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def total(self, name: str, **labels: str) -> float:
        """Sum of `name` over the samples whose labels include `labels`."""
        return sum(v for (n, ls), v in self.samples().items() if n == name and set(labels.items()) <= set(ls))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, logs: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    detail = f"\nlog:\n{logs()[-4000:]}" if logs else ""
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}){detail}")


def lease_holder(cluster: Any, name: str = OPERATOR_SA, namespace: str = NAMESPACE) -> str:
    done = cluster.kubectl("get", "lease", name, "-n", namespace, "-o", "jsonpath={.spec.holderIdentity}", check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def readme_helm_commands() -> dict[str, list[str]]:
    """The `helm ...` lines of README's "Installing on a real cluster" block, by subcommand (install,
    uninstall), as argv without `helm`: the tests run exactly what the README tells users to run."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Installing on a real cluster", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = {}
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv[:1] == ["helm"]:
            commands[argv[1]] = argv[1:]
    return commands
