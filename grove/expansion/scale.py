"""Replica ownership and scale-in order.

Replica rule (grove-py's answer to Grove #150, where template `replicas` is applied only at creation):
each PodClique / PodCliqueScalingGroup records, in annotation `grove.io/template-replicas`, the template
value it was last synced to. On every reconcile:

* child missing: created with the template value;
* template value differs from the recorded one (the user edited the PodCliqueSet): the template value is
  applied and recorded;
* otherwise the child's own `spec.replicas` is kept, so `kubectl scale pclq|pcsg` (or an HPA) wins until the
  template value changes again.

Scale-in removes the highest indices first: pods by pod index, scaling-group replicas and PodCliqueSet replicas
by their index (Grove picks PCSG/PCS replicas this way; for pods it sorts by health, which leaves holes in the
indices, Grove #818 — grove-py keeps indices dense instead).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from grove.expansion.labels import ANNOTATION_TEMPLATE_REPLICAS
from grove.expansion.observed import PodView


def resolve_replicas(template_value: int, observed: dict[str, Any] | None) -> int:
    """The replicas a child should have (see the module docstring)."""
    if observed is None:
        return template_value
    annotations = (observed.get("metadata") or {}).get("annotations") or {}
    recorded = annotations.get(ANNOTATION_TEMPLATE_REPLICAS)
    if recorded is None or recorded != str(template_value):
        return template_value
    return int((observed.get("spec") or {}).get("replicas", template_value))


def active(pods: Iterable[PodView]) -> list[PodView]:
    """Pods that count: not terminating, not finished (Grove's 'active' pods)."""
    return [p for p in pods if not p.terminating and p.phase not in ("Succeeded", "Failed")]


def missing_pod_indices(pods: Iterable[PodView], replicas: int) -> list[int]:
    """Indices in [0, replicas) that need a pod. A terminating pod still holds its name, so its index waits."""
    taken = {p.pod_index for p in pods if p.pod_index is not None}
    return [i for i in range(replicas) if i not in taken]


def pods_to_delete(pods: Iterable[PodView], replicas: int) -> list[PodView]:
    """Pods beyond `replicas`, highest index first; pods without a valid index go first of all."""
    doomed = [p for p in pods if not p.terminating and (p.pod_index is None or p.pod_index >= replicas)]
    return sorted(doomed, key=lambda p: (p.pod_index is not None, -(p.pod_index or 0)))


def indices_to_remove(existing: Iterable[int], replicas: int) -> list[int]:
    """Replica indices >= replicas, highest first (PCSG and PCS replicas)."""
    return sorted((i for i in set(existing) if i >= replicas), reverse=True)
