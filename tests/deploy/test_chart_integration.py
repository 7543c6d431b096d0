"""The chart against the real control plane (issue #10), in one module because each step builds on the last:

1. `helm install grove-py deploy/helm/grove-py` succeeds and every object it renders exists;
2. RBAC under test: `grove operator` runs out of cluster as the chart's ServiceAccount (a TokenRequest token in
   a kubeconfig, as in a pod) and expands, scales and deletes a PodCliqueSet, creates HPAs, rolls an update,
   creates claims and a ComputeDomain, and brings `grove init --layout disagg-multinode` to Ready, with no
   Forbidden answer;
   the role cannot read Secrets or write Nodes (SelfSubjectAccessReview and real requests);
3. two operators at once: only the Lease holder writes; after `kill -9` of the leader the other takes over;
4. /metrics: the main series exist and move during a small workload;
5. `helm uninstall` removes everything but the CRDs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_fixtures import (
    CHART,
    NAMESPACE,
    OPERATOR_SA,
    RELEASE,
    ROOT,
    OperatorProcess,
    helm,
    helm_env,
    lease_holder,
    readme_helm_commands,
    service_account_kubeconfig,
    wait_for,
)

from grove.computedomain.model import LABEL_COMPUTE_DOMAIN
from grove.expansion import graph

FAST_LEASE = ["--lease-duration=4", "--renew-deadline=3", "--retry-period=1"]


class Release:
    def __init__(self, cluster: Any, home: Path) -> None:
        self.cluster = cluster
        self.home = home
        self.env = helm_env(home)
        self.installed = False
        self.manifest: list[dict[str, Any]] = []

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(*args, f"--kubeconfig={self.cluster.kubeconfig}", check=check, env=self.env)


@pytest.fixture(scope="module")
def release(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    rel = Release(cluster, tmp_path_factory.mktemp("helm"))
    had_classes = cluster.kubectl("get", "deviceclass", "gpu.nvidia.com", check=False).returncode == 0
    # README's command, verbatim (run from the repository root; --take-ownership adopts the DeviceClasses
    # other tests applied with kubectl).
    rel.helm(*readme_helm_commands()["install"])
    rel.installed = True
    rel.manifest = [d for d in yaml.safe_load_all(rel.helm("get", "manifest", RELEASE, "-n", NAMESPACE).stdout) if d]
    try:
        yield rel
    finally:
        if rel.installed:
            rel.helm(*readme_helm_commands()["uninstall"], check=False)
        if had_classes:  # leave the session's cluster as we found it
            cluster.kubectl("apply", "-f", str(ROOT / "deploy/dra/deviceclasses.yaml"))


@pytest.fixture(scope="module")
def sa_kubeconfig(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    return service_account_kubeconfig(release.cluster, NAMESPACE, OPERATOR_SA, path)


@pytest.fixture(scope="module")
def nodes(cluster: Any) -> None:
    cluster.create_nodes(3, "chart-node-")


@pytest.fixture
def leader(cluster: Any, sa_kubeconfig: Path, tmp_path: Path, nodes: None) -> Iterator[OperatorProcess]:
    """One operator as the chart's ServiceAccount, with leader election as the chart runs it, leading."""
    args = ["--leader-elect", f"--lease-namespace={NAMESPACE}", f"--lease-name={OPERATOR_SA}", *FAST_LEASE]
    op = OperatorProcess(sa_kubeconfig, tmp_path / "operator.log", *args, identity="op-a")
    try:
        wait_for("op-a leads", lambda: lease_holder(cluster) == "op-a", 60, op.logs)
        yield op
    finally:
        op.stop()
        assert "Forbidden" not in op.logs() and " 403" not in op.logs(), op.logs()[-4000:]


def test_install_creates_every_object(release: Release) -> None:
    cluster = release.cluster
    kinds = {d["kind"] for d in release.manifest}
    assert {"Deployment", "DaemonSet", "ClusterRole", "Role", "ServiceAccount", "DeviceClass"} <= kinds
    assert {"ValidatingAdmissionPolicy", "PodDisruptionBudget", "Service"} <= kinds
    got = cluster.kubectl(
        "get",
        "-f",
        "-",
        "-o",
        "json",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": release.manifest}),
    )
    assert len(json.loads(got.stdout)["items"]) == len(release.manifest)
    for crd in (CHART / "crds").glob("*.yaml"):
        name = yaml.safe_load(crd.read_text())["metadata"]["name"]
        cluster.kubectl("get", "crd", name)
    status = json.loads(release.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"


def test_role_cannot_read_secrets_or_write_nodes(release: Release, sa_kubeconfig: Path, namespace: str) -> None:
    kubectl = [str(release.cluster.bin_dir / "kubectl"), f"--kubeconfig={sa_kubeconfig}"]

    def can(*args: str) -> bool:
        done = subprocess.run([*kubectl, "auth", "can-i", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() == "yes"

    assert can("create", "pods", "-n", namespace) and can(
        "patch", "podcliques.grove.io", "--subresource=status", "-n", namespace
    )
    assert can("get", "nodes") and can("update", f"leases/{OPERATOR_SA}", "-n", NAMESPACE)
    for denied in (
        ("get", "secrets", "-n", namespace),
        ("list", "secrets", "-A"),
        ("patch", "nodes"),
        ("delete", "nodes"),
        ("create", "clusterroles"),
        ("update", "leases/someone-else", "-n", NAMESPACE),
        ("update", "podcliquesets.grove.io", "-n", namespace),
        ("create", "configmaps", "-n", namespace),
    ):
        assert not can(*denied), denied
    real = subprocess.run([*kubectl, "get", "secrets", "-n", namespace], capture_output=True, text=True, check=False)
    assert real.returncode != 0 and "Forbidden" in real.stderr
    node = release.cluster.node_names[0] if release.cluster.node_names else "kwok-node-0"
    patch = subprocess.run(
        [*kubectl, "label", "node", node, "grove.io/test=x"], capture_output=True, text=True, check=False
    )
    assert patch.returncode != 0 and "Forbidden" in patch.stderr


def _apply(cluster: Any, doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    doc = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))
    return doc


def _pods(cluster: Any, namespace: str) -> set[str]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    return {p["metadata"]["name"] for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")}


def _ready(cluster: Any, namespace: str, name: str) -> bool:
    done = cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=5s", check=False)
    return done.returncode == 0


def test_operator_as_the_service_account(cluster: Any, leader: OperatorProcess, namespace: str) -> None:
    """Expand, Ready, scale out and in, delete; claims and a ComputeDomain: all with the chart's role."""
    pcs = _apply(cluster, yaml.safe_load((ROOT / "examples/multi-node-disaggregated.yaml").read_text()), namespace)
    name = pcs["metadata"]["name"]
    wait_for("PCS Ready", lambda: _ready(cluster, namespace, name), 180, leader.logs)
    expected = {p["metadata"]["name"] for p in graph.expand(pcs).pods}
    assert _pods(cluster, namespace) == expected
    cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":2}}')
    scaled = {p["metadata"]["name"] for p in graph.expand({**pcs, "spec": {**pcs["spec"], "replicas": 2}}).pods}
    wait_for("scaled out", lambda: _pods(cluster, namespace) == scaled, 180, leader.logs)
    wait_for("Ready after scale-out", lambda: _ready(cluster, namespace, name), 180, leader.logs)
    cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":1}}')
    wait_for("scaled in", lambda: _pods(cluster, namespace) == expected, 180, leader.logs)
    # DRA claims and a ComputeDomain (its channel template comes from the ComputeDomain controller).
    gpus = _apply(cluster, yaml.safe_load((ROOT / "examples/gpu-mig-computedomain.yaml").read_text()), namespace)

    def claim_objects() -> bool:
        out = cluster.kubectl("get", "resourceclaimtemplates,computedomains", "-n", namespace, "-o", "json").stdout
        items = json.loads(out)["items"]
        domains = [i for i in items if i["kind"] == "ComputeDomain"]
        templates = [i for i in items if i["kind"] == "ResourceClaimTemplate"]
        channel = [t for t in templates if LABEL_COMPUTE_DOMAIN in (t["metadata"].get("labels") or {})]
        return bool(domains) and bool(channel) and len(templates) > len(channel)

    wait_for("claim templates, a ComputeDomain and its channel template", claim_objects, 180, leader.logs)
    cluster.kubectl("delete", "pcs", name, gpus["metadata"]["name"], "-n", namespace, "--wait=false")
    wait_for("pods garbage-collected", lambda: not _pods(cluster, namespace), 180, leader.logs)


def _images(cluster: Any, namespace: str, clique: str) -> set[str]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"grove.io/podclique={clique}", "-o", "json").stdout
    pods = [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]
    return {c["image"] for p in pods for c in p["spec"]["containers"]}


def test_hpas_and_rolling_update_as_the_service_account(cluster: Any, leader: OperatorProcess, namespace: str) -> None:
    pcs = _apply(cluster, yaml.safe_load((ROOT / "examples/autoscaling.yaml").read_text()), namespace)
    name = pcs["metadata"]["name"]
    wait_for("PCS Ready", lambda: _ready(cluster, namespace, name), 180, leader.logs)
    want = {h["metadata"]["name"] for h in graph.expand(pcs).hpas}

    def hpas() -> set[str]:
        out = cluster.kubectl("get", "hpa", "-n", namespace, "-o", "json").stdout
        return {h["metadata"]["name"] for h in json.loads(out)["items"]}

    wait_for("HPAs", lambda: hpas() == want and bool(want), 120, leader.logs)
    clique = pcs["spec"]["template"]["cliques"][0]
    patch = {
        "spec": {
            "template": {
                "cliques": [
                    {
                        **clique,
                        "spec": {
                            **clique["spec"],
                            "podSpec": {
                                **clique["spec"]["podSpec"],
                                "containers": [
                                    {**clique["spec"]["podSpec"]["containers"][0], "image": "registry.k8s.io/pause:3.9"}
                                ],
                            },
                        },
                    },
                    *pcs["spec"]["template"]["cliques"][1:],
                ]
            }
        }
    }
    cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    fqn = f"{name}-0-{clique['name']}"
    wait_for(
        "rolled to the new image",
        lambda: _images(cluster, namespace, fqn) == {"registry.k8s.io/pause:3.9"},
        180,
        leader.logs,
    )
    wait_for("Ready after the rollout", lambda: _ready(cluster, namespace, name), 180, leader.logs)


def test_grove_init_multinode_becomes_ready(
    cluster: Any, leader: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "starter.yaml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grove.cli",
            "init",
            "--layout",
            "disagg-multinode",
            "--name",
            "starter",
            "--workers",
            "2",
            "--units",
            "2",
            "--sandbox",
            "-o",
            str(path),
        ],
        check=True,
    )
    subprocess.run([sys.executable, "-m", "grove.cli", "validate", str(path)], check=True)
    cluster.kubectl("apply", "-n", namespace, "-f", str(path))
    wait_for("starter Ready", lambda: _ready(cluster, namespace, "starter"), 180, leader.logs)
    doc = {**yaml.safe_load(path.read_text())}
    doc["metadata"]["namespace"] = namespace
    assert _pods(cluster, namespace) == {p["metadata"]["name"] for p in graph.expand(doc).pods}


def test_only_the_leader_writes_and_a_follower_takes_over(
    cluster: Any, leader: OperatorProcess, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    args = ["--leader-elect", f"--lease-namespace={NAMESPACE}", f"--lease-name={OPERATOR_SA}", *FAST_LEASE]
    follower = OperatorProcess(sa_kubeconfig, tmp_path / "follower.log", *args, identity="op-b")
    try:
        wait_for("follower ready (standby)", lambda: follower.get("/readyz") == (200, "standby\n"), 60, follower.logs)
        doc = yaml.safe_load((ROOT / "examples/single-node-aggregated.yaml").read_text())
        pcs = _apply(cluster, doc, namespace)
        name = pcs["metadata"]["name"]
        wait_for("PCS Ready", lambda: _ready(cluster, namespace, name), 180, leader.logs)
        assert leader.total("grove_api_writes_total") > 0 and leader.total("grove_leader") == 1
        assert follower.total("grove_api_writes_total") == 0, "a follower wrote"
        assert follower.total("grove_reconcile_total") == 0 and follower.total("grove_leader") == 0
        assert lease_holder(cluster) == "op-a"

        leader.kill()
        killed = time.monotonic()
        wait_for("op-b takes over", lambda: lease_holder(cluster) == "op-b", 60, follower.logs)
        takeover = time.monotonic() - killed
        print(f"\nleader takeover {takeover:.1f}s after kill -9 (lease duration 4s, retry period 1s)")
        cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":3}}')
        scaled = {p["metadata"]["name"] for p in graph.expand({**pcs, "spec": {**pcs["spec"], "replicas": 3}}).pods}
        wait_for("new leader scales", lambda: _pods(cluster, namespace) == scaled, 180, follower.logs)
        assert follower.total("grove_api_writes_total", verb="POST", resource="pods") > 0
        assert follower.total("grove_leader") == 1
    finally:
        follower.stop()
        assert "Forbidden" not in follower.logs(), follower.logs()[-4000:]
    # A graceful stop releases the Lease at once.
    wait_for("lease released", lambda: lease_holder(cluster) == "", 10)


def test_metrics_series_exist_and_move(cluster: Any, leader: OperatorProcess, namespace: str) -> None:
    wait_for("/metrics served", lambda: leader.get("/metrics")[0] == 200, 30, leader.logs)
    assert leader.get("/healthz") == (200, "ok\n")
    wait_for("/readyz", lambda: leader.get("/readyz")[0] == 200, 30, leader.logs)
    before = leader.samples()
    names = {n for n, _ in before}
    for series in (
        "grove_objects_managed",
        "grove_pods_gated",
        "grove_workqueue_depth",
        "grove_workqueue_running",
        "grove_leader",
    ):
        assert series in names, series
    pcs = _apply(cluster, yaml.safe_load((ROOT / "examples/multi-node-disaggregated.yaml").read_text()), namespace)
    wait_for("PCS Ready", lambda: _ready(cluster, namespace, pcs["metadata"]["name"]), 180, leader.logs)
    pods = len(graph.expand(pcs).pods)
    wait_for("managed pods counted", lambda: leader.total("grove_objects_managed", kind="Pod") >= pods, 30)
    after = leader.samples()
    names = {n for n, _ in after}
    for series in ("grove_reconcile_total", "grove_reconcile_duration_seconds_count", "grove_api_writes_total"):
        assert series in names, series

    def moved(name: str, **labels: str) -> float:
        def total(samples: dict[Any, float]) -> float:
            return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))

        return total(after) - total(before)

    assert moved("grove_api_writes_total", verb="POST", resource="pods") >= pods
    assert moved("grove_api_writes_total", verb="PATCH", resource="podcliques/status") > 0
    assert moved("grove_reconcile_total", kind="PodClique", result="success") > 0
    assert moved("grove_reconcile_total", kind="PodCliqueSet", result="success") > 0
    assert moved("grove_reconcile_duration_seconds_count", kind="PodCliqueScalingGroup") > 0
    assert moved("grove_objects_managed", kind="PodClique") >= 5


def test_uninstall_keeps_only_the_crds(release: Release) -> None:
    cluster = release.cluster
    release.helm(*readme_helm_commands()["uninstall"])
    release.installed = False

    def left_behind() -> list[str]:
        left = []
        for doc in release.manifest:
            kind, name, ns = doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace")
            done = cluster.kubectl("get", kind, name, *(["-n", ns] if ns else []), check=False)
            if not (done.returncode != 0 and "NotFound" in done.stderr):
                left.append(f"{kind}/{name}")
        return left

    wait_for("everything but the CRDs removed", lambda: not left_behind(), 60)
    for crd in (CHART / "crds").glob("*.yaml"):
        cluster.kubectl("get", "crd", yaml.safe_load(crd.read_text())["metadata"]["name"])
