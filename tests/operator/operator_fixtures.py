"""Helpers for the operator's tests: PodCliqueSet manifests as plain JSON."""

from __future__ import annotations

import copy
from typing import Any


def container(name: str = "main") -> dict[str, Any]:
    return {"name": name, "image": "busybox", "env": [{"name": "USER_VAR", "value": "$(GROVE_PCS_NAME)"}]}


def clique(name: str, replicas: int, min_available: int | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"roleName": name, "replicas": replicas, "podSpec": {"containers": [container()]}}
    if min_available is not None:
        body["minAvailable"] = min_available
    body.update(spec)
    return {"name": name, "spec": body}


def make_pcs(
    name: str = "mn",
    replicas: int = 1,
    cliques: list[dict[str, Any]] | None = None,
    groups: list[dict[str, Any]] | None = None,
    startup: str | None = None,
    namespace: str = "ns",
) -> dict[str, Any]:
    template: dict[str, Any] = {"cliques": cliques or [clique("frontend", 2)]}
    if groups:
        template["podCliqueScalingGroups"] = groups
    if startup:
        template["cliqueStartupType"] = startup
    return {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": name, "namespace": namespace, "uid": "pcs-uid", "generation": 1},
        "spec": {"replicas": replicas, "template": template},
    }


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)
