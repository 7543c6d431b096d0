"""The PodCliqueScalingGroup reconciler. Spec step: the member PodCliques of each group replica, and scale-in
of group replicas (highest index first). Status step: the PCSG status from its members' cached statuses."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from controllers import lifecycle
from controllers.queue_keys import PCSG
from controllers.runtime import Runtime, now
from controllers.workqueue import Hints
from controllers.writes import delete, ensure, run, write_status
from grove.api import constants as c
from grove.expansion import scalinggroup, status, update


async def reconcile(rt: Runtime, ns: str, name: str, hints: Hints) -> None:
    pcsg = rt.cache.pcsg(ns, name)
    if pcsg is None or pcsg["metadata"].get("deletionTimestamp"):
        return
    pcs_name = (pcsg["metadata"].get("labels") or {}).get(c.LABEL_PART_OF, "")
    pcs = rt.cache.pcs(ns, pcs_name)
    if pcs is None:
        return
    loaded = rt.load(pcs)
    model = loaded.model
    if model is None:
        return
    group_name = scalinggroup.group_name_of(pcs_name, pcsg)
    group = next((g for g in model.spec.template.pod_clique_scaling_groups or [] if g.name == group_name), None)
    if group is None:
        return
    existing = {o["metadata"]["name"]: o for o in rt.cache.pclqs_owned_by(ns, c.KIND_PODCLIQUESCALINGGROUP, name)}
    desired = scalinggroup.member_podcliques(model, pcsg, existing)
    desired_names = {d["metadata"]["name"] for d in desired}
    rolling = lifecycle.strategy_of(pcs) == update.ROLLING_RECREATE
    # Group replicas that still have a member at an old template: their missing members wait until the PCS
    # reconcile has deleted the old ones too (after a crash between those deletes), so templates never mix.
    stale = {
        d["metadata"]["labels"][c.LABEL_PCSG_REPLICA_INDEX]
        for d in desired
        if (o := existing.get(d["metadata"]["name"])) is not None
        and not o["metadata"].get("deletionTimestamp")
        and (o["metadata"].get("labels") or {}).get(c.LABEL_POD_TEMPLATE_HASH)
        != d["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH]
    }
    writes: list[Awaitable[Any]] = []
    for d in desired:
        observed = existing.get(d["metadata"]["name"])
        if rolling and observed is None and d["metadata"]["labels"][c.LABEL_PCSG_REPLICA_INDEX] in stale:
            continue
        if rolling and observed is not None:
            # RollingRecreate replaces a member only with its whole group replica (deleted by the PCS
            # reconcile, re-created here), so a leader and its workers never run different templates.
            d = update.keep_template(d, observed)
        writes.append(ensure(rt, d, observed))
    # Scale-in: highest group replica index first (Grove's computePCSGReplicasToDelete).
    extra = [o for n, o in existing.items() if n not in desired_names]
    extra.sort(key=lambda o: -int((o["metadata"].get("labels") or {}).get(c.LABEL_PCSG_REPLICA_INDEX, "0")))
    writes.extend(delete(rt, o) for o in extra)
    if await run(writes):
        return
    members: dict[int, list[dict[str, Any] | None]] = {}
    for d in desired:
        j = int(d["metadata"]["labels"][c.LABEL_PCSG_REPLICA_INDEX])
        members.setdefault(j, []).append(existing.get(d["metadata"]["name"]))
    stamp = now()
    view = lifecycle.group_view(rt, loaded, ns, name, group)
    gen_hash = loaded.generation_hash or ""
    desired_status = status.scaling_group_status(
        pcsg,
        members,
        stamp,
        update_progress=update.group_update_progress(
            pcsg.get("status"), gen_hash, view, str(pcsg["metadata"].get("creationTimestamp") or stamp), stamp
        ),
        generation_hash=gen_hash if view.done else (pcsg.get("status") or {}).get("currentPodCliqueSetGenerationHash"),
        updated_replicas=sum(r.done for r in view.replicas),
    )
    await write_status(rt, pcsg, desired_status, (PCSG, ns, name), background=True)
