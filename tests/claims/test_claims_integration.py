"""Generated claims against the real control plane: kube-apiserver accepts (and compiles the CEL of) every
object, kube-scheduler allocates matching devices and binds pods to matching nodes only."""

from __future__ import annotations

from typing import Any

import pytest
from claims_fixtures import GPU_TEMPLATE, clique, pcs
from claims_k8s import (
    GpuNodes,
    create,
    pause,
    pod,
    pod_claim,
    read_claim,
    read_pod,
    results,
    unschedulable,
    wait_allocated,
    wait_bound,
)

from grove.claims import claim_objects, inject_claims
from grove.devcluster.wait import wait_for

pytestmark = pytest.mark.integration


def devices_pcs(devices: dict[str, Any], namespace: str, replicas: int = 1) -> dict[str, Any]:
    doc = pcs([clique("w", replicas, spec={"devices": devices, "podSpec": {"containers": [pause()]}})],
              replicas=1)
    doc["metadata"]["namespace"] = namespace
    return doc


def run_clique(api: Any, namespace: str, doc: dict[str, Any], clique_name: str, pods: int) -> list[str]:
    """Create the replica-0 claim objects and `pods` pods of the clique; returns the pod names."""
    for obj in claim_objects(doc, 0):
        create(api, namespace, obj)
    tpl = next(t for t in doc["spec"]["template"]["cliques"] if t["name"] == clique_name)
    names = []
    for k in range(pods):
        spec = inject_claims(tpl["spec"]["podSpec"], doc, clique_name, 0, None, None, k)
        name = f"{clique_name}-{k}"
        create(api, namespace, pod(name, spec))
        names.append(name)
    return names


def test_product_name_lands_on_h100_nodes_only(cluster: Any, namespace: str, gpu_nodes: GpuNodes) -> None:
    api = cluster.api_client
    doc = devices_pcs({"gpu": {"count": 3, "productName": "NVIDIA H100 80GB HBM3"}}, namespace)
    # 3 GPUs per pod: each 8-GPU H100 node holds two pods, so four pods bind there; the fifth would fit only
    # on the A100 node (3 whole GPUs) and must stay Pending.
    names = run_clique(api, namespace, doc, "w", 5)
    wait_for(lambda: sum(bool(read_pod(api, namespace, n)["spec"].get("nodeName")) for n in names) == 4
             and any(unschedulable(api, namespace, n) for n in names), 60, "four pods bound, one unschedulable")
    bound = [n for n in names if read_pod(api, namespace, n)["spec"].get("nodeName")]
    devices = []
    for name in bound:
        node = read_pod(api, namespace, name)["spec"]["nodeName"]
        assert node in gpu_nodes.h100
        got = results(wait_allocated(api, namespace, name, "grove-devices"))
        assert len(got) == 3
        assert {r["pool"] for r in got} == {node}
        assert all(r["driver"] == "gpu.nvidia.com" and r["device"].startswith("gpu-") for r in got)
        devices += [(r["pool"], r["device"]) for r in got]
    assert len(set(devices)) == 12  # every pod got its own devices
    assert all(read_pod(api, namespace, n)["spec"].get("nodeName") != gpu_nodes.a100 for n in names)


def test_mig_profile_lands_on_the_mig_node_only(cluster: Any, namespace: str, gpu_nodes: GpuNodes) -> None:
    api = cluster.api_client
    doc = devices_pcs({"mig": {"profile": "1g.10gb", "count": 2}}, namespace)
    for name in run_clique(api, namespace, doc, "w", 2):
        assert wait_bound(api, namespace, name) == gpu_nodes.a100
        got = results(wait_allocated(api, namespace, name, "grove-devices"))
        assert [r["request"] for r in got] == ["mig", "mig"]
        assert all("-mig-1g10gb-" in r["device"] for r in got)


def test_memory_and_compute_capability_selectors(cluster: Any, namespace: str, gpu_nodes: GpuNodes) -> None:
    """80Gi: only the A100 80GB qualifies (an H100 80GB reports 81559Mi); compute capability >= 9.0: only H100."""
    api = cluster.api_client
    big = devices_pcs({"gpu": {"count": 1, "minMemory": "80Gi"}}, namespace)
    (name,) = run_clique(api, namespace, big, "w", 1)
    assert wait_bound(api, namespace, name) == gpu_nodes.a100
    assert results(wait_allocated(api, namespace, name, "grove-devices"))[0]["device"] in {"gpu-1", "gpu-2", "gpu-3"}

    hopper = pcs([clique("h", 1, spec={"devices": {"gpu": {"minComputeCapability": "9.0", "minMemory": "40Gi"}},
                                       "podSpec": {"containers": [pause()]}})], name="hopper")
    hopper["metadata"]["namespace"] = namespace
    (name,) = run_clique(api, namespace, hopper, "h", 1)
    assert wait_bound(api, namespace, name) in gpu_nodes.h100


def test_impossible_request_stays_pending(cluster: Any, namespace: str, gpu_nodes: GpuNodes) -> None:
    api = cluster.api_client
    doc = devices_pcs({"gpu": {"count": 1, "productName": "NVIDIA H100 80GB HBM3", "minComputeCapability": "10.0"}},
                      namespace)
    (name,) = run_clique(api, namespace, doc, "w", 1)
    wait_for(lambda: unschedulable(api, namespace, name), 60, "scheduler to report the pod Unschedulable")
    assert not read_pod(api, namespace, name)["spec"].get("nodeName")
    claim = pod_claim(api, namespace, name, "grove-devices")
    assert not (claim.get("status") or {}).get("allocation")


def test_too_many_gpus_for_any_node_stays_pending(cluster: Any, namespace: str, gpu_nodes: GpuNodes) -> None:
    api = cluster.api_client
    (name,) = run_clique(api, namespace, devices_pcs({"gpu": {"count": 9}}, namespace), "w", 1)
    wait_for(lambda: unschedulable(api, namespace, name), 60, "scheduler to report the pod Unschedulable")


def test_grove_resource_sharing_per_replica_claim_is_shared(cluster: Any, namespace: str,
                                                            gpu_nodes: GpuNodes) -> None:
    """Grove's resourceSharing: one PerReplica claim from an internal template, used by both pods of the
    replica (so they share its devices and land on the same node), plus a clique-level PerReplica claim
    per pod."""
    api = cluster.api_client
    h100_template = {
        "name": "h100",
        "templateSpec": {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
            "deviceClassName": "gpu.nvidia.com", "count": 2,
            "selectors": [{"cel": {"expression":
                                   "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100 80GB HBM3'"}}],
        }}]}}},
    }
    doc = pcs([clique("w", 2, resourceSharing=[{"name": "one-gpu", "scope": "PerReplica"}],
                      spec={"podSpec": {"containers": [pause("a"), pause("b")], "initContainers": [pause("init")]}})],
              resourceClaimTemplates=[h100_template, {**GPU_TEMPLATE, "name": "one-gpu"}],
              resourceSharing=[{"name": "h100", "scope": "PerReplica"}])
    doc["metadata"]["namespace"] = namespace
    names = run_clique(api, namespace, doc, "w", 2)
    nodes = {wait_bound(api, namespace, n) for n in names}
    assert len(nodes) == 1 and nodes <= set(gpu_nodes.h100)
    shared = wait_for(lambda: (c := read_claim(api, namespace, "inf-0-h100")).get("status", {}).get("allocation")
                      and c, 60, "shared claim allocated")
    assert sorted(r["name"] for r in shared["status"]["reservedFor"]) == sorted(names)
    assert len(results(shared)) == 2
    for k, name in enumerate(names):
        own = read_claim(api, namespace, f"inf-0-w-{k}-one-gpu")
        assert [r["name"] for r in own["status"]["reservedFor"]] == [name]
        spec = read_pod(api, namespace, name)["spec"]
        for ct in spec["containers"] + spec["initContainers"]:
            assert [c["name"] for c in ct["resources"]["claims"]] == ["inf-0-h100", f"inf-0-w-{k}-one-gpu"]
