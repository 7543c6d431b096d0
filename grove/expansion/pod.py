"""Pods of a PodClique (grove-api.md §2.4), built from the PodClique object alone.

Differences from Grove, on purpose: the pod name is `<pclq>-<podIndex>` (see `naming`), and startup order uses
grove-py's annotation + downward-API init container (see `startup`) instead of `grove-initc`."""

from __future__ import annotations

import copy
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.expansion import claims, environment, labels, naming, owners, startup, workload
from grove.expansion.topology import NO_TOPOLOGY, TopologyKeys

# Annotations the operator keeps on the PodClique for itself.
_PCLQ_ONLY_ANNOTATIONS = {labels.ANNOTATION_TEMPLATE_REPLICAS}


def clique_template_name(pclq: dict[str, Any]) -> str:
    """The clique template name of a PodClique, from its labels (not by suffix match, which Grove does and
    which breaks when one clique name is a suffix of another)."""
    meta = pclq["metadata"]
    lbl = meta.get("labels") or {}
    group = lbl.get(c.LABEL_PCSG)
    if group:
        prefix = f"{group}-{lbl[c.LABEL_PCSG_REPLICA_INDEX]}-"
    else:
        prefix = f"{lbl[c.LABEL_PART_OF]}-{lbl[c.LABEL_PCS_REPLICA_INDEX]}-"
    return str(meta["name"][len(prefix) :])


def desired_pod(
    pclq: dict[str, Any],
    pod_index: int,
    *,
    startup_wait_image: str = startup.DEFAULT_STARTUP_WAIT_IMAGE,
    pcs: PodCliqueSet | None = None,
    startup_released: bool = False,
    gang_scheduling: bool = False,
    topology: TopologyKeys = NO_TOPOLOGY,
    gated: bool = True,
) -> dict[str, Any]:
    """The pod with index `pod_index` of a PodClique, created gated (Grove's `grove.io/podgang-pending-creation`).

    gated=False (grove-py, issue #13): its PodGang already exists and lists it, so the gate would only cost a
    second write; other controllers' gates are kept either way. gang_scheduling: the kube-scheduler Workload API
    backend serves the gang, so the pod joins its PodClique's PodGroup (`spec.schedulingGroup`, immutable: it
    can only be set here). topology: the PodCliqueSet's constraints as label keys; `pack.preferred` becomes
    preferred pod affinity (see `workload`)."""
    meta = pclq["metadata"]
    pclq_name = meta["name"]
    namespace = meta.get("namespace")
    pclq_labels = meta.get("labels") or {}
    pcs_name = pclq_labels[c.LABEL_PART_OF]
    replica = int(pclq_labels[c.LABEL_PCS_REPLICA_INDEX])
    pod_labels = dict(pclq_labels)  # all of the PodClique's labels, as Grove (§2.4), then the pod-only ones
    pod_labels[c.LABEL_PODCLIQUE] = pclq_name
    pod_labels[c.LABEL_POD_INDEX] = str(pod_index)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _PCLQ_ONLY_ANNOTATIONS}
    spec = pclq["spec"]
    pod_spec: dict[str, Any] = copy.deepcopy(spec["podSpec"])
    pod_spec = environment.prepend_env(
        pod_spec, environment.base_env(pcs_name, replica, pclq_name, namespace or "default")
    )
    if spec.get("startsAfter"):
        annotations[c.ANNOTATION_STARTUP_RELEASED] = "true" if startup_released else "false"
        pod_spec = startup.add_startup_wait(pod_spec, startup_wait_image)
    gates = [g for g in pod_spec.get("schedulingGates") or [] if g.get("name") != c.SCHEDULING_GATE]
    if gated:
        gates.insert(0, {"name": c.SCHEDULING_GATE})
    pod_spec.pop("schedulingGates", None)
    if gates:
        pod_spec["schedulingGates"] = gates
    pod_spec["hostname"] = naming.hostname(pclq_name, pod_index)
    pod_spec["subdomain"] = naming.subdomain(pcs_name, replica)
    if gang_scheduling:
        pod_spec["schedulingGroup"] = workload.scheduling_group(pclq_name)
    pod_spec = workload.preferred_affinity(pod_spec, pclq, clique_template_name(pclq), topology)
    group = pclq_labels.get(c.LABEL_PCSG)
    group_replica = int(pclq_labels[c.LABEL_PCSG_REPLICA_INDEX]) if group else None
    pod_spec = claims.inject(
        pod_spec,
        pcs,
        clique_template_name(pclq),
        replica,
        _group_template_name(pcs_name, replica, group),
        group_replica,
        pod_index,
    )
    out_meta: dict[str, Any] = {
        "name": naming.pod_name(pclq_name, pod_index),
        "namespace": namespace,
        "labels": pod_labels,
        "ownerReferences": [owners.controller_ref(pclq)],
    }
    if annotations:
        out_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": out_meta, "spec": pod_spec}


def _group_template_name(pcs_name: str, replica: int, group_fqn: str | None) -> str | None:
    if not group_fqn:
        return None
    return group_fqn[len(naming.scaling_group_name(pcs_name, replica, "")) :]
