"""PodCliqueScalingGroups `<pcs>-<i>-<sg>` (owner: the PCS) and the member PodCliques they own."""

from __future__ import annotations

from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.api.podcliqueset import PodCliqueScalingGroupConfig
from grove.expansion import hashing, labels, naming, owners, podclique, scale
from grove.expansion import spec as specs


def scaling_group(
    pcs: PodCliqueSet,
    pcs_owner: dict[str, Any],
    replica: int,
    group: PodCliqueScalingGroupConfig,
    observed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Desired PodCliqueScalingGroup for one PCS replica."""
    pcs_name = pcs.metadata.name or ""
    name = naming.scaling_group_name(pcs_name, replica, group.name)
    annotations = dict(group.annotations or {})
    annotations[labels.ANNOTATION_TEMPLATE_REPLICAS] = str(group.replicas)
    # A change of a member clique's template changes the PCSG itself, so its watch event brings the PCSG
    # reconcile that syncs the member PodCliques (issue 8: that trigger was missing).
    annotations[labels.ANNOTATION_MEMBERS_HASH] = hashing.stable_hash(
        [pcs.spec.template.priority_class_name]
        + [m.model_dump(by_alias=True, exclude_none=True, mode="json") for m in specs.group_members(pcs, group)]
    )
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_PODCLIQUESCALINGGROUP,
        "metadata": {
            "name": name,
            "namespace": pcs.metadata.namespace,
            "labels": {
                **labels.component_labels(pcs_name, name, c.COMPONENT_SCALING_GROUP),
                c.LABEL_PCS_REPLICA_INDEX: str(replica),
            },
            "annotations": annotations,
            "ownerReferences": [owners.controller_ref(pcs_owner)],
        },
        "spec": {
            "replicas": scale.resolve_replicas(group.replicas, observed),
            "minAvailable": group.min_available,
            "cliqueNames": list(group.clique_names),
        },
    }


def member_podcliques(
    pcs: PodCliqueSet,
    pcsg: dict[str, Any],
    observed: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Desired member PodCliques of a PCSG for group replicas 0..spec.replicas-1.

    `observed` maps PodClique name to the live object (for the replica rule)."""
    labels_ = pcsg["metadata"].get("labels") or {}
    replica = int(labels_[c.LABEL_PCS_REPLICA_INDEX])
    pcs_name = pcs.metadata.name or ""
    group_name = pcsg["metadata"]["name"][len(naming.scaling_group_name(pcs_name, replica, "")) :]
    group = next(g for g in pcs.spec.template.pod_clique_scaling_groups or [] if g.name == group_name)
    replicas = int(pcsg["spec"]["replicas"])
    out: list[dict[str, Any]] = []
    for j in range(replicas):
        for clique in specs.group_members(pcs, group):
            name = naming.scaling_group_podclique_name(pcsg["metadata"]["name"], j, clique.name)
            out.append(podclique.member_podclique(pcs, pcsg, replica, group, j, clique, (observed or {}).get(name)))
    return out


def group_name_of(pcs_name: str, pcsg: dict[str, Any]) -> str:
    """The template group name of a PCSG object."""
    replica = int((pcsg["metadata"].get("labels") or {})[c.LABEL_PCS_REPLICA_INDEX])
    return str(pcsg["metadata"]["name"][len(naming.scaling_group_name(pcs_name, replica, "")) :])
