"""Small PodCliqueSet builders for the claims tests (JSON, as users write it)."""

from __future__ import annotations

import copy
from typing import Any

GPU_TEMPLATE = {
    "name": "shared-gpu",
    "templateSpec": {
        "metadata": {"labels": {"team": "a"}},
        "spec": {"devices": {"requests": [{"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}},
    },
}


def container(name: str = "main", gpus: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": "busybox"}
    if gpus is not None:
        out["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return out


def clique(name: str, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "podSpec": {"containers": [container()]}}
    spec.update(extra.pop("spec", {}))
    return {"name": name, "spec": spec, **extra}


def pcs(cliques: list[dict[str, Any]], *, name: str = "inf", replicas: int = 2, **template: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": "pcs-uid"}
    if "annotations" in template:
        meta["annotations"] = template.pop("annotations")
    return {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": meta,
        "spec": {"replicas": replicas, "template": {"cliques": copy.deepcopy(cliques), **template}},
    }


def names(objs: list[dict[str, Any]], kind: str | None = None) -> list[str]:
    return [o["metadata"]["name"] for o in objs if kind is None or o["kind"] == kind]


def hierarchy() -> dict[str, Any]:
    """PCS-, PCSG- and clique-level sharing with both scopes and a PCS filter."""
    return pcs(
        [
            clique("fe", 2),
            clique("lead", 1),
            clique("work", 3, resourceSharing=[{"name": "shared-gpu", "scope": "PerReplica"},
                                               {"name": "shared-gpu", "scope": "AllReplicas"}]),
        ],
        resourceClaimTemplates=[GPU_TEMPLATE],
        resourceSharing=[
            {"name": "shared-gpu", "scope": "AllReplicas", "filter": {"childCliqueNames": ["fe"]}},
            {"name": "shared-gpu", "scope": "PerReplica"},
        ],
        podCliqueScalingGroups=[
            {"name": "sg", "cliqueNames": ["lead", "work"], "replicas": 2,
             "resourceSharing": [
                 {"name": "shared-gpu", "scope": "AllReplicas"},
                 {"name": "shared-gpu", "scope": "PerReplica", "filter": {"childCliqueNames": ["work"]}},
             ]},
        ],
    )
