"""Which existing claim objects a PodCliqueSet no longer needs (pure), for scale-in.

Claim objects are owned by the PodCliqueSet, so garbage collection only removes them with it. After a
scale-in of the PodCliqueSet, of a scaling group or of a clique, the labels every object carries (replica,
scaling-group replica, pod index; ComputeDomains: their group) say whether it is still wanted, the way Grove's
`CleanupStalePerReplicaRCs` decides by label. Objects that are not ours (other components, other owners) are
never stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.claims import mnnvl
from grove.claims.constants import COMPONENT_COMPUTE_DOMAIN
from grove.claims.plan import as_pcs
from grove.claims.sharing import group_of, pcs_name

COMPONENTS = frozenset({c.COMPONENT_RESOURCE_CLAIM, c.COMPONENT_RESOURCE_CLAIM_TEMPLATE, COMPONENT_COMPUTE_DOMAIN})


def _index(labels: Mapping[str, str], key: str) -> int | None:
    value = labels.get(key)
    return int(value) if value is not None and value.isdigit() else None


def is_stale(
    pcs: PodCliqueSet | Mapping[str, Any],
    obj: Mapping[str, Any],
    *,
    group_replicas: Mapping[str, int] | None = None,
    clique_replicas: Mapping[str, int] | None = None,
) -> bool:
    """Whether `obj` (a claim object of this PodCliqueSet) should be deleted. Live counts as in
    `claim_objects` (scaling-group name / clique name -> replicas; default: the template's)."""
    model = as_pcs(pcs)
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(c.LABEL_PART_OF) != pcs_name(model) or labels.get(c.LABEL_COMPONENT) not in COMPONENTS:
        return False
    replica = _index(labels, c.LABEL_PCS_REPLICA_INDEX)
    if replica is None:
        return False  # set-level objects live as long as the PodCliqueSet
    if replica >= model.spec.replicas:
        return True
    if labels.get(c.LABEL_COMPONENT) == COMPONENT_COMPUTE_DOMAIN:
        return labels.get(c.LABEL_MNNVL_GROUP) not in mnnvl.groups(model)
    group_replica = _index(labels, c.LABEL_PCSG_REPLICA_INDEX)
    group_fqn = labels.get(c.LABEL_PCSG)
    if group_replica is not None and group_fqn:
        for cfg in model.spec.template.pod_clique_scaling_groups or []:
            wanted = (group_replicas or {}).get(cfg.name, cfg.replicas)
            if group_fqn == f"{pcs_name(model)}-{replica}-{cfg.name}" and group_replica >= wanted:
                return True
    pod_index = _index(labels, c.LABEL_POD_INDEX)
    pclq = labels.get(c.LABEL_PODCLIQUE)
    if pod_index is not None and pclq:
        for tpl in model.spec.template.cliques:
            if pclq.endswith(f"-{tpl.name}") and _pclq_of(model, replica, tpl.name, pclq):
                return pod_index >= (clique_replicas or {}).get(tpl.name, tpl.spec.replicas)
    return False


def _pclq_of(model: PodCliqueSet, replica: int, clique: str, pclq: str) -> bool:
    """Whether `pclq` is a PodClique FQN of `clique` in `replica` (exact, not a suffix match)."""
    prefix = f"{pcs_name(model)}-{replica}-"
    cfg = group_of(model, clique)
    if cfg is None:
        return pclq == f"{prefix}{clique}"
    middle = pclq[len(f"{prefix}{cfg.name}-") : -len(f"-{clique}")]
    return pclq.startswith(f"{prefix}{cfg.name}-") and middle.isdigit()
