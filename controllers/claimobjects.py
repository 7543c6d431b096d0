"""The PCS reconciler's DRA component: the claim objects (ResourceClaims, ResourceClaimTemplates,
ComputeDomains) of each PCS replica, created when missing and deleted after a scale-in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from controllers.runtime import Runtime
from controllers.writes import replica_index
from grove.expansion import claims, owners


async def _create(rt: Runtime, slot: tuple[str, int], key: Any, objects: list[dict[str, Any]]) -> None:
    await asyncio.gather(*(rt.kube.create(o) for o in objects))
    rt.claims_done[slot] = key


def external_templates(rt: Runtime, model: Any, ns: str, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """External ResourceClaimTemplates the PCS's resourceSharing names, from the template index (no GET); a
    template that appears later re-enqueues the PCS (`external_users`, see controllers/operator.py)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for ref in claims.external_refs(model):
        rt.external_users.setdefault(ref, set()).add((ns, name))
        found = rt.cache.claim_template(*ref)
        if found is not None:
            out[ref] = found
    return out


def replica_claims(
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
    return _create(rt, slot, key, missing)


def stale_claims(
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
        replica = replica_index(obj)
        if replica < 0:
            continue  # set-level objects live as long as the PCS
        if replica >= want:
            out.append(obj)
        elif replica in live:
            group_replicas, clique_replicas = live[replica]
            if claims.stale(model, obj, group_replicas=group_replicas, clique_replicas=clique_replicas):
                out.append(obj)
    return out
