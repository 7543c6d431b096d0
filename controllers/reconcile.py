"""Level-triggered reconciles: compute the desired objects with `grove.expansion`, compare with the caches,
write only the differences. One function per kind; each is idempotent and safe to run at any time, so a
crash at any point followed by a restart converges to the same objects."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Iterable
from typing import Any

from controllers import events
from controllers.client import PRIORITY_GATES, STRATEGIC
from controllers.queue_keys import PCLQ, PCS, PCSG
from controllers.runtime import Runtime, now
from controllers.workqueue import Hints, Key
from grove.api import constants as c
from grove.expansion import (
    claims,
    conditions,
    diff,
    gating,
    hpa,
    naming,
    owners,
    pod,
    podclique,
    podgang,
    rollout,
    scale,
    scalinggroup,
    service,
    startup,
    status,
)
from grove.expansion import spec as specs

log = logging.getLogger("grove.reconcile")

# Requests sent by the current reconcile (a reconcile that wrote something skips its status write: the watch
# events of its own writes trigger the next pass, which then sees fresh state).
_SENT: contextvars.ContextVar[list[int]] = contextvars.ContextVar("grove_sent")


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def _replica_index(obj: dict[str, Any]) -> int:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(c.LABEL_PCS_REPLICA_INDEX, "")
    return int(value) if value.isdigit() else -1


async def _run(writes: Iterable[Awaitable[Any]]) -> int:
    """Run writes concurrently (the client bounds concurrency); raise the first error after all finished.
    Returns how many requests were actually sent."""
    counter = _SENT.get()
    before = counter[0]
    results = await asyncio.gather(*writes, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return counter[0] - before


async def _ensure(rt: Runtime, desired: dict[str, Any], observed: dict[str, Any] | None) -> None:
    """Create if missing (unless a create is already in flight), patch if labels/annotations/spec differ."""
    key = _key(desired)
    if observed is None:
        if rt.creates.pending(key):
            return
        rt.creates.expect(key)
        _count()
        try:
            await rt.kube.create(desired)
        except Exception:
            rt.creates.observe(key)  # let the retry write again
            raise
        return
    rt.creates.observe(key)
    if observed["metadata"].get("deletionTimestamp"):
        return
    patch = diff.update_patch(desired, observed)
    if patch is None:
        return
    rv = observed["metadata"].get("resourceVersion")
    if rt.writes.pending(("spec", key), (rv, repr(patch))):
        return
    rt.writes.expect(("spec", key), (rv, repr(patch)))
    _count()
    try:
        await rt.kube.patch(desired, patch)
    except Exception:
        rt.writes.observe(("spec", key))
        raise


# Status writes of one object are at least this far apart: pods often go created -> scheduled -> Ready within a
# second (on KWOK in milliseconds), and one write for the lot is enough. The reconcile is re-queued instead.
STATUS_MIN_INTERVAL = 1.0


async def _status(
    rt: Runtime, obj: dict[str, Any], desired: dict[str, Any], requeue: tuple[str, str, str] | None = None
) -> None:
    """Patch /status only if it differs from the observed status (and was not just sent)."""
    if not status.differs(obj.get("status"), desired):
        return
    uid = obj["metadata"].get("uid")
    if rt.writes.pending(("status", uid), desired):
        return
    last = rt.status_written.get(uid)
    elapsed = time.monotonic() - last if last is not None else STATUS_MIN_INTERVAL
    if requeue is not None and elapsed < STATUS_MIN_INTERVAL:
        if rt.queue is not None:
            rt.queue.add(requeue, None, delay=STATUS_MIN_INTERVAL - elapsed)
        return
    rt.status_written[uid] = time.monotonic()
    rt.writes.expect(("status", uid), desired)
    try:
        await rt.kube.patch(obj, {"status": desired}, subresource="status")
    except Exception:
        rt.writes.observe(("status", uid))
        raise


async def _delete(rt: Runtime, obj: dict[str, Any]) -> None:
    uid = obj["metadata"].get("uid")
    if obj["metadata"].get("deletionTimestamp") or rt.writes.pending(("delete", uid)):
        return
    rt.writes.expect(("delete", uid))
    _count()
    try:
        await rt.kube.delete(obj, uid=uid)
    except Exception:
        rt.writes.observe(("delete", uid))
        raise


def _gang_member_cliques(
    model: Any, pcs_name: str, replica: int, group_replicas: dict[str, int]
) -> list[tuple[str, str]]:
    """(clique name, FQN) of every PodClique of one PCS replica (the members of its gangs)."""
    out = [(cl.name, naming.podclique_name(pcs_name, replica, cl.name)) for cl in specs.standalone_cliques(model)]
    for group in model.spec.template.pod_clique_scaling_groups or []:
        fqn = naming.scaling_group_name(pcs_name, replica, group.name)
        for j in range(group_replicas.get(group.name, group.replicas)):
            out.extend(
                (cl.name, naming.scaling_group_podclique_name(fqn, j, cl.name))
                for cl in specs.group_members(model, group)
            )
    return out


def _gang_members(model: Any, pcs_name: str, replica: int, group_replicas: dict[str, int]) -> list[str]:
    """FQNs of every PodClique of one PCS replica (the members of its gangs)."""
    return [fqn for _, fqn in _gang_member_cliques(model, pcs_name, replica, group_replicas)]


async def _forget_on_error(rt: Runtime, key: Any, call: Awaitable[Any]) -> Any:
    try:
        return await call
    except Exception:
        rt.writes.observe(key)
        raise


async def _create_or_forget(rt: Runtime, key: Any, obj: dict[str, Any]) -> None:
    try:
        await rt.kube.create(obj)
    except Exception:
        rt.creates.observe(key)
        raise


async def _create_claims(rt: Runtime, slot: tuple[str, int], key: Any, objects: list[dict[str, Any]]) -> None:
    await asyncio.gather(*(rt.kube.create(o) for o in objects))
    rt.claims_done[slot] = key


def _external_templates(rt: Runtime, model: Any, ns: str, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """External ResourceClaimTemplates the PCS's resourceSharing names, from the template index (no GET); a
    template that appears later re-enqueues the PCS (`external_users`, see controllers/operator.py)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for ref in claims.external_refs(model):
        rt.external_users.setdefault(ref, set()).add((ns, name))
        found = rt.cache.claim_template(*ref)
        if found is not None:
            out[ref] = found
    return out


def _replica_claims(
    rt: Runtime,
    pcs: dict[str, Any],
    model: Any,
    replica: int,
    group_replicas: dict[str, int],
    clique_replicas: dict[str, int],
    externals: dict[tuple[str, str], dict[str, Any]],
) -> Awaitable[Any] | None:
    """Create the claim objects of one PCS replica that are missing from the cache. Computed again only when
    the generation, the live scaling-group/clique counts (`kubectl scale` changes no generation) or the set of
    external templates found changes, or when one of the replica's claim objects was deleted."""
    meta = pcs["metadata"]
    ns = meta.get("namespace", "")
    slot = (meta.get("uid", ""), replica)
    key = (
        meta.get("generation"),
        tuple(sorted(group_replicas.items())),
        tuple(sorted(clique_replicas.items())),
        tuple(sorted(externals)),
    )
    if rt.claims_done.get(slot) == key:
        return None
    missing = []
    for claim in claims.replica_claims(
        model, replica, group_replicas=group_replicas, clique_replicas=clique_replicas, external_templates=externals
    ):
        claim_meta = claim.setdefault("metadata", {})
        claim_meta.setdefault("namespace", ns)
        if not claim_meta.get("ownerReferences"):
            claim_meta["ownerReferences"] = [owners.controller_ref(pcs)]
        observed = rt.cache.claim_object(ns, claim.get("kind", ""), claim_meta["name"])
        if observed is None:
            missing.append(claim)
        elif observed["metadata"].get("deletionTimestamp"):
            return None  # re-created once its deletion is observed (that event clears claims_done)
    return _create_claims(rt, slot, key, missing)


def _stale_claims(
    rt: Runtime,
    model: Any,
    ns: str,
    name: str,
    want: int,
    live: dict[int, tuple[dict[str, int], dict[str, int]]],
) -> list[dict[str, Any]]:
    """Claim objects left over from a scale-in: of removed PCS replicas, or (for the replicas this reconcile
    looked at) of removed scaling-group replicas and pod indices, by `grove.claims.is_stale` on their labels."""
    out = []
    for obj in rt.cache.claim_objects_of_pcs(ns, name):
        if obj["metadata"].get("deletionTimestamp"):
            continue
        replica = _replica_index(obj)
        if replica < 0:
            continue  # set-level objects live as long as the PCS
        if replica >= want:
            out.append(obj)
        elif replica in live:
            group_replicas, clique_replicas = live[replica]
            if claims.stale(model, obj, group_replicas=group_replicas, clique_replicas=clique_replicas):
                out.append(obj)
    return out


def _count() -> None:
    counter = _SENT.get(None)
    if counter is not None:
        counter[0] += 1


async def _write(call: Awaitable[Any]) -> Any:
    _count()
    return await call


# --------------------------------------------------------------------------------------------- PodCliqueSet


async def reconcile_pcs(rt: Runtime, ns: str, name: str, hints: Hints) -> None:
    pcs = rt.cache.pcs(ns, name)
    if pcs is None or pcs["metadata"].get("deletionTimestamp"):
        return  # deletion: garbage collection removes the children (no finalizer, Grove #556)
    loaded = rt.load(pcs)
    stamp = now()
    if loaded.model is None:
        # Rules the CRD cannot express: create nothing, say why, never crash.
        gen_key = (pcs["metadata"].get("uid"), pcs["metadata"].get("generation"))
        await _status(rt, pcs, status.podcliqueset_status(pcs, {}, loaded.errors, None, stamp))
        if ("invalid", gen_key) not in rt.warned:
            rt.warned.add(("invalid", gen_key))
            field, message = loaded.errors[0]
            await events.post(
                rt.kube,
                pcs,
                "Warning",
                "SpecInvalid",
                f"{field}: {message}" + (f" (and {len(loaded.errors) - 1} more)" if len(loaded.errors) > 1 else ""),
            )
        return
    model = loaded.model
    want = int(model.spec.replicas)
    standalone = specs.standalone_cliques(model)
    groups = model.spec.template.pod_clique_scaling_groups or []
    indices = range(want) if hints is None else sorted(h for h in hints if isinstance(h, int) and 0 <= h < want)
    # Creation order matters at scale: PodCliques first (their pods are the long pole), then PodGangs,
    # then Services; the client's semaphore serves waiters in this order.
    first: list[Awaitable[Any]] = []
    later: list[Awaitable[Any]] = []
    observed_gangs = rt.cache.podgangs_of_pcs(ns, name)
    gangs_by_replica: dict[int, list[dict[str, Any]]] = {}
    for gang in observed_gangs:
        gangs_by_replica.setdefault(_replica_index(gang), []).append(gang)
    hpas_by_replica: dict[int, list[dict[str, Any]]] = {}
    observed_hpas = rt.cache.hpas_of_pcs(ns, name)
    for observed_hpa in observed_hpas:
        hpas_by_replica.setdefault(_replica_index(observed_hpa), []).append(observed_hpa)
    with_claims = claims.available()
    externals = _external_templates(rt, model, ns, name) if with_claims else {}
    live: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
    for i in indices:
        group_replicas: dict[str, int] = {}
        for clique in standalone:
            fqn = naming.podclique_name(name, i, clique.name)
            observed = rt.cache.pclq(ns, fqn)
            first.append(_ensure(rt, podclique.standalone_podclique(model, pcs, i, clique, observed), observed))
        for group in groups:
            fqn = naming.scaling_group_name(name, i, group.name)
            observed = rt.cache.pcsg(ns, fqn)
            desired = scalinggroup.scaling_group(model, pcs, i, group, observed)
            group_replicas[group.name] = int((observed or desired)["spec"]["replicas"])
            first.append(_ensure(rt, desired, observed))
        counts = {}
        # Live clique replicas (`kubectl scale pclq` changes no generation); for cliques in a scaling group,
        # the largest of its PodCliques (claim_objects/is_stale take one count per clique name).
        clique_replicas: dict[str, int] = {}
        for clique_name, fqn in _gang_member_cliques(model, name, i, group_replicas):
            member = rt.cache.pclq(ns, fqn)
            if member is not None:
                counts[fqn] = int(member["spec"].get("replicas", 0))
                clique_replicas[clique_name] = max(clique_replicas.get(clique_name, 0), counts[fqn])
        if with_claims:
            live[i] = (group_replicas, clique_replicas)
            create_claims = _replica_claims(rt, pcs, model, i, group_replicas, clique_replicas, externals)
            if create_claims is not None:
                first.append(create_claims)
        gangs = podgang.podgangs(model, pcs, i, group_replicas, counts)
        for gang in gangs:
            observed = rt.cache.podgang(ns, gang["metadata"]["name"])
            later.append(_ensure(rt, gang, observed))
            if observed is not None:
                pods = {g["name"]: rt.cache.pods(ns, g["name"]) for g in gang["spec"]["podgroups"]}
                gang_status = podgang.podgang_status(gang, pods, observed.get("status"), stamp)
                if observed.get("status") or gang_status["conditions"][0]["status"] == "True":
                    later.append(_status(rt, observed, gang_status, (PCS, ns, name)))
        # Scaled gangs of group replicas that no longer exist.
        desired_gangs = {g["metadata"]["name"] for g in gangs}
        for gang in gangs_by_replica.get(i, ()):
            if gang["metadata"]["name"] not in desired_gangs:
                later.append(_delete(rt, gang))
        later.append(
            _ensure(rt, service.headless_service(model, pcs, i), rt.cache.service(ns, naming.service_name(name, i)))
        )
        # HPAs of this replica; ones whose config was removed are deleted.
        desired_hpas = hpa.hpas(model, pcs, i)
        for desired_hpa in desired_hpas:
            later.append(_ensure(rt, desired_hpa, rt.cache.hpa(ns, desired_hpa["metadata"]["name"])))
        hpa_names = {h["metadata"]["name"] for h in desired_hpas}
        for observed_hpa in hpas_by_replica.get(i, ()):
            if observed_hpa["metadata"]["name"] not in hpa_names:
                later.append(_delete(rt, observed_hpa))
    writes = first + later
    # Scale-in of PCS replicas: highest indices first (Grove §2.11); GC removes what the deleted objects own.
    # Only on full passes (a PCS event or a restart): child events never create indices >= spec.replicas.
    doomed: list[dict[str, Any]] = []
    if hints is None:
        for obj in (
            *rt.cache.pclqs_owned_by(ns, c.KIND_PODCLIQUESET, name),
            *rt.cache.pcsgs_of_pcs(ns, name),
            *observed_gangs,
            *rt.cache.services_of_pcs(ns, name),
            *observed_hpas,
        ):
            if _replica_index(obj) >= want:
                doomed.append(obj)
        doomed.sort(key=lambda o: -_replica_index(o))
    writes.extend(_delete(rt, obj) for obj in doomed)
    if with_claims:
        writes.extend(_delete(rt, obj) for obj in _stale_claims(rt, model, ns, name, want, live))
    sent = await _run(writes)
    if sent:
        return  # the watch events of these writes bring us back; status from a stale cache would be wasted
    # Status from the cache (children's own statuses are kept by their reconciles).
    per_replica: dict[int, tuple[list[dict[str, Any] | None], list[dict[str, Any] | None]]] = {}
    for i in range(want):
        per_replica[i] = (
            [rt.cache.pclq(ns, naming.podclique_name(name, i, cl.name)) for cl in standalone],
            [rt.cache.pcsg(ns, naming.scaling_group_name(name, i, g.name)) for g in groups],
        )
    await _status(
        rt, pcs, status.podcliqueset_status(pcs, per_replica, [], loaded.generation_hash, stamp), (PCS, ns, name)
    )


# --------------------------------------------------------------------------------------- PodCliqueScalingGroup


async def reconcile_pcsg(rt: Runtime, ns: str, name: str, hints: Hints) -> None:
    pcsg = rt.cache.pcsg(ns, name)
    if pcsg is None or pcsg["metadata"].get("deletionTimestamp"):
        return
    pcs_name = (pcsg["metadata"].get("labels") or {}).get(c.LABEL_PART_OF, "")
    pcs = rt.cache.pcs(ns, pcs_name)
    if pcs is None:
        return
    loaded = rt.load(pcs)
    if loaded.model is None:
        return
    model = loaded.model
    group_name = scalinggroup.group_name_of(pcs_name, pcsg)
    if not any(g.name == group_name for g in model.spec.template.pod_clique_scaling_groups or []):
        return
    existing = {o["metadata"]["name"]: o for o in rt.cache.pclqs_owned_by(ns, c.KIND_PODCLIQUESCALINGGROUP, name)}
    desired = scalinggroup.member_podcliques(model, pcsg, {n: o for n, o in existing.items()})
    desired_names = {d["metadata"]["name"] for d in desired}
    writes: list[Awaitable[Any]] = [_ensure(rt, d, existing.get(d["metadata"]["name"])) for d in desired]
    # Scale-in: highest group replica index first (Grove's computePCSGReplicasToDelete).
    extra = [o for n, o in existing.items() if n not in desired_names]
    extra.sort(key=lambda o: -int((o["metadata"].get("labels") or {}).get(c.LABEL_PCSG_REPLICA_INDEX, "0")))
    writes.extend(_delete(rt, o) for o in extra)
    if await _run(writes):
        return
    members: dict[int, list[dict[str, Any] | None]] = {}
    for d in desired:
        j = int(d["metadata"]["labels"][c.LABEL_PCSG_REPLICA_INDEX])
        members.setdefault(j, []).append(existing.get(d["metadata"]["name"]))
    await _status(rt, pcsg, status.scaling_group_status(pcsg, members, now()), (PCSG, ns, name))


# --------------------------------------------------------------------------------------------------- PodClique


async def reconcile_pclq(rt: Runtime, ns: str, name: str, hints: Hints) -> None:
    pclq = rt.cache.pclq(ns, name)
    if pclq is None or pclq["metadata"].get("deletionTimestamp"):
        return
    spec = pclq.get("spec") or {}
    labels = pclq["metadata"].get("labels") or {}
    pods = rt.cache.pods(ns, name)
    want = int(spec.get("replicas", 0))
    parents = list(spec.get("startsAfter") or [])
    parents_ok = True
    if parents:
        ready: dict[str, int] = {}
        mins: dict[str, int] = {}
        for parent in parents:
            parent_obj = rt.cache.pclq(ns, parent)
            if parent_obj is not None:
                mins[parent] = int((parent_obj.get("spec") or {}).get("minAvailable") or 1)
                ready[parent] = sum(p.ready and not p.terminating for p in rt.cache.pods(ns, parent))
        parents_ok = startup.parents_ready(parents, ready, mins)
    model = None
    if claims.available():
        pcs = rt.cache.pcs(ns, labels.get(c.LABEL_PART_OF, ""))
        model = rt.load(pcs).model if pcs else None
    writes: list[Awaitable[Any]] = []
    for index in scale.missing_pod_indices(pods, want):
        desired = pod.desired_pod(
            pclq, index, startup_wait_image=rt.options.startup_wait_image, pcs=model, startup_released=parents_ok
        )
        key = _key(desired)
        if not rt.creates.pending(key):
            rt.creates.expect(key)
            writes.append(_write(_create_or_forget(rt, key, desired)))
    # Scale-in (highest index first), then the rolling update's replacements (grove/expansion/rollout.py).
    owner = rt.cache.pcs(ns, labels.get(c.LABEL_PART_OF, ""))
    strategy = (((owner or {}).get("spec") or {}).get("updateStrategy") or {}).get("type", rollout.ROLLING_RECREATE)
    victims = scale.pods_to_delete(pods, want)
    if owner is not None:
        victims += rollout.pods_to_replace(
            pods,
            labels.get(c.LABEL_POD_TEMPLATE_HASH),
            want,
            int(spec.get("minAvailable") or want or 1),
            strategy,
        )
    for victim in victims:
        writes.append(
            _delete(
                rt,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": victim.name, "namespace": ns, "uid": victim.uid},
                },
            )
        )
    gang = rt.cache.podgang(ns, labels.get(c.LABEL_PODGANG, ""))
    base_ok = True
    if gating.is_scaled(pclq):
        base = rt.cache.podgang(ns, labels.get(c.LABEL_BASE_PODGANG, ""))
        scheduled = {}
        for group_ in (base or {}).get("spec", {}).get("podgroups") or []:
            member = rt.cache.pclq(ns, group_["name"])
            scheduled[group_["name"]] = int(((member or {}).get("status") or {}).get("scheduledReplicas", 0))
        base_ok = podgang.base_gang_scheduled(base, scheduled)
    for view in gating.pods_to_ungate(pclq, pods, gang, base_ok):
        if not rt.writes.pending(("ungate", view.uid)):
            rt.writes.expect(("ungate", view.uid))
            ungate = rt.kube.patch(
                _pod_path(ns, view.name), gating.UNGATE_PATCH, content_type=STRATEGIC, priority=PRIORITY_GATES
            )
            writes.append(_write(_forget_on_error(rt, ("ungate", view.uid), ungate)))
    for view in gating.pods_to_release(pods, parents_ok):
        if not rt.writes.pending(("release", view.uid)):
            rt.writes.expect(("release", view.uid))
            release = rt.kube.patch(_pod_path(ns, view.name), gating.RELEASE_PATCH, priority=PRIORITY_GATES)
            writes.append(_write(_forget_on_error(rt, ("release", view.uid), release)))
    if await _run(writes):
        return
    desired_status = status.podclique_status(pclq, pods, now())
    previous = pclq.get("status") or {}
    was_false = conditions.is_false(previous.get("conditions"), c.CONDITION_MIN_AVAILABLE_BREACHED)
    breached = conditions.is_true(desired_status["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)
    await _status(rt, pclq, desired_status, (PCLQ, ns, name))
    if was_false and breached:
        cond = conditions.get(desired_status["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED) or {}
        await events.post(rt.kube, pclq, "Warning", "MinAvailableBreached", str(cond.get("message", "")))


def _pod_path(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods/{name}"


async def dispatch(rt: Runtime, key: Key, hints: Hints) -> None:
    _SENT.set([0])
    kind, ns, name = key
    if kind == PCS:
        await reconcile_pcs(rt, ns, name, hints)
    elif kind == PCSG:
        await reconcile_pcsg(rt, ns, name, hints)
    elif kind == PCLQ:
        await reconcile_pclq(rt, ns, name, hints)
