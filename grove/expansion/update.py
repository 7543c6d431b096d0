"""PodCliqueSet-level rolling updates (grove-api.md §2.10, issue 8): which PCS replica is updated now, which
whole scaling-group replicas are replaced inside it, and the `updateProgress` status of each level.

Everything is decided from observed objects and pods (plus `status.updateProgress.currentlyUpdating` and a
PCSG's `readyReplicaIndicesSelectedToUpdate`, which the operator writes itself, the latter before it acts), so a
restart after kill -9 takes the same decision again:

* RollingRecreate goes one PCS replica at a time. The one being updated is the persisted
  `currentlyUpdating[0]` while it is not done; otherwise a replica that has already started (a child at the
  new hash, or a PodClique being deleted); otherwise Grove's order: replicas with no scheduled pod first, then
  breached ones, then the lowest index.
* In that replica, standalone PodCliques get the new template (their pods then roll one Ready pod at a time,
  `rollout.py`); scaling groups replace whole group replicas: all member PodCliques of one group replica are
  deleted together and re-created from the new template, so a leader and its workers never run different
  templates. Replicas waiting for their turn keep their current template (`keep_template`).
* A replica is done when every PodClique it should have is at the new hash, has no old pod left and has at
  least minAvailable Ready pods.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grove.api import constants as c
from grove.expansion import conditions, labels
from grove.expansion.observed import PodView
from grove.expansion.rollout import ON_DELETE, READY_REPLICAS_SELECTED, ROLLING_RECREATE, select


@dataclass(frozen=True)
class Clique:
    """One PodClique a PCS replica should have: the observed object (None: missing), the pod-template hash it
    should be at, and its own pods (pods left by a deleted PodClique of the same name are not in here)."""

    obj: dict[str, Any] | None
    target: str
    pods: Sequence[PodView] = ()

    @property
    def terminating(self) -> bool:
        return self.obj is not None and bool(self.obj["metadata"].get("deletionTimestamp"))

    @property
    def template_hash(self) -> str | None:
        if self.obj is None:
            return None
        return (self.obj["metadata"].get("labels") or {}).get(c.LABEL_POD_TEMPLATE_HASH)

    @property
    def old(self) -> bool:
        """Exists at another template than the target."""
        return self.obj is not None and not self.terminating and self.template_hash != self.target

    def _live(self) -> list[PodView]:
        return [p for p in self.pods if not p.terminating and p.phase not in ("Succeeded", "Failed")]

    @property
    def min_available(self) -> int:
        spec = (self.obj or {}).get("spec") or {}
        return int(spec.get("minAvailable") or spec.get("replicas") or 1)

    @property
    def available(self) -> bool:
        """minAvailable Ready pods (and not being deleted)."""
        return (
            self.obj is not None and not self.terminating and sum(p.ready for p in self._live()) >= self.min_available
        )

    @property
    def scheduled_pods(self) -> int:
        return sum(p.scheduled for p in self._live())

    @property
    def done(self) -> bool:
        """At the target hash, no old pod left, minAvailable Ready."""
        return (
            self.obj is not None
            and not self.terminating
            and self.template_hash == self.target
            and all(p.template_hash == self.target for p in self._live())
            and self.available
        )

    @property
    def breached(self) -> bool:
        status = (self.obj or {}).get("status") or {}
        return conditions.is_true(status.get("conditions"), c.CONDITION_MIN_AVAILABLE_BREACHED)


@dataclass(frozen=True)
class GroupReplica:
    """The member PodCliques of one scaling-group replica."""

    index: int
    members: Sequence[Clique]

    @property
    def old(self) -> bool:
        return any(m.old for m in self.members)

    @property
    def available(self) -> bool:
        return all(m.available for m in self.members)

    @property
    def in_flight(self) -> bool:
        """A member is missing or being deleted (a replacement that has not finished)."""
        return any(m.obj is None or m.terminating for m in self.members)

    @property
    def done(self) -> bool:
        return all(m.done for m in self.members)


@dataclass(frozen=True)
class Group:
    """One PodCliqueScalingGroup of a PCS replica and its group replicas [0, spec.replicas)."""

    name: str
    obj: dict[str, Any] | None
    replicas: Sequence[GroupReplica]

    @property
    def min_available(self) -> int:
        return int(((self.obj or {}).get("spec") or {}).get("minAvailable") or 1)

    @property
    def done(self) -> bool:
        return self.obj is not None and all(r.done for r in self.replicas)


@dataclass(frozen=True)
class Replica:
    """What the rollout needs to know about one PCS replica."""

    index: int
    standalone: Sequence[Clique]
    groups: Sequence[Group] = field(default_factory=tuple)

    def cliques(self) -> Iterable[Clique]:
        yield from self.standalone
        for group in self.groups:
            for rep in group.replicas:
                yield from rep.members

    @property
    def done(self) -> bool:
        return all(cl.done for cl in self.standalone) and all(g.done for g in self.groups)

    @property
    def started(self) -> bool:
        """Not done, but a child is already at the new hash or being deleted (a replacement under way)."""
        return not self.done and any(
            cl.obj is not None and (cl.terminating or cl.template_hash == cl.target) for cl in self.cliques()
        )

    @property
    def scheduled_pods(self) -> int:
        return sum(cl.scheduled_pods for cl in self.cliques())

    @property
    def breached(self) -> bool:
        return any(cl.breached for cl in self.cliques())


def persisted_current(status: dict[str, Any] | None) -> int | None:
    """`status.updateProgress.currentlyUpdating[0].replicaIndex`, if any."""
    entries = ((status or {}).get("updateProgress") or {}).get("currentlyUpdating") or []
    if not entries:
        return None
    index = entries[0].get("replicaIndex")
    return int(index) if isinstance(index, int) else None


def rollout_active(status: dict[str, Any] | None, target_hash: str | None, strategy: str, stale: bool = False) -> bool:
    """A RollingRecreate rollout is under way: the generation hash changed since the status was written, the
    status says a replica is being updated, or (`stale`) a PodClique still has an old template whatever the
    status says (so a status lost or wrong never leaves old pods behind). The first generation (nothing
    recorded yet) is no rollout."""
    if strategy != ROLLING_RECREATE or not target_hash:
        return False
    status = status or {}
    recorded = status.get("currentGenerationHash")
    if recorded is None:
        return False
    if stale:
        return True
    progress = status.get("updateProgress") or {}
    return recorded != target_hash or (not progress.get("updateEndedAt") and persisted_current(status) is not None)


def pick_current(replicas: Sequence[Replica], persisted: int | None) -> int | None:
    """The PCS replica to update now (see the module docstring); None when every replica is done."""
    pending = [r for r in replicas if not r.done]
    if not pending:
        return None
    if persisted is not None and any(r.index == persisted for r in pending):
        return persisted
    started = [r.index for r in pending if r.started]
    if started:
        return min(started)
    return min(pending, key=lambda r: (r.scheduled_pods > 0, not r.breached, r.index)).index


def group_replicas_to_replace(group: Group) -> list[int]:
    """Scaling-group replicas of the replica being updated whose member PodCliques are deleted now.

    Old replicas that are not available (Pending or below minAvailable Ready, or a member already deleted) go
    at once. Available old
    replicas go one at a time, highest index first, only when no replacement is in flight (no member missing
    or being deleted, every new replica available) and `available - 1 >= minAvailable` (Grove's
    `available >= minAvailable` when minAvailable >= replicas, otherwise it would never progress)."""
    doomed, ready = group_replacements(group)
    return [*doomed, *([ready] if ready is not None else [])]


def group_replacements(group: Group) -> tuple[list[int], int | None]:
    """`group_replicas_to_replace`, with the available group replica apart: (not available ones, highest first;
    the available one replaced now or None). The available one is recorded in the PCSG status before its
    PodCliques go (`select_group_replica`)."""
    old = [r for r in group.replicas if r.old]
    if not old:
        return [], None
    # Not available, or partly deleted already (a crash between the deletes of its members): the rest goes now.
    doomed = [r.index for r in old if not r.available or r.in_flight]
    in_flight = (
        bool(doomed)
        or any(r.in_flight for r in group.replicas)
        or any(not r.available for r in group.replicas if not r.old)
    )
    if in_flight:
        return sorted(doomed, reverse=True), None
    available = sum(r.available for r in group.replicas)
    count = len(group.replicas)
    floor = group.min_available if group.min_available < count else group.min_available - 1
    if available - 1 < floor:
        return [], None
    return [], max(r.index for r in old)


def select_group_replica(
    status: dict[str, Any] | None, generation_hash: str, index: int
) -> tuple[bool, dict[str, Any] | None]:
    """Grove §2.10 records the available group replica selected for replacement in the PCSG's
    `updateProgress.readyReplicaIndicesSelectedToUpdate` before deleting it (issue 8). The PCS reconcile
    decides (it deletes the members), so it writes that one key; the PCSG reconcile keeps the rest of the
    status and removes the key when the update ends or a new one starts (`group_update_progress`).

    Returns (may go now, status patch to write first): the group replica goes once the observed status
    records it; otherwise the patch records it (the one selected before moves to `completed`). While the
    PCSG's updateProgress is not yet at this generation there is nowhere to write it: wait for the PCSG
    reconcile. An update that has ended records nothing and is never held up."""
    progress = (status or {}).get("updateProgress") or {}
    if progress.get("podCliqueSetGenerationHash") != generation_hash:
        return False, None
    if progress.get("updateEndedAt"):
        return True, None
    previous = progress.get(READY_REPLICAS_SELECTED) or {}
    if previous.get("current") == index:
        return True, None
    return False, {"updateProgress": {READY_REPLICAS_SELECTED: select(previous, index)}}


def keep_template(desired: dict[str, Any], observed: dict[str, Any]) -> dict[str, Any]:
    """`desired` with the observed PodClique's pod template (labels, annotations, podSpec): a PodClique that
    waits for its turn (or a scaling-group member, replaced only whole) keeps its template, while replicas,
    minAvailable and the template-replicas record still follow the PodCliqueSet."""
    out = copy.deepcopy(desired)
    ometa = observed.get("metadata") or {}
    out["metadata"]["labels"] = dict(ometa.get("labels") or {})
    annotations = dict(ometa.get("annotations") or {})
    recorded = (desired["metadata"].get("annotations") or {}).get(labels.ANNOTATION_TEMPLATE_REPLICAS)
    if recorded is not None:
        annotations[labels.ANNOTATION_TEMPLATE_REPLICAS] = recorded
    out["metadata"]["annotations"] = annotations
    pod_spec = (observed.get("spec") or {}).get("podSpec")
    if pod_spec is not None:
        out["spec"]["podSpec"] = pod_spec
    return out


def pcs_update_progress(
    status: dict[str, Any] | None,
    target_hash: str,
    strategy: str,
    replicas: Sequence[Replica],
    current: int | None,
    created: str,
    now: str,
    stale: bool = False,
) -> dict[str, Any]:
    """PCS `status.updateProgress` (Grove's fields). Counts are recomputed every time from the children, so the
    printer columns are filled for the first generation too (Grove leaves updateProgress empty until a
    template changes; here the first generation counts as an update that started at creation)."""
    status = status or {}
    previous = status.get("updateProgress") or {}
    recorded = status.get("currentGenerationHash")
    if recorded is None:
        started, ended = previous.get("updateStartedAt") or created, previous.get("updateEndedAt")
    elif recorded != target_hash:
        started, ended = now, None
    else:
        started, ended = previous.get("updateStartedAt") or created, previous.get("updateEndedAt")
    standalone = [cl for r in replicas for cl in r.standalone]
    groups = [g for r in replicas for g in r.groups]
    all_done = all(r.done for r in replicas)
    if stale and strategy == ROLLING_RECREATE:
        ended = None  # a PodClique is still at an old template: not over, whatever was recorded
    if strategy == ON_DELETE and ended is None:
        ended = started  # Grove: OnDelete ends when it starts
    if ended is None and all_done:
        ended = now
    progress: dict[str, Any] = {
        "updateStartedAt": started,
        "updatedPodCliquesCount": sum(cl.done for cl in standalone),
        "totalPodCliquesCount": len(standalone),
        "updatedPodCliqueScalingGroupsCount": sum(g.done for g in groups),
        "totalPodCliqueScalingGroupsCount": len(groups),
    }
    # Keys that do not apply are sent as None: the status is a merge patch, so they are removed.
    progress["updateEndedAt"] = ended
    progress["currentlyUpdating"] = None
    if ended is None and strategy == ROLLING_RECREATE and current is not None and recorded is not None:
        entries = previous.get("currentlyUpdating") or []
        since = next((e.get("updateStartedAt") for e in entries if e.get("replicaIndex") == current), None)
        progress["currentlyUpdating"] = [{"replicaIndex": current, "updateStartedAt": since or now}]
    return progress


def group_update_progress(
    status: dict[str, Any] | None, generation_hash: str, group: Group, created: str, now: str
) -> dict[str, Any]:
    """PCSG `status.updateProgress`: member PodCliques at the new template out of all of them.
    `readyReplicaIndicesSelectedToUpdate` is the PCS reconcile's (`select_group_replica`): left out, so the
    merge patch keeps it, except that it goes when the update ends or a new one starts (None removes it)."""
    previous = (status or {}).get("updateProgress") or {}
    members = [m for r in group.replicas for m in r.members]
    same = previous.get("podCliqueSetGenerationHash") == generation_hash
    if same:
        started, ended = previous.get("updateStartedAt") or created, previous.get("updateEndedAt")
    elif not previous:
        started, ended = created, None
    else:
        started, ended = now, None
    if ended is None and group.done:
        ended = now
    progress: dict[str, Any] = {
        "updateStartedAt": started,
        "updateEndedAt": ended,  # None removes it (merge patch)
        "podCliqueSetGenerationHash": generation_hash,
        "updatedPodCliquesCount": sum(m.done for m in members),
        "totalPodCliquesCount": len(members),
    }
    if ended or not same:
        progress[READY_REPLICAS_SELECTED] = None
    return progress


def describe(replicas: Sequence[Replica], current: int | None, active: bool) -> tuple[str, str, str]:
    """(status, reason, message) of the PCS `RollingUpdate` condition, in words for `kubectl describe`."""
    done = [r.index for r in replicas if r.done]
    if not active or current is None:
        return "False", "UpdateComplete", f"all {len(replicas)} replicas at the current template"
    waiting = [r.index for r in replicas if not r.done and r.index != current]
    rep = next(r for r in replicas if r.index == current)
    parts = [f"updating replica {current}"]
    stale = [cl for cl in rep.standalone if not cl.done]
    if stale:
        parts.append(f"{len(stale)} PodClique(s) replacing pods one Ready pod at a time")
    for group in rep.groups:
        remaining = [r.index for r in group.replicas if not r.done]
        if remaining:
            parts.append(f"scaling group {group.name}: group replicas {remaining} to replace, one at a time")
    message = "; ".join(parts) + f". {len(done)}/{len(replicas)} replicas updated"
    if waiting:
        message += f", waiting: {_ranges(waiting)}"
    return "True", "RollingRecreate", message


def _ranges(indices: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7" (a message stays short at 500 replicas)."""
    out: list[str] = []
    start = prev = indices[0]
    for i in indices[1:]:
        if i != prev + 1:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            start = i
        prev = i
    out.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(out)
