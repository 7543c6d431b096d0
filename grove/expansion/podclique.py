"""PodCliques: standalone ones (owned by the PCS) and scaling-group members (owned by their PCSG).

A PodClique carries everything its pods need (labels, podSpec with the scaling-group variables baked in,
startsAfter as FQNs), so pods are built from the PodClique alone, as in Grove (§2.4)."""

from __future__ import annotations

import copy
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.api.podcliqueset import PodCliqueScalingGroupConfig, PodCliqueTemplateSpec
from grove.expansion import environment, hashing, labels, memo, naming, owners, scale, startup
from grove.expansion import spec as specs


def template_hash(pcs: PodCliqueSet, clique: PodCliqueTemplateSpec) -> str:
    """`grove.io/pod-template-hash` of a clique (of one of `pcs`'s clique templates; once per model)."""
    return memo.per_model(
        pcs,
        ("template_hash", clique.name),
        lambda: hashing.pod_template_hash(
            clique.labels, clique.annotations, clique.spec.pod_spec, pcs.spec.template.priority_class_name
        ),
    )


def _clique_annotations(clique: PodCliqueTemplateSpec, template_replicas: int) -> dict[str, str]:
    # Grove removes grove.io/topology-name when copying template annotations to the PodClique.
    out = {k: v for k, v in (clique.annotations or {}).items() if k != c.ANNOTATION_TOPOLOGY_NAME}
    out[labels.ANNOTATION_TEMPLATE_REPLICAS] = str(template_replicas)
    return out


def _clique_spec(
    pcs: PodCliqueSet,
    clique: PodCliqueTemplateSpec,
    replicas: int,
    parents: list[str],
    extra_env: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    body = clique.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["replicas"] = replicas
    body["minAvailable"] = specs.min_available(clique)
    body.pop("startsAfter", None)
    if parents:
        body["startsAfter"] = parents
    pod_spec = copy.deepcopy(clique.spec.pod_spec)
    if pcs.spec.template.priority_class_name:
        pod_spec["priorityClassName"] = pcs.spec.template.priority_class_name
    if extra_env:
        pod_spec = environment.prepend_env(pod_spec, extra_env)
    body["podSpec"] = pod_spec
    return body


def standalone_podclique(
    pcs: PodCliqueSet,
    pcs_json_owner: dict[str, Any],
    replica: int,
    clique: PodCliqueTemplateSpec,
    observed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Desired standalone PodClique `<pcs>-<i>-<clique>` (owner: the PCS)."""
    pcs_name = pcs.metadata.name or ""
    name = naming.podclique_name(pcs_name, replica, clique.name)
    replicas = scale.resolve_replicas(clique.spec.replicas, observed)
    meta_labels = {
        **(clique.labels or {}),
        **labels.component_labels(pcs_name, name, c.COMPONENT_PCS_PODCLIQUE),
        c.LABEL_PCS_REPLICA_INDEX: str(replica),
        c.LABEL_PODGANG: naming.base_podgang_name(pcs_name, replica),
        c.LABEL_POD_TEMPLATE_HASH: template_hash(pcs, clique),
    }
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_PODCLIQUE,
        "metadata": {
            "name": name,
            "namespace": pcs.metadata.namespace,
            "labels": meta_labels,
            "annotations": _clique_annotations(clique, clique.spec.replicas),
            "ownerReferences": [owners.controller_ref(pcs_json_owner)],
        },
        "spec": _clique_spec(pcs, clique, replicas, startup.starts_after(pcs, replica, clique.name), None),
    }


def group_template_num_pods(pcs: PodCliqueSet, group: PodCliqueScalingGroupConfig) -> int:
    """GROVE_PCSG_TEMPLATE_NUM_PODS: sum of the member templates' replicas."""
    return sum(m.spec.replicas for m in specs.group_members(pcs, group))


def member_podclique(
    pcs: PodCliqueSet,
    pcsg_owner: dict[str, Any],
    replica: int,
    group: PodCliqueScalingGroupConfig,
    group_replica: int,
    clique: PodCliqueTemplateSpec,
    observed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Desired PodClique `<pcs>-<i>-<sg>-<j>-<clique>` of scaling-group replica j (owner: the PCSG)."""
    pcs_name = pcs.metadata.name or ""
    pcsg_fqn = naming.scaling_group_name(pcs_name, replica, group.name)
    name = naming.scaling_group_podclique_name(pcsg_fqn, group_replica, clique.name)
    gang = naming.podgang_for_group_replica(pcs_name, replica, pcsg_fqn, group_replica, group.min_available)
    replicas = scale.resolve_replicas(clique.spec.replicas, observed)
    meta_labels = {
        **(clique.labels or {}),
        **labels.component_labels(pcs_name, name, c.COMPONENT_PCSG_PODCLIQUE),
        c.LABEL_PCS_REPLICA_INDEX: str(replica),
        c.LABEL_PCSG: pcsg_fqn,
        c.LABEL_PCSG_REPLICA_INDEX: str(group_replica),
        c.LABEL_PODGANG: gang,
        c.LABEL_POD_TEMPLATE_HASH: template_hash(pcs, clique),
    }
    if group_replica >= group.min_available:
        meta_labels[c.LABEL_BASE_PODGANG] = naming.base_podgang_name(pcs_name, replica)
    env = environment.scaling_group_env(group_template_num_pods(pcs, group))
    parents = startup.starts_after(pcs, replica, clique.name, group_replica)
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_PODCLIQUE,
        "metadata": {
            "name": name,
            "namespace": pcs.metadata.namespace,
            "labels": meta_labels,
            "annotations": _clique_annotations(clique, clique.spec.replicas),
            "ownerReferences": [owners.controller_ref(pcsg_owner)],
        },
        "spec": _clique_spec(pcs, clique, replicas, parents, env),
    }
