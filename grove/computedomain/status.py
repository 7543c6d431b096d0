"""ComputeDomain status from the domain's channel claims (pure).

A node has joined a domain when a channel claim of the domain is allocated on it; it is Ready once such a
claim is also reserved for a consumer (kube-scheduler reserves it when it binds the pod there: the point at
which NVIDIA's controller starts the node's IMEX daemon, which here needs no start). Only claims are read,
never pods, so the status is the same for any pod, grove-managed or not (issue 14). The domain is Ready when
numNodes is 0 and at least one node is Ready, or when at least numNodes nodes are Ready. Node indices are
stable: a node keeps the index it was given, new nodes take the lowest free one, so the IP-to-name mapping
inside a domain never shifts under running workloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple


class ClaimInfo(NamedTuple):
    """A channel claim: where it is allocated (None: not allocated yet) and whether a consumer reserved it."""

    namespace: str
    name: str
    node: str | None
    reserved: bool


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


def is_reserved(claim: Mapping[str, Any]) -> bool:
    """Whether a claim is reserved for at least one consumer (a pod bound to its node)."""
    return bool((claim.get("status") or {}).get("reservedFor"))


def claim_info(claim: Mapping[str, Any]) -> ClaimInfo:
    meta = claim.get("metadata") or {}
    return ClaimInfo(
        str(meta.get("namespace", "")), str(meta.get("name", "")), allocated_node(claim), is_reserved(claim)
    )


def joined_nodes(claims: Iterable[ClaimInfo]) -> dict[str, bool]:
    """node -> Ready, for nodes that joined (see the module docstring)."""
    nodes: dict[str, bool] = {}
    for claim in claims:
        if claim.node is not None:
            nodes[claim.node] = nodes.get(claim.node, False) or claim.reserved
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
    """Whether a status patch is needed. A domain without `status.status` gets one (NotReady at first), so
    `kubectl get` and waiters see the state from the start (issue 14: the status was never written)."""
    cur = dict(current or {})
    return (cur.get("status"), cur.get("nodes") or []) != (desired["status"], desired["nodes"])
