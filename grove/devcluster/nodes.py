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


# Node-label keys for topology domains (issue #9): the well-known keys where Kubernetes has one, else ours.
TOPOLOGY_KEYS: dict[str, str] = {
    "region": "topology.kubernetes.io/region",
    "zone": "topology.kubernetes.io/zone",
    "host": "kubernetes.io/hostname",
}


def topology_key(domain: str) -> str:
    return TOPOLOGY_KEYS.get(domain, f"topology.grove.io/{domain}")


def parse_topology(spec: str) -> list[tuple[str, int]]:
    """`rack=2,host=4` -> [("rack", 2), ("host", 4)]: levels broadest first, each with how many domains of
    that level sit in one domain of the level above. Raises ValueError naming the bad part."""
    levels: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        domain, _, count = part.partition("=")
        if not domain or not count.isdigit() or int(count) < 1:
            raise ValueError(f"bad topology level {part!r}: expected DOMAIN=COUNT with COUNT >= 1")
        if domain in dict(levels):
            raise ValueError(f"topology level {domain!r} given twice")
        levels.append((domain, int(count)))
    if not levels:
        raise ValueError("empty topology: expected for example rack=2,host=4")
    return levels


def topology_node_labels(levels: Sequence[tuple[str, int]], nodes: int | None) -> list[dict[str, str]]:
    """Topology labels for each node, in node order. When the narrowest level is `host`, there is one node per
    host (`nodes` must be None or match); otherwise `nodes` are spread in contiguous blocks over the narrowest
    domains. Domain values are `<domain>-<index>`, unique in the cluster."""
    inner = [lv for lv in levels if lv[0] != "host"]
    hosts_per_leaf = levels[-1][1] if levels[-1][0] == "host" else None
    leaves = 1
    for _, count in inner:
        leaves *= count
    total = leaves * hosts_per_leaf if hosts_per_leaf else nodes
    if total is None or (nodes is not None and hosts_per_leaf and nodes != total):
        raise ValueError(f"topology gives {total} hosts but {nodes} nodes were asked for")
    out: list[dict[str, str]] = []
    for i in range(total):
        leaf = i // hosts_per_leaf if hosts_per_leaf else i * leaves // total
        labels: dict[str, str] = {}
        span = leaves
        for domain, count in inner:
            span //= count
            labels[topology_key(domain)] = f"{domain}-{leaf // span}"
        out.append(labels)
    return out


def topology_binding(name: str, levels: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """The ClusterTopologyBinding for nodes labelled by `topology_node_labels`."""
    return {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "ClusterTopologyBinding",
        "metadata": {"name": name},
        "spec": {"levels": [{"domain": d, "key": topology_key(d)} for d, _ in levels]},
    }
