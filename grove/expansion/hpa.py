"""HorizontalPodAutoscalers (grove-api.md §2.11): per PCS replica, one `autoscaling/v2` HPA for every standalone
clique with `autoScalingConfig` and every scaling group with `scaleConfig`, named after the PodClique / PCSG it
scales and owned by the PodCliqueSet."""

from __future__ import annotations

from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.expansion import labels, naming, owners
from grove.expansion import spec as specs

API_VERSION = "autoscaling/v2"
KIND = "HorizontalPodAutoscaler"


def _hpa(
    pcs: PodCliqueSet, pcs_owner: dict[str, Any], replica: int, kind: str, name: str, config: Any, default_min: int
) -> dict[str, Any]:
    pcs_name = pcs.metadata.name or ""
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": c.API_VERSION, "kind": kind, "name": name},
        "minReplicas": int(config.min_replicas if config.min_replicas is not None else default_min),
        "maxReplicas": int(config.max_replicas),
    }
    if config.metrics:
        spec["metrics"] = config.metrics
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": pcs.metadata.namespace,
            "labels": {
                **labels.component_labels(pcs_name, name, c.COMPONENT_HPA),
                c.LABEL_PCS_REPLICA_INDEX: str(replica),
            },
            "ownerReferences": [owners.controller_ref(pcs_owner)],
        },
        "spec": spec,
    }


def hpas(pcs: PodCliqueSet, pcs_owner: dict[str, Any], replica: int) -> list[dict[str, Any]]:
    """The HPAs of one PCS replica."""
    pcs_name = pcs.metadata.name or ""
    out = []
    for clique in specs.standalone_cliques(pcs):
        config = clique.spec.auto_scaling_config
        if config is not None:
            fqn = naming.podclique_name(pcs_name, replica, clique.name)
            out.append(_hpa(pcs, pcs_owner, replica, c.KIND_PODCLIQUE, fqn, config, int(clique.spec.replicas or 1)))
    for group in pcs.spec.template.pod_clique_scaling_groups or []:
        if group.scale_config is not None:
            fqn = naming.scaling_group_name(pcs_name, replica, group.name)
            out.append(
                _hpa(pcs, pcs_owner, replica, c.KIND_PODCLIQUESCALINGGROUP, fqn, group.scale_config, group.replicas)
            )
    return out
