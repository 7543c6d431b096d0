"""Integration tests: the local control plane is a real, working Kubernetes v1.37.2."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from kubernetes import client

from grove.devcluster import DevCluster, delete_nodes
from grove.devcluster.nodes import node_is_ready
from grove.devcluster.wait import wait_for

PAUSE = "registry.k8s.io/pause:3.10"


def test_version_is_v1_37_2(cluster: DevCluster) -> None:
    version = json.loads(cluster.get("/version"))
    assert version["gitVersion"] == "v1.37.2"
    assert (version["major"], version["minor"]) == ("1", "37")
    out = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == "v1.37.2"
    assert out["clientVersion"]["gitVersion"] == "v1.37.2"


def test_three_kwok_nodes_ready(cluster: DevCluster) -> None:
    core = client.CoreV1Api(cluster.api_client)
    nodes = [n for n in core.list_node().items if n.metadata.name.startswith("kwok-node-")]
    assert sorted(n.metadata.name for n in nodes) == ["kwok-node-0", "kwok-node-1", "kwok-node-2"]
    for node in nodes:
        assert node_is_ready(node), node.status.conditions
        assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    # The node-lifecycle controller sees kwok's leases, so the nodes carry no not-ready/unreachable taints.
    taints = [t.key for n in nodes for t in (n.spec.taints or [])]
    assert not [t for t in taints if t.startswith("node.kubernetes.io/")], taints


def test_admin_can_read_apiserver_metrics(cluster: DevCluster) -> None:
    metrics = cluster.get("/metrics").decode()
    assert "apiserver_request_total{" in metrics
    assert 'verb="POST"' in metrics


def test_workload_and_dra_apis_are_served(cluster: DevCluster) -> None:
    out = cluster.kubectl("api-resources", "-o", "name").stdout.split()
    for resource in (
        "workloads.scheduling.k8s.io",
        "podgroups.scheduling.k8s.io",
        "deviceclasses.resource.k8s.io",
        "resourceslices.resource.k8s.io",
        "resourceclaims.resource.k8s.io",
        "resourceclaimtemplates.resource.k8s.io",
    ):
        assert resource in out, resource
    versions = cluster.kubectl("api-versions").stdout.split()
    assert "resource.k8s.io/v1" in versions
    assert "scheduling.k8s.io/v1beta1" in versions


def _deployment(name: str, replicas: int) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": PAUSE}]},
            },
        },
    }


def test_deployment_is_scheduled_running_and_garbage_collected(cluster: DevCluster, namespace: str) -> None:
    apps = client.AppsV1Api(cluster.api_client)
    core = client.CoreV1Api(cluster.api_client)
    apps.create_namespaced_deployment(namespace, _deployment("web", 3))

    def running_pods() -> list[client.V1Pod]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        ok = [p for p in pods if p.status.phase == "Running" and p.spec.node_name]
        return ok if len(ok) == 3 else []

    pods = wait_for(running_pods, 60, "3 Running pods")
    for pod in pods:
        assert pod.spec.node_name.startswith("kwok-node-")
        assert pod.status.pod_ip, "kwok assigns pod IPs from its --cidr"
        scheduled = [c for c in pod.status.conditions if c.type == "PodScheduled"]
        assert scheduled and scheduled[0].status == "True"
    # kube-scheduler spreads replicas (PodTopologySpread defaults) across the 3 equal nodes.
    assert len({p.spec.node_name for p in pods}) >= 2
    wait_for(
        lambda: (apps.read_namespaced_deployment("web", namespace).status.available_replicas or 0) == 3,
        60,
        "deployment available",
    )

    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=web").items, 60, "pods garbage-collected"
    )
    assert not apps.list_namespaced_replica_set(namespace).items


def test_job_pods_complete(cluster: DevCluster, namespace: str) -> None:
    batch = client.BatchV1Api(cluster.api_client)
    batch.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "completions": 2,
                "parallelism": 2,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": PAUSE}]}},
            },
        },
    )
    job = wait_for(
        lambda: (j := batch.read_namespaced_job("once", namespace)).status.succeeded == 2 and j,
        60,
        "job succeeded",
    )
    assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])


def test_create_nodes_with_topology_labels_taints_and_capacity(cluster: DevCluster) -> None:
    core = client.CoreV1Api(cluster.api_client)
    labels = {"topology.kubernetes.io/zone": "zone-b", "topology.kubernetes.io/region": "r1"}
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "20", "nvidia.com/gpu": "4"}
    allocatable = {**capacity, "cpu": "7500m"}
    taint = {"key": "grove.io/test", "value": "x", "effect": "NoSchedule"}
    names = cluster.create_nodes(2, "topo-node-", labels, capacity, allocatable, [taint])
    try:
        assert names == ["topo-node-0", "topo-node-1"]
        for name in names:
            node = core.read_node(name)
            assert node_is_ready(node)
            assert node.metadata.labels["topology.kubernetes.io/zone"] == "zone-b"
            assert node.metadata.labels["kubernetes.io/hostname"] == name
            assert node.status.capacity["nvidia.com/gpu"] == "4"  # kwok keeps the capacity we created
            assert node.status.allocatable["cpu"] == "7500m"
            assert [(t.key, t.effect) for t in node.spec.taints] == [("grove.io/test", "NoSchedule")]
        # Same call again: reuses the nodes. Same names with other labels: refused, not silently reused.
        assert cluster.create_nodes(2, "topo-node-", labels, capacity, allocatable, [taint]) == names
        with pytest.raises(ValueError, match="already exists"):
            cluster.create_nodes(1, "topo-node-", {"topology.kubernetes.io/zone": "zone-c"})
    finally:
        delete_nodes(cluster.api_client, names)


def test_start_retries_when_a_port_is_taken(tmp_path: Path) -> None:
    # Another process grabs the apiserver's port between allocation and bind: start() must recover.
    dev = DevCluster(tmp_path / "dc", initial_nodes=1)
    taken = dev.ports.apiserver
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", taken))
        blocker.listen()
        try:
            dev.start()
            assert dev.ports.apiserver != taken
            assert json.loads(dev.get("/version"))["gitVersion"] == "v1.37.2"
            assert all(dev.alive().values()) and len(dev.records) == 5
        finally:
            dev.stop()
    assert not any(dev.alive().values())
