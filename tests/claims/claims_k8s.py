"""Helpers for the claims integration tests: NVIDIA-shaped ResourceSlices for KWOK nodes, pods, waits.

The GPU slices are written here with NVIDIA's attribute names (dra.md §3.3) rather than taken from the bundled
driver, so these tests check our claims against NVIDIA's device model; the end-to-end test runs the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from grove.devcluster.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
DEVICE_CLASSES = REPO / "deploy" / "dra" / "deviceclasses.yaml"
CD_CRD = REPO / "api" / "crds" / "resource.nvidia.com_computedomains.yaml"
TEST_LABEL = "grove.io/claims-test"
TAINT = {"key": TEST_LABEL, "value": "true", "effect": "NoSchedule"}
TOLERATION = {"key": TEST_LABEL, "operator": "Exists", "effect": "NoSchedule"}

H100 = {"productName": "NVIDIA H100 80GB HBM3", "architecture": "Hopper", "cc": "9.0.0", "memory": 81559}
A100 = {"productName": "NVIDIA A100-SXM4-80GB", "architecture": "Ampere", "cc": "8.0.0", "memory": 81920}


@dataclass
class GpuNodes:
    """The `gpu_nodes` fixture's nodes (tests/claims/conftest.py)."""

    h100: list[str]
    a100: str

    @property
    def all(self) -> list[str]:
        return [*self.h100, self.a100]


def _common(node: str, minor: int, model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "productName": {"string": model["productName"]},
        "brand": {"string": "Nvidia"},
        "architecture": {"string": model["architecture"]},
        "cudaComputeCapability": {"version": model["cc"]},
        "driverVersion": {"version": "570.133.20"},
        "cudaDriverVersion": {"version": "12.8.0"},
        "resource.kubernetes.io/pciBusID": {"string": f"0000:{minor + 1:02x}:00.0"},
    }


def gpu_device(node: str, minor: int, model: dict[str, Any]) -> dict[str, Any]:
    attrs = {"type": {"string": "gpu"}, "uuid": {"string": f"GPU-{node}-{minor}"}, **_common(node, minor, model)}
    return {"name": f"gpu-{minor}", "attributes": attrs, "capacity": {"memory": {"value": f"{model['memory']}Mi"}}}


def mig_device(node: str, minor: int, model: dict[str, Any], start: int) -> dict[str, Any]:
    """A static MIG 1g.10gb device (GI profile 19) at placement `start`, named as NVIDIA names it."""
    attrs = {
        "type": {"string": "mig"},
        "profile": {"string": "1g.10gb"},
        "parentUUID": {"string": f"GPU-{node}-{minor}"},
        "uuid": {"string": f"MIG-{node}-{minor}-{start}"},
        **_common(node, minor, model),
    }
    return {
        "name": f"gpu-{minor}-mig-1g10gb-19-{start}",
        "attributes": attrs,
        "capacity": {"memory": {"value": "9984Mi"}, "multiprocessors": {"value": "14"}},
    }


def gpu_slice(node: str, node_uid: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {
            "name": f"{node}-gpu.nvidia.com",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid,
                                 "controller": True}],
        },
        "spec": {"driver": "gpu.nvidia.com", "nodeName": node,
                 "pool": {"name": node, "generation": 1, "resourceSliceCount": 1}, "devices": devices},
    }


def pod(name: str, pod_spec: dict[str, Any], node_label: str = TEST_LABEL) -> dict[str, Any]:
    """A pod restricted to this module's nodes (other suites may publish GPUs on other nodes)."""
    spec = dict(pod_spec)
    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), node_label: "true"}
    spec["tolerations"] = [*(spec.get("tolerations") or []), TOLERATION]
    spec.setdefault("terminationGracePeriodSeconds", 0)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def pause(name: str = "main", gpus: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": "registry.k8s.io/pause:3.10",
                           "resources": {"requests": {"cpu": "10m"}}}
    if gpus is not None:
        out["resources"]["limits"] = {"nvidia.com/gpu": str(gpus)}
    return out


def create(api: client.ApiClient, namespace: str, obj: dict[str, Any]) -> None:
    """Create a claim-related object (ownerReferences dropped: the owning PodCliqueSet does not exist here,
    and the garbage collector would delete objects whose owner is missing)."""
    body = dict(obj)
    body["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
    body["metadata"]["namespace"] = namespace
    kind = obj["kind"]
    if kind == "ResourceClaimTemplate":
        client.ResourceV1Api(api).create_namespaced_resource_claim_template(namespace, body)  # type: ignore[arg-type]
    elif kind == "ResourceClaim":
        client.ResourceV1Api(api).create_namespaced_resource_claim(namespace, body)  # type: ignore[arg-type]
    elif kind == "Pod":
        client.CoreV1Api(api).create_namespaced_pod(namespace, body)  # type: ignore[arg-type]
    elif kind == "ComputeDomain":
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "resource.nvidia.com", "v1beta1", namespace, "computedomains", body)
    else:
        raise ValueError(kind)


def read_pod(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = api.sanitize_for_serialization(client.CoreV1Api(api).read_namespaced_pod(name, namespace))
    return out


def read_claim(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = api.sanitize_for_serialization(
        client.ResourceV1Api(api).read_namespaced_resource_claim(name, namespace))
    return out


def pod_claim(api: client.ApiClient, namespace: str, pod_name: str, local: str) -> dict[str, Any]:
    """The ResourceClaim behind the pod's claim entry `local` (generated from a template, or named)."""
    def name() -> str | None:
        p = read_pod(api, namespace, pod_name)
        for entry in p["spec"].get("resourceClaims") or []:
            if entry["name"] == local and entry.get("resourceClaimName"):
                return str(entry["resourceClaimName"])
        for status in (p.get("status") or {}).get("resourceClaimStatuses") or []:
            if status["name"] == local and status.get("resourceClaimName"):
                return str(status["resourceClaimName"])
        return None

    claim_name = wait_for(name, 60, f"claim {local} of pod {pod_name}")
    return read_claim(api, namespace, claim_name)


def wait_bound(api: client.ApiClient, namespace: str, pod_name: str, timeout: float = 60) -> str:
    """The node the pod got bound to (on timeout, the scheduler's reason is in the error)."""
    def node_name() -> str | None:
        try:
            return read_pod(api, namespace, pod_name)["spec"].get("nodeName")
        except client.ApiException as error:
            if error.status == 404:  # not created yet (the operator creates pods)
                return None
            raise

    try:
        node: str = wait_for(node_name, timeout, f"pod {pod_name} bound")
    except AssertionError as error:
        conditions = (read_pod(api, namespace, pod_name).get("status") or {}).get("conditions")
        raise AssertionError(f"{error}; conditions: {conditions}") from None
    return node


def wait_allocated(api: client.ApiClient, namespace: str, pod_name: str, local: str) -> dict[str, Any]:
    def allocated() -> dict[str, Any] | None:
        claim = pod_claim(api, namespace, pod_name, local)
        return claim if (claim.get("status") or {}).get("allocation") else None

    result: dict[str, Any] = wait_for(allocated, 60, f"claim {local} of {pod_name} allocated")
    return result


def unschedulable(api: client.ApiClient, namespace: str, pod_name: str) -> bool:
    p = read_pod(api, namespace, pod_name)
    conditions = (p.get("status") or {}).get("conditions") or []
    return any(cnd["type"] == "PodScheduled" and cnd["status"] == "False" and cnd.get("reason") == "Unschedulable"
               for cnd in conditions) and not p["spec"].get("nodeName")


def results(claim: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = claim["status"]["allocation"]["devices"]["results"]
    return out
