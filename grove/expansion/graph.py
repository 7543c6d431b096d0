"""The whole desired object graph of a PodCliqueSet, as if every object had just been created: used by
`grove render` and by tests. The operator builds the same objects level by level from the same functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.expansion import claims, hpa, naming, pod, podclique, podgang, scalinggroup, service, startup
from grove.expansion import spec as specs


@dataclass
class Graph:
    """Objects by kind, in creation order (owners before children)."""

    pcs: dict[str, Any]
    services: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    podcliques: list[dict[str, Any]] = field(default_factory=list)
    scaling_groups: list[dict[str, Any]] = field(default_factory=list)
    podgangs: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    hpas: list[dict[str, Any]] = field(default_factory=list)

    def objects(self) -> list[dict[str, Any]]:
        return [
            *self.services,
            *self.claims,
            *self.scaling_groups,
            *self.podcliques,
            *self.podgangs,
            *self.pods,
            *self.hpas,
        ]


def pcs_owner(pcs: PodCliqueSet) -> dict[str, Any]:
    """The minimal owner JSON (apiVersion, kind, name, uid) of a PodCliqueSet."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_PODCLIQUESET,
        "metadata": {"name": pcs.metadata.name, "uid": pcs.metadata.uid or ""},
    }


def expand(pcs_json: dict[str, Any], *, startup_wait_image: str = startup.DEFAULT_STARTUP_WAIT_IMAGE) -> Graph:
    """Everything a PodCliqueSet expands to, pods included, with PodGangs listing every pod."""
    pcs = specs.load(pcs_json)
    if not pcs.metadata.namespace:
        pcs.metadata.namespace = "default"
    owner = pcs_owner(pcs)
    graph = Graph(pcs=pcs_json)
    for i in range(pcs.spec.replicas):
        graph.services.append(service.headless_service(pcs, owner, i))
        for claim in claims.replica_claims(pcs, i):
            graph.claims.append(claim)
        replica_pclqs: list[dict[str, Any]] = []
        for clique in specs.standalone_cliques(pcs):
            replica_pclqs.append(podclique.standalone_podclique(pcs, owner, i, clique))
        group_replicas: dict[str, int] = {}
        for group in pcs.spec.template.pod_clique_scaling_groups or []:
            pcsg = scalinggroup.scaling_group(pcs, owner, i, group)
            graph.scaling_groups.append(pcsg)
            group_replicas[group.name] = int(pcsg["spec"]["replicas"])
            replica_pclqs.extend(scalinggroup.member_podcliques(pcs, pcsg))
        counts: dict[str, int] = {}
        for pclq in replica_pclqs:
            graph.podcliques.append(pclq)
            counts[pclq["metadata"]["name"]] = int(pclq["spec"]["replicas"])
            for k in range(int(pclq["spec"]["replicas"])):
                graph.pods.append(pod.desired_pod(pclq, k, startup_wait_image=startup_wait_image, pcs=pcs))
        graph.podgangs.extend(podgang.podgangs(pcs, owner, i, group_replicas, counts))
        graph.hpas.extend(hpa.hpas(pcs, owner, i))
    return graph


def tree(graph: Graph) -> str:
    """An indented tree of the graph, following controller owner references."""
    children: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for obj in graph.objects():
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("controller"):
                children.setdefault((ref["kind"], ref["name"]), []).append(obj)
    lines: list[str] = []

    def describe(obj: dict[str, Any]) -> str:
        kind, name = obj["kind"], obj["metadata"]["name"]
        extra = ""
        spec = obj.get("spec") or {}
        lbl = obj["metadata"].get("labels") or {}
        if kind == c.KIND_PODCLIQUE:
            extra = (
                f"  replicas={spec.get('replicas')} minAvailable={spec.get('minAvailable')}"
                f" gang={lbl.get(c.LABEL_PODGANG)}"
            )
            if spec.get("startsAfter"):
                extra += f" startsAfter={','.join(spec['startsAfter'])}"
        elif kind == c.KIND_PODCLIQUESCALINGGROUP:
            extra = f"  replicas={spec.get('replicas')} minAvailable={spec.get('minAvailable')}"
        elif kind == c.KIND_PODGANG:
            groups = ", ".join(f"{g['name']}(min {g['minReplicas']})" for g in spec.get("podgroups") or [])
            extra = f"  podgroups: {groups}"
        elif kind == hpa.KIND:
            target = spec.get("scaleTargetRef") or {}
            extra = f"  {target.get('kind')}/{target.get('name')} {spec.get('minReplicas')}..{spec.get('maxReplicas')}"
        elif kind == "Pod":
            extra = f"  hostname={spec.get('hostname')} subdomain={spec.get('subdomain')}"
        return f"{kind} {name}{extra}"

    def walk(obj: dict[str, Any], depth: int) -> None:
        lines.append("  " * depth + describe(obj))
        for child in children.get((obj["kind"], obj["metadata"]["name"]), []):
            walk(child, depth + 1)

    root = graph.pcs
    walk({"kind": c.KIND_PODCLIQUESET, "metadata": root.get("metadata") or {}, "spec": {}}, 0)
    return "\n".join(lines)


def pod_names(graph: Graph) -> list[str]:
    return [p["metadata"]["name"] for p in graph.pods]


__all__ = ["Graph", "expand", "naming", "pcs_owner", "pod_names", "tree"]
