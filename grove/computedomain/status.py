"""ComputeDomain status from claims and pods (pure).

A node has joined a domain when a channel claim of the domain is allocated on it and a pod using that
claim is bound there; the node is Ready when such a pod is Running (the simulated stand-in for NVIDIA's
"IMEX daemon ready"). The domain is Ready when numNodes is 0 and at least one node is Ready, or when at
least numNodes nodes are Ready. Node indices are stable: a node keeps the index it was given, new nodes take
the lowest free one, so the IP-to-name mapping inside a domain never shifts under running workloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple


class ClaimInfo(NamedTuple):
    """A channel claim: where it is allocated (None: not allocated yet)."""

    namespace: str
    name: str
    node: str | None


class PodInfo(NamedTuple):
    """A pod using a claim."""

    name: str
    node: str | None
    running: bool


class NodeInfo(NamedTuple):
    ip_address: str
    clique_id: str


def allocated_node(claim: Mapping[str, Any]) -> str | None:
    """The node a claim is allocated on: the nodeSelector's metadata.name field (what the scheduler writes
    for node-local devices), else the pool of a result (drivers name pools after nodes)."""
    allocation = (claim.get("status") or {}).get("allocation")
    if not allocation:
        return None
    for term in (allocation.get("nodeSelector") or {}).get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and field.get("values"):
                return str(field["values"][0])
    for result in (allocation.get("devices") or {}).get("results") or []:
        if result.get("pool"):
            return str(result["pool"])
    return None


def pod_claim_names(pod: Mapping[str, Any]) -> list[str]:
    """Names of the ResourceClaims a pod uses: direct references and the ones generated from templates."""
    names = [
        str(entry["resourceClaimName"])
        for entry in (pod.get("spec") or {}).get("resourceClaims") or []
        if entry.get("resourceClaimName")
    ]
    for entry in (pod.get("status") or {}).get("resourceClaimStatuses") or []:
        if entry.get("resourceClaimName"):
            names.append(str(entry["resourceClaimName"]))
    return names


def pod_info(pod: Mapping[str, Any]) -> PodInfo:
    meta = pod.get("metadata") or {}
    running = (pod.get("status") or {}).get("phase") == "Running" and not meta.get("deletionTimestamp")
    return PodInfo(str(meta.get("name", "")), (pod.get("spec") or {}).get("nodeName"), running)


def joined_nodes(claims: Iterable[ClaimInfo], pods_of: Callable[[str, str], Iterable[PodInfo]]) -> dict[str, bool]:
    """node -> Ready, for nodes that joined (see the module docstring)."""
    nodes: dict[str, bool] = {}
    for claim in claims:
        if claim.node is None:
            continue
        for pod in pods_of(claim.namespace, claim.name):
            if pod.node == claim.node:
                nodes[claim.node] = nodes.get(claim.node, False) or pod.running
    return nodes


def desired_status(
    num_nodes: int,
    current_nodes: Iterable[Mapping[str, Any]],
    joined: Mapping[str, bool],
    node_info: Callable[[str], NodeInfo],
) -> dict[str, Any]:
    """The `status` object: per-node entries with stable indices, and the domain's Ready/NotReady."""
    previous = {str(n.get("name")): n.get("index") for n in current_nodes or []}
    used = {i for name, i in previous.items() if name in joined and isinstance(i, int)}
    nodes = []
    for name in sorted(joined):
        index = previous.get(name)
        if not isinstance(index, int):
            index = next(i for i in range(len(joined) + len(used) + 1) if i not in used)
            used.add(index)
        info = node_info(name)
        nodes.append(
            {
                "name": name,
                "ipAddress": info.ip_address,
                "cliqueID": info.clique_id,
                "index": index,
                "status": "Ready" if joined[name] else "NotReady",
            }
        )
    ready = sum(1 for ok in joined.values() if ok)
    is_ready = ready >= 1 if num_nodes == 0 else ready >= num_nodes
    return {"status": "Ready" if is_ready else "NotReady", "nodes": nodes}


def status_changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether a status patch is needed (absent status and no nodes counts as NotReady with none)."""
    cur = dict(current or {})
    return (cur.get("status") or "NotReady", cur.get("nodes") or []) != (desired["status"], desired["nodes"])
