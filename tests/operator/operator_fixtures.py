"""Helpers for the operator's tests: PodCliqueSet manifests as plain JSON, caches holding given objects, and a
Kube that records writes."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Hashable
from typing import Any

from controllers import cache as caches
from controllers.podwatch import PodIndex
from grove.expansion.observed import pod_view

INDEXERS = {
    "PodCliqueSet": (caches.PCS, caches.index_pcs),
    "PodCliqueScalingGroup": (caches.PCSG, caches.index_pcsg),
    "PodClique": (caches.PCLQ, caches.index_pclq),
    "PodGang": (caches.GANGS, caches.index_gang),
    "Service": (caches.SERVICES, caches.index_service),
    "ResourceClaim": (caches.CLAIMS, caches.index_claim),
    "ResourceClaimTemplate": (caches.TEMPLATES, caches.index_claim_template),
    "ComputeDomain": (caches.DOMAINS, caches.index_claim),
}


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


def cache_of(objects: list[dict[str, Any]]) -> caches.Cache:
    """A Cache holding `objects`, keyed the way the kopf indexers and the pod watch key them."""
    indexes: dict[str, Any] = {i: {} for i in caches.INDEX_IDS}
    pods = indexes[caches.PODS] = PodIndex()
    for obj in objects:
        if obj["kind"] == "Pod":
            pods.put(pod_view(obj))
            continue
        index_id, fn = INDEXERS[obj["kind"]]
        for key, value in (fn(obj) or {}).items():
            indexes[index_id].setdefault(key, []).append(value)
    cache = caches.Cache()
    cache.bind(indexes)
    return cache


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)


class FakeKube:
    """Records writes (verb, Kind/name, body); creates answer with the object and a uid, like the API server,
    when the caller asks for the answer. Patches of a subresource are recorded as `patch/<subresource>`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.writes: dict[str, int] = {}

    async def create(self, obj: dict[str, Any], *, answer: bool = False) -> dict[str, Any]:
        self.calls.append(("create", f"{obj['kind']}/{obj['metadata']['name']}", obj))
        if not answer:
            return {}
        meta = obj["metadata"]
        return {**obj, "metadata": {**meta, "uid": f"uid-{obj['kind']}-{meta['name']}", "resourceVersion": "1"}}

    async def patch(self, target: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        name = target if isinstance(target, str) else f"{target['kind']}/{target['metadata']['name']}"
        self.calls.append(("patch" + ("/" + kw["subresource"] if kw.get("subresource") else ""), name, body))
        return {}

    async def delete(self, obj: dict[str, Any], **kw: Any) -> None:
        self.calls.append(("delete", f"{obj['kind']}/{obj['metadata']['name']}", None))


def dispatch(rt: Any, key: tuple[str, str, str], hints: frozenset[Hashable] | None = None) -> None:
    """One reconcile of `key`, then the status writes it handed off (`Runtime.spawn`)."""
    from controllers import reconcile

    async def main() -> None:
        await reconcile.dispatch(rt, key, hints)
        await rt.drain()

    asyncio.run(main())
