"""The PodClique reconciler. Spec step: create missing pods, delete pods for scale-in and rolling updates,
remove scheduling gates of listed pods, release dependents once their startup parents are available.
Status step: the PodClique status from its cached pods, and an Event when minAvailable is breached."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from controllers import events, schedulingbackend
from controllers.client import PRIORITY_GATES, STRATEGIC
from controllers.queue_keys import PCLQ
from controllers.runtime import Runtime, now
from controllers.workqueue import Hints
from controllers.writes import (
    counted,
    create_or_forget,
    delete,
    forget_on_error,
    object_key,
    pod_path,
    run,
    write_status,
)
from grove.api import constants as c
from grove.expansion import claims, conditions, gating, naming, pod, podgang, rollout, scale, startup, status, workload
from grove.expansion.observed import PodView
from grove.expansion.topology import NO_TOPOLOGY


async def reconcile(rt: Runtime, ns: str, name: str, hints: Hints) -> None:
    pclq = rt.cache.pclq(ns, name)
    if pclq is None or pclq["metadata"].get("deletionTimestamp"):
        return
    named = rt.cache.pods(ns, name)
    # Pods of a deleted PodClique of the same name (waiting for garbage collection) still hold their names
    # but are not ours: they are neither counted, rolled nor ungated (issue 8).
    pods = [p for p in named if p.owner_uid in (None, pclq["metadata"].get("uid"))]
    parents_ok = _parents_available(rt, ns, pclq)
    gang, base_ok = _gang_state(rt, ns, pclq)
    owner = rt.cache.pcs(ns, (pclq["metadata"].get("labels") or {}).get(c.LABEL_PART_OF, ""))
    replacing = _replacements(pclq, pods, owner)
    desired = _desired_status(rt, pclq, pods, owner, replacing.ready)
    writes: list[Awaitable[Any]] = []
    schedulable = gating.schedulable(pclq, gang, base_ok)
    await _sync_pods(rt, ns, pclq, pods, named, parents_ok, schedulable, owner, replacing, desired, writes)
    _sync_gates(rt, ns, gating.pods_to_ungate(pclq, pods, gang, base_ok), pods, parents_ok, writes)
    if await run(writes):
        return
    await _sync_status(rt, ns, name, pclq, desired)


def _replacements(pclq: dict[str, Any], pods: list[PodView], owner: dict[str, Any] | None) -> rollout.Replacements:
    """The rolling update's pods to replace now (none without a PodCliqueSet)."""
    if owner is None:
        return rollout.Replacements()
    spec = pclq.get("spec") or {}
    want = int(spec.get("replicas", 0))
    strategy = ((owner.get("spec") or {}).get("updateStrategy") or {}).get("type", rollout.ROLLING_RECREATE)
    return rollout.replacements(
        pods,
        (pclq["metadata"].get("labels") or {}).get(c.LABEL_POD_TEMPLATE_HASH),
        want,
        int(spec.get("minAvailable") or want or 1),
        strategy,
    )


def _parents_available(rt: Runtime, ns: str, pclq: dict[str, Any]) -> bool:
    """Whether every startup parent (`startsAfter`) has minAvailable Ready pods."""
    parents = list((pclq.get("spec") or {}).get("startsAfter") or [])
    if not parents:
        return True
    ready: dict[str, int] = {}
    mins: dict[str, int] = {}
    for parent in parents:
        parent_obj = rt.cache.pclq(ns, parent)
        if parent_obj is not None:
            mins[parent] = int((parent_obj.get("spec") or {}).get("minAvailable") or 1)
            ready[parent] = sum(p.ready and not p.terminating for p in rt.cache.pods(ns, parent))
    return startup.parents_ready(parents, ready, mins)


def _gang_state(rt: Runtime, ns: str, pclq: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """This PodClique's PodGang from the cache, and whether its base gang is scheduled (always true for a base
    gang): what decides, through `gating`, when a pod may be schedulable, whether it is created so or ungated
    later (Grove's guarantee: never before its gang exists)."""
    labels = pclq["metadata"].get("labels") or {}
    gang = rt.cache.podgang(ns, labels.get(c.LABEL_PODGANG, ""))
    base_ok = True
    if gang is not None and gating.is_scaled(pclq):
        base = rt.cache.podgang(ns, labels.get(c.LABEL_BASE_PODGANG, ""))
        scheduled = {}
        for group in (base or {}).get("spec", {}).get("podgroups") or []:
            member = rt.cache.pclq(ns, group["name"])
            scheduled[group["name"]] = int(((member or {}).get("status") or {}).get("scheduledReplicas", 0))
        base_ok = podgang.base_gang_scheduled(base, scheduled)
    return gang, base_ok


async def _sync_pods(
    rt: Runtime,
    ns: str,
    pclq: dict[str, Any],
    pods: list[PodView],
    named: list[PodView],
    parents_ok: bool,
    schedulable: set[str],
    owner: dict[str, Any] | None,
    replacing: rollout.Replacements,
    desired_status: dict[str, Any],
    writes: list[Awaitable[Any]],
) -> None:
    """Missing pod indices are created (an index whose name is still held, by any pod, waits; without Grove's
    gate when they are schedulable already, issue #13: one write per pod instead of two); scale-in (highest
    index first), then the rolling update's replacements (grove/expansion/rollout.py) are deleted: a Ready
    one only once the status records it as selected (Grove §2.10, issue 8; `_record_then_replace`)."""
    spec = pclq.get("spec") or {}
    labels = pclq["metadata"].get("labels") or {}
    want = int(spec.get("replicas", 0))
    model = rt.load(owner).model if owner is not None else None
    gang_scheduling, keys = False, NO_TOPOLOGY
    missing = scale.missing_pod_indices(named, want)
    if model is not None and missing:
        # Issue #9: pods join their PodGroup and carry the preferred packing when they are created.
        gang_scheduling = schedulingbackend.backend_name(rt.backends, model) == workload.BACKEND
        keys, _ = await schedulingbackend.topology_keys(rt.kube, rt.backends, model)
    for index in missing:
        desired = pod.desired_pod(
            pclq,
            index,
            startup_wait_image=rt.options.startup_wait_image,
            pcs=model if claims.available() else None,
            startup_released=parents_ok,
            gang_scheduling=gang_scheduling,
            topology=keys,
            gated=not gating.held_by_scheduler(pclq, gang_scheduling)
            and naming.pod_name(pclq["metadata"]["name"], index) not in schedulable,
        )
        key = object_key(desired)
        if not rt.creates.pending(key):
            rt.creates.expect(key)
            writes.append(counted(create_or_forget(rt, key, desired)))
    victims = scale.pods_to_delete(pods, want) + replacing.doomed
    ready = replacing.ready
    if ready is not None:
        if rollout.may_replace_ready(
            pclq.get("status"), desired_status, labels.get(c.LABEL_POD_TEMPLATE_HASH), ready.name
        ):
            victims.append(ready)
        else:
            writes.append(_record_then_replace(rt, pclq, desired_status, _pod_ref(ns, ready)))
    writes.extend(delete(rt, _pod_ref(ns, victim)) for victim in victims)


def _pod_ref(ns: str, pod: PodView) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod.name, "namespace": ns, "uid": pod.uid}}


async def _record_then_replace(
    rt: Runtime, pclq: dict[str, Any], desired_status: dict[str, Any], pod_ref: dict[str, Any]
) -> None:
    """Grove writes the Ready pod it selects for replacement into the status, then deletes it (§2.10, issue
    8). Both in this pass once the API server has answered the status write: a crash between them finds the
    selection recorded and deletes the pod then. If the write cannot go now (paced, or another in flight),
    the pass that sees it recorded deletes the pod."""
    meta = pclq["metadata"]
    if await write_status(rt, pclq, desired_status, (PCLQ, meta.get("namespace", ""), meta["name"]), urgent=True):
        await delete(rt, pod_ref)


def _sync_gates(
    rt: Runtime,
    ns: str,
    to_ungate: list[PodView],
    pods: list[PodView],
    parents_ok: bool,
    writes: list[Awaitable[Any]],
) -> None:
    """Remove our scheduling gate from gated pods that are schedulable now, and release dependents'
    startup-wait once their parents are available."""
    for view in to_ungate:
        if not rt.writes.pending(("ungate", view.uid)):
            rt.writes.expect(("ungate", view.uid))
            ungate = rt.kube.patch(
                pod_path(ns, view.name), gating.UNGATE_PATCH, content_type=STRATEGIC, priority=PRIORITY_GATES
            )
            writes.append(counted(forget_on_error(rt, ("ungate", view.uid), ungate)))
    for view in gating.pods_to_release(pods, parents_ok):
        if not rt.writes.pending(("release", view.uid)):
            rt.writes.expect(("release", view.uid))
            release = rt.kube.patch(pod_path(ns, view.name), gating.RELEASE_PATCH, priority=PRIORITY_GATES)
            writes.append(counted(forget_on_error(rt, ("release", view.uid), release)))


def _desired_status(
    rt: Runtime, pclq: dict[str, Any], pods: list[PodView], owner: dict[str, Any] | None, selected: PodView | None
) -> dict[str, Any]:
    """The PodClique status from its cached pods (`selected`: the Ready pod the rolling update replaces next)."""
    loaded = rt.load(owner) if owner is not None else None
    target = loaded.template_hashes.get(pod.clique_template_name(pclq)) if loaded is not None else None
    return status.podclique_status(
        pclq,
        pods,
        now(),
        loaded.generation_hash if loaded else None,
        target,
        selected.name if selected is not None else None,
    )


async def _sync_status(rt: Runtime, ns: str, name: str, pclq: dict[str, Any], desired: dict[str, Any]) -> None:
    previous = pclq.get("status") or {}
    was_false = conditions.is_false(previous.get("conditions"), c.CONDITION_MIN_AVAILABLE_BREACHED)
    breached = conditions.is_true(desired["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)
    # A new Ready pod selected for replacement is deleted once this write is seen: not paced (issue 8).
    selected = ((desired.get("updateProgress") or {}).get("readyPodsSelectedToUpdate") or {}).get("current")
    recorded = ((previous.get("updateProgress") or {}).get("readyPodsSelectedToUpdate") or {}).get("current")
    urgent = selected is not None and selected != recorded
    await write_status(
        rt, pclq, desired, (PCLQ, ns, name), urgent=urgent, background=True, progressing=_progressing(rt, pclq, desired)
    )
    if was_false and breached:
        cond = conditions.get(desired["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED) or {}
        await events.post(rt.kube, pclq, "Warning", "MinAvailableBreached", str(cond.get("message", "")))


def _progressing(rt: Runtime, pclq: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether this status is one of a PodClique on its way (pods not all Ready), paced by the progress budget
    (`writes.STATUS_PROGRESS_RATE`, issue #13). Not when scaled gangs wait for this base clique's
    `scheduledReplicas` (Grove §2.7): their pods are ungated from it."""
    if conditions.is_true(desired.get("conditions"), c.CONDITION_READY):
        return False
    previous = pclq.get("status") or {}
    if desired.get("scheduledReplicas") != previous.get("scheduledReplicas"):
        meta = pclq["metadata"]
        gang = (meta.get("labels") or {}).get(c.LABEL_PODGANG, "")
        if rt.cache.scaled_pclqs_of_base(meta.get("namespace", ""), gang):
            return False
    return True
