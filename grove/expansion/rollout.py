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

The Ready pod chosen is recorded in `status.updateProgress.readyPodsSelectedToUpdate` (Grove §1.3, §2.10:
`current`, and the ones chosen before it in `completed`) *before* it is deleted: the status is the only place
that knows a deleted pod was a Ready one, so it is written first and the pod goes once the observed status
names it (`may_replace_ready`). A restart between the two takes the same choice again and finds it recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grove.expansion.observed import PodView

ROLLING_RECREATE = "RollingRecreate"
ON_DELETE = "OnDelete"
# Grove's updateProgress keys of the Ready pod / group replica selected for replacement (issue 8).
READY_PODS_SELECTED = "readyPodsSelectedToUpdate"
READY_REPLICAS_SELECTED = "readyReplicaIndicesSelectedToUpdate"


@dataclass(frozen=True)
class Replacements:
    """The pods of one PodClique a rolling update replaces now: `doomed` (not Ready: at once) and `ready` (the
    one Ready pod replaced now, recorded in the status first; None: none)."""

    doomed: list[PodView] = field(default_factory=list)
    ready: PodView | None = None

    def all(self) -> list[PodView]:
        return [*self.doomed, *([self.ready] if self.ready is not None else [])]


def pods_to_replace(
    pods: Iterable[PodView],
    target_hash: str | None,
    replicas: int,
    min_available: int,
    strategy: str = ROLLING_RECREATE,
) -> list[PodView]:
    """The pods of one PodClique to delete now for a rolling update (see the module docstring)."""
    return replacements(pods, target_hash, replicas, min_available, strategy).all()


def replacements(
    pods: Iterable[PodView],
    target_hash: str | None,
    replicas: int,
    min_available: int,
    strategy: str = ROLLING_RECREATE,
) -> Replacements:
    """`pods_to_replace`, with the Ready pod apart (it is recorded before it goes)."""
    if strategy == ON_DELETE or not target_hash:
        return Replacements()
    pods = list(pods)
    current = [p for p in pods if not p.terminating and p.pod_index is not None and p.pod_index < replicas]
    old = [p for p in current if p.template_hash != target_hash]
    if not old:
        return Replacements()
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
        return Replacements(doomed)
    ready = sum(p.ready for p in live)
    floor = min_available if min_available < replicas else min_available - 1
    if ready - 1 < floor:
        return Replacements()
    return Replacements([], max(old, key=lambda p: p.pod_index or 0))


def select(previous: Mapping[str, Any] | None, chosen: Any) -> dict[str, Any]:
    """Grove's `readyPodsSelectedToUpdate` / `readyReplicaIndicesSelectedToUpdate` once `chosen` is selected:
    the one selected before it moves to `completed` (Grove's updatePCLQStatusWithNextPodToUpdate)."""
    prev = dict(previous or {})
    if "current" not in prev:
        return {"current": chosen}
    if prev["current"] == chosen:
        return prev
    return {"current": chosen, "completed": [*(prev.get("completed") or []), prev["current"]]}


def recorded_pod(status: Mapping[str, Any] | None, template_hash: str | None) -> str | None:
    """The Ready pod a PodClique status records as selected for the update to `template_hash` (None: none)."""
    progress = (status or {}).get("updateProgress") or {}
    if not template_hash or progress.get("podTemplateHash") != template_hash:
        return None
    selected = progress.get(READY_PODS_SELECTED) or {}
    current = selected.get("current")
    return str(current) if current is not None else None


def may_replace_ready(
    observed: Mapping[str, Any] | None, desired: Mapping[str, Any], template_hash: str | None, pod: str
) -> bool:
    """Whether the Ready pod `pod` may be deleted now: the observed status records it as selected (Grove writes
    the selection, then deletes; issue 8), or the desired status would not record it (nothing to wait for, so a
    status that cannot say it never stalls the rollout)."""
    return recorded_pod(observed, template_hash) == pod or recorded_pod(desired, template_hash) != pod
