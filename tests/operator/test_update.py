"""PodCliqueSet-level rollout decisions (grove/expansion/update.py) and gang termination
(grove/expansion/gangtermination.py): pure functions of observed objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from grove.api import constants as c
from grove.expansion import gangtermination, update
from grove.expansion.observed import PodView

NEW, OLD = "new", "old"


def pod(name: str, index: int, template_hash: str, ready: bool = True) -> PodView:
    return PodView(
        name=f"{name}-{index}",
        namespace="ns",
        uid=f"{name}-{index}-{template_hash}",
        podclique=name,
        pod_index=index,
        podgang=None,
        phase="Running",
        ready=ready,
        ready_since=None,
        scheduled=True,
        gated=False,
        other_gates=False,
        terminating=False,
        startup_released=None,
        template_hash=template_hash,
        failed_containers=False,
        started_not_ready=False,
    )


def pclq(
    name: str,
    template_hash: str,
    replicas: int = 2,
    min_available: int = 1,
    breach: tuple[str, str, str] | None = None,
    terminating: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "labels": {c.LABEL_POD_TEMPLATE_HASH: template_hash}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {}
    if breach:
        status["conditions"] = [
            {
                "type": c.CONDITION_MIN_AVAILABLE_BREACHED,
                "status": breach[0],
                "reason": breach[1],
                "lastTransitionTime": breach[2],
            }
        ]
    return {"metadata": meta, "spec": {"replicas": replicas, "minAvailable": min_available}, "status": status}


def clique(name: str, at: str, pods_at: str | None = None, ready: bool = True, **kw: Any) -> update.Clique:
    obj = pclq(name, at, **kw)
    replicas = obj["spec"]["replicas"]
    return update.Clique(obj, NEW, [pod(name, i, pods_at or at, ready) for i in range(replicas)])


def replica(index: int, at: str = OLD, groups: int = 2, **kw: Any) -> update.Replica:
    group = update.Group(
        "sg",
        {"spec": {"replicas": groups, "minAvailable": 1}},
        [
            update.GroupReplica(j, [clique(f"r{index}-sg-{j}-l", at, **kw), clique(f"r{index}-sg-{j}-w", at, **kw)])
            for j in range(groups)
        ],
    )
    return update.Replica(index, [clique(f"r{index}-fe", at, **kw)], [group])


def test_rollout_is_active_only_after_a_recorded_hash_changes() -> None:
    assert not update.rollout_active({}, "h2", "RollingRecreate")  # first generation: no rollout
    assert update.rollout_active({"currentGenerationHash": "h1"}, "h2", "RollingRecreate")
    assert not update.rollout_active({"currentGenerationHash": "h1"}, "h2", "OnDelete")
    running = {"currentGenerationHash": "h2", "updateProgress": {"currentlyUpdating": [{"replicaIndex": 3}]}}
    assert update.rollout_active(running, "h2", "RollingRecreate")
    running["updateProgress"]["updateEndedAt"] = "t"
    assert not update.rollout_active(running, "h2", "RollingRecreate")


def test_replica_order_unscheduled_then_breached_then_index() -> None:
    replicas = [replica(i) for i in range(4)]
    assert update.pick_current(replicas, None) == 0
    breached = replica(2, breach=("True", "InsufficientReadyPods", "t"))
    assert update.pick_current([replicas[0], replicas[1], breached, replicas[3]], None) == 2
    unscheduled = update.Replica(
        3, [update.Clique(pclq("r3-fe", OLD), NEW, [])], []
    )  # no pod scheduled at all: first of all
    assert update.pick_current([replicas[0], replicas[1], breached, unscheduled], None) == 3


def test_the_persisted_or_started_replica_stays_current() -> None:
    replicas = [replica(i) for i in range(3)]
    assert update.pick_current(replicas, 2) == 2
    started = replica(1, at=NEW, pods_at=OLD)  # its PodClique has the new template, pods still old
    assert update.pick_current([replicas[0], started, replicas[2]], None) == 1
    done = [replica(i, at=NEW) for i in range(3)]
    assert update.pick_current(done, 1) is None


def test_group_replicas_replaced_one_whole_replica_at_a_time() -> None:
    group = replica(0, groups=3).groups[0]
    assert update.group_replicas_to_replace(group) == [2]
    # One member of replica 2 is being deleted: nothing else goes.
    members = list(group.replicas[2].members)
    members[0] = update.Clique(pclq("x", OLD, terminating=True), NEW, [])
    busy = update.Group("sg", group.obj, [*group.replicas[:2], update.GroupReplica(2, members)])
    assert update.group_replicas_to_replace(busy) == [2]  # the rest of that replica goes with it
    gone = update.Group(
        "sg", group.obj, [*group.replicas[:2], update.GroupReplica(2, [update.Clique(None, NEW), members[1]])]
    )
    assert update.group_replicas_to_replace(gone) == [2]
    fresh = update.GroupReplica(2, [clique("a", NEW, ready=False), clique("b", NEW, ready=False)])
    assert update.group_replicas_to_replace(update.Group("sg", group.obj, [*group.replicas[:2], fresh])) == []


def test_unavailable_old_group_replicas_go_at_once() -> None:
    group = replica(0, groups=3).groups[0]
    sick = update.GroupReplica(0, [clique("a", OLD, ready=False), clique("b", OLD)])
    assert update.group_replicas_to_replace(update.Group("sg", group.obj, [sick, *group.replicas[1:]])) == [0]


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_simulated_group_rollout_finishes_and_never_mixes_templates(groups: int) -> None:
    reps = {j: [clique(f"{j}-l", OLD), clique(f"{j}-w", OLD)] for j in range(groups)}
    obj = {"spec": {"replicas": groups, "minAvailable": 1}}
    for _ in range(50):
        view = update.Group("sg", obj, [update.GroupReplica(j, m) for j, m in sorted(reps.items())])
        if view.done:
            break
        for j in update.group_replicas_to_replace(view):
            reps[j] = [clique(f"{j}-l", NEW, ready=False), clique(f"{j}-w", NEW, ready=False)]
        for j, members in reps.items():  # new pods become ready on the next step
            if not members[0].available and members[0].template_hash == NEW:
                reps[j] = [clique(f"{j}-l", NEW), clique(f"{j}-w", NEW)]
                break
        for members in reps.values():
            assert len({m.template_hash for m in members}) == 1
    assert update.Group("sg", obj, [update.GroupReplica(j, m) for j, m in reps.items()]).done


def test_keep_template_keeps_the_pod_template_but_follows_replicas() -> None:
    observed = {
        "metadata": {"labels": {"h": OLD}, "annotations": {"a": "1", "grove.io/template-replicas": "2"}},
        "spec": {"replicas": 2, "podSpec": {"containers": [{"name": "old"}]}},
    }
    desired = {
        "metadata": {"labels": {"h": NEW}, "annotations": {"grove.io/template-replicas": "3"}},
        "spec": {"replicas": 3, "podSpec": {"containers": [{"name": "new"}]}},
    }
    kept = update.keep_template(desired, observed)
    assert kept["metadata"]["labels"] == {"h": OLD}
    assert kept["metadata"]["annotations"] == {"a": "1", "grove.io/template-replicas": "3"}
    assert kept["spec"] == {"replicas": 3, "podSpec": {"containers": [{"name": "old"}]}}


def test_pcs_update_progress_counts_and_current_replica() -> None:
    replicas = [replica(0, at=NEW), replica(1), replica(2)]
    status = {"currentGenerationHash": "g1"}
    progress = update.pcs_update_progress(status, "g2", "RollingRecreate", replicas, 1, "t0", "t1")
    assert progress == {
        "updateStartedAt": "t1",
        "updatedPodCliquesCount": 1,
        "totalPodCliquesCount": 3,
        "updatedPodCliqueScalingGroupsCount": 1,
        "totalPodCliqueScalingGroupsCount": 3,
        "updateEndedAt": None,
        "currentlyUpdating": [{"replicaIndex": 1, "updateStartedAt": "t1"}],
    }
    later = update.pcs_update_progress(
        {"currentGenerationHash": "g2", "updateProgress": progress}, "g2", "RollingRecreate", replicas, 1, "t0", "t2"
    )
    assert later == progress  # nothing changed: no write
    done = [replica(i, at=NEW) for i in range(3)]
    ended = update.pcs_update_progress(
        {"currentGenerationHash": "g2", "updateProgress": progress}, "g2", "RollingRecreate", done, None, "t0", "t3"
    )
    assert ended["updateEndedAt"] == "t3" and ended["currentlyUpdating"] is None
    on_delete = update.pcs_update_progress(status, "g2", "OnDelete", replicas, None, "t0", "t1")
    assert on_delete["updateEndedAt"] == on_delete["updateStartedAt"] == "t1"


def test_describe_says_what_rolls_and_what_waits() -> None:
    replicas = [replica(0, at=NEW), replica(1), replica(2), replica(3)]
    state, reason, message = update.describe(replicas, 1, True)
    assert (state, reason) == ("True", "RollingRecreate")
    assert "updating replica 1" in message and "waiting: 2-3" in message and "1/4 replicas updated" in message


# -------------------------------------------------------------------------------------- gang termination

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_parse_duration() -> None:
    assert gangtermination.parse_duration("4h") == 14400
    assert gangtermination.parse_duration("1m30s") == 90
    assert gangtermination.parse_duration(None) == 14400
    with pytest.raises(ValueError):
        gangtermination.parse_duration("10 seconds")


def test_standalone_breach_terminates_the_whole_replica_after_the_delay() -> None:
    breach = ("True", "InsufficientReadyPods", stamp(T0))
    view = update.Replica(0, [clique("fe", NEW, breach=breach), clique("x", NEW)], [replica(0, at=NEW).groups[0]])
    early = gangtermination.decide(view, 10, T0 + timedelta(seconds=4))
    assert not early.whole_replica and early.wait == pytest.approx(6)
    due = gangtermination.decide(view, 10, T0 + timedelta(seconds=11))
    assert due.whole_replica and due.group_replicas == []


def test_not_yet_available_or_updating_never_terminates() -> None:
    for reason in ("NotYetAvailable", "UpdateInProgress"):
        view = update.Replica(0, [clique("fe", NEW, breach=("Unknown", reason, stamp(T0)))], [])
        decision = gangtermination.decide(view, 10, T0 + timedelta(hours=1))
        assert not decision.whole_replica and decision.wait is None


def test_group_replica_breach_terminates_only_that_group_replica() -> None:
    breach = ("True", "InsufficientReadyPods", stamp(T0))
    base = replica(0, at=NEW)
    group = base.groups[0]
    sick = update.GroupReplica(1, [clique("l1", NEW, breach=breach), clique("w1", NEW)])
    view = update.Replica(0, base.standalone, [update.Group("sg", group.obj, [group.replicas[0], sick])])
    decision = gangtermination.decide(view, 10, T0 + timedelta(seconds=11))
    assert not decision.whole_replica and decision.group_replicas == [("sg", 1)]


def test_group_below_min_available_terminates_the_whole_replica() -> None:
    breach = ("True", "InsufficientReadyPods", stamp(T0))
    base = replica(0, at=NEW, groups=1)
    sick = update.GroupReplica(0, [clique("l0", NEW, breach=breach), clique("w0", NEW)])
    view = update.Replica(0, base.standalone, [update.Group("sg", base.groups[0].obj, [sick])])
    assert gangtermination.decide(view, 10, T0 + timedelta(seconds=11)).whole_replica


def test_replica_with_a_podclique_already_going_is_left_alone() -> None:
    breach = ("True", "InsufficientReadyPods", stamp(T0))
    view = update.Replica(0, [clique("fe", NEW, breach=breach), clique("x", NEW, terminating=True)], [])
    assert not gangtermination.decide(view, 10, T0 + timedelta(seconds=11)).whole_replica


# ------------------------------------------------ readyReplicaIndicesSelectedToUpdate (Grove §2.10, issue 8)


def test_group_replacements_keep_the_available_replica_apart() -> None:
    group = replica(0, groups=3).groups[0]
    assert update.group_replacements(group) == ([], 2)
    sick = update.GroupReplica(0, [clique("a", OLD, ready=False), clique("b", OLD)])
    assert update.group_replacements(update.Group("sg", group.obj, [sick, *group.replicas[1:]])) == ([0], None)


def test_the_selected_group_replica_is_recorded_before_it_goes() -> None:
    assert update.select_group_replica({}, "g2", 1) == (False, None)  # no progress at g2 yet: wait
    old_gen = {
        "updateProgress": {"podCliqueSetGenerationHash": "g1", "readyReplicaIndicesSelectedToUpdate": {"current": 1}}
    }
    assert update.select_group_replica(old_gen, "g2", 1) == (False, None)  # an earlier update's choice
    started = {"updateProgress": {"updateStartedAt": "t", "podCliqueSetGenerationHash": "g2"}}
    go, record = update.select_group_replica(started, "g2", 1)
    assert not go and record == {"updateProgress": {"readyReplicaIndicesSelectedToUpdate": {"current": 1}}}
    started["updateProgress"]["readyReplicaIndicesSelectedToUpdate"] = {"current": 1}
    assert update.select_group_replica(started, "g2", 1) == (True, None)
    go, record = update.select_group_replica(started, "g2", 0)
    assert not go and record == {
        "updateProgress": {"readyReplicaIndicesSelectedToUpdate": {"current": 0, "completed": [1]}}
    }
    ended = {"updateProgress": {"podCliqueSetGenerationHash": "g2", "updateEndedAt": "t"}}
    assert update.select_group_replica(ended, "g2", 0) == (True, None)  # never held up


def test_group_update_progress_leaves_the_selection_to_the_pcs_and_clears_it_at_the_end() -> None:
    running = replica(0, groups=2).groups[0]
    status = {
        "updateProgress": {
            "updateStartedAt": "t0",
            "podCliqueSetGenerationHash": "g2",
            "readyReplicaIndicesSelectedToUpdate": {"current": 1},
        }
    }
    progress = update.group_update_progress(status, "g2", running, "t", "t1")
    assert "readyReplicaIndicesSelectedToUpdate" not in progress  # the merge patch keeps the PCS's value
    new_update = update.group_update_progress(status, "g3", running, "t", "t1")
    assert new_update["readyReplicaIndicesSelectedToUpdate"] is None and new_update["updateStartedAt"] == "t1"
    done = update.group_update_progress(status, "g2", replica(0, at=NEW).groups[0], "t", "t1")
    assert done["updateEndedAt"] == "t1" and done["readyReplicaIndicesSelectedToUpdate"] is None


# ------------------------------------------------------ GangTerminationInProgress (Grove §1.4, §2.9, issue 8)


def flagged_group(group: update.Group, since: datetime) -> update.Group:
    cond = {
        "type": c.CONDITION_GANG_TERMINATION_IN_PROGRESS,
        "status": "True",
        "reason": c.REASON_GANG_TERMINATION_ACTIVE,
        "lastTransitionTime": stamp(since),
    }
    obj = {**(group.obj or {}), "metadata": {"name": "mn-0-sg"}, "status": {"conditions": [cond]}}
    return update.Group(group.name, obj, group.replicas)


def broken_group_replica(breach_at: datetime) -> update.Replica:
    breach = ("True", "InsufficientReadyPods", stamp(breach_at))
    base = replica(0, at=NEW, groups=1)
    sick = update.GroupReplica(0, [clique("l0", NEW, breach=breach), clique("w0", NEW)])
    return update.Replica(
        0, base.standalone, [update.Group("sg", {**base.groups[0].obj, "metadata": {"name": "mn-0-sg"}}, [sick])]
    )


def test_a_flagged_group_is_no_candidate_for_a_breach_that_began_after_the_flag() -> None:
    view = broken_group_replica(T0 + timedelta(minutes=5))  # broke again after the termination at T0
    flagged = update.Replica(0, view.standalone, [flagged_group(view.groups[0], T0)])
    decision = gangtermination.decide(flagged, 10, T0 + timedelta(hours=1))
    assert not decision.whole_replica and decision.wait is None
    assert gangtermination.decide(view, 10, T0 + timedelta(hours=1)).whole_replica  # unflagged: it would


def test_a_flagged_termination_not_carried_out_yet_still_goes() -> None:
    """Flag first, then delete: a restart in between finds the breach from before the flag and deletes."""
    view = broken_group_replica(T0)
    flagged = update.Replica(0, view.standalone, [flagged_group(view.groups[0], T0 + timedelta(seconds=10))])
    assert gangtermination.decide(flagged, 10, T0 + timedelta(seconds=11)).whole_replica
    # A standalone PodClique's breach is never excluded by a PCSG's flag (Grove: PCSG candidates only).
    fe = clique("fe", NEW, breach=("True", "InsufficientReadyPods", stamp(T0 + timedelta(minutes=5))))
    late = update.Replica(0, [fe], [flagged_group(replica(0, at=NEW).groups[0], T0)])
    assert gangtermination.decide(late, 10, T0 + timedelta(hours=1)).whole_replica


def test_flags_are_written_on_every_unflagged_pcsg_of_the_replica() -> None:
    view = broken_group_replica(T0)
    assert gangtermination.unflagged(view) == [view.groups[0].obj]
    pcsg = {
        "metadata": {"name": "mn-0-sg", "generation": 4},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    patch = gangtermination.flag_status(pcsg, 0, stamp(T0))
    flag = patch["conditions"][-1]
    assert patch["conditions"][0] == {"type": "Ready", "status": "True"}  # the PCSG's own conditions are kept
    assert (flag["type"], flag["status"], flag["reason"], flag["lastTransitionTime"], flag["observedGeneration"]) == (
        c.CONDITION_GANG_TERMINATION_IN_PROGRESS,
        "True",
        c.REASON_GANG_TERMINATION_ACTIVE,
        stamp(T0),
        4,
    )
    flagged = update.Replica(
        0, view.standalone, [update.Group("sg", {**pcsg, "status": patch}, view.groups[0].replicas)]
    )
    assert gangtermination.unflagged(flagged) == []
    assert gangtermination.flagged_since(flagged.groups[0].obj) == T0


def with_member_breach(clique_: update.Clique, status_: str, at: datetime) -> update.Clique:
    obj = pclq(clique_.obj["metadata"]["name"], NEW, breach=(status_, "x", stamp(at)))  # type: ignore[index]
    return update.Clique(obj, clique_.target, clique_.pods)


def test_a_flag_whose_termination_is_no_longer_due_is_abandoned() -> None:
    """The breach recovered between the flag and the delete: the PCS sets the flag False again, or it would keep
    the PCSG out of every later PCS-level termination."""
    base = replica(0, at=NEW, groups=1)
    members = [with_member_breach(m, "False", T0 - timedelta(hours=1)) for m in base.groups[0].replicas[0].members]
    group = flagged_group(update.Group("sg", base.groups[0].obj, [update.GroupReplica(0, members)]), T0)
    view = update.Replica(0, base.standalone, [group])
    decision = gangtermination.decide(view, 10, T0 + timedelta(seconds=5))
    assert not decision.whole_replica
    assert gangtermination.abandoned(view, decision) == [group.obj]
    patch = gangtermination.flag_status(group.obj or {}, 0, stamp(T0), on=False)
    assert (patch["conditions"][-1]["status"], patch["conditions"][-1]["reason"]) == (
        "False",
        "GangTerminationNoLongerDue",
    )
    # Carried out: members re-created after the flag; or still due; or PodCliques going: nothing to undo.
    fresh = [with_member_breach(m, "Unknown", T0 + timedelta(seconds=3)) for m in members]
    done = update.Replica(0, base.standalone, [update.Group("sg", group.obj, [update.GroupReplica(0, fresh)])])
    assert gangtermination.abandoned(done, gangtermination.decide(done, 10, T0)) == []
    assert gangtermination.abandoned(view, gangtermination.Decision(whole_replica=True)) == []
    going = update.Replica(0, [clique("fe", NEW, terminating=True)], [group])
    assert gangtermination.abandoned(going, gangtermination.decide(going, 10, T0)) == []
