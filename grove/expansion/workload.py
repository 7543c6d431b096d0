"""Gang scheduling in the stock kube-scheduler (issue #9): the `scheduling.k8s.io` objects of one PodGang.

kube-scheduler 1.37 schedules a gang from PodGroup (v1beta1) and CompositePodGroup (v1alpha3) objects; a pod
joins a PodGroup through `spec.schedulingGroup.podGroupName` (docs/gang-scheduling.md has the API facts and the
source files they come from). Grove's PodGang maps onto that tree one to one, the shape Grove's KAI backend gives
its PodGroup:

    CompositePodGroup <gang>               gang, minGroupCount = direct children   (PCS-level topology)
      CompositePodGroup <pcsg>-<j>-pack    only for a scaling-group constraint      (the group's topology)
        PodGroup <pclq>                    gang, minCount = the clique's minAvailable (the clique's topology)

so the scheduler binds a gang only when every PodClique in it gets at least minAvailable pods, all at once.
A Workload `<gang>` holds the matching templates (the scheduler does not read it; every group's `workloadRef`
points into it, as the API requires). Everything is owned by the PodGang: garbage collection removes it with the
gang. `pack.required` becomes the group's `schedulingConstraints.topology`; the API has no preferred packing,
so `pack.preferred` becomes a preferred pod affinity on the pods (see `preferred_affinity`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.expansion import labels, naming, owners
from grove.expansion import spec as specs
from grove.expansion.topology import TopologyKeys

GROUP = "scheduling.k8s.io"
BETA = f"{GROUP}/v1beta1"  # Workload, PodGroup (feature gate GenericWorkload)
ALPHA = f"{GROUP}/v1alpha3"  # CompositePodGroup (feature gate CompositePodGroup)
#: What the operator needs the cluster to serve for this backend (resource name -> API version).
RESOURCES = {"workloads": BETA, "podgroups": BETA, "compositepodgroups": ALPHA}
#: The backend's name in PodGang status.
BACKEND = "kube-scheduler-workload-api"
ROOT_TEMPLATE = "podgang"
#: The Workload API's limits (k8s.io/api scheduling/v1beta1 WorkloadMaxPodGroupTemplates).
MAX_TEMPLATES = 8
#: Suffix of the CompositePodGroup of a scaling-group replica inside the base gang. `<pcsg>-<j>` alone would be
#: the name of scaled gang j's CompositePodGroup.
PACK_SUFFIX = "-pack"


def pod_group_name(pclq_name: str) -> str:
    """The PodGroup a PodClique's pods join: one per PodClique, named after it."""
    return pclq_name


def scheduling_group(pclq_name: str) -> dict[str, str]:
    """The pod's `spec.schedulingGroup` (immutable, so it is set when the pod is created)."""
    return {"podGroupName": pod_group_name(pclq_name)}


def template_names(pcs: PodCliqueSet, replica: int, group_replicas: Mapping[str, int]) -> dict[str, str]:
    """Workload template name of every PodGroup (PodClique FQN) and scaling-group CompositePodGroup of one PCS
    replica: `pclq-<clique>` and `pcsg-<group>` (DNS labels, unique in the Workload)."""
    pcs_name = pcs.metadata.name or ""
    out = {
        naming.podclique_name(pcs_name, replica, clique.name): _label(f"pclq-{clique.name}")
        for clique in specs.standalone_cliques(pcs)
    }
    for group in pcs.spec.template.pod_clique_scaling_groups or []:
        pcsg_fqn = naming.scaling_group_name(pcs_name, replica, group.name)
        for j in range(max(group_replicas.get(group.name, group.replicas), group.min_available)):
            out[f"{pcsg_fqn}-{j}{PACK_SUFFIX}"] = _label(f"pcsg-{group.name}")
            for clique in specs.group_members(pcs, group):
                out[naming.scaling_group_podclique_name(pcsg_fqn, j, clique.name)] = _label(f"pclq-{clique.name}")
    return out


def _label(text: str) -> str:
    return text.replace(".", "-")[:63].rstrip("-")


def _required(constraint: dict[str, Any] | None) -> str | None:
    return ((constraint or {}).get("packConstraint") or {}).get("required")


def _constraints(key: str | None) -> dict[str, Any]:
    return {"schedulingConstraints": {"topology": [{"key": key}]}} if key else {}


def _gang(min_count: int) -> dict[str, Any]:
    return {"gang": {"minCount": max(1, min_count)}}


def _composite(min_groups: int) -> dict[str, Any]:
    return {"gang": {"minGroupCount": max(1, min_groups)}}


def scheduling_objects(gang: dict[str, Any], templates: Mapping[str, str]) -> list[dict[str, Any]]:
    """The Workload, CompositePodGroups and PodGroups of one observed PodGang (it must have a uid: everything is
    owned by it). Creation order: Workload, CompositePodGroups (parents first), PodGroups. A gang of a single
    PodClique with no gang-level topology is one PodGroup without a parent (and a Workload of one template)."""
    meta = gang["metadata"]
    name = meta["name"]
    ns = meta.get("namespace")
    spec = gang.get("spec") or {}
    priority = spec.get("priorityClassName")
    extra = {"priorityClassName": priority} if priority else {}
    gang_labels = meta.get("labels") or {}
    obj_labels = {**labels.default_labels(gang_labels.get(c.LABEL_PART_OF, "")), c.LABEL_PODGANG: name}
    owner = [owners.controller_ref(gang)]

    def obj(api: str, kind: str, obj_name: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": api,
            "kind": kind,
            "metadata": {"name": obj_name, "namespace": ns, "labels": dict(obj_labels), "ownerReferences": owner},
            "spec": body,
        }

    podgroups = spec.get("podgroups") or []
    by_name = {g["name"]: g for g in podgroups}
    parent_of: dict[str, str] = {}
    packs: list[tuple[str, str, list[str], str]] = []  # (cpg name, template, members, key)
    for cfg in spec.get("topologyConstraintGroupConfigs") or []:
        key = _required(cfg.get("topologyConstraint"))
        members = [m for m in cfg.get("podGroupNames") or [] if m in by_name]
        if not key or not members:
            continue  # a preferred-only group constraint is carried by the pods' affinity
        cpg = f"{cfg['name']}{PACK_SUFFIX}"
        packs.append((cpg, templates.get(cpg, "pcsg"), members, key))
        parent_of.update((m, cpg) for m in members)
    root_children = len(packs) + sum(1 for g in podgroups if g["name"] not in parent_of)
    root_key = _required(spec.get("topologyConstraint"))
    out: list[dict[str, Any]] = []

    def pg_template(group: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": templates.get(group["name"], "pclq"),
            "schedulingPolicy": _gang(int(group.get("minReplicas") or 1)),
            **_constraints(_required(group.get("topologyConstraint"))),
            **extra,
        }

    def unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list({t["name"]: t for t in items}.values())

    root_template: dict[str, Any] = {
        "name": ROOT_TEMPLATE,
        "schedulingPolicy": _composite(root_children),
        **_constraints(root_key),
        **extra,
    }
    direct = unique([pg_template(g) for g in podgroups if g["name"] not in parent_of])
    nested = unique(
        [
            {
                "name": template,
                "schedulingPolicy": _composite(len(members)),
                **_constraints(key),
                **extra,
                "podGroupTemplates": unique([pg_template(by_name[m]) for m in members]),
            }
            for _, template, members, key in packs
        ]
    )
    controller = {"apiGroup": c.SCHEDULER_GROUP, "kind": c.KIND_PODGANG, "name": name}
    if len(podgroups) == 1 and not packs and not root_key:
        # A gang of one PodClique (Grove's most common shape, e.g. ScaleTest_1000) is that PodGroup alone: a
        # composite over one child says nothing more, and a PodGroup without a parent needs no CompositePodGroup.
        # One write less per gang, and the scheduler walks a tree of one (issue #13).
        group = podgroups[0]
        out.append(obj(BETA, "Workload", name, {"controllerRef": controller, "podGroupTemplates": direct}))
        body = {
            "workloadRef": {"workloadName": name, "templateName": templates.get(group["name"], "pclq")},
            "schedulingPolicy": _gang(int(group.get("minReplicas") or 1)),
            **_constraints(_required(group.get("topologyConstraint"))),
            **extra,
        }
        out.append(obj(BETA, "PodGroup", pod_group_name(group["name"]), body))
        return out
    if direct:
        root_template["podGroupTemplates"] = direct
    if nested:
        root_template["compositePodGroupTemplates"] = nested
    lists = [direct, nested, *[t["podGroupTemplates"] for t in nested]]
    if all(len(items) <= MAX_TEMPLATES for items in lists):
        # Informational only (the scheduler never reads Workloads); skipped where the API's limits forbid it.
        body = {"controllerRef": controller, "compositePodGroupTemplates": [root_template]}
        out.append(obj(BETA, "Workload", name, body))
    out.append(
        obj(
            ALPHA,
            "CompositePodGroup",
            name,
            {
                "workloadRef": {"workloadName": name, "templateName": ROOT_TEMPLATE},
                "schedulingPolicy": _composite(root_children),
                **_constraints(root_key),
                **extra,
            },
        )
    )
    for cpg, template, members, key in packs:
        body = {
            "parentCompositePodGroupName": name,
            "workloadRef": {"workloadName": name, "templateName": template},
            "schedulingPolicy": _composite(len(members)),
            **_constraints(key),
            **extra,
        }
        out.append(obj(ALPHA, "CompositePodGroup", cpg, body))
    for group in podgroups:
        body = {
            "parentCompositePodGroupName": parent_of.get(group["name"], name),
            "workloadRef": {"workloadName": name, "templateName": templates.get(group["name"], "pclq")},
            "schedulingPolicy": _gang(int(group.get("minReplicas") or 1)),
            **_constraints(_required(group.get("topologyConstraint"))),
            **extra,
        }
        out.append(obj(BETA, "PodGroup", pod_group_name(group["name"]), body))
    return out


def preferred_affinity(
    pod_spec: dict[str, Any], pclq: dict[str, Any], clique: str, topology: TopologyKeys
) -> dict[str, Any]:
    """`pack.preferred` as preferred pod affinity: each pod is drawn to the domain (label key) where the pods of
    the same clique / scaling-group replica / gang already are, so the scheduler packs when it can and spreads
    when it must. The API's topology constraint is required-only, hence this translation."""
    meta = pclq["metadata"]
    lbl = meta.get("labels") or {}
    group = lbl.get(c.LABEL_PCSG)
    terms: list[tuple[str, dict[str, str]]] = []
    clique_pack = topology.cliques.get(clique)
    if clique_pack and clique_pack.preferred:
        terms.append((clique_pack.preferred, {c.LABEL_PODCLIQUE: meta["name"]}))
    if group:
        prefix = naming.scaling_group_name(lbl[c.LABEL_PART_OF], int(lbl[c.LABEL_PCS_REPLICA_INDEX]), "")
        group_pack = topology.groups.get(group[len(prefix) :])
        if group_pack and group_pack.preferred:
            selector = {c.LABEL_PCSG: group, c.LABEL_PCSG_REPLICA_INDEX: lbl[c.LABEL_PCSG_REPLICA_INDEX]}
            terms.append((group_pack.preferred, selector))
    if topology.pcs.preferred and lbl.get(c.LABEL_PODGANG):
        terms.append((topology.pcs.preferred, {c.LABEL_PODGANG: lbl[c.LABEL_PODGANG]}))
    if not terms:
        return pod_spec
    out = dict(pod_spec)
    affinity = dict(out.get("affinity") or {})
    pod_affinity = dict(affinity.get("podAffinity") or {})
    preferred = list(pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    # Narrower levels first and heavier, so a clique packs tighter than its gang.
    for rank, (key, selector) in enumerate(terms):
        preferred.append(
            {
                "weight": 100 - 10 * rank,
                "podAffinityTerm": {"topologyKey": key, "labelSelector": {"matchLabels": selector}},
            }
        )
    pod_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    affinity["podAffinity"] = pod_affinity
    out["affinity"] = affinity
    return out
