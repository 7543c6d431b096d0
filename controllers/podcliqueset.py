"""The PodCliqueSet reconciler. Spec step: per PCS replica, its PodCliques and PodCliqueScalingGroups, claim
objects, PodGangs (and their status), headless Service and HPAs; then scale-in of PCS replicas and stale claim
objects. Status step: the PCS status from the children's cached statuses, only when the spec step sent
nothing (the watch events of its writes bring the next pass)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from controllers import claimobjects, events, lifecycle, schedulingbackend
from controllers.queue_keys import PCS, STATUS_ONLY
from controllers.runtime import Loaded, Runtime, now
from controllers.workqueue import Hints
from controllers.writes import delete, ensure, replica_index, run, status_paced, write_status
from grove.api import constants as c
from grove.expansion import claims, hpa, naming, podclique, podgang, scalinggroup, service, status, update, workload
from grove.expansion import spec as specs
from grove.expansion.topology import TopologyKeys


async def reconcile(rt: Runtime, ns: str, name: str, hints: Hints) -> None:
    pcs = rt.cache.pcs(ns, name)
    if pcs is None or pcs["metadata"].get("deletionTimestamp"):
        return  # deletion: garbage collection removes the children (no finalizer, Grove #556)
    loaded = rt.load(pcs)
    if loaded.model is None:
        await _invalid(rt, pcs, loaded)
        return
    keys, topology_errors = await schedulingbackend.topology_keys(rt.kube, rt.backends, loaded.model)
    if topology_errors:
        # No ClusterTopologyBinding, or a domain it lacks: refused like any invalid spec (issue #9), and looked
        # at again once a binding could have been created.
        await _invalid(rt, pcs, Loaded(None, [(e.field, e.message) for e in topology_errors], None))
        if rt.queue is not None:
            rt.queue.add((PCS, ns, name), None, delay=schedulingbackend.BINDING_TTL)
        return
    plan = lifecycle.plan(rt, pcs, loaded)
    await lifecycle.log_phase(rt, pcs, loaded, plan.current, plan.active)
    if await _sync_spec(rt, pcs, loaded, hints, keys, plan):
        return  # the watch events of these writes bring us back; status from a stale cache would be wasted
    await _sync_status(rt, pcs, loaded, plan)


async def _invalid(rt: Runtime, pcs: dict[str, Any], loaded: Loaded) -> None:
    """Rules the CRD cannot express: create nothing, say why, never crash."""
    gen_key = (pcs["metadata"].get("uid"), pcs["metadata"].get("generation"))
    await write_status(rt, pcs, status.podcliqueset_status(pcs, {}, loaded.errors, None, now()))
    if ("invalid", gen_key) in rt.warned:
        return
    rt.warned.add(("invalid", gen_key))
    field, message = loaded.errors[0]
    more = f" (and {len(loaded.errors) - 1} more)" if len(loaded.errors) > 1 else ""
    await events.post(rt.kube, pcs, "Warning", "SpecInvalid", f"{field}: {message}{more}")


def gang_member_cliques(
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


def _by_replica(objects: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for obj in objects:
        out.setdefault(replica_index(obj), []).append(obj)
    return out


async def _sync_spec(
    rt: Runtime, pcs: dict[str, Any], loaded: Loaded, hints: Hints, keys: TopologyKeys, plan: lifecycle.Plan
) -> int:
    """Write what differs; returns how many requests were sent. During a rollout the replica being updated is
    always looked at, and replicas waiting for their turn keep their templates (`lifecycle.Plan`)."""
    model = loaded.model
    assert model is not None
    meta = pcs["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]
    want = int(model.spec.replicas)
    indices = range(want) if hints is None else sorted(h for h in hints if isinstance(h, int) and 0 <= h < want)
    if plan.current is not None and plan.current not in indices:
        indices = sorted([*indices, plan.current])
    # Replicas where only a PodClique's or PCSG's status changed: their gangs' statuses, not their objects (#13).
    statuses_only = sorted(
        {h[1] for h in hints or () if isinstance(h, tuple) and h[0] == STATUS_ONLY and 0 <= h[1] < want} - set(indices)
    )
    # Creation order matters at scale: per replica its PodGang, then its PodCliques (their pods are the long
    # pole; a pod whose gang is already in the cache is created without the gate, issue #13), then Services;
    # the client's semaphore serves waiters by priority, then in this order. Under the Workload API backend
    # pods need no gang (`gating.held_by_scheduler`): every replica's PodCliques first, then the PodGangs (the
    # scheduler's PodGroups follow each), then Services.
    first: list[Awaitable[Any]] = []
    gangs_after: list[Awaitable[Any]] | None = (
        [] if schedulingbackend.backend_name(rt.backends, model) == workload.BACKEND else None
    )
    later: list[Awaitable[Any]] = []
    observed_gangs = rt.cache.podgangs_of_pcs(ns, name)
    observed_hpas = rt.cache.hpas_of_pcs(ns, name)
    gangs_by_replica = _by_replica(observed_gangs)
    hpas_by_replica = _by_replica(observed_hpas)
    with_claims = claims.available()
    externals = claimobjects.external_templates(rt, model, ns, name) if with_claims else {}
    live: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
    stamp = now()
    for i in indices:
        children: list[Awaitable[Any]] = []
        group_replicas = _sync_children(rt, pcs, model, i, children, plan)
        if i == plan.current:
            lifecycle.replace_group_replicas(rt, pcs, loaded, plan.views[i], children)
        counts: dict[str, int] = {}
        # Live clique replicas (`kubectl scale pclq` changes no generation); for cliques in a scaling group,
        # the largest of its PodCliques (claim_objects/is_stale take one count per clique name).
        clique_replicas: dict[str, int] = {}
        for clique_name, fqn in gang_member_cliques(model, name, i, group_replicas):
            member = rt.cache.pclq(ns, fqn)
            if member is not None:
                counts[fqn] = int(member["spec"].get("replicas", 0))
                clique_replicas[clique_name] = max(clique_replicas.get(clique_name, 0), counts[fqn])
        gangs = first if gangs_after is None else gangs_after
        _sync_gangs(rt, pcs, model, i, group_replicas, counts, gangs_by_replica.get(i, []), stamp, keys, gangs)
        first.extend(children)
        if with_claims:
            live[i] = (group_replicas, clique_replicas)
            create_claims = claimobjects.replica_claims(rt, pcs, model, i, group_replicas, clique_replicas, externals)
            if create_claims is not None:
                first.append(create_claims)
        later.append(
            ensure(rt, service.headless_service(model, pcs, i), rt.cache.service(ns, naming.service_name(name, i)))
        )
        _sync_hpas(rt, pcs, model, i, hpas_by_replica.get(i, []), later)
    backend = schedulingbackend.backend_name(rt.backends, model)
    for i in statuses_only:
        for observed in gangs_by_replica.get(i, []):
            _sync_gang_status(rt, pcs, observed, observed, stamp, backend, first)
    touched = sorted([*indices, *statuses_only])
    lifecycle.terminate_gangs(rt, pcs, loaded, touched, plan.current if plan.active else None, later)
    writes = first + (gangs_after or []) + later
    # Scale-in of PCS replicas: highest indices first (Grove §2.11); GC removes what the deleted objects own.
    # Only on full passes (a PCS event or a restart): child events never create indices >= spec.replicas.
    if hints is None:
        doomed = [
            obj
            for obj in (
                *rt.cache.pclqs_owned_by(ns, c.KIND_PODCLIQUESET, name),
                *rt.cache.pcsgs_of_pcs(ns, name),
                *observed_gangs,
                *rt.cache.services_of_pcs(ns, name),
                *observed_hpas,
            )
            if replica_index(obj) >= want
        ]
        doomed.sort(key=lambda o: -replica_index(o))
        writes.extend(delete(rt, obj) for obj in doomed)
    if with_claims:
        writes.extend(delete(rt, obj) for obj in claimobjects.stale_claims(rt, model, ns, name, want, live))
    return await run(writes)


def _sync_children(
    rt: Runtime, pcs: dict[str, Any], model: Any, i: int, writes: list[Awaitable[Any]], plan: lifecycle.Plan
) -> dict[str, int]:
    """Standalone PodCliques and PCSGs of replica `i`; returns the live replicas of each scaling group."""
    ns, name = pcs["metadata"].get("namespace", ""), pcs["metadata"]["name"]
    for clique in specs.standalone_cliques(model):
        observed = rt.cache.pclq(ns, naming.podclique_name(name, i, clique.name))
        desired = podclique.standalone_podclique(model, pcs, i, clique, observed)
        if observed is not None and plan.waiting(i):
            desired = update.keep_template(desired, observed)  # one PCS replica at a time (Grove §2.10)
        writes.append(ensure(rt, desired, observed))
    group_replicas: dict[str, int] = {}
    for group in model.spec.template.pod_clique_scaling_groups or []:
        observed = rt.cache.pcsg(ns, naming.scaling_group_name(name, i, group.name))
        desired = scalinggroup.scaling_group(model, pcs, i, group, observed)
        group_replicas[group.name] = int((observed or desired)["spec"]["replicas"])
        writes.append(ensure(rt, desired, observed))
    return group_replicas


def _sync_gangs(
    rt: Runtime,
    pcs: dict[str, Any],
    model: Any,
    i: int,
    group_replicas: dict[str, int],
    counts: dict[str, int],
    observed_gangs: list[dict[str, Any]],
    stamp: str,
    keys: TopologyKeys,
    writes: list[Awaitable[Any]],
) -> None:
    """The PodGangs of replica `i`, their backend objects and their status; scaled gangs of group replicas that
    no longer exist go (and their backend objects with them, by garbage collection)."""
    ns = pcs["metadata"].get("namespace", "")
    gangs = podgang.podgangs(model, pcs, i, group_replicas, counts, keys)
    backend = schedulingbackend.backend_name(rt.backends, model)
    templates = workload.template_names(model, i, group_replicas) if backend == workload.BACKEND else {}
    for gang in gangs:
        observed = rt.cache.podgang(ns, gang["metadata"]["name"])
        if observed is None and backend == workload.BACKEND:
            writes.append(_create_gang(rt, gang, templates))
        else:
            writes.append(ensure(rt, gang, observed))
        if observed is not None:
            if backend == workload.BACKEND:
                current = {**gang, "metadata": observed["metadata"]}
                # Not counted: these objects are not watched (and after a restart they are answered
                # AlreadyExists), so no event would bring the pass back for the status it skipped (issue 8).
                writes.extend(schedulingbackend.gang_creates(rt.kube, rt.backends, current, templates))
            _sync_gang_status(rt, pcs, gang, observed, stamp, backend, writes)
    desired_names = {g["metadata"]["name"] for g in gangs}
    writes.extend(delete(rt, gang) for gang in observed_gangs if gang["metadata"]["name"] not in desired_names)


def _sync_gang_status(
    rt: Runtime,
    pcs: dict[str, Any],
    gang: dict[str, Any],
    observed: dict[str, Any],
    stamp: str,
    backend: str,
    writes: list[Awaitable[Any]],
) -> None:
    """The status of an existing PodGang (`gang`: its desired or observed self) from its pods in the cache."""
    ns, name = pcs["metadata"].get("namespace", ""), pcs["metadata"]["name"]
    pods = {g["name"]: rt.cache.pods(ns, g["name"]) for g in gang["spec"]["podgroups"]}
    gang_status = podgang.podgang_status(gang, pods, observed.get("status"), stamp, backend)
    if observed.get("status") or gang_status["conditions"][0]["status"] == "True":
        on_its_way = gang_status.get("phase") != podgang.PHASE_RUNNING
        hint = (STATUS_ONLY, replica_index(observed))
        writes.append(
            write_status(rt, observed, gang_status, (PCS, ns, name), background=True, hint=hint, progressing=on_its_way)
        )


async def _create_gang(rt: Runtime, gang: dict[str, Any], templates: dict[str, str]) -> None:
    """Create a PodGang and, from the create's answer (its uid: they are owned by it), its backend objects at
    once, so the scheduler can take the gang's pods as soon as they exist rather than one PCS pass (and every
    pod create already queued) later (issue #13)."""
    created = await ensure(rt, gang, None, answer=True)
    if created:
        await run(schedulingbackend.gang_creates(rt.kube, rt.backends, created, templates))


def _sync_hpas(
    rt: Runtime,
    pcs: dict[str, Any],
    model: Any,
    i: int,
    observed_hpas: list[dict[str, Any]],
    writes: list[Awaitable[Any]],
) -> None:
    """HPAs of replica `i`; ones whose config was removed are deleted."""
    ns = pcs["metadata"].get("namespace", "")
    desired_hpas = hpa.hpas(model, pcs, i)
    writes.extend(ensure(rt, d, rt.cache.hpa(ns, d["metadata"]["name"])) for d in desired_hpas)
    names = {h["metadata"]["name"] for h in desired_hpas}
    writes.extend(delete(rt, o) for o in observed_hpas if o["metadata"]["name"] not in names)


async def _sync_status(rt: Runtime, pcs: dict[str, Any], loaded: Loaded, plan: lifecycle.Plan) -> None:
    """Status from the cache (children's own statuses are kept by their reconciles); rollout progress from the
    children and their pods (`grove.expansion.update`)."""
    model = loaded.model
    assert model is not None
    ns, name = pcs["metadata"].get("namespace", ""), pcs["metadata"]["name"]
    if status_paced(rt, pcs, (PCS, ns, name), STATUS_ONLY):
        return
    standalone = specs.standalone_cliques(model)
    groups = model.spec.template.pod_clique_scaling_groups or []
    per_replica: dict[int, tuple[list[dict[str, Any] | None], list[dict[str, Any] | None]]] = {}
    for i in range(int(model.spec.replicas)):
        per_replica[i] = (
            [rt.cache.pclq(ns, naming.podclique_name(name, i, cl.name)) for cl in standalone],
            [rt.cache.pcsg(ns, naming.scaling_group_name(name, i, g.name)) for g in groups],
        )
    stamp = now()
    views = plan.views or {i: lifecycle.replica_view(rt, pcs, loaded, i) for i in range(int(model.spec.replicas))}
    ordered = [views[i] for i in sorted(views)]
    progress = update.pcs_update_progress(
        pcs.get("status"),
        loaded.generation_hash or "",
        lifecycle.strategy_of(pcs),
        ordered,
        plan.current if plan.active else None,
        str(pcs["metadata"].get("creationTimestamp") or stamp),
        stamp,
        plan.stale,
    )
    desired = status.podcliqueset_status(
        pcs,
        per_replica,
        [],
        loaded.generation_hash,
        stamp,
        update_progress=progress,
        rolling=update.describe(ordered, plan.current, plan.active),
        updated_replicas=sum(v.done for v in ordered),
    )
    await write_status(rt, pcs, desired, (PCS, ns, name), background=True, hint=STATUS_ONLY)
