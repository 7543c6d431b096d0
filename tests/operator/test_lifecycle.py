"""Day-2 lifecycle against the real control plane (issue 8): rolling updates one PCS replica at a time and
whole scaling-group replicas at a time (watched continuously), update columns, and gang termination.

The operator runs as a subprocess (`grove operator`); pods become Ready through KWOK stages. Waits poll with
generous deadlines; no assertion is about how long something took."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_operator_integration import Operator, get, pods, running_operator, wait_for

from grove.api import constants as c


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    yield from running_operator(cluster, tmp_path_factory, "lc", nodes=2)


def container() -> dict[str, Any]:
    return {"name": "main", "image": "busybox", "env": [{"name": "VERSION", "value": "1"}]}


def clique(name: str, replicas: int, min_available: int, **pod_spec: Any) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"example.com/role": name},
        "spec": {
            "roleName": name,
            "replicas": replicas,
            "minAvailable": min_available,
            "podSpec": {"containers": [container()], **pod_spec},
        },
    }


def disagg(name: str, namespace: str, replicas: int, delay: str | None = None) -> dict[str, Any]:
    """frontend x2 (min 1); prefill [pleader x1, pworker x2] x2 (min 1); decode [dleader x1, dworker x1] x1."""
    template: dict[str, Any] = {
        "cliques": [
            clique("frontend", 2, 1),
            clique("pleader", 1, 1),
            clique("pworker", 2, 1),
            clique("dleader", 1, 1),
            clique("dworker", 1, 1),
        ],
        "podCliqueScalingGroups": [
            {"name": "prefill", "cliqueNames": ["pleader", "pworker"], "replicas": 2, "minAvailable": 1},
            {"name": "decode", "cliqueNames": ["dleader", "dworker"], "replicas": 1, "minAvailable": 1},
        ],
    }
    if delay:
        template["terminationDelay"] = delay
    return {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "template": template},
    }


def apply(cluster: Any, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def pcs_ready(cluster: Any, namespace: str, name: str) -> None:
    cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=180s", timeout=190)


def set_version(cluster: Any, namespace: str, name: str, n_cliques: int, value: str) -> None:
    patch = [
        {"op": "replace", "path": f"/spec/template/cliques/{k}/spec/podSpec/containers/0/env/0/value", "value": value}
        for k in range(n_cliques)
    ]
    cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=json", "-p", json.dumps(patch))


def _is_ready(p: Any) -> bool:
    return not p.metadata.deletion_timestamp and any(
        cond.type == "Ready" and cond.status == "True" for cond in (p.status.conditions or [])
    )


def watch_pods(cluster: Any, namespace: str, on_state: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
    """Call `on_state` with the full pod state after every watch event (each event is a consistent state of
    the server at its resourceVersion, so a violation however short is seen)."""
    from kubernetes import client, watch

    core = client.CoreV1Api(cluster.api_client)
    listed = core.list_namespaced_pod(namespace)
    state = {p.metadata.name: p for p in listed.items}
    rv = listed.metadata.resource_version
    on_state(state)
    while not stop.is_set():
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=2):
            obj = event["object"]
            rv = obj.metadata.resource_version
            if event["type"] == "DELETED":
                state.pop(obj.metadata.name, None)
            else:
                state[obj.metadata.name] = obj
            on_state(state)
            if stop.is_set():
                w.stop()


def watch_grove(
    cluster: Any, namespace: str, record: Callable[[str, dict[str, Any]], None], stop: threading.Event
) -> None:
    """Call `record(plural, object)` for every watch event of the namespace's PodCliques and PCSGs, so a status
    however short-lived is seen (the two watches take turns; each resumes at its resourceVersion)."""
    from kubernetes import client, watch

    api = client.CustomObjectsApi(cluster.api_client)
    rvs: dict[str, str] = {}
    final = False
    while not final:
        # After `stop`, one more pass over both watches: everything written before it is recorded (a test sets
        # `stop` right after it saw the last write with a GET; stopping mid-replay lost the events behind it).
        final = stop.is_set()
        for plural in ("podcliques", "podcliquescalinggroups"):
            kwargs: dict[str, Any] = {"timeout_seconds": 1}
            if plural in rvs:
                kwargs["resource_version"] = rvs[plural]
            w = watch.Watch()
            try:
                for event in w.stream(
                    api.list_namespaced_custom_object, "grove.io", "v1alpha1", namespace, plural, **kwargs
                ):
                    rvs[plural] = event["object"]["metadata"]["resourceVersion"]
                    record(plural, event["object"])
            except Exception as error:  # a dropped connection must not end the recording: resume at rvs
                print(f"watch_grove {plural}: {error!r}", flush=True)


def selection_recorder(seen: dict[str, list[Any]]) -> Callable[[str, dict[str, Any]], None]:
    """Every distinct `readyPodsSelectedToUpdate` / `readyReplicaIndicesSelectedToUpdate` of each PodClique and
    PCSG, in order."""

    def record(plural: str, obj: dict[str, Any]) -> None:
        key = "readyPodsSelectedToUpdate" if plural == "podcliques" else "readyReplicaIndicesSelectedToUpdate"
        value = ((obj.get("status") or {}).get("updateProgress") or {}).get(key)
        history = seen.setdefault(obj["metadata"]["name"], [])
        if value is not None and (not history or history[-1] != value):
            history.append(value)

    return record


class RolloutChecker:
    """Invariants of a RollingRecreate rollout, checked on every pod state."""

    def __init__(self, name: str, old_hashes: dict[str, str], replicas: int, expected_pods: int) -> None:
        self.name = name
        self.old_hashes = old_hashes  # PodClique name -> its template hash before the change
        self.replicas = replicas
        self.expected_pods = expected_pods  # per PCS replica
        self.violations: list[str] = []
        self.order: list[int] = []
        self.events = 0

    def old(self, p: Any) -> bool:
        return p.metadata.labels.get(c.LABEL_POD_TEMPLATE_HASH) == self.old_hashes.get(
            p.metadata.labels.get(c.LABEL_PODCLIQUE)
        )

    def __call__(self, state: dict[str, Any]) -> None:
        self.events += 1
        by_replica: dict[int, list[Any]] = {}
        for p in state.values():
            by_replica.setdefault(int(p.metadata.labels[c.LABEL_PCS_REPLICA_INDEX]), []).append(p)
        in_flight = []
        for i in range(self.replicas):
            all_pods = by_replica.get(i, [])
            live = [p for p in all_pods if not p.metadata.deletion_timestamp]
            has_old = any(self.old(p) for p in live)
            touched = (
                len(live) < self.expected_pods or any(not self.old(p) for p in all_pods) or len(live) < len(all_pods)
            )
            if has_old and touched:
                in_flight.append(i)
            if touched and i not in self.order:
                self.order.append(i)
        if len(in_flight) > 1:
            self.violations.append(f"replicas {in_flight} updating at once")
        # Whole scaling-group replicas: a group replica never runs old and new templates together.
        groups: dict[tuple[str, str], set[bool]] = {}
        for p in state.values():
            labels = p.metadata.labels
            if c.LABEL_PCSG in labels and not p.metadata.deletion_timestamp:
                groups.setdefault((labels[c.LABEL_PCSG], labels[c.LABEL_PCSG_REPLICA_INDEX]), set()).add(self.old(p))
        for key, kinds in groups.items():
            if len(kinds) > 1:
                self.violations.append(f"group replica {key} mixes templates")
        # Outside the replica being updated (the last one started), every PodClique keeps minAvailable (1) Ready.
        for i in range(self.replicas):
            if i in in_flight or (self.order and self.order[-1] == i):
                continue
            ready = {n: 0 for n in self.old_hashes if n.startswith(f"{self.name}-{i}-")}
            for p in by_replica.get(i, []):
                ready[p.metadata.labels[c.LABEL_PODCLIQUE]] += int(_is_ready(p))
            low = sorted(n for n, k in ready.items() if k < 1)
            if low:
                self.violations.append(f"replica {i}: {low} below minAvailable Ready")


def test_rollout_one_pcs_replica_and_one_group_replica_at_a_time(
    cluster: Any, namespace: str, operator: Operator
) -> None:
    name, replicas, per_replica = "roll", 3, 2 + 2 * 3 + 2
    apply(cluster, disagg(name, namespace, replicas))
    pcs_ready(cluster, namespace, name)
    pclqs = json.loads(cluster.kubectl("get", "pclq", "-n", namespace, "-o", "json").stdout)["items"]
    old_hashes = {q["metadata"]["name"]: q["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH] for q in pclqs}
    assert len(pods(cluster, namespace)) == replicas * per_replica
    # Pods carry all the PodClique's labels (Grove §2.4), the clique's own labels included.
    some = pods(cluster, namespace, f"{c.LABEL_PODCLIQUE}={name}-0-prefill-0-pworker")[0]
    assert some["metadata"]["labels"][c.LABEL_COMPONENT] == c.COMPONENT_PCSG_PODCLIQUE
    assert some["metadata"]["labels"][c.LABEL_NAME] == f"{name}-0-prefill-0-pworker"
    assert some["metadata"]["labels"]["example.com/role"] == "pworker"

    checker = RolloutChecker(name, old_hashes, replicas, per_replica)
    stop = threading.Event()
    watcher = threading.Thread(target=watch_pods, args=(cluster, namespace, checker, stop), daemon=True)
    watcher.start()
    selections: dict[str, list[Any]] = {}
    selection_watcher = threading.Thread(
        target=watch_grove, args=(cluster, namespace, selection_recorder(selections), stop), daemon=True
    )
    selection_watcher.start()
    wait_for("watch started", lambda: checker.events)
    set_version(cluster, namespace, name, 5, "2")

    def rolled() -> bool:
        current = pods(cluster, namespace)
        return len(current) == replicas * per_replica and all(
            p["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH] != old_hashes[p["metadata"]["labels"][c.LABEL_PODCLIQUE]]
            and not p["metadata"].get("deletionTimestamp")
            and p["spec"]["containers"][0]["env"][-1] == {"name": "VERSION", "value": "2"}
            and any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or [])
            for p in current
        )

    described: list[str] = []

    def in_progress() -> dict[str, Any] | None:
        st = get(cluster, namespace, "pcs", name).get("status") or {}
        if not (st.get("updateProgress") or {}).get("currentlyUpdating"):
            return None
        described.append(cluster.kubectl("describe", "pcs", name, "-n", namespace).stdout)
        return st if "updating replica" in described[-1] else None

    during = wait_for("a rollout in progress in status and kubectl describe", in_progress, op=operator)
    assert "RollingUpdate" in described[-1]
    assert during["updateProgress"]["totalPodCliquesCount"] == replicas
    out = cluster.kubectl("get", "pcs", name, "-n", namespace, "--no-headers").stdout.split()
    assert all(x != "<none>" for x in out), out  # update columns filled during the rollout
    wait_for("every pod on the new template and Ready", rolled, timeout=300, op=operator)
    stop.set()
    watcher.join(timeout=10)
    selection_watcher.join(timeout=10)
    # Grove §2.10 (issue 8): each Ready pod / available group replica is recorded before it goes, highest index
    # first, the previous one moving to `completed` (frontend x2 and prefill x2: both minAvailable 1).
    for i in range(replicas):
        assert selections.get(f"{name}-{i}-frontend") == [
            {"current": f"{name}-{i}-frontend-1"},
            {"current": f"{name}-{i}-frontend-0", "completed": [f"{name}-{i}-frontend-1"]},
        ], selections
        assert selections.get(f"{name}-{i}-prefill") == [{"current": 1}, {"current": 0, "completed": [1]}], selections
        assert selections.get(f"{name}-{i}-decode") == [{"current": 0}], selections
    assert checker.violations == [], checker.violations[:10]
    assert checker.order == list(range(replicas)), checker.order  # one at a time, by index (all healthy)
    assert during["updateProgress"]["totalPodCliqueScalingGroupsCount"] == 2 * replicas

    def finished() -> dict[str, Any] | None:
        st = get(cluster, namespace, "pcs", name).get("status") or {}
        progress = st.get("updateProgress") or {}
        return st if progress.get("updateEndedAt") and progress.get("updatedPodCliquesCount") == replicas else None

    st = wait_for("update progress ended", finished, op=operator)
    assert st["updatedReplicas"] == replicas
    assert st["updateProgress"]["updatedPodCliqueScalingGroupsCount"] == 2 * replicas
    assert "currentlyUpdating" not in st["updateProgress"]
    # NAME REPLICAS AVAILABLE UPDATED PCLQS-UPDATED PCLQS-TOTAL PCSGS-UPDATED PCSGS-TOTAL AGE: all filled.
    out = cluster.kubectl("get", "pcs", name, "-n", namespace, "--no-headers").stdout.split()
    assert out[1:8] == [str(replicas), str(replicas), str(replicas), "3", "3", "6", "6"], out
    pcsg = cluster.kubectl("get", "pcsg", f"{name}-0-prefill", "-n", namespace, "--no-headers").stdout.split()
    assert pcsg[5:8] == ["2", "4", "4"], pcsg  # UPDATED, PCLQS-UPDATED, PCLQS-TOTAL
    group = get(cluster, namespace, "pcsg", f"{name}-0-prefill")["status"]
    assert group["currentPodCliqueSetGenerationHash"] == st["currentGenerationHash"]

    def selections_cleared() -> bool:
        """Removed once each update ended (Grove's markRollingUpdateEnd)."""
        progress = [
            (o.get("status") or {}).get("updateProgress") or {}
            for kind in ("pclq", "pcsg")
            for o in json.loads(cluster.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
        ]
        return all(
            "readyPodsSelectedToUpdate" not in p and "readyReplicaIndicesSelectedToUpdate" not in p for p in progress
        )

    wait_for("the update's selections removed", selections_cleared, op=operator)
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "ReplicaUpdating" in events and "RollingUpdateFinished" in events
    assert any("rolling update to" in text for text in operator.full_logs())


# -------------------------------------------------------------------------------------- gang termination


def make_not_ready(cluster: Any, namespace: str, pod: str) -> None:
    body = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "TestNotReady"}]}}
    cluster.kubectl("patch", "pod", pod, "-n", namespace, "--subresource=status", "-p", json.dumps(body))


def uids(cluster: Any, namespace: str, selector: str = "") -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(cluster, namespace, selector)}


def pclq_uids(cluster: Any, namespace: str) -> dict[str, str]:
    items = json.loads(cluster.kubectl("get", "pclq", "-n", namespace, "-o", "json").stdout)["items"]
    return {q["metadata"]["name"]: q["metadata"]["uid"] for q in items}


def test_gang_termination_of_a_pcs_replica_and_of_a_group_replica(
    cluster: Any, namespace: str, operator: Operator
) -> None:
    name = "gt"
    pcs = disagg(name, namespace, 2, delay="10s")
    pcs["spec"]["template"]["cliques"][0]["spec"]["minAvailable"] = 2  # frontend x2, both needed
    apply(cluster, pcs)
    pcs_ready(cluster, namespace, name)
    before = pclq_uids(cluster, namespace)
    pods_before = uids(cluster, namespace)

    # Every GangTerminationInProgress change of a PCSG and every PodClique deletion, by resourceVersion.
    seen: list[tuple[int, str, str]] = []
    last: dict[str, str] = {}

    def record(plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if plural == "podcliques":
            if meta.get("deletionTimestamp"):
                seen.append((int(meta["resourceVersion"]), meta["name"], "deleting"))
            return
        conds = (obj.get("status") or {}).get("conditions") or []
        flag = next((x["status"] for x in conds if x["type"] == "GangTerminationInProgress"), None)
        if flag is not None and last.get(meta["name"]) != flag:
            last[meta["name"]] = flag
            seen.append((int(meta["resourceVersion"]), meta["name"], flag))

    stop = threading.Event()
    watcher = threading.Thread(target=watch_grove, args=(cluster, namespace, record, stop), daemon=True)
    watcher.start()

    # PCS-replica case: a frontend pod of replica 0 stops being Ready -> the whole replica 0 is recreated.
    make_not_ready(cluster, namespace, f"{name}-0-frontend-0")
    wait_for(
        "MinAvailableBreached on the frontend",
        lambda: any(
            x["type"] == "MinAvailableBreached" and x["status"] == "True"
            for x in (get(cluster, namespace, "pclq", f"{name}-0-frontend").get("status") or {}).get("conditions") or []
        ),
        op=operator,
    )

    def replica_recreated() -> bool:
        now = pclq_uids(cluster, namespace)
        zero = [n for n in before if n.startswith(f"{name}-0-")]
        return all(n in now and now[n] != before[n] for n in zero)

    wait_for("every PodClique of replica 0 recreated", replica_recreated, timeout=120, op=operator)
    pcs_ready(cluster, namespace, name)

    def gang_flag(pcsg: str) -> dict[str, Any] | None:
        conds = (get(cluster, namespace, "pcsg", pcsg).get("status") or {}).get("conditions") or []
        return next((x for x in conds if x["type"] == "GangTerminationInProgress"), None)

    # Grove §1.4/§2.9 (issue 8): set on every PCSG of replica 0 before any of its PodCliques is deleted, cleared
    # once the PCSG's MinAvailableBreached is False again; replica 1 is left alone.
    flagged = [f"{name}-0-prefill", f"{name}-0-decode"]
    for pcsg in flagged:
        flag = wait_for(
            f"GangTerminationInProgress cleared on {pcsg}",
            lambda pcsg=pcsg: (f := gang_flag(pcsg)) is not None and f["status"] == "False" and f,
            op=operator,
        )
        assert flag["reason"] == "SufficientAvailablePodCliqueScalingGroupReplicas", flag
    stop.set()
    watcher.join(timeout=10)
    assert gang_flag(f"{name}-1-prefill") is None and gang_flag(f"{name}-1-decode") is None
    for pcsg in flagged:
        assert [s for _, n, s in seen if n == pcsg] == ["True", "False"], seen
    first_delete = min(rv for rv, n, s in seen if s == "deleting" and n.startswith(f"{name}-0-"))
    assert all(rv < first_delete for rv, n, s in seen if n in flagged and s == "True"), seen
    after = pclq_uids(cluster, namespace)
    assert {n: u for n, u in after.items() if n.startswith(f"{name}-1-")} == {
        n: u for n, u in before.items() if n.startswith(f"{name}-1-")
    }
    one = {n: u for n, u in pods_before.items() if n.startswith(f"{name}-1-")}
    assert {n: u for n, u in uids(cluster, namespace).items() if n.startswith(f"{name}-1-")} == one

    # PCSG-replica case: the leader of prefill replica 1 (the scaled part) in PCS replica 1 stops being
    # Ready -> only that group replica's PodCliques are recreated.
    before = pclq_uids(cluster, namespace)
    pods_before = uids(cluster, namespace)
    make_not_ready(cluster, namespace, f"{name}-1-prefill-1-pleader-0")
    group_replica = [f"{name}-1-prefill-1-pleader", f"{name}-1-prefill-1-pworker"]

    def group_recreated() -> bool:
        now = pclq_uids(cluster, namespace)
        return all(n in now and now[n] != before[n] for n in group_replica)

    wait_for("prefill replica 1 of PCS replica 1 recreated", group_recreated, timeout=120, op=operator)
    pcs_ready(cluster, namespace, name)
    after = pclq_uids(cluster, namespace)
    assert {n: u for n, u in after.items() if n not in group_replica} == {
        n: u for n, u in before.items() if n not in group_replica
    }
    untouched = {n: u for n, u in pods_before.items() if not any(n.startswith(g) for g in group_replica)}
    assert {n: u for n, u in uids(cluster, namespace).items() if n in untouched} == untouched
    events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector=reason=GangTermination").stdout
    assert "replica 0" in events and "prefill replica 1 of replica 1" in events


def test_no_gang_termination_before_available_or_during_an_update(
    cluster: Any, namespace: str, operator: Operator
) -> None:
    # Never available: its pods cannot be scheduled at all.
    stuck = disagg("never", namespace, 1, delay="5s")
    for cl in stuck["spec"]["template"]["cliques"]:
        cl["spec"]["podSpec"]["nodeSelector"] = {"grove-test/no-such-node": "x"}
    apply(cluster, stuck)
    # Available, then an update whose new pods can never become Ready (so it stays in progress).
    name = "upd"
    apply(cluster, disagg(name, namespace, 2, delay="5s"))
    pcs_ready(cluster, namespace, name)
    wait_for("never's PodCliques exist", lambda: len(pclq_uids(cluster, namespace)) == 2 * 7 + 7)
    before = pclq_uids(cluster, namespace)
    old_hash = get(cluster, namespace, "pclq", f"{name}-0-frontend")["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH]
    patch = [
        {
            "op": "add",
            "path": "/spec/template/cliques/0/spec/podSpec/nodeSelector",
            "value": {"grove-test/no-such-node": "x"},
        }
    ]
    cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=json", "-p", json.dumps(patch))
    frontend = f"{c.LABEL_PODCLIQUE}={name}-0-frontend"
    wait_for(
        "a frontend pod of replica 0 on the new template, Pending",
        lambda: any(
            p["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH] != old_hash and not p["spec"].get("nodeName")
            for p in pods(cluster, namespace, frontend)
        ),
        op=operator,
    )
    # The replica being updated loses its last Ready frontend pod: still no termination while it updates.
    old_pod = next(
        p["metadata"]["name"]
        for p in pods(cluster, namespace, frontend)
        if p["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH] == old_hash
    )
    make_not_ready(cluster, namespace, old_pod)
    time.sleep(15)  # three times the delay
    assert pclq_uids(cluster, namespace) == before
    cond = next(
        x
        for x in get(cluster, namespace, "pclq", "never-0-frontend")["status"]["conditions"]
        if x["type"] == "MinAvailableBreached"
    )
    assert (cond["status"], cond["reason"]) == ("Unknown", "NotYetAvailable")
    events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector=reason=GangTermination").stdout
    assert "gang termination" not in events
