"""Grove's hierarchical resource sharing (GREP-390, grove-api.md §2.13), as plain data.

`resourceSharing` entries at PodCliqueSet, scaling-group and clique level name a template and a scope; each
becomes shared ResourceClaims with Grove's names:

| level | AllReplicas | PerReplica |
|---|---|---|
| PCS | `<pcs>-all-<tpl>` (one) | `<pcs>-<i>-<tpl>` per PCS replica |
| PCSG | `<pcs>-<i>-<sg>-all-<tpl>` per PCSG | `<pcs>-<i>-<sg>-<j>-<tpl>` per PCSG replica |
| clique | `<pclq>-all-<tpl>` per PodClique | `<pclq>-<podIndex>-<tpl>` per pod |

Filters (PCS: clique or scaling-group names; PCSG: clique names) only limit which pods get a claim: the
objects exist regardless. A clique's `devices` with sharing PerReplica/AllReplicas is the same thing at PCS
level, filtered to that clique, with the implicit template `<clique>-devices`.

The same enumeration drives both the objects (`replica_claims`) and the pod references (`pod_claims`), so the
two cannot disagree on a name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from grove.api import PodCliqueSet, PodCliqueTemplateSpec, ResourceSharingSpec
from grove.api import constants as c
from grove.api.podcliqueset import PodCliqueScalingGroupConfig
from grove.claims import naming
from grove.claims.devicespec import has_devices
from grove.expansion import naming as objects

Source = Literal["internal", "external", "devices"]


@dataclass(frozen=True)
class SharedClaim:
    """One shared ResourceClaim: its name, where its spec comes from, and labels naming its owner level."""

    name: str
    template: str
    source: Source
    template_namespace: str | None = None  # external templates only
    devices_clique: str | None = None  # source == "devices": the clique whose `devices` spec it is
    labels: Mapping[str, str] = field(default_factory=dict)
    set_level: bool = False  # one per PodCliqueSet (not per replica)


def pcs_name(pcs: PodCliqueSet) -> str:
    return pcs.metadata.name or ""


def _source(pcs: PodCliqueSet, entry: ResourceSharingSpec) -> tuple[Source, str | None]:
    """Grove's lookup: an internal template of that name wins, else an external ResourceClaimTemplate."""
    internal = {t.name for t in pcs.spec.template.resource_claim_templates or []}
    if entry.name in internal:
        return "internal", None
    return "external", entry.namespace or pcs.metadata.namespace


def _matches(entry: ResourceSharingSpec, names: Sequence[str] | None) -> bool:
    """Grove's include-only filter; no filter (or no names to match, clique level) means everyone."""
    if names is None or entry.filter is None:
        return True
    f = entry.filter
    return any(n in (f.child_clique_names or []) or n in (f.child_scaling_group_names or []) for n in names)


def _level(
    pcs: PodCliqueSet,
    owner: str,
    entries: Sequence[ResourceSharingSpec] | None,
    index: int | None,
    match: Sequence[str] | None,
    labels: Mapping[str, str],
    *,
    set_level: bool = False,
) -> list[SharedClaim]:
    """Claims of one owner: its AllReplicas entries (index None) or its PerReplica entries for `index`."""
    out: list[SharedClaim] = []
    for entry in entries or []:
        if not _matches(entry, match):
            continue
        if index is None:
            if entry.scope != "AllReplicas":
                continue
            name = naming.all_replicas_claim(owner, entry.name)
        else:
            if entry.scope != "PerReplica":
                continue
            name = naming.per_replica_claim(owner, index, entry.name)
        source, namespace = _source(pcs, entry)
        out.append(SharedClaim(name, entry.name, source, namespace, None, dict(labels), set_level))
    return out


def clique_template(pcs: PodCliqueSet, clique: str) -> PodCliqueTemplateSpec:
    for tpl in pcs.spec.template.cliques:
        if tpl.name == clique:
            return tpl
    raise KeyError(f"PodCliqueSet {pcs_name(pcs)!r} has no clique {clique!r}")


def group_of(pcs: PodCliqueSet, clique: str) -> PodCliqueScalingGroupConfig | None:
    """The scaling group a clique belongs to (at most one)."""
    for group in pcs.spec.template.pod_clique_scaling_groups or []:
        if clique in group.clique_names:
            return group
    return None


def _group_config(pcs: PodCliqueSet, group: str) -> PodCliqueScalingGroupConfig:
    for cfg in pcs.spec.template.pod_clique_scaling_groups or []:
        if cfg.name == group:
            return cfg
    raise KeyError(f"PodCliqueSet {pcs_name(pcs)!r} has no scaling group {group!r}")


def _replica_labels(replica: int) -> dict[str, str]:
    return {c.LABEL_PCS_REPLICA_INDEX: str(replica)}


def _group_labels(replica: int, sg_fqn: str, group_replica: int | None = None) -> dict[str, str]:
    out = {**_replica_labels(replica), c.LABEL_PCSG: sg_fqn}
    if group_replica is not None:
        out[c.LABEL_PCSG_REPLICA_INDEX] = str(group_replica)
    return out


def _devices_claims(pcs: PodCliqueSet, tpl: PodCliqueTemplateSpec, replica: int | None) -> list[SharedClaim]:
    """Shared claims of a clique's `devices` (none for PerPod: that is a template, see `templates`)."""
    devices = tpl.spec.devices
    if devices is None or not has_devices(devices) or devices.sharing == "PerPod":
        return []
    template = naming.devices_template(tpl.name)
    if devices.sharing == "AllReplicas":
        if replica is not None:
            return []
        name = naming.all_replicas_claim(pcs_name(pcs), template)
        return [SharedClaim(name, template, "devices", None, tpl.name, {}, True)]
    if replica is None:
        return []
    name = naming.per_replica_claim(pcs_name(pcs), replica, template)
    return [SharedClaim(name, template, "devices", None, tpl.name, _replica_labels(replica))]


def pod_claims(
    pcs: PodCliqueSet,
    clique: str,
    replica: int,
    group: str | None,
    group_replica: int | None,
    pod_index: int,
) -> list[SharedClaim]:
    """Every shared claim one pod references, in Grove's order: PCS, PCSG, clique (AllReplicas first)."""
    name = pcs_name(pcs)
    tpl = clique_template(pcs, clique)
    match = [clique] if group is None else [clique, group]
    sharing = pcs.spec.template.resource_sharing
    out = _level(pcs, name, sharing, None, match, {}, set_level=True)
    out += _level(pcs, name, sharing, replica, match, _replica_labels(replica))
    if group is not None:
        cfg = _group_config(pcs, group)
        sg_fqn = objects.scaling_group_name(name, replica, group)
        j = group_replica or 0
        out += _level(pcs, sg_fqn, cfg.resource_sharing, None, [clique], _group_labels(replica, sg_fqn))
        out += _level(pcs, sg_fqn, cfg.resource_sharing, j, [clique], _group_labels(replica, sg_fqn, j))
    pclq = naming.podclique_fqn(name, replica, clique, group, group_replica)
    pclq_labels = {**_replica_labels(replica), c.LABEL_PODCLIQUE: pclq}
    out += _level(pcs, pclq, tpl.resource_sharing, None, None, pclq_labels)
    out += _level(pcs, pclq, tpl.resource_sharing, pod_index, None, {**pclq_labels, c.LABEL_POD_INDEX: str(pod_index)})
    return out


def pods_of_a_clique_share_a_claim(pcs: PodCliqueSet) -> bool:
    """Whether two pods of one PodClique would reference the same shared claim (a PCS- or PCSG-level entry
    that reaches a clique, or `devices` sharing PerReplica/AllReplicas). kube-scheduler v1.37.2's gang
    placement cannot place such a gang: the second pod of the PodGroup waits forever on "resource claim ... is
    in the process of being allocated" (docs/gang-scheduling.md), so such PodCliqueSets are not gang-scheduled."""
    grouped = {member: g.name for g in pcs.spec.template.pod_clique_scaling_groups or [] for member in g.clique_names}
    for tpl in pcs.spec.template.cliques:
        group = grouped.get(tpl.name)
        j = 0 if group is not None else None
        first = {claim.name for claim in pod_claims(pcs, tpl.name, 0, group, j, 0)}
        second = {claim.name for claim in pod_claims(pcs, tpl.name, 0, group, j, 1)}
        devices = devices_pod_claim(pcs, tpl.name, 0)
        if first & second or devices is not None:
            return True
    return False


def devices_pod_claim(pcs: PodCliqueSet, clique: str, replica: int) -> SharedClaim | None:
    """The shared claim behind a clique's `devices` for a pod of `replica` (None for PerPod or no devices)."""
    tpl = clique_template(pcs, clique)
    claims = _devices_claims(pcs, tpl, None) + _devices_claims(pcs, tpl, replica)
    return claims[0] if claims else None


def set_level_claims(pcs: PodCliqueSet) -> list[SharedClaim]:
    """Claims that exist once per PodCliqueSet: PCS-level AllReplicas entries and AllReplicas `devices`."""
    out = _level(pcs, pcs_name(pcs), pcs.spec.template.resource_sharing, None, None, {}, set_level=True)
    for tpl in pcs.spec.template.cliques:
        out += _devices_claims(pcs, tpl, None)
    return out


def replica_claims(
    pcs: PodCliqueSet,
    replica: int,
    group_replicas: Mapping[str, int] | None = None,
    clique_replicas: Mapping[str, int] | None = None,
) -> list[SharedClaim]:
    """Claims that belong to PodCliqueSet replica `replica` (not the set-level ones).

    `group_replicas` (scaling-group name -> replicas) and `clique_replicas` (clique name -> pods per PodClique)
    default to the template values; the operator passes live values after `/scale` or an HPA changed them.
    """
    name = pcs_name(pcs)
    out = _level(pcs, name, pcs.spec.template.resource_sharing, replica, None, _replica_labels(replica))
    group_counts = dict(group_replicas or {})
    for cfg in pcs.spec.template.pod_clique_scaling_groups or []:
        sg_fqn = objects.scaling_group_name(name, replica, cfg.name)
        out += _level(pcs, sg_fqn, cfg.resource_sharing, None, None, _group_labels(replica, sg_fqn))
        for j in range(group_counts.get(cfg.name, cfg.replicas)):
            out += _level(pcs, sg_fqn, cfg.resource_sharing, j, None, _group_labels(replica, sg_fqn, j))
    pod_counts = dict(clique_replicas or {})
    for tpl in pcs.spec.template.cliques:
        out += _devices_claims(pcs, tpl, replica)
        if not tpl.resource_sharing:
            continue
        cfg_or_none = group_of(pcs, tpl.name)
        if cfg_or_none is None:
            owners: list[tuple[str, dict[str, str]]] = [(naming.podclique_fqn(name, replica, tpl.name), {})]
        else:
            sg_fqn = objects.scaling_group_name(name, replica, cfg_or_none.name)
            owners = [
                (
                    naming.podclique_fqn(name, replica, tpl.name, cfg_or_none.name, j),
                    _group_labels(replica, sg_fqn, j),
                )
                for j in range(group_counts.get(cfg_or_none.name, cfg_or_none.replicas))
            ]
        for pclq, extra in owners:
            base = {**_replica_labels(replica), **extra, c.LABEL_PODCLIQUE: pclq}
            out += _level(pcs, pclq, tpl.resource_sharing, None, None, base)
            for k in range(pod_counts.get(tpl.name, tpl.spec.replicas)):
                out += _level(pcs, pclq, tpl.resource_sharing, k, None, {**base, c.LABEL_POD_INDEX: str(k)})
    return out
