"""Replica rule (Grove #150), scale-in order, status computation and gate removal."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from grove.api import constants as c
from grove.expansion import conditions, gating, labels, podgang, scale, status
from grove.expansion.observed import PodView, pod_view

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def view(name: str, index: int, **kw: Any) -> PodView:
    base = PodView(
        name=name,
        namespace="ns",
        uid=f"uid-{name}",
        podclique="mn-0-a",
        pod_index=index,
        podgang="mn-0",
        phase="Running",
        ready=True,
        ready_since=NOW,
        scheduled=True,
        gated=False,
        other_gates=False,
        terminating=False,
        startup_released=None,
        template_hash="h",
        failed_containers=False,
        started_not_ready=False,
    )
    return replace(base, **kw)


def child(replicas: int, recorded: str | None) -> dict[str, Any]:
    ann = {} if recorded is None else {labels.ANNOTATION_TEMPLATE_REPLICAS: recorded}
    return {"metadata": {"annotations": ann}, "spec": {"replicas": replicas}}


def test_replica_rule() -> None:
    assert scale.resolve_replicas(3, None) == 3  # new child: template
    assert scale.resolve_replicas(3, child(5, "3")) == 5  # /scale wins while the template is unchanged
    assert scale.resolve_replicas(4, child(5, "3")) == 4  # template changed: template wins
    assert scale.resolve_replicas(4, child(5, None)) == 4  # never recorded: template


def test_scale_in_highest_pod_index_first() -> None:
    pods = [view(f"p-{i}", i) for i in range(5)] + [view("stray", None)]  # type: ignore[arg-type]
    doomed = scale.pods_to_delete(pods, 2)
    assert [p.name for p in doomed] == ["stray", "p-4", "p-3", "p-2"]
    assert scale.pods_to_delete([view("p-3", 3, terminating=True)], 2) == []


def test_missing_indices_wait_for_terminating_pods() -> None:
    pods = [view("p-0", 0), view("p-2", 2, terminating=True)]
    assert scale.missing_pod_indices(pods, 4) == [1, 3]


def test_indices_to_remove() -> None:
    assert scale.indices_to_remove([0, 1, 2, 3, 3], 2) == [3, 2]


def pclq(replicas: int = 2, min_available: int = 2, prev: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "mn-0-a",
            "generation": 3,
            "labels": {
                c.LABEL_POD_TEMPLATE_HASH: "h",
                c.LABEL_COMPONENT: c.COMPONENT_PCS_PODCLIQUE,
                c.LABEL_PART_OF: "mn",
            },
        },
        "spec": {"replicas": replicas, "minAvailable": min_available},
        "status": prev or {},
    }


def test_podclique_status_counts_and_conditions() -> None:
    pods = [view("p-0", 0), view("p-1", 1, ready=False, scheduled=False, gated=True, template_hash="old")]
    st = status.podclique_status(pclq(), pods, NOW)
    assert (
        st["replicas"],
        st["readyReplicas"],
        st["scheduledReplicas"],
        st["scheduleGatedReplicas"],
        st["updatedReplicas"],
    ) == (2, 1, 1, 1, 1)
    # Never available yet: not a breach gang termination may act on (issue 8).
    breach = conditions.get(st["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)
    assert breach is not None and (breach["status"], breach["reason"]) == ("Unknown", "NotYetAvailable")
    assert conditions.is_false(st["conditions"], c.CONDITION_PODCLIQUE_SCHEDULED)
    assert conditions.is_false(st["conditions"], c.CONDITION_READY)
    assert (
        st["hpaPodSelector"]
        == "app.kubernetes.io/managed-by=grove-operator,app.kubernetes.io/part-of=mn,grove.io/podclique=mn-0-a"
    )
    assert st["observedGeneration"] == 3


def test_min_available_breached_only_after_available_and_not_while_rolling() -> None:
    healthy = status.podclique_status(pclq(), [view("p-0", 0), view("p-1", 1)], NOW)
    assert conditions.is_false(healthy["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)
    lost = status.podclique_status(pclq(prev=healthy), [view("p-0", 0), view("p-1", 1, ready=False)], LATER)
    cond = conditions.get(lost["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)
    assert cond is not None and (cond["status"], cond["reason"], cond["lastTransitionTime"]) == (
        "True",
        "InsufficientReadyPods",
        LATER,
    )
    rolling = [view("p-0", 0), view("p-1", 1, ready=False, template_hash="old")]
    during = status.podclique_status(pclq(prev=healthy), rolling, LATER)
    cond = conditions.get(during["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)
    assert cond is not None and (cond["status"], cond["reason"]) == ("Unknown", "UpdateInProgress")


def test_podclique_update_progress_follows_its_template_hash() -> None:
    old = status.podclique_status(
        pclq(), [view("p-0", 0, template_hash="old"), view("p-1", 1, template_hash="old")], NOW
    )
    old["currentPodTemplateHash"] = "old"  # as if the PodClique's hash label had been "old"
    pods = [view("p-0", 0, template_hash="old"), view("p-1", 1)]
    st = status.podclique_status(pclq(prev=old), pods, LATER, "gen2", "h")
    assert st["updateProgress"] == {
        "updateStartedAt": LATER,
        "updateEndedAt": None,
        "podCliqueSetGenerationHash": "gen2",
        "podTemplateHash": "h",
        "readyPodsSelectedToUpdate": None,  # no Ready pod selected: absent (None removes it)
    }
    assert "currentPodCliqueSetGenerationHash" not in st
    done = status.podclique_status(pclq(prev=st), [view("p-0", 0), view("p-1", 1)], LATER, "gen2", "h")
    assert done["updateProgress"]["updateEndedAt"] == LATER
    assert done["currentPodCliqueSetGenerationHash"] == "gen2"


def test_status_is_stable_when_nothing_changes() -> None:
    pods = [view("p-0", 0), view("p-1", 1)]
    first = status.podclique_status(pclq(), pods, NOW)
    again = status.podclique_status(pclq(prev=first), pods, LATER)
    assert not status.differs(first, again)  # same observations, later clock: no write
    assert conditions.is_true(first["conditions"], c.CONDITION_READY)
    assert conditions.is_false(first["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)


def test_transition_time_changes_only_with_status() -> None:
    ready = status.podclique_status(pclq(), [view("p-0", 0), view("p-1", 1)], NOW)
    broken = status.podclique_status(pclq(prev=ready), [view("p-0", 0)], LATER)
    cond = conditions.get(broken["conditions"], c.CONDITION_READY)
    assert cond is not None and cond["status"] == "False" and cond["lastTransitionTime"] == LATER


def test_scaling_group_status() -> None:
    def member(ready: int, breached: str) -> dict[str, Any]:
        return {
            "spec": {"replicas": 2, "minAvailable": 2},
            "status": {
                "readyReplicas": ready,
                "updatedReplicas": 2,
                "conditions": [
                    {"type": c.CONDITION_PODCLIQUE_SCHEDULED, "status": "True"},
                    {"type": c.CONDITION_MIN_AVAILABLE_BREACHED, "status": breached},
                    {"type": c.CONDITION_READY, "status": "True" if ready == 2 else "False"},
                ],
            },
        }

    pcsg = {
        "metadata": {"name": "mn-0-sg", "labels": {c.LABEL_PART_OF: "mn"}},
        "spec": {"replicas": 3, "minAvailable": 2},
    }
    st = status.scaling_group_status(pcsg, {0: [member(2, "False")], 1: [member(1, "True")], 2: [None]}, NOW)
    assert (st["replicas"], st["scheduledReplicas"], st["availableReplicas"]) == (3, 2, 1)
    assert conditions.is_true(st["conditions"], c.CONDITION_MIN_AVAILABLE_BREACHED)  # 1 healthy < minAvailable 2
    assert st["selector"].endswith("grove.io/podcliquescalinggroup=mn-0-sg")


def test_podcliqueset_status_and_spec_errors() -> None:
    good = {
        "spec": {"replicas": 2},
        "status": {
            "conditions": [
                {"type": c.CONDITION_MIN_AVAILABLE_BREACHED, "status": "False"},
                {"type": c.CONDITION_READY, "status": "True"},
            ],
            "updatedReplicas": 2,
        },
    }
    pcs = {"metadata": {"name": "mn", "generation": 2}, "spec": {"replicas": 2}}
    st = status.podcliqueset_status(pcs, {0: ([good], []), 1: ([None], [])}, [], "gh", NOW)
    assert st["availableReplicas"] == 1 and st["observedGeneration"] == 2 and st["currentGenerationHash"] == "gh"
    assert conditions.is_false(st["conditions"], c.CONDITION_READY)
    bad = status.podcliqueset_status(pcs, {}, [("spec.template.cliques[0].spec.startsAfter", "cycle")], None, NOW)
    assert conditions.is_false(bad["conditions"], c.CONDITION_SPEC_VALID)
    assert "startsAfter" in (conditions.get(bad["conditions"], c.CONDITION_SPEC_VALID) or {})["message"]


def gang(name: str, groups: list[tuple[str, list[str], int]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "podgroups": [
                {"name": g, "podReferences": [{"namespace": "ns", "name": p} for p in refs], "minReplicas": m}
                for g, refs, m in groups
            ]
        },
    }


def test_ungate_only_listed_pods_and_scaled_waits_for_base() -> None:
    base_pclq = {"metadata": {"name": "mn-0-a", "labels": {}}}
    pods = [view("mn-0-a-0", 0, gated=True), view("mn-0-a-1", 1, gated=True)]
    g = gang("mn-0", [("mn-0-a", ["mn-0-a-0"], 1)])
    assert [p.name for p in gating.pods_to_ungate(base_pclq, pods, g, False)] == ["mn-0-a-0"]
    assert gating.pods_to_ungate(base_pclq, pods, None, True) == []
    scaled_pclq = {"metadata": {"name": "mn-0-a", "labels": {c.LABEL_BASE_PODGANG: "mn-0"}}}
    assert gating.pods_to_ungate(scaled_pclq, pods, g, False) == []
    assert len(gating.pods_to_ungate(scaled_pclq, pods, g, True)) == 1
    # Only our own gate is removed (strategic-merge delete by name).
    assert gating.UNGATE_PATCH == {"spec": {"schedulingGates": [{"$patch": "delete", "name": c.SCHEDULING_GATE}]}}


def test_base_gang_scheduled() -> None:
    g = gang("mn-0", [("mn-0-a", [], 2), ("mn-0-sg-0-b", [], 1)])
    assert not podgang.base_gang_scheduled(g, {"mn-0-a": 2})
    assert podgang.base_gang_scheduled(g, {"mn-0-a": 2, "mn-0-sg-0-b": 1})
    assert not podgang.base_gang_scheduled(None, {})


def test_release_only_when_parents_ready() -> None:
    pods = [view("b-0", 0, startup_released="false"), view("b-1", 1, startup_released="true")]
    assert gating.pods_to_release(pods, False) == []
    assert [p.name for p in gating.pods_to_release(pods, True)] == ["b-0"]


def test_pod_view_from_json() -> None:
    pod = {
        "metadata": {
            "name": "mn-0-a-3",
            "namespace": "ns",
            "uid": "u",
            "labels": {c.LABEL_PODCLIQUE: "mn-0-a", c.LABEL_POD_INDEX: "3", c.LABEL_PODGANG: "mn-0"},
            "annotations": {c.ANNOTATION_STARTUP_RELEASED: "false"},
        },
        "spec": {"schedulingGates": [{"name": c.SCHEDULING_GATE}, {"name": "other"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]},
    }
    v = pod_view(pod)
    assert (v.pod_index, v.gated, v.other_gates, v.scheduled, v.ready, v.startup_released) == (
        3,
        True,
        True,
        False,
        False,
        "false",
    )


def test_ready_pod_selection_is_recorded_carried_and_cleared_at_the_end() -> None:
    """Grove §1.3/§2.10, issue 8: `readyPodsSelectedToUpdate` names the Ready pod selected for replacement and
    the ones before it; it is kept while the update runs and removed when it ends (markRollingUpdateEnd)."""
    before = status.podclique_status(
        pclq(), [view("p-0", 0, template_hash="old"), view("p-1", 1, template_hash="old")], NOW
    )
    before["currentPodTemplateHash"] = "old"
    old_pods = [view("p-0", 0, template_hash="old"), view("p-1", 1, template_hash="old")]
    first = status.podclique_status(pclq(prev=before), old_pods, LATER, "gen2", "h", selected="p-1")
    assert first["updateProgress"]["readyPodsSelectedToUpdate"] == {"current": "p-1"}
    assert first["updateProgress"]["updateStartedAt"] == LATER
    # p-1 is being replaced (nothing selected right now): the record stays.
    replacing = status.podclique_status(pclq(prev=first), old_pods[:1], LATER, "gen2", "h")
    assert replacing["updateProgress"]["readyPodsSelectedToUpdate"] == {"current": "p-1"}
    second = status.podclique_status(
        pclq(prev=replacing), [old_pods[0], view("p-1", 1)], LATER, "gen2", "h", selected="p-0"
    )
    assert second["updateProgress"]["readyPodsSelectedToUpdate"] == {"current": "p-0", "completed": ["p-1"]}
    done = status.podclique_status(pclq(prev=second), [view("p-0", 0), view("p-1", 1)], LATER, "gen2", "h")
    assert done["updateProgress"]["updateEndedAt"] == LATER
    assert done["updateProgress"]["readyPodsSelectedToUpdate"] is None  # removed by the merge patch
    assert status.differs(second, done)


def test_ready_pod_selection_starts_a_new_update_when_the_hash_changes() -> None:
    ended = {
        "currentPodTemplateHash": "h",
        "updateProgress": {
            "updateStartedAt": NOW,
            "updateEndedAt": NOW,
            "podCliqueSetGenerationHash": "gen1",
            "podTemplateHash": "h0",
        },
    }
    # The recorded update is another template's (e.g. its status was written without a generation hash): a
    # Ready pod selected now starts this update's record, so the rollout never waits on a record it cannot write.
    pods = [view("p-0", 0, template_hash="old"), view("p-1", 1, template_hash="old")]
    st = status.podclique_status(pclq(prev=ended), pods, LATER, "gen2", "h", selected="p-1")
    assert st["updateProgress"]["podTemplateHash"] == "h"
    assert st["updateProgress"]["readyPodsSelectedToUpdate"] == {"current": "p-1"}
    assert st["updateProgress"]["updateEndedAt"] is None


def test_differs_follows_merge_patch_semantics() -> None:
    current = {
        "replicas": 2,
        "updateProgress": {"updateStartedAt": NOW, "readyReplicaIndicesSelectedToUpdate": {"current": 1}},
    }
    # A key the patch leaves out is kept (another writer's, issue 8): nothing to write.
    assert not status.differs(current, {"updateProgress": {"updateStartedAt": NOW}})
    assert status.differs(current, {"updateProgress": {"updateStartedAt": LATER}})
    # None removes a key: a write only when the key is there.
    assert status.differs(current, {"updateProgress": {"readyReplicaIndicesSelectedToUpdate": None}})
    assert not status.differs(current, {"updateProgress": {"updateEndedAt": None}})
    assert not status.differs({"a": None}, {"a": None})  # a stored null is absent
    assert status.differs(current, {"conditions": []}) and status.differs({}, {"x": {"y": None}})
    assert not status.differs(current, {"replicas": 2}) and status.differs(current, {"replicas": 3})


def test_gang_termination_in_progress_is_cleared_when_the_group_recovers() -> None:
    """Grove §1.4: set by the PCS-level gang termination, cleared once MinAvailableBreached is False again, here
    only with every member re-evaluated since the flag (issue 8: the flag is written before the delete, while a
    PCSG that did not cause the termination is still healthy)."""
    before, flagged_at = "2025-12-31T23:00:00Z", NOW

    def member(breached: str, since: str = LATER) -> dict[str, Any]:
        conds = [
            {"type": c.CONDITION_PODCLIQUE_SCHEDULED, "status": "True"},
            {"type": c.CONDITION_MIN_AVAILABLE_BREACHED, "status": breached, "lastTransitionTime": since},
        ]
        return {"spec": {"replicas": 1, "minAvailable": 1}, "status": {"readyReplicas": 1, "conditions": conds}}

    flag = {
        "type": c.CONDITION_GANG_TERMINATION_IN_PROGRESS,
        "status": "True",
        "reason": c.REASON_GANG_TERMINATION_ACTIVE,
        "lastTransitionTime": flagged_at,
    }
    pcsg = {
        "metadata": {"name": "mn-0-sg", "labels": {c.LABEL_PART_OF: "mn"}},
        "spec": {"replicas": 2, "minAvailable": 1},
        "status": {"conditions": [flag]},
    }
    # Healthy, but its members are still the ones from before the flag: the termination has not happened yet.
    pending = status.scaling_group_status(pcsg, {0: [member("False", before)], 1: [member("False", before)]}, LATER)
    assert conditions.get(pending["conditions"], c.CONDITION_GANG_TERMINATION_IN_PROGRESS) == flag
    half = status.scaling_group_status(pcsg, {0: [member("False")], 1: [member("False", before)]}, LATER)
    assert conditions.get(half["conditions"], c.CONDITION_GANG_TERMINATION_IN_PROGRESS) == flag
    recreating = status.scaling_group_status(pcsg, {0: [member("Unknown")], 1: [member("Unknown")]}, LATER)
    assert conditions.get(recreating["conditions"], c.CONDITION_GANG_TERMINATION_IN_PROGRESS) == flag
    # Re-created and available again: cleared, even if this PCSG's own MinAvailableBreached never showed True.
    recovered = status.scaling_group_status(pcsg, {0: [member("False")], 1: [member("False")]}, LATER)
    cond = conditions.get(recovered["conditions"], c.CONDITION_GANG_TERMINATION_IN_PROGRESS)
    assert cond is not None and (cond["status"], cond["lastTransitionTime"]) == ("False", LATER)
    pcsg["status"] = recovered
    again = status.scaling_group_status(pcsg, {0: [member("False")], 1: [member("False")]}, LATER)
    assert not status.differs(recovered, again)  # zero steady-state writes
    never = status.scaling_group_status({**pcsg, "status": {}}, {0: [member("False")], 1: [member("False")]}, LATER)
    assert conditions.get(never["conditions"], c.CONDITION_GANG_TERMINATION_IN_PROGRESS) is None  # not invented
