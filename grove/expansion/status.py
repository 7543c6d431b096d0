"""Status as Grove keeps it (grove-api.md §2.8, §1.3, §1.4, §1.2.1), plus a `Ready` condition on all three kinds
(Grove #112) so `kubectl wait --for=condition=Ready pcs/NAME` works.

Pure functions of the observed children. `now` is used only for conditions whose status changes, so the same
observations always give the same status and the operator writes nothing when nothing changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from grove.api import constants as c
from grove.expansion import conditions, gangtermination, labels, rollout, scale
from grove.expansion.observed import PodView

REASON_NOT_YET_AVAILABLE = "NotYetAvailable"
REASON_UPDATE_IN_PROGRESS = "UpdateInProgress"
# grove-py: what a rolling update is doing, in words (`kubectl describe pcs`).
CONDITION_ROLLING_UPDATE = "RollingUpdate"


def podclique_status(
    pclq: dict[str, Any],
    pods: Iterable[PodView],
    now: str,
    generation_hash: str | None = None,
    target_hash: str | None = None,
    selected: str | None = None,
) -> dict[str, Any]:
    """PodClique status from its pods. `generation_hash`/`target_hash`: the PodCliqueSet's generation hash and
    the pod-template hash its template wants for this clique (for updateProgress and
    currentPodCliqueSetGenerationHash; a PodClique waiting for its turn in a rollout is not at the target).
    `selected`: the Ready pod the rolling update replaces next (`rollout.replacements`), recorded in
    `updateProgress.readyPodsSelectedToUpdate` before it is deleted (Grove §2.10, issue 8).

    MinAvailableBreached (issue 8, Grove §2.8): Unknown/NotYetAvailable until minAvailable was reached once
    (so gang termination never hits a gang that is still starting); Unknown/UpdateInProgress while old-hash
    pods are being replaced; otherwise True/False as Grove computes it."""
    meta = pclq["metadata"]
    spec = pclq.get("spec") or {}
    previous = pclq.get("status") or {}
    want = int(spec.get("replicas", 0))
    min_available = int(spec.get("minAvailable") or want or 1)
    current_hash = (meta.get("labels") or {}).get(c.LABEL_POD_TEMPLATE_HASH)
    act = scale.active(pods)
    ready = sum(p.ready for p in act)
    scheduled = sum(p.scheduled for p in act)
    gated = sum(p.gated or p.other_gates for p in act)
    wanted_hash = target_hash or current_hash
    updated = sum(wanted_hash is not None and p.template_hash == wanted_hash for p in act)
    failed = sum(p.failed_containers for p in act if p.scheduled)
    starting = sum(p.started_not_ready for p in act if p.scheduled)
    gen = meta.get("generation")
    previous_breach = conditions.get(previous.get("conditions"), c.CONDITION_MIN_AVAILABLE_BREACHED)
    was_available = previous_breach is not None and previous_breach.get("reason") != REASON_NOT_YET_AVAILABLE
    prev_progress = previous.get("updateProgress") or {}
    has_old = any(current_hash is not None and p.template_hash != current_hash for p in act)
    rolling = has_old or (
        # the last old pod is gone but its replacement is not Ready yet: still the update
        bool(prev_progress)
        and prev_progress.get("podTemplateHash") == current_hash
        and not prev_progress.get("updateEndedAt")
        and ready < min_available
    )
    if scheduled < min_available:
        breach = ("True", "InsufficientScheduledPods", f"{scheduled} scheduled < minAvailable {min_available}")
    elif scheduled - failed - starting < min_available or ready < min_available:
        breach = ("True", "InsufficientReadyPods", f"{ready} ready < minAvailable {min_available}")
    else:
        breach = ("False", "SufficientReadyPods", f"{ready} ready, minAvailable {min_available}")
    if breach[0] == "True" and not was_available:
        breach = ("Unknown", REASON_NOT_YET_AVAILABLE, f"{ready} ready, minAvailable {min_available} not reached yet")
    elif breach[0] == "True" and rolling:
        breach = ("Unknown", REASON_UPDATE_IN_PROGRESS, f"{updated}/{want} pods at the new template")
    sched = (
        ("True", "SufficientScheduledPods") if scheduled >= min_available else ("False", "InsufficientScheduledPods")
    )
    is_ready = ready >= want and len(act) >= want
    new_conditions = [
        conditions.make(c.CONDITION_MIN_AVAILABLE_BREACHED, *breach, now, gen),
        conditions.make(c.CONDITION_PODCLIQUE_SCHEDULED, *sched, f"{scheduled}/{want} pods scheduled", now, gen),
        conditions.make(
            c.CONDITION_READY,
            "True" if is_ready else "False",
            "AllPodsReady" if is_ready else "PodsNotReady",
            f"{ready}/{want} pods ready",
            now,
            gen,
        ),
    ]
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "replicas": len(act),
        "readyReplicas": ready,
        "scheduledReplicas": scheduled,
        "scheduleGatedReplicas": gated,
        "updatedReplicas": updated,
        "conditions": conditions.merge(previous.get("conditions") or [], new_conditions),
    }
    if current_hash:
        status["currentPodTemplateHash"] = current_hash
    at_target = target_hash is None or current_hash == target_hash
    if generation_hash and at_target and not has_old:
        status["currentPodCliqueSetGenerationHash"] = generation_hash
    finished = not has_old and ready >= min_available
    progress = _podclique_update_progress(previous, current_hash, generation_hash, finished, now, selected)
    if progress is not None:
        status["updateProgress"] = progress
    pclq_labels = meta.get("labels") or {}
    if pclq_labels.get(c.LABEL_COMPONENT) == c.COMPONENT_PCS_PODCLIQUE:
        status["hpaPodSelector"] = labels.podclique_selector(pclq_labels[c.LABEL_PART_OF], meta["name"])
    return status


def _podclique_update_progress(
    previous: dict[str, Any],
    current_hash: str | None,
    generation_hash: str | None,
    finished: bool,
    now: str,
    selected: str | None = None,
) -> dict[str, Any] | None:
    """PCLQ updateProgress: started when its pod-template hash changes in place (or a Ready old pod is selected
    for replacement, so the selection can always be recorded), ended when no old pod is left and minAvailable
    pods are Ready. A PodClique created at its template has none. `readyPodsSelectedToUpdate` names the Ready
    pods selected in this update and goes when it ends (Grove's markRollingUpdateEnd)."""
    prev = previous.get("updateProgress") or {}
    if not current_hash or not generation_hash:
        return prev or None
    if prev.get("podTemplateHash") == current_hash:
        started, ended = prev.get("updateStartedAt") or now, prev.get("updateEndedAt")
        chosen = prev.get(rollout.READY_PODS_SELECTED)
    elif previous.get("currentPodTemplateHash") not in (None, current_hash) or selected is not None:
        started, ended, chosen = now, None, None
    else:
        return prev or None
    if selected is not None:
        ended, chosen = None, rollout.select(chosen, selected)  # an old Ready pod left: not over
    if ended is None and finished:
        ended = now
    return {
        "updateStartedAt": started,
        "updateEndedAt": ended,  # None removes it (merge patch)
        "podCliqueSetGenerationHash": generation_hash,
        "podTemplateHash": current_hash,
        rollout.READY_PODS_SELECTED: None if ended else chosen,
    }


def _breached(pclq: dict[str, Any] | None) -> bool:
    """A missing PodClique or one whose MinAvailableBreached is not False counts as breached."""
    if pclq is None:
        return True
    return not conditions.is_false((pclq.get("status") or {}).get("conditions"), c.CONDITION_MIN_AVAILABLE_BREACHED)


def _ready(obj: dict[str, Any] | None) -> bool:
    return obj is not None and conditions.is_true((obj.get("status") or {}).get("conditions"), c.CONDITION_READY)


def scaling_group_status(
    pcsg: dict[str, Any],
    members: Mapping[int, list[dict[str, Any] | None]],
    now: str,
    update_progress: dict[str, Any] | None = None,
    generation_hash: str | None = None,
    updated_replicas: int | None = None,
) -> dict[str, Any]:
    """PCSG status from its member PodCliques (members: group replica -> expected PodCliques, None if missing).
    `update_progress` (grove.expansion.update.group_update_progress) and `generation_hash` (set once every
    member is at the PodCliqueSet's current generation) come from the caller."""
    meta = pcsg["metadata"]
    spec = pcsg.get("spec") or {}
    previous = pcsg.get("status") or {}
    want = int(spec.get("replicas", 0))
    min_available = int(spec.get("minAvailable", 1))
    gen = meta.get("generation")
    scheduled = available = healthy = updated = 0
    all_ready = True
    for j in range(want):
        group = members.get(j) or [None]
        if all(
            m is not None
            and conditions.is_true((m.get("status") or {}).get("conditions"), c.CONDITION_PODCLIQUE_SCHEDULED)
            for m in group
        ):
            scheduled += 1
        if all(
            m is not None
            and int((m.get("status") or {}).get("readyReplicas", 0))
            >= int((m.get("spec") or {}).get("minAvailable", 1))
            for m in group
        ):
            available += 1
        if not any(_breached(m) for m in group):
            healthy += 1
        if all(
            m is not None
            and int((m.get("status") or {}).get("updatedReplicas", 0)) >= int((m.get("spec") or {}).get("replicas", 0))
            for m in group
        ):
            updated += 1
        all_ready = all_ready and all(_ready(m) for m in group)
    breached = healthy < min_available
    pcs_name = (meta.get("labels") or {}).get(c.LABEL_PART_OF, "")
    new_conditions = [
        conditions.make(
            c.CONDITION_MIN_AVAILABLE_BREACHED,
            "True" if breached else "False",
            "InsufficientAvailablePodCliqueScalingGroupReplicas"
            if breached
            else "SufficientAvailablePodCliqueScalingGroupReplicas",
            f"{healthy} healthy replicas, minAvailable {min_available}",
            now,
            gen,
        ),
        conditions.make(
            c.CONDITION_READY,
            "True" if all_ready else "False",
            "AllReplicasReady" if all_ready else "ReplicasNotReady",
            f"{available}/{want} replicas available",
            now,
            gen,
        ),
    ]
    if not breached and _recovered_since_flag(pcsg, members, want):
        # Set by the PCS-level gang termination, cleared once MinAvailableBreached is False again (Grove §1.4).
        new_conditions.append(
            conditions.make(
                c.CONDITION_GANG_TERMINATION_IN_PROGRESS,
                "False",
                "SufficientAvailablePodCliqueScalingGroupReplicas",
                f"MinAvailableBreached is False again: {healthy} healthy replicas, minAvailable {min_available}",
                now,
                gen,
            )
        )
    out: dict[str, Any] = {
        "observedGeneration": gen,
        "replicas": want,
        "scheduledReplicas": scheduled,
        "availableReplicas": available,
        "updatedReplicas": updated,
        "selector": labels.scaling_group_selector(pcs_name, meta["name"]),
        "conditions": conditions.merge(previous.get("conditions") or [], new_conditions),
    }
    if update_progress is not None:
        out["updateProgress"] = update_progress
    if updated_replicas is not None:
        out["updatedReplicas"] = updated_replicas
    if generation_hash:
        out["currentPodCliqueSetGenerationHash"] = generation_hash
    return out


def _recovered_since_flag(
    pcsg: Mapping[str, Any], members: Mapping[int, list[dict[str, Any] | None]], want: int
) -> bool:
    """Whether a PCSG's `GangTerminationInProgress=True` is over (issue 8): with MinAvailableBreached False, every
    member was re-evaluated since the flag. The flag is written *before* the PodCliques are deleted, while a PCSG
    that did not cause the termination is still healthy; a member from before the flag means the termination
    has not happened yet. Re-created members get new conditions, so this needs no sight of the breach between."""
    flagged = gangtermination.flagged_since(dict(pcsg))
    if flagged is None:
        return False
    return not any(gangtermination.from_before_flag(m, flagged) for j in range(want) for m in members.get(j) or [])


def podcliqueset_status(
    pcs: dict[str, Any],
    replicas: Mapping[int, tuple[list[dict[str, Any] | None], list[dict[str, Any] | None]]],
    spec_errors: list[tuple[str, str]],
    generation_hash: str | None,
    now: str,
    update_progress: dict[str, Any] | None = None,
    rolling: tuple[str, str, str] | None = None,
    updated_replicas: int | None = None,
) -> dict[str, Any]:
    """PCS status. replicas: PCS replica index -> (expected standalone PodCliques, expected PCSGs), None if missing.
    `update_progress`, `rolling` (status, reason, message of the `RollingUpdate` condition) and `updated_replicas`
    come from grove.expansion.update.

    A replica is available when all its standalone PodCliques and PCSGs have MinAvailableBreached=False (Grove);
    Ready additionally needs every child Ready (all pods Ready)."""
    meta = pcs["metadata"]
    previous = pcs.get("status") or {}
    want = int((pcs.get("spec") or {}).get("replicas", 0))
    gen = meta.get("generation")
    available = updated = ready_count = 0
    for i in range(want):
        pclqs, pcsgs = replicas.get(i, ([None], [None]))
        children = [*pclqs, *pcsgs]
        if not any(_breached(ch) for ch in children):
            available += 1
        if all(_ready(ch) for ch in children):
            ready_count += 1
        if all(
            ch is not None
            and (ch.get("status") or {}).get("updatedReplicas", 0) >= (ch.get("spec") or {}).get("replicas", 0)
            for ch in children
        ):
            updated += 1
    valid = not spec_errors
    is_ready = valid and ready_count == want
    new_conditions = [
        conditions.make(
            c.CONDITION_SPEC_VALID,
            "True" if valid else "False",
            "Valid" if valid else "Invalid",
            "spec is valid" if valid else "; ".join(f"{f}: {m}" for f, m in spec_errors)[:1000],
            now,
            gen,
        ),
        conditions.make(
            c.CONDITION_READY,
            "True" if is_ready else "False",
            "AllReplicasReady" if is_ready else ("SpecInvalid" if not valid else "ReplicasNotReady"),
            f"{ready_count}/{want} replicas ready, {available} available",
            now,
            gen,
        ),
    ]
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "replicas": want,
        "availableReplicas": available if valid else 0,
        "updatedReplicas": (updated if updated_replicas is None else updated_replicas) if valid else 0,
        "hpaPodSelector": labels.pcs_selector(meta["name"]),
        "conditions": conditions.merge(previous.get("conditions") or [], new_conditions),
    }
    if generation_hash:
        status["currentGenerationHash"] = generation_hash
    if update_progress is not None and valid:
        status["updateProgress"] = update_progress
    if rolling is not None and valid:
        status["conditions"] = conditions.merge(
            status["conditions"], [conditions.make(CONDITION_ROLLING_UPDATE, *rolling, now, gen)]
        )
    return status


def differs(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """True if writing `desired` as a JSON merge patch would change the current status. Keys the patch leaves
    out are kept at every level, so they never count (keys we do not own, such as the PCS reconcile's
    `readyReplicaIndicesSelectedToUpdate` inside a PCSG's updateProgress, issue 8); a None removes its key
    (e.g. `updateEndedAt` when a new rollout starts), so it matches a missing key; lists are replaced whole."""
    return _changes(current or {}, desired)


def _changes(current: Any, patch: Any) -> bool:
    if not isinstance(patch, Mapping):
        return bool(current != patch)
    if not isinstance(current, Mapping):
        return True
    # A null in the current status is as good as absent (the API server stores none).
    return any(current.get(k) is not None if v is None else _changes(current.get(k), v) for k, v in patch.items())
