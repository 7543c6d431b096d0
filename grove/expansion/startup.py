"""Startup order (grove-api.md §2.6) and grove-py's release mechanism.

Parents are resolved like Grove: AnyOrder has none; InOrder is the previous clique of `cliques`; Explicit is
`startsAfter`. A parent inside a scaling group expands to its PodCliques in group replicas
0..minAvailable-1 when the child is in the base gang; for a child in a scaled group replica only parents in
the same group replica count ("Startup ordering is only enforced within a PodGang").

Mechanism (team decision, replaces Grove's `grove-initc` with its ServiceAccount/Role/token): pods of a
dependent clique are created with annotation `grove.io/startup-released: "false"` and an init container that
waits until its own annotation, read from a downward-API volume that the kubelet refreshes, becomes "true".
The operator flips it once minAvailable pods of every parent PodClique are Ready. The pods are still created,
ungated and scheduled together with their gang, so the gang is never broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.expansion import naming, spec

STARTUP_CONTAINER = "grove-startup-wait"
STARTUP_VOLUME = "grove-startup"
STARTUP_MOUNT = "/var/run/grove-startup"
DEFAULT_STARTUP_WAIT_IMAGE = "busybox:1.37"


def parent_cliques(pcs: PodCliqueSet, clique: str) -> list[str]:
    """Template-level parents of a clique, by startup type."""
    template = pcs.spec.template
    names = [c_.name for c_ in template.cliques]
    if template.clique_startup_type == "CliqueStartupTypeInOrder":
        position = names.index(clique)
        return [names[position - 1]] if position > 0 else []
    if template.clique_startup_type == "CliqueStartupTypeExplicit":
        parents = spec.clique_by_name(pcs, clique).spec.starts_after or []
        return [p for p in parents if p in names and p != clique]
    return []


def starts_after(pcs: PodCliqueSet, replica: int, clique: str, group_replica: int | None = None) -> list[str]:
    """Parent PodClique FQNs of one PodClique (Grove's `identifyFullyQualifiedStartupDependencyNames`)."""
    name = pcs.metadata.name or ""
    child_group = spec.group_of(pcs, clique)
    scaled = child_group is not None and group_replica is not None and group_replica >= child_group.min_available
    out: list[str] = []
    for parent in parent_cliques(pcs, clique):
        parent_group = spec.group_of(pcs, parent)
        if scaled:
            assert child_group is not None and group_replica is not None
            if parent_group is not None and parent_group.name == child_group.name:
                fqn = naming.scaling_group_name(name, replica, child_group.name)
                out.append(naming.scaling_group_podclique_name(fqn, group_replica, parent))
            continue  # parents outside the group replica are dropped (ordering only within a PodGang)
        if parent_group is None:
            out.append(naming.podclique_name(name, replica, parent))
        else:
            fqn = naming.scaling_group_name(name, replica, parent_group.name)
            out.extend(naming.scaling_group_podclique_name(fqn, k, parent) for k in range(parent_group.min_available))
    return out


def add_startup_wait(pod_spec: dict[str, Any], image: str) -> dict[str, Any]:
    """Pod spec with the startup-wait init container first and its downward-API volume.

    First, not appended as Grove does: user init containers (model download from a leader, for example) are
    usually what must wait for the parents (see Grove #830 on init-container order).
    """
    out = dict(pod_spec)
    path = f"{STARTUP_MOUNT}/annotations"
    script = (
        f'echo "waiting for {c.ANNOTATION_STARTUP_RELEASED}"; '
        f"until grep -q '^{c.ANNOTATION_STARTUP_RELEASED}=\"true\"' {path}; do sleep 1; done"
    )
    container = {
        "name": STARTUP_CONTAINER,
        "image": image,
        "command": ["sh", "-c", script],
        "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"memory": "16Mi"}},
        "volumeMounts": [{"name": STARTUP_VOLUME, "mountPath": STARTUP_MOUNT, "readOnly": True}],
    }
    out["initContainers"] = [container] + [
        ic for ic in pod_spec.get("initContainers") or [] if ic.get("name") != STARTUP_CONTAINER
    ]
    volume = {
        "name": STARTUP_VOLUME,
        "downwardAPI": {"items": [{"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]},
    }
    out["volumes"] = [v for v in pod_spec.get("volumes") or [] if v.get("name") != STARTUP_VOLUME] + [volume]
    return out


def parents_ready(parents: list[str], ready_pods: Mapping[str, int], parent_min_available: Mapping[str, int]) -> bool:
    """True when every parent PodClique has at least its minAvailable pods Ready (missing parents: not ready)."""
    for parent in parents:
        if parent not in parent_min_available:
            return False
        if ready_pods.get(parent, 0) < parent_min_available[parent]:
            return False
    return True
