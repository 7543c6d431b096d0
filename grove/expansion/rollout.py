"""Rolling updates of one PodClique (`spec.updateStrategy.type: RollingRecreate`, grove-api.md §2.10).

A pod is *old* when its `grove.io/pod-template-hash` label differs from the PodClique's (the target). The
decision is a pure function of the observed pods, so it holds no progress state: after a crash the next
reconcile takes the same decision again (a second delete of the same pod is a 404, which is success).

* Old pods that are not Ready (Pending, starting, failed) are deleted at once.
* Ready old pods are replaced one at a time, highest pod index first (grove-py keeps no creation times in its
  pod views; Grove picks the oldest pod). The next one is deleted only when nothing is in flight: no pod is
  terminating, every index in [0, replicas) has a pod, and every pod at the target hash is Ready.
* A Ready pod is deleted only if `ready - 1 >= minAvailable`, so the rollout never takes ready pods below
  minAvailable. When that can never hold (`minAvailable >= replicas`, e.g. the default minAvailable), Grove's
  own rule applies instead (`ready >= minAvailable`, dipping one below it), otherwise the rollout would never
  progress.
* The normal reconcile re-creates the deleted index with the new template (delete, then recreate; no surge).
* `OnDelete`: nothing is deleted; pods the user deletes come back with the new template.
"""

from __future__ import annotations

from collections.abc import Iterable

from grove.expansion.observed import PodView

ROLLING_RECREATE = "RollingRecreate"
ON_DELETE = "OnDelete"


def pods_to_replace(
    pods: Iterable[PodView],
    target_hash: str | None,
    replicas: int,
    min_available: int,
    strategy: str = ROLLING_RECREATE,
) -> list[PodView]:
    """The pods of one PodClique to delete now for a rolling update (see the module docstring)."""
    if strategy == ON_DELETE or not target_hash:
        return []
    pods = list(pods)
    current = [p for p in pods if not p.terminating and p.pod_index is not None and p.pod_index < replicas]
    old = [p for p in current if p.template_hash != target_hash]
    if not old:
        return []
    # Not Ready (Pending, starting, failed, finished): nothing to protect, deleted at once.
    doomed = sorted(
        (p for p in old if not p.ready or p.phase in ("Succeeded", "Failed")), key=lambda p: -(p.pod_index or 0)
    )
    live = [p for p in current if p.phase not in ("Succeeded", "Failed")]
    in_flight = (
        doomed
        or any(p.terminating for p in pods)
        or {p.pod_index for p in live} != set(range(replicas))
        or any(not p.ready for p in live if p.template_hash == target_hash)
    )
    if in_flight:
        return doomed
    ready = sum(p.ready for p in live)
    floor = min_available if min_available < replicas else min_available - 1
    if ready - 1 < floor:
        return []
    return [max(old, key=lambda p: p.pod_index or 0)]
