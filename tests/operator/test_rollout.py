"""The rolling-update decision (grove/expansion/rollout.py): which pods of one PodClique to delete now."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from grove.expansion.observed import PodView
from grove.expansion.rollout import ON_DELETE, may_replace_ready, pods_to_replace, recorded_pod, replacements, select

NEW, OLD = "new", "old"


def view(
    index: int, template_hash: str, ready: bool = True, phase: str = "Running", terminating: bool = False
) -> PodView:
    return PodView(
        name=f"p-{index}",
        namespace="ns",
        uid=f"uid-{index}-{template_hash}",
        podclique="p",
        pod_index=index,
        podgang=None,
        phase=phase,
        ready=ready,
        ready_since=None,
        scheduled=True,
        gated=False,
        other_gates=False,
        terminating=terminating,
        startup_released=None,
        template_hash=template_hash,
        failed_containers=False,
        started_not_ready=False,
    )


def names(pods: list[PodView]) -> list[str]:
    return [p.name for p in pods]


def test_nothing_to_do_when_all_pods_are_at_the_target_hash() -> None:
    assert pods_to_replace([view(i, NEW) for i in range(3)], NEW, 3, 2) == []


def test_on_delete_deletes_nothing() -> None:
    pods = [view(0, OLD), view(1, OLD, ready=False), view(2, OLD, phase="Pending", ready=False)]
    assert pods_to_replace(pods, NEW, 3, 1, ON_DELETE) == []


def test_non_ready_old_pods_go_first_and_all_at_once() -> None:
    pods = [view(0, OLD), view(1, OLD, ready=False), view(2, OLD, ready=False, phase="Pending"), view(3, OLD)]
    assert names(pods_to_replace(pods, NEW, 4, 1)) == ["p-2", "p-1"]


def test_failed_old_pods_are_deleted_at_once() -> None:
    pods = [view(0, OLD), view(1, OLD, ready=False, phase="Failed")]
    assert names(pods_to_replace(pods, NEW, 2, 2)) == ["p-1"]


def test_ready_old_pods_one_at_a_time_highest_index_first() -> None:
    pods = [view(i, OLD) for i in range(3)]
    assert names(pods_to_replace(pods, NEW, 3, 1)) == ["p-2"]


def test_waits_while_a_replacement_is_in_flight() -> None:
    terminating = [view(0, OLD), view(1, OLD), view(2, OLD, terminating=True)]
    missing = [view(0, OLD), view(1, OLD)]
    starting = [view(0, OLD), view(1, OLD), view(2, NEW, ready=False)]
    for pods in (terminating, missing, starting):
        assert pods_to_replace(pods, NEW, 3, 1) == []
    assert names(pods_to_replace([view(0, OLD), view(1, OLD), view(2, NEW)], NEW, 3, 1)) == ["p-1"]


def test_never_drops_ready_below_min_available() -> None:
    # 3 replicas, minAvailable 2: one ready pod may go; with one already not ready, none may.
    assert names(pods_to_replace([view(i, OLD) for i in range(3)], NEW, 3, 2)) == ["p-2"]
    assert pods_to_replace([view(0, OLD), view(1, OLD), view(2, NEW, ready=False)], NEW, 3, 2) == []


@pytest.mark.parametrize("replicas,min_available", [(3, 1), (3, 2), (4, 2), (5, 3)])
def test_simulated_rollout_keeps_min_available_and_finishes(replicas: int, min_available: int) -> None:
    """Drive the decision to the end: deleted pods come back at the new hash, not ready, then become ready."""
    pods = {i: view(i, OLD) for i in range(replicas)}
    for _ in range(100):
        victims = pods_to_replace(list(pods.values()), NEW, replicas, min_available)
        for v in victims:
            assert v.pod_index is not None
            del pods[v.pod_index]
        if victims and all(v.ready for v in victims):
            assert sum(p.ready for p in pods.values()) >= min_available
        for i in range(replicas):  # the reconcile re-creates missing indices, one pod becomes Ready per step
            if i not in pods:
                pods[i] = view(i, NEW, ready=False)
        starting = next((i for i, p in sorted(pods.items()) if not p.ready), None)
        if starting is not None:
            pods[starting] = view(starting, NEW)
        if all(p.template_hash == NEW and p.ready for p in pods.values()):
            break
    assert all(p.template_hash == NEW and p.ready for p in pods.values())


def test_min_available_equal_to_replicas_still_progresses() -> None:
    # Grove's rule (ready >= minAvailable before the delete); otherwise the rollout could never start.
    assert names(pods_to_replace([view(0, OLD), view(1, OLD)], NEW, 2, 2)) == ["p-1"]


def test_scale_in_indices_are_left_to_scale_in() -> None:
    assert pods_to_replace([view(0, NEW), view(1, NEW), view(2, OLD)], NEW, 2, 1) == []


def test_deciding_twice_gives_the_same_pod() -> None:
    pods = [view(i, h) for i, h in zip(range(4), itertools.cycle([OLD, NEW]), strict=False)]
    assert pods_to_replace(pods, NEW, 4, 1) == pods_to_replace(pods, NEW, 4, 1)


# ------------------------------------------------------------- readyPodsSelectedToUpdate (Grove §2.10, issue 8)


def test_the_ready_pod_is_apart_from_the_ones_that_go_at_once() -> None:
    ready = replacements([view(i, OLD) for i in range(3)], NEW, 3, 1)
    assert ready.doomed == [] and ready.ready is not None and ready.ready.name == "p-2"
    sick = replacements([view(0, OLD), view(1, OLD, ready=False)], NEW, 2, 1)
    assert names(sick.doomed) == ["p-1"] and sick.ready is None


def test_select_moves_the_previous_pod_to_completed() -> None:
    first = select(None, "p-2")
    assert first == {"current": "p-2"}
    assert select(first, "p-2") == first  # chosen again (a restart): unchanged
    second = select(first, "p-1")
    assert second == {"current": "p-1", "completed": ["p-2"]}
    assert select(second, "p-0") == {"current": "p-0", "completed": ["p-2", "p-1"]}
    assert select({"current": 1}, 0) == {"current": 0, "completed": [1]}  # group replica indices alike


def progress(template_hash: str, current: str | None, ended: str | None = None) -> dict[str, Any]:
    selected = {"current": current} if current else None
    return {
        "updateProgress": {
            "updateStartedAt": "t0",
            "updateEndedAt": ended,
            "podCliqueSetGenerationHash": "g",
            "podTemplateHash": template_hash,
            "readyPodsSelectedToUpdate": selected,
        }
    }


def test_recorded_pod_belongs_to_the_update_of_this_template() -> None:
    assert recorded_pod(progress(NEW, "p-2"), NEW) == "p-2"
    assert recorded_pod(progress(OLD, "p-2"), NEW) is None  # an earlier update's choice does not count
    assert recorded_pod({}, NEW) is None and recorded_pod(None, None) is None


def test_a_ready_pod_goes_only_once_recorded_unless_it_cannot_be() -> None:
    will_record = progress(NEW, "p-2")
    assert not may_replace_ready({}, will_record, NEW, "p-2")  # the status step writes it first
    assert may_replace_ready(will_record, will_record, NEW, "p-2")  # observed: go
    assert not may_replace_ready(progress(NEW, "p-1"), will_record, NEW, "p-2")  # the previous one is recorded
    assert may_replace_ready({}, {}, NEW, "p-2")  # no updateProgress to record it in: never stalls
