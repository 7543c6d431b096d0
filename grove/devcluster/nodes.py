"""KWOK-managed fake nodes.

A Node created with a `status` keeps it (create writes status for Nodes), and our node-initialize stage keeps any
capacity/allocatable it finds, so GPU counts and CPU/memory sizes given here are what the scheduler sees.
Only nodes annotated `kwok.x-k8s.io/node: fake` are managed by our kwok (it runs with that annotation selector),
which keeps kwok away from anything else that might register a Node.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from kubernetes import client

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
KWOK_LABEL = "type"  # kwok's docs label fake nodes type=kwok; handy for selecting them
KWOK_LABEL_VALUE = "kwok"

DEFAULT_CAPACITY: dict[str, str] = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "1Ti"}

GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"


def gpu_node_labels(product: str = GPU_PRODUCT, count: int = 8) -> dict[str, str]:
    """Labels that NVIDIA's GPU feature discovery puts on a GPU node (the ones workloads select on)."""
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(count),
        "nvidia.com/gpu.memory": "81559",
    }


def gpu_node_capacity() -> dict[str, str]:
    """Capacity of a GPU node. GPUs are offered through DRA ResourceSlices only: a node that also reports the
    device-plugin resource `nvidia.com/gpu` makes kube-scheduler 1.37 fail to bind pods that combine an
    `nvidia.com/gpu` limit (served through the DeviceClass's extendedResourceName) with DRA claims
    ("PreBind DynamicResources: nil or empty request mappings")."""
    return {**DEFAULT_CAPACITY, "cpu": "192", "memory": "2Ti"}


def node_manifest(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    capacity: Mapping[str, str] | None = None,
    allocatable: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Node object for one fake node; `allocatable` defaults to `capacity`."""
    cap = dict(capacity or DEFAULT_CAPACITY)
    alloc = dict(allocatable or cap)
    all_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        KWOK_LABEL: KWOK_LABEL_VALUE,
        **dict(labels or {}),
    }
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": all_labels,
            "annotations": {
                KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
                **dict(annotations or {}),
            },
        },
        "spec": spec,
        "status": {
            "capacity": cap,
            "allocatable": alloc,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
                "containerRuntimeVersion": "fake",
                "kernelVersion": "fake",
                "osImage": "fake",
                "bootID": "",
                "machineID": "",
                "systemUUID": "",
            },
            "phase": "Running",
        },
    }


def create_nodes(
    api: client.ApiClient,
    count: int,
    name_prefix: str,
    labels: Mapping[str, str] | None = None,
    capacity: Mapping[str, str] | None = None,
    allocatable: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] | None = None,
    *,
    start_index: int = 0,
    wait_ready: bool = True,
    timeout: float = 60.0,
) -> list[str]:
    """Create `count` KWOK nodes named `<prefix><i>` and (by default) wait until all are Ready.

    Topology labels such as `topology.kubernetes.io/zone` go in `labels`. An existing node of the same name
    is reused if it already carries the requested labels (so a fixture may call this twice); one with other
    labels raises ValueError rather than silently handing back a node that is not what was asked for (the
    session cluster's own nodes are `kwok-node-0..2`). Returns the node names.
    """
    core = client.CoreV1Api(api)
    names = [f"{name_prefix}{i}" for i in range(start_index, start_index + count)]
    for name in names:
        body = node_manifest(name, labels=labels, capacity=capacity, allocatable=allocatable, taints=taints)
        try:
            core.create_node(cast(client.V1Node, body))  # plain dicts are accepted and serialised as is
        except client.ApiException as error:
            if error.status != 409:
                raise
            existing = core.read_node(name).metadata
            have = (existing.labels if existing else None) or {}
            wrong = {k: v for k, v in body["metadata"]["labels"].items() if have.get(k) != v}
            if wrong:
                raise ValueError(
                    f"node {name} already exists without labels {wrong}; use another name_prefix"
                ) from None
    if wait_ready:
        wait_nodes_ready(api, names, timeout=timeout)
    return names


def node_is_ready(node: client.V1Node) -> bool:
    for cond in (node.status and node.status.conditions) or []:
        if cond.type == "Ready":
            return bool(cond.status == "True")
    return False


def wait_nodes_ready(api: client.ApiClient, names: Sequence[str], timeout: float = 60.0) -> None:
    """Wait until every named node reports Ready=True (set by kwok's node-initialize stage)."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while True:
        for node in core.list_node().items:
            name = node.metadata.name if node.metadata else None
            if name in pending and node_is_ready(node):
                pending.discard(str(name))
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"KWOK nodes not Ready after {timeout:.0f}s: {sorted(pending)}")
        time.sleep(0.2)


def delete_nodes(api: client.ApiClient, names: Sequence[str]) -> None:
    """Delete nodes (missing ones are fine): tests that add nodes remove them so later tests see a clean set."""
    core = client.CoreV1Api(api)
    for name in names:
        try:
            core.delete_node(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
