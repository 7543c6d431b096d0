"""Object names, exactly as Grove's `operator/api/common/namegen.go` builds them (grove-api.md §2.3).

Pods are the one deliberate difference: Grove uses `generateName: <pclq>-` (a random suffix, no index in the
name; issue #635 and PRs #634/#643/#656 ask for the index). grove-py names pods `<pclq>-<podIndex>`, which
equals the pod's hostname. The name is deterministic, so a create retried after an operator crash gets
AlreadyExists instead of making a duplicate pod, and `kubectl get pods` shows the index.
"""

from __future__ import annotations

import re

_INDEX_SUFFIX = re.compile(r"-(\d+)$")


def service_name(pcs: str, replica: int) -> str:
    """Headless Service of one PodCliqueSet replica: `<pcs>-<i>`."""
    return f"{pcs}-{replica}"


def subdomain(pcs: str, replica: int) -> str:
    """Pod subdomain: the headless Service name, so `<host>.<pcs>-<i>.<ns>.svc` resolves."""
    return service_name(pcs, replica)


def base_podgang_name(pcs: str, replica: int) -> str:
    """Base PodGang of one PodCliqueSet replica: `<pcs>-<i>`."""
    return f"{pcs}-{replica}"


def podclique_name(pcs: str, replica: int, clique: str) -> str:
    """Standalone PodClique: `<pcs>-<i>-<clique>`."""
    return f"{pcs}-{replica}-{clique}"


def scaling_group_name(pcs: str, replica: int, group: str) -> str:
    """PodCliqueScalingGroup (its FQN): `<pcs>-<i>-<sg>`."""
    return f"{pcs}-{replica}-{group}"


def scaling_group_podclique_name(pcsg_fqn: str, group_replica: int, clique: str) -> str:
    """PodClique of a scaling-group replica: `<pcs>-<i>-<sg>-<j>-<clique>`."""
    return f"{pcsg_fqn}-{group_replica}-{clique}"


def scaled_podgang_name(pcsg_fqn: str, group_replica: int, min_available: int) -> str:
    """Scaled PodGang of scaling-group replica j >= minAvailable: `<pcs>-<i>-<sg>-<j - minAvailable>` (0-based)."""
    if group_replica < min_available:
        raise ValueError(f"replica {group_replica} of {pcsg_fqn} is in the base gang (minAvailable {min_available})")
    return f"{pcsg_fqn}-{group_replica - min_available}"


def podgang_for_group_replica(pcs: str, replica: int, pcsg_fqn: str, group_replica: int, min_available: int) -> str:
    """The PodGang a scaling-group replica belongs to: the base gang below minAvailable, else its scaled gang."""
    if group_replica < min_available:
        return base_podgang_name(pcs, replica)
    return scaled_podgang_name(pcsg_fqn, group_replica, min_available)


def pod_name(pclq: str, pod_index: int) -> str:
    """grove-py pod name `<pclq>-<podIndex>` (deterministic; see the module docstring, Grove #635)."""
    return f"{pclq}-{pod_index}"


def hostname(pclq: str, pod_index: int) -> str:
    """Pod hostname `<pclq>-<podIndex>`, as Grove sets it."""
    return f"{pclq}-{pod_index}"


def trailing_index(name: str) -> int | None:
    """The trailing `-N` of a name (Grove parses indices from hostnames and FQNs the same way)."""
    match = _INDEX_SUFFIX.search(name)
    return int(match.group(1)) if match else None
