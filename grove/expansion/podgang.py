"""PodGangs (grove-api.md §2.7): per PCS replica one base gang `<pcs>-<i>` (every standalone PodClique plus
scaling-group replicas 0..minAvailable-1) and one scaled gang per scaling-group replica j >= minAvailable.

`podReferences` list, sorted by name, the pods each PodGroup will have. Grove lists only pods that already exist
and patches the gang after every pod creation; grove-py's pod names are deterministic (`<pclq>-<index>`), so the
complete list is known up front: the gang is written once, not once per pod (500 fewer PATCHes for 1000 pods),
and a pod is listed in its gang by the time it exists. `Initialized` still means what it means in Grove: every
referenced pod exists. A pod's scheduling gate is removed only once it exists and is listed (see `gating`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.expansion import conditions, labels, naming, owners
from grove.expansion import spec as specs
from grove.expansion.observed import PodView
from grove.expansion.topology import NO_TOPOLOGY, TopologyKeys

PHASE_PENDING = "Pending"
PHASE_RUNNING = "Running"  # every pod of the gang Ready


def scheduler_name(pcs: PodCliqueSet) -> str:
    """The backend every clique resolves to (Grove requires them to agree)."""
    for clique in pcs.spec.template.cliques:
        name = clique.spec.pod_spec.get("schedulerName")
        if name:
            return str(name)
    return c.DEFAULT_SCHEDULER_NAME


def _podgroup(
    name: str, count: int, namespace: str | None, min_replicas: int, topology: dict[str, Any] | None = None
) -> dict[str, Any]:
    pods = sorted(naming.pod_name(name, k) for k in range(count))
    out: dict[str, Any] = {
        "name": name,
        "podReferences": [{"namespace": namespace, "name": p} for p in pods],
        "minReplicas": min_replicas,
    }
    if topology:
        out["topologyConstraint"] = topology
    return out


def _gang(
    pcs: PodCliqueSet,
    pcs_owner: dict[str, Any],
    replica: int,
    name: str,
    podgroups: list[dict[str, Any]],
    base: str | None,
    topology: dict[str, Any] | None = None,
    group_configs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    pcs_name = pcs.metadata.name or ""
    meta_labels = {
        **labels.without_grove_keys(pcs.metadata.labels),
        **labels.component_labels(pcs_name, name, c.COMPONENT_PODGANG),
        c.LABEL_SCHEDULER_NAME: scheduler_name(pcs),
        # grove-py: the replica index on gangs too, so scale-in finds them by label like every other child.
        c.LABEL_PCS_REPLICA_INDEX: str(replica),
    }
    if base:
        meta_labels[c.LABEL_BASE_PODGANG] = base
    meta: dict[str, Any] = {
        "name": name,
        "namespace": pcs.metadata.namespace,
        "labels": meta_labels,
        "ownerReferences": [owners.controller_ref(pcs_owner)],
    }
    annotations = labels.without_grove_keys(pcs.metadata.annotations)
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"podgroups": podgroups}
    if topology:
        spec["topologyConstraint"] = topology
    if group_configs:
        spec["topologyConstraintGroupConfigs"] = group_configs
    if pcs.spec.template.priority_class_name:
        spec["priorityClassName"] = pcs.spec.template.priority_class_name
    return {"apiVersion": c.SCHEDULER_API_VERSION, "kind": c.KIND_PODGANG, "metadata": meta, "spec": spec}


def podgangs(
    pcs: PodCliqueSet,
    pcs_owner: dict[str, Any],
    replica: int,
    group_replicas: Mapping[str, int],
    clique_replicas: Mapping[str, int],
    topology: TopologyKeys = NO_TOPOLOGY,
) -> list[dict[str, Any]]:
    """Desired PodGangs of one PCS replica.

    group_replicas: live `spec.replicas` per scaling-group template name (Grove uses the live PCSG so user and
    HPA scaling count). clique_replicas: live `spec.replicas` per PodClique FQN (the template's when missing).
    topology: the constraints as node-label keys (grove-api.md §2.12): PCS -> the base gang's
    `topologyConstraint`, clique -> its PodGroup's, scaling group -> one `topologyConstraintGroupConfigs` entry
    per group replica in the base gang, and the gang-level constraint of its scaled gangs (else the PCS's)."""
    pcs_name = pcs.metadata.name or ""
    ns = pcs.metadata.namespace
    base_name = naming.base_podgang_name(pcs_name, replica)

    def clique_group(fqn: str, clique: Any) -> dict[str, Any]:
        pack = topology.cliques.get(clique.name)
        return _podgroup(
            fqn,
            clique_replicas.get(fqn, clique.spec.replicas),
            ns,
            specs.min_available(clique),
            pack.to_json() if pack else None,
        )

    base_groups = [
        clique_group(naming.podclique_name(pcs_name, replica, clique.name), clique)
        for clique in specs.standalone_cliques(pcs)
    ]
    configs: list[dict[str, Any]] = []
    scaled: list[dict[str, Any]] = []
    for group in pcs.spec.template.pod_clique_scaling_groups or []:
        pcsg_fqn = naming.scaling_group_name(pcs_name, replica, group.name)
        members = specs.group_members(pcs, group)
        count = group_replicas.get(group.name, group.replicas)
        group_pack = topology.groups.get(group.name)
        group_topology = group_pack.to_json() if group_pack else None
        for j in range(count):
            groups = [
                clique_group(naming.scaling_group_podclique_name(pcsg_fqn, j, clique.name), clique)
                for clique in members
            ]
            if j < group.min_available:
                base_groups.extend(groups)
                if group_topology:
                    configs.append(
                        {
                            "name": f"{pcsg_fqn}-{j}",
                            "podGroupNames": [g["name"] for g in groups],
                            "topologyConstraint": group_topology,
                        }
                    )
            else:
                gang = naming.scaled_podgang_name(pcsg_fqn, j, group.min_available)
                scaled.append(
                    _gang(pcs, pcs_owner, replica, gang, groups, base_name, group_topology or topology.pcs.to_json())
                )
    base = _gang(pcs, pcs_owner, replica, base_name, base_groups, None, topology.pcs.to_json(), configs)
    return [base, *scaled]


def podgang_status(
    gang: dict[str, Any],
    pods: Mapping[str, list[PodView]],
    previous: dict[str, Any] | None,
    now: str,
    backend: str = "none",
) -> dict[str, Any]:
    """PodGang status: `Initialized` once every referenced pod exists (as Grove), `Scheduled` once every
    PodGroup has minReplicas pods bound, with the backend that serves the gang in its message (issue #9), and a
    phase (Pending, or Running once all are Ready; Grove leaves phases to the backends)."""
    groups = gang["spec"]["podgroups"]
    referenced = {g["name"]: {r["name"] for r in g["podReferences"]} for g in groups}
    members = [
        p for g in groups for p in pods.get(g["name"], []) if p.name in referenced[g["name"]] and not p.terminating
    ]
    complete = len({p.name for p in members}) == sum(len(v) for v in referenced.values())
    # Two phases only (Pending, Running): every phase change is a status write per gang.
    phase = PHASE_RUNNING if complete and members and all(p.ready for p in members) else PHASE_PENDING
    prev_conditions = (previous or {}).get("conditions") or []
    cond = conditions.make(
        "Initialized",
        "True" if complete else "False",
        "PodGangPodsCreated" if complete else "PodGangPodsCreationPending",
        "all pods of the gang exist and are referenced" if complete else "waiting for pods to be created",
        now,
        None,
    )
    # The message does not count pods: it changes only with the status, so a gang costs one more status write.
    bound = {g["name"]: sum(p.scheduled for p in pods.get(g["name"], []) if not p.terminating) for g in groups}
    short = any(bound[g["name"]] < g["minReplicas"] for g in groups)
    scheduled = conditions.make(
        "Scheduled",
        "False" if short else "True",
        "PodGangPending" if short else "PodGangScheduled",
        f"backend {backend}: "
        + (
            "some PodGroup has fewer than minReplicas pods bound"
            if short
            else "every PodGroup has minReplicas pods bound"
        ),
        now,
        None,
    )
    out: dict[str, Any] = {"phase": phase, "conditions": conditions.merge(prev_conditions, [cond, scheduled])}
    return out


def base_gang_scheduled(base_gang: dict[str, Any] | None, scheduled: Mapping[str, int]) -> bool:
    """Grove's rule for ungating scaled gangs: every PodGroup of the base gang has scheduledReplicas >=
    minReplicas (scheduled: PodClique FQN -> status.scheduledReplicas)."""
    if base_gang is None:
        return False
    return all(scheduled.get(g["name"], 0) >= g["minReplicas"] for g in base_gang["spec"]["podgroups"])
