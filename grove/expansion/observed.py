"""Slim, immutable views of observed pods: what the operator keeps in memory per pod (a few hundred bytes
instead of the whole body) and what status, gating and scale-in decisions read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grove.api import constants as c
from grove.expansion import naming


@dataclass(frozen=True, slots=True)
class PodView:
    """What the operator needs to know about one pod."""

    name: str
    namespace: str
    uid: str
    podclique: str
    pod_index: int | None
    podgang: str | None
    phase: str
    ready: bool
    ready_since: str | None
    scheduled: bool
    gated: bool  # carries Grove's gate
    other_gates: bool  # carries someone else's gate (never touched, Grove #724)
    terminating: bool
    startup_released: str | None  # None: no startup dependency
    template_hash: str | None
    failed_containers: bool  # a container exited non-zero (counts against MinAvailableBreached)
    started_not_ready: bool
    # uid of the controlling PodClique: a pod left by a deleted PodClique of the same name (waiting for garbage
    # collection) is not the new PodClique's pod (issue 8: recreated PodCliques must not adopt old pods).
    owner_uid: str | None = None


def pod_view(pod: dict[str, Any]) -> PodView:
    """Build a PodView from pod JSON."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    conditions = {cond.get("type"): cond for cond in status.get("conditions") or []}
    ready_cond = conditions.get("Ready") or {}
    sched_cond = conditions.get("PodScheduled") or {}
    gates = [g.get("name") for g in spec.get("schedulingGates") or []]
    index_label = labels.get(c.LABEL_POD_INDEX)
    pod_index = int(index_label) if index_label is not None and index_label.isdigit() else None
    if pod_index is None:
        pod_index = naming.trailing_index(meta.get("name", ""))
    statuses = status.get("containerStatuses") or []
    failed = any(
        ((s.get("state") or {}).get("terminated") or {}).get("exitCode", 0) != 0
        or ((s.get("lastState") or {}).get("terminated") or {}).get("exitCode", 0) != 0
        for s in statuses
    )
    started_not_ready = any(s.get("started") and not s.get("ready") for s in statuses)
    return PodView(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        uid=meta.get("uid", ""),
        podclique=labels.get(c.LABEL_PODCLIQUE, ""),
        pod_index=pod_index,
        podgang=labels.get(c.LABEL_PODGANG),
        phase=status.get("phase", "Pending"),
        ready=ready_cond.get("status") == "True",
        ready_since=ready_cond.get("lastTransitionTime") if ready_cond.get("status") == "True" else None,
        scheduled=sched_cond.get("status") == "True" or bool(spec.get("nodeName")),
        gated=c.SCHEDULING_GATE in gates,
        other_gates=any(g != c.SCHEDULING_GATE for g in gates),
        terminating=bool(meta.get("deletionTimestamp")),
        startup_released=annotations.get(c.ANNOTATION_STARTUP_RELEASED),
        template_hash=labels.get(c.LABEL_POD_TEMPLATE_HASH),
        failed_containers=failed,
        started_not_ready=started_not_ready,
        owner_uid=next((r.get("uid") for r in meta.get("ownerReferences") or [] if r.get("controller")), None),
    )
