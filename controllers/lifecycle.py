"""Day-2 lifecycle of a PodCliqueSet (issue 8), the shell around `grove.expansion.update` and
`grove.expansion.gangtermination`: builds the per-replica views from the caches, deletes what the pure
decisions name (member PodCliques of a scaling-group replica, whole gangs), re-queues for gang-termination
deadlines, and logs one INFO line (and posts one Event) per rollout phase change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controllers import events
from controllers.queue_keys import PCS
from controllers.runtime import Loaded, Runtime
from controllers.workqueue import Hints
from controllers.writes import delete, run, write_status
from grove.api import constants as c
from grove.expansion import gangtermination, naming, pod, update
from grove.expansion import spec as specs
from grove.expansion.observed import PodView

log = logging.getLogger("grove.operator.lifecycle")

FOREGROUND = "Foreground"


def own_pods(rt: Runtime, ns: str, pclq: dict[str, Any] | None) -> list[PodView]:
    """Pods of a PodClique, without pods a deleted PodClique of the same name left behind."""
    if pclq is None:
        return []
    uid = pclq["metadata"].get("uid")
    return [p for p in rt.cache.pods(ns, pclq["metadata"]["name"]) if p.owner_uid in (None, uid)]


def clique(rt: Runtime, ns: str, name: str, target: str) -> update.Clique:
    obj = rt.cache.pclq(ns, name)
    return update.Clique(obj, target, own_pods(rt, ns, obj))


def group_view(rt: Runtime, loaded: Loaded, ns: str, pcsg_name: str, group: Any) -> update.Group:
    model = loaded.model
    assert model is not None
    obj = rt.cache.pcsg(ns, pcsg_name)
    count = int(((obj or {}).get("spec") or {}).get("replicas", group.replicas))
    members = specs.group_members(model, group)
    reps = [
        update.GroupReplica(
            j,
            [
                clique(
                    rt, ns, naming.scaling_group_podclique_name(pcsg_name, j, m.name), loaded.template_hashes[m.name]
                )
                for m in members
            ],
        )
        for j in range(count)
    ]
    return update.Group(group.name, obj, reps)


def replica_view(rt: Runtime, pcs: dict[str, Any], loaded: Loaded, i: int) -> update.Replica:
    model = loaded.model
    assert model is not None
    ns, name = pcs["metadata"].get("namespace", ""), pcs["metadata"]["name"]
    standalone = [
        clique(rt, ns, naming.podclique_name(name, i, cl.name), loaded.template_hashes[cl.name])
        for cl in specs.standalone_cliques(model)
    ]
    groups = [
        group_view(rt, loaded, ns, naming.scaling_group_name(name, i, g.name), g)
        for g in model.spec.template.pod_clique_scaling_groups or []
    ]
    return update.Replica(i, standalone, groups)


def strategy_of(pcs: dict[str, Any]) -> str:
    return str(((pcs.get("spec") or {}).get("updateStrategy") or {}).get("type") or update.ROLLING_RECREATE)


@dataclass
class Plan:
    """The rollout decision of one PCS pass: whether a RollingRecreate rollout runs, the replica being updated
    (None: none), and the views it was decided from (every replica when active)."""

    active: bool
    current: int | None
    views: dict[int, update.Replica]
    stale: bool = False

    def waiting(self, i: int) -> bool:
        """Replica `i` keeps its template: a rollout runs and it is neither done nor the one being updated."""
        view = self.views.get(i)
        return self.active and view is not None and i != self.current and not view.done


def plan(rt: Runtime, pcs: dict[str, Any], loaded: Loaded) -> Plan:
    model = loaded.model
    assert model is not None
    status = pcs.get("status") or {}
    stale = has_stale_podcliques(rt, pcs, loaded)
    active = update.rollout_active(status, loaded.generation_hash, strategy_of(pcs), stale)
    if not active:
        return Plan(False, None, {}, stale)
    views = {i: replica_view(rt, pcs, loaded, i) for i in range(int(model.spec.replicas))}
    current = update.pick_current(list(views.values()), update.persisted_current(status))
    return Plan(True, current, views, stale)


def has_stale_podcliques(rt: Runtime, pcs: dict[str, Any], loaded: Loaded) -> bool:
    """Whether a PodClique of the PCS is at another template than its clique's (from labels; no pods read)."""
    meta = pcs["metadata"]
    want = int((pcs.get("spec") or {}).get("replicas", 0))
    for pclq in rt.cache.pclqs_of_pcs(meta.get("namespace", ""), meta["name"]):
        pmeta = pclq["metadata"]
        labels = pmeta.get("labels") or {}
        index = labels.get(c.LABEL_PCS_REPLICA_INDEX, "")
        if pmeta.get("deletionTimestamp") or not index.isdigit() or int(index) >= want:
            continue
        target = loaded.template_hashes.get(pod.clique_template_name(pclq))
        if target is not None and labels.get(c.LABEL_POD_TEMPLATE_HASH) != target:
            return True
    return False


async def log_phase(rt: Runtime, pcs: dict[str, Any], loaded: Loaded, current: int | None, active: bool) -> None:
    """One INFO line and one Event per phase change: a replica starts updating, the rollout finishes."""
    meta = pcs["metadata"]
    uid = meta.get("uid", "")
    phase = (loaded.generation_hash, current if active else None)
    previous = rt.phases.get(uid)
    if previous == phase:
        return
    rt.phases[uid] = phase
    if previous is None and not active:
        return  # a restart or the first pass of a PCS with no rollout running: nothing changed
    who = f"{meta.get('namespace')}/{meta['name']}"
    if active and current is not None:
        message = f"rolling update to {loaded.generation_hash}: updating replica {current}"
        log.info("pcs %s: %s", who, message)
        await events.post(rt.kube, pcs, "Normal", "ReplicaUpdating", message)
    else:
        message = f"rolling update to {loaded.generation_hash} finished"
        log.info("pcs %s: %s", who, message)
        await events.post(rt.kube, pcs, "Normal", "RollingUpdateFinished", message)


def replace_group_replicas(
    rt: Runtime, pcs: dict[str, Any], loaded: Loaded, view: update.Replica, writes: list[Awaitable[Any]]
) -> None:
    """In the replica being updated, delete the member PodCliques of the scaling-group replicas to replace
    (together, foreground); the PCSG reconcile re-creates them from the new template once they are gone. An
    available group replica goes only once the PCSG status records it as selected (Grove §2.10, issue 8): the
    pass writes that record and, once the API server has answered, deletes the members."""
    ns, name = pcs["metadata"].get("namespace", ""), pcs["metadata"]["name"]
    for group in view.groups:
        doomed, ready = update.group_replacements(group)
        if ready is not None and group.obj is not None:
            go, record = update.select_group_replica(group.obj.get("status"), loaded.generation_hash or "", ready)
            if go:
                doomed.append(ready)
            elif record is not None:
                # Recorded, then replaced in this pass once the write is answered (a crash between the two
                # finds the record): no round trip through the PCSG's watch event per group replica.
                recorded = write_status(rt, group.obj, record, (PCS, ns, name), urgent=True)
                writes.append(_record_then_replace(recorded, rt, pcs, view, group, ready))
        writes.extend(_replace_group_replica(rt, pcs, view, group, j) for j in doomed)


async def _replace_group_replica(
    rt: Runtime, pcs: dict[str, Any], view: update.Replica, group: update.Group, j: int
) -> None:
    """Delete group replica `j`'s member PodCliques (foreground, together); logged once."""
    members = [m.obj for m in group.replicas[j].members if m.obj is not None]
    if members and not any(m.terminating for m in group.replicas[j].members):
        meta = pcs["metadata"]
        log.info(
            "pcs %s/%s: replacing replica %d of scaling group %s (replica %d)",
            meta.get("namespace"),
            meta["name"],
            j,
            group.name,
            view.index,
        )
    await run(delete(rt, obj, FOREGROUND) for obj in members)


async def _record_then_replace(
    recorded: Awaitable[bool], rt: Runtime, pcs: dict[str, Any], view: update.Replica, group: update.Group, j: int
) -> None:
    """Replace group replica `j` once its selection is known to be persisted; otherwise a later pass that sees
    the record does."""
    if await recorded:
        await _replace_group_replica(rt, pcs, view, group, j)


def terminate_gangs(
    rt: Runtime,
    pcs: dict[str, Any],
    loaded: Loaded,
    indices: list[int],
    skip: int | None,
    writes: list[Awaitable[Any]],
) -> None:
    """Gang termination for the PCS replicas in `indices` (not `skip`, the replica being updated): delete the
    gang's PodCliques past the delay, re-queue this PCS for the earliest deadline still ahead. A whole-replica
    termination first sets `GangTerminationInProgress` on the replica's PCSGs (Grove §2.9, issue 8); their
    watch events bring the pass that deletes. A flag whose termination is no longer due is set False again."""
    model = loaded.model
    assert model is not None
    ns, name = pcs["metadata"].get("namespace", ""), pcs["metadata"]["name"]
    delay = gangtermination.parse_duration(model.spec.template.termination_delay)
    now = datetime.now(UTC)
    wait: float | None = None
    for i in indices:
        if i == skip:
            continue
        view = replica_view(rt, pcs, loaded, i)
        decision = gangtermination.decide(view, delay, now)
        if decision.wait is not None:
            wait = decision.wait if wait is None else min(wait, decision.wait)
        doomed: list[dict[str, Any]] = []
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        for pcsg in gangtermination.abandoned(view, decision):  # its breach recovered before the delete
            writes.append(write_status(rt, pcsg, gangtermination.flag_status(pcsg, i, stamp, False), (PCS, ns, name)))
        if decision.whole_replica:
            unflagged = gangtermination.unflagged(view)
            if unflagged:
                for pcsg in unflagged:
                    writes.append(write_status(rt, pcsg, gangtermination.flag_status(pcsg, i, stamp), (PCS, ns, name)))
                continue
            doomed = [cl.obj for cl in view.cliques() if cl.obj is not None]
        for group_name, j in decision.group_replicas:
            group = next(g for g in view.groups if g.name == group_name)
            doomed.extend(m.obj for m in group.replicas[j].members if m.obj is not None)
        if not doomed:
            continue
        if decision.whole_replica:
            target = f"replica {i}"
        else:
            target = ", ".join(f"scaling group {g} replica {j} of replica {i}" for g, j in decision.group_replicas)
        key = ("gang", doomed[0]["metadata"].get("uid"))
        if not rt.writes.pending(key):  # one Event and log line per termination, not per pass
            rt.writes.expect(key)
            message = f"gang termination of {target}: {'; '.join(decision.why)}; deleting {len(doomed)} PodCliques"
            log.info("pcs %s/%s: %s", ns, name, message)
            writes.append(events.post(rt.kube, pcs, "Warning", "GangTermination", message))
        writes.extend(delete(rt, obj, FOREGROUND) for obj in doomed)
    if wait is not None:
        wake_at(rt, (PCS, ns, name), wait + 0.5)


def wake_at(rt: Runtime, key: tuple[str, str, str], delay: float, hints: Hints = None) -> None:
    """Enqueue `key` after `delay` seconds (the earliest deadline wins) with `hints` (None: a full pass), merged
    with those of a wake-up already set. A timer, not a delayed queue add: that add's hint would widen every run
    of the key until the deadline, hours away."""
    if key not in rt.timer_hints:
        rt.timer_hints[key] = None if hints is None else set(hints)
    elif (pending := rt.timer_hints[key]) is not None:
        if hints is None:
            rt.timer_hints[key] = None
        else:
            pending.update(hints)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay
    previous = rt.timers.get(key)
    if previous is not None and not previous.cancelled() and previous.when() <= deadline:
        return
    if previous is not None:
        previous.cancel()

    def fire() -> None:
        rt.timers.pop(key, None)
        wanted = rt.timer_hints.pop(key, None)
        if not wanted:
            rt.enqueue(*key)
            return
        for hint in wanted:
            rt.enqueue(*key, hint)

    rt.timers[key] = loop.call_at(deadline, fire)
