"""The scheduler backend (issue #9): which one serves a PodCliqueSet, the topology binding it refers to, and the
backend's objects per PodGang.

The backend is the stock kube-scheduler's Workload API when the cluster serves `scheduling.k8s.io` Workloads,
PodGroups and CompositePodGroups (discovered once at start) and the pods use the default scheduler; otherwise
there is none and pods are scheduled one by one (Grove's `default-scheduler` backend). The objects themselves
come from the pure `grove.expansion.workload`; they are created once per PodGang (uid) and never patched: every
field the operator sets is fixed for the life of the gang (cliques, minAvailable and topology are immutable), and
garbage collection removes them with their PodGang."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.client import ApiError, Kube
from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.api.topology import level_keys
from grove.claims import sharing
from grove.expansion import memo, podgang, workload
from grove.expansion import topology as topo
from grove.expansion.spec import SpecError

log = logging.getLogger("grove.scheduling")

#: How long a ClusterTopologyBinding read is reused (bindings change rarely; a new one is seen this fast).
BINDING_TTL = 10.0
NO_BACKEND = "none"


@dataclass
class Backends:
    """What the operator learned about the cluster's scheduler and what it created for which gang."""

    workload_api: bool = False
    created: dict[str, set[str]] = field(default_factory=dict)  # PodGang uid -> "Kind/name" created
    # PodGang uids with every object sent and none failed: their objects are not built again on each pass
    # (building them was 5% of the operator's CPU in a deploy, issue #13).
    settled: set[str] = field(default_factory=set)
    bindings: dict[str, tuple[float, list[tuple[str, str]] | None]] = field(default_factory=dict)

    def forget(self, gang_uid: str) -> None:
        self.created.pop(gang_uid, None)
        self.settled.discard(gang_uid)


async def discover(kube: Kube) -> bool:
    """Whether the API server serves every resource the Workload API backend writes."""
    served: dict[str, set[str]] = {}
    for version in sorted(set(workload.RESOURCES.values())):
        try:
            answer = await kube.request("GET", f"/apis/{version}")
        except ApiError as error:
            log.info("gang scheduling: %s not served (%s)", version, error.status)
            return False
        served[version] = {r.get("name", "") for r in answer.get("resources") or []}
    missing = [f"{v}/{r}" for r, v in workload.RESOURCES.items() if r not in served.get(v, set())]
    if missing:
        log.info("gang scheduling: not served: %s", ", ".join(missing))
        return False
    log.info("gang scheduling: kube-scheduler Workload API (%s)", ", ".join(sorted(served)))
    return True


def backend_name(backends: Backends, model: PodCliqueSet) -> str:
    """The backend serving a PodCliqueSet's gangs. Pods of one PodClique sharing a claim are not gang-scheduled:
    kube-scheduler v1.37.2 cannot place such a gang (`grove.claims.sharing.pods_of_a_clique_share_a_claim`)."""
    if not backends.workload_api or podgang.scheduler_name(model) != c.DEFAULT_SCHEDULER_NAME:
        return NO_BACKEND
    if memo.per_model(model, "pods_share_a_claim", lambda: sharing.pods_of_a_clique_share_a_claim(model)):
        return NO_BACKEND
    return workload.BACKEND


async def topology_keys(
    kube: Kube, backends: Backends, model: PodCliqueSet
) -> tuple[topo.TopologyKeys, list[SpecError]]:
    """The PodCliqueSet's constraints as label keys, or the errors that refuse it (no binding, unknown domain)."""
    if not topo.uses_topology(model):
        return topo.NO_TOPOLOGY, []
    name = topo.topology_name(model)
    levels = await _binding_levels(kube, backends, name) if name else None
    return topo.translate(model, levels)


async def _binding_levels(kube: Kube, backends: Backends, name: str) -> list[tuple[str, str]] | None:
    hit = backends.bindings.get(name)
    if hit is not None and time.monotonic() - hit[0] < BINDING_TTL:
        return hit[1]
    try:
        levels: list[tuple[str, str]] | None = level_keys(
            await kube.request("GET", f"/apis/{c.GROUP}/{c.VERSION}/clustertopologybindings/{name}")
        )
    except ApiError as error:
        if error.status != 404:
            raise
        levels = None
    backends.bindings[name] = (time.monotonic(), levels)
    return levels


def gang_creates(
    kube: Kube, backends: Backends, gang: dict[str, Any], templates: Mapping[str, str]
) -> list[Awaitable[None]]:
    """The creates of the backend objects an observed PodGang still lacks (remembered for this operator's
    lifetime; after a restart each is sent once more and answered AlreadyExists)."""
    uid = gang["metadata"].get("uid")
    if not uid or uid in backends.settled or gang["metadata"].get("deletionTimestamp"):
        return []
    done = backends.created.setdefault(uid, set())
    creates: list[Awaitable[None]] = []
    for obj in workload.scheduling_objects(gang, templates):
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        if key not in done:
            done.add(key)
            creates.append(_create(kube, backends, uid, key, obj))
    if not creates:
        backends.settled.add(uid)
    return creates


async def _create(kube: Kube, backends: Backends, uid: str, key: str, obj: dict[str, Any]) -> None:
    try:
        await kube.create(obj)  # AlreadyExists (a restart) is success
    except Exception:
        backends.created.get(uid, set()).discard(key)  # the next pass retries
        backends.settled.discard(uid)
        raise
