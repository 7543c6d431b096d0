"""Scheduling-gate removal (grove-api.md §2.7) and startup release.

A pod keeps Grove's gate until it is listed in its PodGang's `podReferences`. Pods of a base gang are ungated
right then; pods of a scaled gang (their PodClique has `grove.io/base-podgang`) also wait until the base gang is
scheduled. Only Grove's own gate is ever removed (Grove #724: other controllers' gates stay).

The same rule (`schedulable`) decides whether a missing pod is created without the gate (issue #13): when its
gang already exists and lists it, the gate would be removed by the very next write, so it is left out. Under
the Workload API backend (`held_by_scheduler`) kube-scheduler itself holds a pod until its gang's PodGroup
exists, so base-gang pods get no gate at all. Either way no pod is schedulable before its gang object exists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from grove.api import constants as c
from grove.expansion.observed import PodView

UNGATE_PATCH: dict[str, Any] = {
    # Strategic merge on a list with patchMergeKey "name": deletes our gate and nothing else.
    "spec": {"schedulingGates": [{"$patch": "delete", "name": c.SCHEDULING_GATE}]}
}
RELEASE_PATCH: dict[str, Any] = {"metadata": {"annotations": {c.ANNOTATION_STARTUP_RELEASED: "true"}}}


def referenced_pods(gang: dict[str, Any] | None, pclq_name: str) -> set[str]:
    """Names of the pods a PodGang lists for one PodClique."""
    if gang is None:
        return set()
    for group in gang.get("spec", {}).get("podgroups") or []:
        if group.get("name") == pclq_name:
            return {r["name"] for r in group.get("podReferences") or []}
    return set()


def is_scaled(pclq: dict[str, Any]) -> bool:
    return c.LABEL_BASE_PODGANG in ((pclq.get("metadata") or {}).get("labels") or {})


def schedulable(pclq: dict[str, Any], gang: dict[str, Any] | None, base_scheduled: bool) -> set[str]:
    """Names of a PodClique's pods that may be schedulable now: listed in their existing PodGang (pods of a
    scaled gang: once the base gang is scheduled)."""
    if gang is None or (is_scaled(pclq) and not base_scheduled):
        return set()
    return referenced_pods(gang, pclq["metadata"]["name"])


def held_by_scheduler(pclq: dict[str, Any], gang_scheduled: bool) -> bool:
    """Whether kube-scheduler itself holds this PodClique's pods until their gang object exists, so they need no
    gate (issue #13): under the Workload API backend a pod names its PodGroup (`spec.schedulingGroup`), the
    scheduler leaves a pod whose PodGroup does not exist unscheduled (kube-scheduler v1.37 GangScheduling
    PreEnqueue), and the PodGroup is created only from its PodGang's create answer (owned by it). Pods of a
    scaled gang keep the gate: they also wait for the base gang to be scheduled, which only the gate says."""
    return gang_scheduled and not is_scaled(pclq)


def pods_to_ungate(
    pclq: dict[str, Any], pods: Iterable[PodView], gang: dict[str, Any] | None, base_scheduled: bool
) -> list[PodView]:
    """Gated pods of a PodClique that may be released to the scheduler now."""
    listed = schedulable(pclq, gang, base_scheduled)
    return sorted((p for p in pods if p.gated and not p.terminating and p.name in listed), key=lambda p: p.name)


def pods_to_release(pods: Iterable[PodView], parents_ready: bool) -> list[PodView]:
    """Pods whose startup may begin (annotation still "false" and every parent has minAvailable Ready pods)."""
    if not parents_ready:
        return []
    return sorted((p for p in pods if p.startup_released == "false" and not p.terminating), key=lambda p: p.name)
