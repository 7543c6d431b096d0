"""The reconcile loop against in-memory caches and a recording fake API: creates only what is missing (the
crash/restart property at unit scale), and a converged world produces zero writes."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from operator_fixtures import FakeKube, cache_of, clique, dispatch, make_pcs

from controllers import cache as caches
from controllers import reconcile
from controllers.queue_keys import STATUS_ONLY
from controllers.runtime import Options, Runtime
from grove.api import constants as c
from grove.expansion import graph, pod


def runtime(objects: list[dict[str, Any]]) -> tuple[Runtime, FakeKube]:
    kube = FakeKube()
    rt = Runtime(kube=kube, options=Options())  # type: ignore[arg-type]
    rt.cache = cache_of(objects)
    return rt, kube


def with_uids(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(objs)
    for o in out:
        o["metadata"]["uid"] = f"uid-{o['kind']}-{o['metadata']['name']}"
        o["metadata"]["generation"] = 1
        for ref in o["metadata"].get("ownerReferences") or []:
            ref["uid"] = f"uid-{ref['kind']}-{ref['name']}"
    return out


def ready_pod(p: dict[str, Any]) -> dict[str, Any]:
    p = copy.deepcopy(p)
    p["spec"].pop("schedulingGates", None)
    p["spec"]["nodeName"] = "n"
    p["status"] = {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "t"},
        ],
    }
    return p


def test_pclq_creates_only_missing_pods_after_a_crash() -> None:
    pcs = make_pcs(cliques=[clique("a", 4)])
    pcs["metadata"]["uid"] = "uid-PodCliqueSet-mn"
    g = graph.expand(pcs)
    pclq = with_uids(g.podcliques)[0]
    survivors = [p for p in with_uids(g.pods) if p["metadata"]["name"] in ("mn-0-a-0", "mn-0-a-2")]
    rt, kube = runtime([pcs, pclq, *survivors])
    dispatch(rt, ("pclq", "ns", "mn-0-a"), None)
    created = sorted(name for verb, name, _ in kube.calls if verb == "create")
    assert created == ["Pod/mn-0-a-1", "Pod/mn-0-a-3"]
    # The created pods are exactly what the pure expansion says (deterministic names: no duplicates possible).
    body = next(obj for verb, name, obj in kube.calls if name == "Pod/mn-0-a-1")
    assert body == pod.desired_pod(pclq, 1)


def test_pcs_creates_everything_from_scratch() -> None:
    pcs = make_pcs(replicas=2, cliques=[clique("a", 2)])
    rt, kube = runtime([pcs])
    dispatch(rt, ("pcs", "ns", "mn"), None)
    created = sorted(name for verb, name, _ in kube.calls if verb == "create")
    assert created == [
        "PodClique/mn-0-a",
        "PodClique/mn-1-a",
        "PodGang/mn-0",
        "PodGang/mn-1",
        "Service/mn-0",
        "Service/mn-1",
    ]


def test_a_created_podclique_gets_its_pods_before_its_watch_event() -> None:
    """Issue #13: the create's answer is served from the cache until the watch delivers the object, so the
    PodClique's pods (owned by its uid) are created at once, ungated because their PodGang's create was seen."""
    pcs = make_pcs(replicas=1, cliques=[clique("a", 2)])
    pcs["metadata"]["uid"] = "uid-PodCliqueSet-mn"
    rt, kube = runtime([pcs])
    dispatch(rt, ("pcs", "ns", "mn"), None)
    pclq = rt.cache.pclq("ns", "mn-0-a")
    assert pclq is not None and pclq["metadata"]["uid"] == "uid-PodClique-mn-0-a"
    assert rt.cache.podgang("ns", "mn-0") is not None
    dispatch(rt, ("pclq", "ns", "mn-0-a"), None)
    pods = [obj for verb, name, obj in kube.calls if verb == "create" and name.startswith("Pod/")]
    assert sorted(p["metadata"]["name"] for p in pods) == ["mn-0-a-0", "mn-0-a-1"]
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == "uid-PodClique-mn-0-a" for p in pods)
    assert not any(p["spec"].get("schedulingGates") for p in pods)
    # The watch event takes over: the remembered answer is dropped.
    rt.observed("PodClique", "ns", "mn-0-a", "uid-PodClique-mn-0-a", False)
    assert rt.cache.pclq("ns", "mn-0-a") is None


def test_a_status_write_waiting_for_a_slot_does_not_hold_the_reconcile() -> None:
    """Issue #13: status writes have the lowest priority, so during a burst of creates they wait seconds for a
    slot. The reconcile hands its last status write off and returns, freeing its worker for new PodCliques;
    the write still happens."""
    pcs = make_pcs(cliques=[clique("a", 2)])
    pcs["metadata"]["uid"] = "uid-PodCliqueSet-mn"
    expanded = graph.expand(pcs)
    pclq = with_uids(expanded.podcliques)[0]
    # A PodClique whose pods are all there and Ready: the pass's only write is its status.
    rt, _ = runtime([pcs, pclq, *[ready_pod(p) for p in with_uids(expanded.pods)]])
    release = asyncio.Event()

    class SlowStatusKube(FakeKube):
        async def patch(self, target: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
            if kw.get("subresource") == "status":
                await release.wait()
            return await super().patch(target, body, **kw)

    slow = SlowStatusKube()
    rt.kube = slow  # type: ignore[assignment]

    async def main() -> None:
        await asyncio.wait_for(reconcile.dispatch(rt, ("pclq", "ns", "mn-0-a"), None), timeout=5)
        assert len(rt.tasks) == 1 and not [v for v, _, _ in slow.calls if v == "patch/status"]
        release.set()
        await rt.drain()

    asyncio.run(main())
    assert [n for v, n, _ in slow.calls if v == "patch/status"] == ["PodClique/mn-0-a"]


def test_one_status_write_per_object_at_a_time() -> None:
    """Issue #13: a newer status of an object whose status write is still waiting for a slot is not queued
    behind it; the object is reconciled again once the write in flight is done."""
    from controllers.writes import write_status

    rt, _ = runtime([])
    release = asyncio.Event()
    requeued: list[Any] = []

    class SlowKube(FakeKube):
        async def patch(self, target: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
            await release.wait()
            return await super().patch(target, body, **kw)

    class Queue:
        def add(self, key: Any, hint: Any = None, *, delay: float | None = None) -> None:
            requeued.append(key)

    kube = SlowKube()
    rt.kube = kube  # type: ignore[assignment]
    rt.queue = Queue()  # type: ignore[assignment]
    obj = {"apiVersion": "grove.io/v1alpha1", "kind": "PodClique", "metadata": {"name": "q", "namespace": "ns"}}
    obj["metadata"]["uid"] = "u"
    key = ("pclq", "ns", "q")

    async def main() -> None:
        await write_status(rt, obj, {"readyReplicas": 1}, key, urgent=True, background=True)
        await write_status(rt, obj, {"readyReplicas": 2}, key, urgent=True, background=True)
        assert len(rt.tasks) == 1
        release.set()
        await rt.drain()

    asyncio.run(main())
    assert [b["status"] for v, _, b in kube.calls if v == "patch/status"] == [{"readyReplicas": 1}]
    assert requeued == [key] and not rt.status_busy


def test_podcliques_of_one_template_share_one_cached_pod_spec() -> None:
    """Issue #13 (memory): the PodCliques of one clique template in every PCS replica hold equal pod specs; the
    cache keeps one copy, equal to what the API server sent."""
    other = {"containers": [{"name": "main", "image": "other"}]}
    pcs = make_pcs(replicas=3, cliques=[clique("a", 2), clique("b", 1, podSpec=other)])
    pclqs = with_uids(graph.expand(pcs).podcliques)
    cached = {o["metadata"]["name"]: caches.index_pclq(o)[("name", "ns", o["metadata"]["name"])] for o in pclqs}
    a = [cached[f"mn-{i}-a"]["spec"]["podSpec"] for i in range(3)]
    assert a[0] is a[1] is a[2]
    assert cached["mn-0-b"]["spec"]["podSpec"] is not a[0]
    assert all(cached[o["metadata"]["name"]]["spec"] == o["spec"] for o in pclqs)


def converged(pcs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object as the operator leaves it once everything is Ready, statuses included."""
    from controllers.runtime import now
    from grove.expansion import status
    from grove.expansion.observed import pod_view

    pcs = copy.deepcopy(pcs)
    pcs["metadata"]["uid"] = "uid-PodCliqueSet-mn"
    g = graph.expand(pcs)
    objs = with_uids([*g.services, *g.podcliques, *g.podgangs, *g.pods])
    pods = [ready_pod(o) for o in objs if o["kind"] == "Pod"]
    pclqs = [o for o in objs if o["kind"] == "PodClique"]
    loaded = runtime([pcs])[0].load(pcs)
    for q in pclqs:
        views = [pod_view(p) for p in pods if p["metadata"]["labels"][c.LABEL_PODCLIQUE] == q["metadata"]["name"]]
        target = loaded.template_hashes[pod.clique_template_name(q)]
        q["status"] = status.podclique_status(q, views, now(), loaded.generation_hash, target)
    from grove.expansion import podgang

    gangs = [o for o in objs if o["kind"] == "PodGang"]
    for gang in gangs:
        views = {
            grp["name"]: [pod_view(p) for p in pods if p["metadata"]["labels"][c.LABEL_PODCLIQUE] == grp["name"]]
            for grp in gang["spec"]["podgroups"]
        }
        gang["status"] = podgang.podgang_status(gang, views, None, now())
    services = [o for o in objs if o["kind"] == "Service"]
    world = [pcs, *services, *with_uids(g.scaling_groups), *pclqs, *gangs, *pods]
    # The PCS status as the operator writes it (update progress is computed from the children and their pods).
    rt, kube = runtime(world)
    dispatch(rt, ("pcs", "ns", "mn"), None)
    pcs["status"] = next(body["status"] for verb, _, body in kube.calls if verb == "patch/status")
    assert pcs["status"]["updatedReplicas"] == pcs["spec"]["replicas"]
    progress = pcs["status"]["updateProgress"]
    assert progress["updatedPodCliquesCount"] == progress["totalPodCliquesCount"] > 0
    return world


def test_converged_world_needs_zero_writes() -> None:
    objs = converged(make_pcs(replicas=3, cliques=[clique("a", 2), clique("b", 1)]))
    rt, kube = runtime(objs)
    for key in [("pcs", "ns", "mn")] + [
        ("pclq", "ns", o["metadata"]["name"]) for o in objs if o["kind"] == "PodClique"
    ]:
        asyncio.run(reconcile.dispatch(rt, key, None))
    assert kube.calls == []


def test_scale_in_deletes_highest_replicas() -> None:
    objs = converged(make_pcs(replicas=3, cliques=[clique("a", 1)]))
    objs[0]["spec"]["replicas"] = 1
    objs[0]["metadata"]["generation"] = 2
    rt, kube = runtime(objs)
    dispatch(rt, ("pcs", "ns", "mn"), None)
    deleted = [name for verb, name, _ in kube.calls if verb == "delete"]
    assert sorted(deleted) == sorted(
        ["PodClique/mn-2-a", "PodGang/mn-2", "Service/mn-2", "PodClique/mn-1-a", "PodGang/mn-1", "Service/mn-1"]
    )
    assert deleted.index("PodClique/mn-2-a") < deleted.index("PodClique/mn-1-a")


def test_invalid_spec_creates_nothing() -> None:
    pcs = make_pcs(
        cliques=[clique("a", 1, startsAfter=["b"]), clique("b", 1, startsAfter=["a"])],
        startup="CliqueStartupTypeExplicit",
    )
    rt, kube = runtime([pcs])
    dispatch(rt, ("pcs", "ns", "mn"), None)
    verbs = [(verb, name) for verb, name, _ in kube.calls]
    assert ("patch/status", "PodCliqueSet/mn") in verbs
    assert all(name.startswith("Event/") for verb, name in verbs if verb == "create")
    status_body = next(body for verb, name, body in kube.calls if verb == "patch/status")
    cond = next(x for x in status_body["status"]["conditions"] if x["type"] == "SpecValid")
    assert cond["status"] == "False" and "startsAfter" in cond["message"] + "cliques"


def test_pods_of_an_existing_gang_are_created_without_the_gate() -> None:
    """Issue #13: a pod listed in a PodGang that is already in the cache is created schedulable (one write, not a
    create and an ungate PATCH); without the gang it is created gated. Foreign gates stay either way (#724);
    a scaled gang's pods stay gated until the base gang is scheduled."""
    hold = {"name": "example.com/hold"}
    pcs = make_pcs(cliques=[clique("a", 2), clique("b", 1)])
    pcs["spec"]["template"]["cliques"][1]["spec"]["podSpec"]["schedulingGates"] = [hold]
    g = graph.expand(pcs)
    pclqs = with_uids(g.podcliques)
    gang = with_uids(g.podgangs)[0]

    def created_gates(objects: list[dict[str, Any]], pclq: str) -> dict[str, list[str]]:
        rt, kube = runtime([pcs, *objects])
        dispatch(rt, ("pclq", "ns", pclq), None)
        assert not [verb for verb, _, _ in kube.calls if verb != "create"]  # no ungate PATCH needed
        return {
            name: [gate["name"] for gate in body["spec"].get("schedulingGates") or []]
            for verb, name, body in kube.calls
        }

    assert created_gates(pclqs, "mn-0-a") == {"Pod/mn-0-a-0": [c.SCHEDULING_GATE], "Pod/mn-0-a-1": [c.SCHEDULING_GATE]}
    assert created_gates([*pclqs, gang], "mn-0-a") == {"Pod/mn-0-a-0": [], "Pod/mn-0-a-1": []}
    assert created_gates([*pclqs, gang], "mn-0-b") == {"Pod/mn-0-b-0": [hold["name"]]}


def test_scaled_gang_pods_are_created_gated_until_the_base_is_scheduled() -> None:
    groups = [{"name": "sg", "replicas": 2, "minAvailable": 1, "cliqueNames": ["w"]}]
    pcs = make_pcs(cliques=[clique("w", 1)], groups=groups)
    g = graph.expand(pcs)
    objects = with_uids([*g.podcliques, *g.podgangs, *g.scaling_groups])
    scaled = next(q for q in objects if q["kind"] == "PodClique" and c.LABEL_BASE_PODGANG in q["metadata"]["labels"])
    rt, kube = runtime([pcs, *objects])
    dispatch(rt, ("pclq", "ns", scaled["metadata"]["name"]), None)
    bodies = [body for verb, _, body in kube.calls if verb == "create"]
    assert bodies and all(body["spec"]["schedulingGates"] == [{"name": c.SCHEDULING_GATE}] for body in bodies)


def test_status_interval_follows_api_latency() -> None:
    """Issue #13: status writes of one object are spaced by 20x the API server's write latency, within 1-5 s."""
    from controllers import writes

    rt, kube = runtime([])
    assert writes.status_interval(rt) == writes.STATUS_MIN_INTERVAL  # idle API server (and no latency known)
    kube.latency = 0.1  # type: ignore[attr-defined]
    assert writes.status_interval(rt) == 2.0
    kube.latency = 3.0  # type: ignore[attr-defined]
    assert writes.status_interval(rt) == writes.STATUS_MAX_INTERVAL


def test_template_change_rolls_one_pcs_replica_and_one_group_replica() -> None:
    """A converged world with scaling groups, then a template change: only replica 0 moves (its standalone
    PodClique gets the new template, the highest group replica's members are deleted whole, once the PCSG
    status records it as selected: Grove §2.10, issue 8); the other replicas keep their templates; every PCSG
    learns of the change through its members-hash annotation."""
    pcs = make_pcs(
        replicas=3,
        cliques=[clique("fe", 2), clique("lead", 1), clique("work", 2)],
        groups=[{"name": "sg", "cliqueNames": ["lead", "work"], "replicas": 2, "minAvailable": 1}],
    )
    changed = converged(pcs)
    new = changed[0]
    new["metadata"]["generation"] = 2
    for cl in new["spec"]["template"]["cliques"]:
        cl["spec"]["podSpec"]["containers"][0]["env"][0]["value"] = "v2"
    rt, kube = runtime(changed)
    dispatch(rt, ("pcs", "ns", "mn"), None)
    patched = sorted(n for v, n, b in kube.calls if v == "patch" and "spec" in b and n.startswith("PodClique/"))
    deleted = sorted(n for v, n, _ in kube.calls if v == "delete")
    assert patched == ["PodClique/mn-0-fe"]
    assert deleted == []  # the PCSG's updateProgress is not at the new generation yet: nowhere to record it
    pcsg_patches = sorted(n for v, n, _ in kube.calls if v == "patch" and n.startswith("PodCliqueScalingGroup/"))
    assert pcsg_patches == [f"PodCliqueScalingGroup/mn-{i}-sg" for i in range(3)]

    # The PCSG reconcile has written its updateProgress for the new generation: the selection is recorded, and
    # once the API server has answered that write the group replica goes whole, in the same pass.
    gen2 = rt.load(new).generation_hash
    pcsg = next(o for o in changed if o["metadata"]["name"] == "mn-0-sg")
    pcsg["status"] = {"updateProgress": {"updateStartedAt": "t", "podCliqueSetGenerationHash": gen2}}
    rt, kube = runtime(changed)
    dispatch(rt, ("pcs", "ns", "mn"), None)
    steps = [(v, n) for v, n, _ in kube.calls if v == "delete" or (v == "patch/status" and n.endswith("mn-0-sg"))]
    assert steps == [
        ("patch/status", "PodCliqueScalingGroup/mn-0-sg"),
        ("delete", "PodClique/mn-0-sg-1-lead"),
        ("delete", "PodClique/mn-0-sg-1-work"),
    ]
    record = [b for v, n, b in kube.calls if v == "patch/status" and n == "PodCliqueScalingGroup/mn-0-sg"]
    assert record == [{"status": {"updateProgress": {"readyReplicaIndicesSelectedToUpdate": {"current": 1}}}}]

    # Once the status says so (a restart here takes the same choice again), the group replica goes whole.
    pcsg["status"]["updateProgress"]["readyReplicaIndicesSelectedToUpdate"] = {"current": 1}
    rt, kube = runtime(changed)
    dispatch(rt, ("pcs", "ns", "mn"), None)
    deleted = sorted(n for v, n, _ in kube.calls if v == "delete")
    assert deleted == ["PodClique/mn-0-sg-1-lead", "PodClique/mn-0-sg-1-work"]
    assert not [n for v, n, _ in kube.calls if v == "patch/status" and n.startswith("PodCliqueScalingGroup/")]


def test_an_event_refused_because_its_namespace_is_terminating_is_dropped_quietly(caplog: Any) -> None:
    """Issue 14 (seen in CI): an Event posted while the test's namespace is deleted logged a 403 warning."""
    from controllers import events
    from controllers.client import ApiError

    class RefusingKube(FakeKube):
        def __init__(self, body: str) -> None:
            super().__init__()
            self.body = body

        async def create(self, obj: dict[str, Any], *, answer: bool = False) -> dict[str, Any]:
            raise ApiError(403, self.body, "POST", "/api/v1/namespaces/ns/events")

    pcs = {"apiVersion": "grove.io/v1alpha1", "kind": "PodCliqueSet", "metadata": {"name": "a", "namespace": "ns"}}
    terminating = '{"reason":"Forbidden","details":{"causes":[{"reason":"NamespaceTerminating"}]},"code":403}'
    caplog.set_level("DEBUG", logger="grove.events")
    asyncio.run(events.post(RefusingKube(terminating), pcs, "Normal", "RollingUpdateFinished", "done"))  # type: ignore[arg-type]
    assert [r.levelname for r in caplog.records if r.name == "grove.events"] == ["DEBUG"]
    caplog.clear()
    asyncio.run(events.post(RefusingKube('{"reason":"Forbidden","code":403}'), pcs, "Normal", "X", "y"))  # type: ignore[arg-type]
    assert [r.levelname for r in caplog.records if r.name == "grove.events"] == ["WARNING"]


def test_ready_pod_is_recorded_as_selected_before_it_is_replaced() -> None:
    """Grove §2.10, issue 8: the PodClique reconcile writes `readyPodsSelectedToUpdate.current` first and deletes
    the Ready old pod once the API server has answered that write (same pass) or the observed status names it
    (a restart in between); the next one moves the previous to `completed`."""
    world_ = converged(make_pcs(cliques=[clique("fe", 3, 1)]))
    pcs = world_[0]
    pcs["metadata"]["generation"] = 2
    pcs["spec"]["template"]["cliques"][0]["spec"]["podSpec"]["containers"][0]["env"][0]["value"] = "v2"
    at_new = next(q for q in graph.expand(pcs).podcliques if q["metadata"]["name"] == "mn-0-fe")
    pclq = next(o for o in world_ if o["kind"] == "PodClique")
    pclq["metadata"]["labels"] = at_new["metadata"]["labels"]  # as the PCS reconcile patches it
    pclq["spec"] = at_new["spec"]

    def run_pclq() -> list[tuple[str, str, Any]]:
        rt, kube = runtime(world_)
        dispatch(rt, ("pclq", "ns", "mn-0-fe"), None)
        return kube.calls

    calls = run_pclq()
    assert [v for v, _, _ in calls] == ["patch/status", "delete"]  # recorded, then deleted
    body = calls[0][2]["status"]
    assert body["updateProgress"]["readyPodsSelectedToUpdate"] == {"current": "mn-0-fe-2"}
    assert calls[1][1] == "Pod/mn-0-fe-2"
    pclq["status"] = body
    calls = run_pclq()  # a restart after the record: the same pod goes, nothing is written again
    assert [(v, n) for v, n, _ in calls] == [("delete", "Pod/mn-0-fe-2")]

    # The replacement is Ready at the new template: the next Ready pod is selected, the first one completed.
    pod2 = next(o for o in world_ if o["metadata"]["name"] == "mn-0-fe-2")
    new_pod = ready_pod(with_uids([pod.desired_pod(pclq, 2)])[0])
    world_[world_.index(pod2)] = new_pod
    calls = run_pclq()
    assert [(v, n) for v, n, _ in calls] == [("patch/status", "PodClique/mn-0-fe"), ("delete", "Pod/mn-0-fe-1")]
    selected = calls[0][2]["status"]["updateProgress"]["readyPodsSelectedToUpdate"]
    assert selected == {"current": "mn-0-fe-1", "completed": ["mn-0-fe-2"]}


def test_pcs_gang_termination_flags_every_pcsg_before_it_deletes() -> None:
    """Grove §2.9, issue 8: `GangTerminationInProgress=True` goes on every PCSG of the replica first; the
    PodCliques are deleted on the pass that sees the flags (a restart in between deletes then)."""
    pcs = make_pcs(
        cliques=[clique("fe", 1, 1), clique("lead", 1)],
        groups=[{"name": "sg", "cliqueNames": ["lead"], "replicas": 1, "minAvailable": 1}],
    )
    pcs["spec"]["template"]["terminationDelay"] = "10s"
    world_ = converged(pcs)
    fe = next(o for o in world_ if o["metadata"]["name"] == "mn-0-fe")
    breach = next(x for x in fe["status"]["conditions"] if x["type"] == c.CONDITION_MIN_AVAILABLE_BREACHED)
    breach.update(status="True", reason="InsufficientReadyPods", lastTransitionTime="2026-01-01T00:00:00Z")

    def run_pcs() -> list[tuple[str, str, Any]]:
        rt, kube = runtime(world_)
        dispatch(rt, ("pcs", "ns", "mn"), None)
        return kube.calls

    calls = run_pcs()
    assert [n for v, n, _ in calls if v == "delete"] == []
    flags = [(n, b) for v, n, b in calls if v == "patch/status" and n.startswith("PodCliqueScalingGroup/")]
    assert [n for n, _ in flags] == ["PodCliqueScalingGroup/mn-0-sg"]
    cond = flags[0][1]["status"]["conditions"][-1]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "GangTerminationInProgress",
        "True",
        "GangTerminationActive",
    )
    next(o for o in world_ if o["metadata"]["name"] == "mn-0-sg")["status"] = flags[0][1]["status"]
    calls = run_pcs()
    assert sorted(n for v, n, _ in calls if v == "delete") == ["PodClique/mn-0-fe", "PodClique/mn-0-sg-0-lead"]
    assert not [n for v, n, _ in calls if v == "patch/status" and n.startswith("PodCliqueScalingGroup/")]


def test_a_paced_pcs_status_is_not_computed_until_it_may_be_written(monkeypatch: Any) -> None:
    """Issue #13: a PodCliqueSet's status reads every replica; a pass that could not send it (paced) does not
    build it, and comes back when it may."""
    from controllers import podcliqueset
    from controllers import writes as write_steps

    objs = converged(make_pcs(replicas=2, cliques=[clique("a", 1)]))
    pcs = next(o for o in objs if o["kind"] == "PodCliqueSet")
    pcs["status"] = {}  # stale: every pass wants to write it
    rt, kube = runtime(objs)
    built = []
    real = podcliqueset.status.podcliqueset_status
    monkeypatch.setattr(podcliqueset.status, "podcliqueset_status", lambda *a, **k: built.append(1) or real(*a, **k))
    requeued: list[tuple[Any, Any, float]] = []

    class Queue:
        def add(self, key: Any, hint: Any, delay: float = 0.0) -> None:
            requeued.append((key, hint, delay))

    rt.queue = Queue()  # type: ignore[assignment]
    dispatch(rt, ("pcs", "ns", "mn"))
    assert (len(built), [v for v, *_ in kube.calls]) == (1, ["patch/status"])
    dispatch(rt, ("pcs", "ns", "mn"))
    assert (len(built), len(kube.calls)) == (1, 1)  # paced: neither built nor sent
    # back for its status only (a hint of None would be a pass over every replica)
    assert requeued[-1][:2] == (("pcs", "ns", "mn"), STATUS_ONLY)
    assert 0 < requeued[-1][2] <= write_steps.STATUS_MIN_INTERVAL
    rt.status_written[pcs["metadata"]["uid"]] -= write_steps.STATUS_MIN_INTERVAL  # the interval has passed
    rt.writes.observe(("status", pcs["metadata"]["uid"]))  # and its watch event arrived
    dispatch(rt, ("pcs", "ns", "mn"))
    assert (len(built), [v for v, *_ in kube.calls]) == (2, ["patch/status", "patch/status"])


def test_statuses_on_their_way_share_a_budget_and_a_settled_one_goes_at_once() -> None:
    """Issue #13: during a burst (here 200 other objects on their way) a PodClique whose pods are not all Ready
    has its status written at most every 200/20 s, counted from when it got on its way, so its first progress
    write waits too; once its pods are all Ready the status goes at once."""
    from controllers import writes

    objs = converged(make_pcs(replicas=1, cliques=[clique("a", 2)]))
    pclq = next(o for o in objs if o["kind"] == "PodClique")
    uid = pclq["metadata"]["uid"]
    starting = [copy.deepcopy(o) for o in objs]
    pod0 = next(o for o in starting if o["kind"] == "Pod")
    pod0["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    requeued: list[tuple[Any, float]] = []

    class Queue:
        def add(self, key: Any, hint: Any = None, *, delay: float | None = None) -> None:
            requeued.append((key, delay or 0.0))

    rt, kube = runtime(starting)
    rt.queue = Queue()  # type: ignore[assignment]
    for i in range(200):
        rt.progressing[f"other-{i}"] = 0.0
    key = ("pclq", "ns", pclq["metadata"]["name"])
    dispatch(rt, key)
    assert not [v for v, *_ in kube.calls if v == "patch/status"]  # paced from when it got on its way
    assert uid in rt.progressing
    assert requeued[-1][0] == key and 9.5 < requeued[-1][1] <= 201 / writes.STATUS_PROGRESS_RATE
    assert writes.status_interval(rt, progressing=True) == 201 / writes.STATUS_PROGRESS_RATE
    assert writes.status_interval(rt) == writes.STATUS_MIN_INTERVAL  # settled statuses keep the 1 s pace

    stale = [copy.deepcopy(o) for o in objs]  # every pod Ready again, the status still says one is not
    stale_pclq = next(o for o in stale if o["kind"] == "PodClique")
    stale_pclq["status"]["readyReplicas"] = 1
    rt2, kube2 = runtime(stale)
    rt2.queue = Queue()  # type: ignore[assignment]
    rt2.progressing.update(rt.progressing)
    dispatch(rt2, key)
    assert [b["status"]["readyReplicas"] for v, _, b in kube2.calls if v == "patch/status"] == [2]
    assert uid not in rt2.progressing


def test_few_objects_on_their_way_keep_the_one_second_pace() -> None:
    from controllers import writes

    rt, _ = runtime([])
    rt.progressing.update({f"u{i}": 0.0 for i in range(10)})
    assert writes.status_interval(rt, progressing=True) == writes.STATUS_MIN_INTERVAL
    rt.progressing.update({f"v{i}": 0.0 for i in range(5000)})
    assert writes.status_interval(rt, progressing=True) == writes.STATUS_PROGRESS_MAX_INTERVAL


def test_pods_the_scheduler_holds_for_their_podgroup_are_created_without_the_gate() -> None:
    """Issue #13: under the Workload API backend a pod names its PodGroup and kube-scheduler leaves it alone until
    that PodGroup exists (created only from its PodGang's answer), so base-gang pods are created without
    Grove's gate even before their PodGang is seen; scaled-gang pods keep it (they wait for the base gang)."""
    groups = [{"name": "sg", "replicas": 2, "minAvailable": 1, "cliqueNames": ["w"]}]
    pcs = make_pcs(cliques=[clique("a", 2), clique("w", 1)], groups=groups)
    g = graph.expand(pcs)
    pclqs = with_uids([*g.podcliques, *g.scaling_groups])  # no PodGang in the cache yet
    scaled = next(q for q in pclqs if q["kind"] == "PodClique" and c.LABEL_BASE_PODGANG in q["metadata"]["labels"])

    def created(name: str, workload_api: bool) -> dict[str, tuple[list[str], bool]]:
        rt, kube = runtime([pcs, *pclqs])
        rt.backends.workload_api = workload_api
        dispatch(rt, ("pclq", "ns", name), None)
        return {
            n: ([gate["name"] for gate in body["spec"].get("schedulingGates") or []], "schedulingGroup" in body["spec"])
            for verb, n, body in kube.calls
            if verb == "create"
        }

    assert created("mn-0-a", True) == {"Pod/mn-0-a-0": ([], True), "Pod/mn-0-a-1": ([], True)}
    assert created("mn-0-a", False) == {
        "Pod/mn-0-a-0": ([c.SCHEDULING_GATE], False),
        "Pod/mn-0-a-1": ([c.SCHEDULING_GATE], False),
    }
    scaled_name = scaled["metadata"]["name"]
    assert created(scaled_name, True) == {f"Pod/{scaled_name}-0": ([c.SCHEDULING_GATE], True)}


def test_an_event_that_changed_only_a_status_brings_a_pass_over_no_replica_objects() -> None:
    """Issue #13: every status write of a PodCliqueSet or PodClique comes back as a watch event; full passes
    for them were most of the PCS reconcile's work during a 1000-pod deploy. A PCS status change looks at no
    replica; a PodClique status change at its replica's gang statuses only. Anything else that changed (spec,
    labels, annotations, deletion, owners) still brings a full pass."""
    objs = converged(make_pcs(replicas=2, cliques=[clique("a", 2)]))
    pcs = next(o for o in objs if o["kind"] == "PodCliqueSet")
    next(o for o in objs if o["kind"] == "PodGang" and o["metadata"]["name"] == "mn-0")["status"]["phase"] = "Pending"
    rt, kube = runtime([o for o in objs if o["metadata"]["name"] != "mn-1-a"])  # replica 1 lost its PodClique
    assert rt.status_only(pcs, None) is False  # first sight (the initial listing)
    pcs = copy.deepcopy(pcs)
    pcs["status"]["availableReplicas"] = 1
    pcs["metadata"]["resourceVersion"] = "99"
    assert rt.status_only(pcs, "MODIFIED") is True
    changes = [
        ("generation", 2),
        ("labels", {"team": "a"}),
        ("annotations", {"note": "x"}),
        ("deletionTimestamp", "2026-12-07T00:00:00Z"),
        ("ownerReferences", [{"kind": "Thing", "name": "t", "uid": "u", "apiVersion": "v1"}]),
    ]
    for field_name, value in changes:
        pcs = copy.deepcopy(pcs)
        pcs["metadata"][field_name] = value
        assert rt.status_only(pcs, "MODIFIED") is False, field_name
        assert rt.status_only(pcs, "MODIFIED") is True, field_name
    rt.observed("PodCliqueSet", "ns", "mn", pcs["metadata"]["uid"], deleted=True)
    assert rt.status_only(pcs, "MODIFIED") is False  # forgotten with the object

    def writes() -> list[tuple[str, str]]:
        return [(v, n) for v, n, _ in kube.calls if v != "patch/status" or n.startswith("PodGang/")]

    dispatch(rt, ("pcs", "ns", "mn"), frozenset({STATUS_ONLY}))
    assert writes() == []  # no replica looked at
    dispatch(rt, ("pcs", "ns", "mn"), frozenset({(STATUS_ONLY, 0), (STATUS_ONLY, 1)}))
    assert writes() == [("patch/status", "PodGang/mn-0")]  # its pods are Ready; nothing created
    dispatch(rt, ("pcs", "ns", "mn"), frozenset({1}))
    assert writes()[1:] == [("create", "PodClique/mn-1-a")]
