"""Gang scheduling and topology-aware placement against the real control plane (issue #9).

kube-scheduler 1.37 with GenericWorkload/CompositePodGroup/TopologyAwareWorkloadScheduling, the operator as a
subprocess, and KWOK nodes sized so room is short: every pod requests 1 CPU and each test has its own pool of
nodes (a node label the pods select), so tests cannot take each other's room. "Not bound" is checked over a
window long enough for the scheduler to have tried, so a scheduler placing pods one by one fails these tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_operator_integration import Operator, running_operator, wait_for

from grove.devcluster.nodes import delete_nodes

POOL = "grove-test/pool"
RACK = "grove-test/rack"
# How long a gang that must stay unbound is watched: the scheduler retries unschedulable gangs well within it.
WINDOW = 12.0


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    yield from running_operator(cluster, tmp_path_factory, "gang")


class Pool:
    """KWOK nodes of one test, 1 CPU each unless said otherwise; deleted at the end."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        self.cluster = cluster
        self.name = namespace
        self.nodes: list[str] = []

    def add(self, count: int, cpu: str = "1", labels: dict[str, str] | None = None) -> list[str]:
        names = self.cluster.create_nodes(
            count,
            f"{self.name}-n",
            labels={POOL: self.name, **(labels or {})},
            capacity={"cpu": cpu, "memory": "16Gi", "pods": "110"},
            start_index=len(self.nodes),
        )
        self.nodes.extend(names)
        return list(names)


@pytest.fixture
def pool(cluster: Any, namespace: str) -> Iterator[Pool]:
    p = Pool(cluster, namespace)
    try:
        yield p
    finally:
        if p.nodes:
            delete_nodes(cluster.api_client, p.nodes)


def clique(name: str, replicas: int, min_available: int | None = None, pool: str = "", **extra: Any) -> dict[str, Any]:
    pod_spec = {
        "containers": [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "1"}}}],
        "nodeSelector": {POOL: pool},
    }
    spec: dict[str, Any] = {"roleName": name, "replicas": replicas, "podSpec": pod_spec}
    if min_available is not None:
        spec["minAvailable"] = min_available
    return {"name": name, "spec": spec, **extra}


def pcs(name: str, namespace: str, cliques: list[dict[str, Any]], **template: Any) -> dict[str, Any]:
    return {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1, "template": {"cliques": cliques, **template}},
    }


def apply(cluster: Any, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def pods(cluster: Any, namespace: str, pcs_name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/part-of={pcs_name}", "-o", "json")
    return [p for p in json.loads(out.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]


def bound(cluster: Any, namespace: str, pcs_name: str) -> list[dict[str, Any]]:
    return [p for p in pods(cluster, namespace, pcs_name) if p["spec"].get("nodeName")]


def released(cluster: Any, namespace: str, pcs_name: str, count: int) -> bool:
    """All `count` pods exist, joined their PodGroup and carry no scheduling gate: the scheduler has them."""
    items = pods(cluster, namespace, pcs_name)
    return len(items) == count and all(
        not p["spec"].get("schedulingGates") and (p["spec"].get("schedulingGroup") or {}).get("podGroupName")
        for p in items
    )


def stays_unbound(cluster: Any, namespace: str, pcs_name: str) -> None:
    deadline = time.monotonic() + WINDOW
    while time.monotonic() < deadline:
        placed = [p["metadata"]["name"] for p in bound(cluster, namespace, pcs_name)]
        assert not placed, f"part of gang {pcs_name} was bound: {placed}"
        time.sleep(0.5)


def podgang(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", "podgang", name, "-n", namespace, "-o", "json").stdout))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def node_labels(cluster: Any, node: str) -> dict[str, str]:
    out = cluster.kubectl("get", "node", node, "-o", "json").stdout
    return dict(json.loads(out)["metadata"]["labels"])


def test_all_or_nothing_then_all_bind_when_room_appears(
    cluster: Any, namespace: str, pool: Pool, operator: Operator
) -> None:
    pool.add(5)
    apply(cluster, pcs("gang6", namespace, [clique("w", 6, 6, pool=namespace)]))
    wait_for("6 pods handed to the scheduler", lambda: released(cluster, namespace, "gang6", 6), op=operator)
    # The backend objects exist, owned by the PodGang, with Grove's minimum.
    out = cluster.kubectl("get", "podgroups.scheduling.k8s.io", "gang6-0-w", "-n", namespace, "-o", "json")
    group = json.loads(out.stdout)
    assert group["spec"]["schedulingPolicy"]["gang"]["minCount"] == 6
    assert group["metadata"]["ownerReferences"][0]["kind"] == "PodGang"
    stays_unbound(cluster, namespace, "gang6")
    gang = podgang(cluster, namespace, "gang6-0")
    scheduled = condition(gang, "Scheduled")
    assert scheduled.get("status") == "False", gang.get("status")
    assert "kube-scheduler-workload-api" in scheduled.get("message", "")
    # The scheduler says why on the pods.
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"] if e["involvedObject"].get("kind") == "Pod"}
    assert "FailedScheduling" in reasons
    pool.add(1)
    wait_for("all 6 bound", lambda: len(bound(cluster, namespace, "gang6")) == 6, op=operator)
    wait_for(
        "PodGang Scheduled",
        lambda: condition(podgang(cluster, namespace, "gang6-0"), "Scheduled").get("status") == "True",
        op=operator,
    )


def test_two_gangs_competing_for_room_for_one(cluster: Any, namespace: str, pool: Pool, operator: Operator) -> None:
    pool.add(5)
    for name in ("alpha", "beta"):
        apply(cluster, pcs(name, namespace, [clique("w", 4, 4, pool=namespace)]))
    wait_for(
        "both gangs handed to the scheduler",
        lambda: released(cluster, namespace, "alpha", 4) and released(cluster, namespace, "beta", 4),
        op=operator,
    )
    wait_for("one gang bound", lambda: len(bound(cluster, namespace, "alpha") + bound(cluster, namespace, "beta")) >= 4)
    winner, loser = ("alpha", "beta") if bound(cluster, namespace, "alpha") else ("beta", "alpha")
    stays_unbound(cluster, namespace, loser)
    assert len(bound(cluster, namespace, winner)) == 4


def test_scaled_gang_binds_after_base_and_all_or_nothing(
    cluster: Any, namespace: str, pool: Pool, operator: Operator
) -> None:
    pool.add(3)
    group = {"name": "sg", "cliqueNames": ["w"], "replicas": 2, "minAvailable": 1}
    apply(cluster, pcs("scaled", namespace, [clique("w", 2, 2, pool=namespace)], podCliqueScalingGroups=[group]))

    def by_gang() -> dict[str, int]:
        out: dict[str, int] = {}
        for p in bound(cluster, namespace, "scaled"):
            gang = p["metadata"]["labels"]["grove.io/podgang"]
            out[gang] = out.get(gang, 0) + 1
        return out

    wait_for("base gang bound", lambda: by_gang().get("scaled-0") == 2, op=operator)
    wait_for("scaled gang handed to the scheduler", lambda: released(cluster, namespace, "scaled", 4), op=operator)
    deadline = time.monotonic() + WINDOW
    while time.monotonic() < deadline:  # room for one more pod only: the scaled gang (2 pods) waits whole
        assert "scaled-0-sg-0" not in by_gang(), by_gang()
        time.sleep(0.5)
    pool.add(1)
    wait_for("scaled gang bound", lambda: by_gang() == {"scaled-0": 2, "scaled-0-sg-0": 2}, op=operator)


def test_min_available_is_the_gang_minimum(cluster: Any, namespace: str, pool: Pool, operator: Operator) -> None:
    pool.add(3)
    apply(cluster, pcs("minav", namespace, [clique("w", 4, 2, pool=namespace)]))
    wait_for("3 of 4 bound", lambda: len(bound(cluster, namespace, "minav")) == 3, op=operator)
    wait_for(
        "PodGang Scheduled",
        lambda: condition(podgang(cluster, namespace, "minav-0"), "Scheduled").get("status") == "True",
        op=operator,
    )
    time.sleep(2)
    assert len(bound(cluster, namespace, "minav")) == 3


def binding(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "ClusterTopologyBinding",
        "metadata": {"name": name},
        "spec": {"levels": [{"domain": "rack", "key": RACK}, {"domain": "host", "key": "kubernetes.io/hostname"}]},
    }


def racks_of(cluster: Any, items: list[dict[str, Any]]) -> set[str]:
    return {node_labels(cluster, p["spec"]["nodeName"])[RACK] for p in items}


def test_pack_required_rack(cluster: Any, namespace: str, pool: Pool, operator: Operator) -> None:
    pool.add(3, labels={RACK: "a"})
    pool.add(3, labels={RACK: "b"})
    apply(cluster, binding(namespace))
    required = {"topologyName": namespace, "pack": {"required": "rack"}}
    apply(cluster, pcs("fits", namespace, [clique("w", 3, 3, pool=namespace)], topologyConstraint=required))
    apply(cluster, pcs("nofit", namespace, [clique("w", 4, 4, pool=namespace)], topologyConstraint=required))
    try:
        wait_for("the gang of 3 bound", lambda: len(bound(cluster, namespace, "fits")) == 3, op=operator)
        assert len(racks_of(cluster, bound(cluster, namespace, "fits"))) == 1
        cpg = cluster.kubectl("get", "compositepodgroups.scheduling.k8s.io", "nofit-0", "-n", namespace, "-o", "json")
        assert json.loads(cpg.stdout)["spec"]["schedulingConstraints"]["topology"] == [{"key": RACK}]
        wait_for("the gang of 4 handed over", lambda: released(cluster, namespace, "nofit", 4), op=operator)
        stays_unbound(cluster, namespace, "nofit")  # 6 free CPUs in all, but no rack has 4
    finally:
        cluster.kubectl("delete", "clustertopologybinding", namespace, check=False)


def test_pack_preferred_packs_when_it_can(cluster: Any, namespace: str, pool: Pool, operator: Operator) -> None:
    pool.add(2, cpu="2", labels={RACK: "a"})
    pool.add(2, cpu="2", labels={RACK: "b"})
    apply(cluster, binding(namespace))
    preferred = {"topologyName": namespace, "pack": {"preferred": "rack"}}
    try:
        apply(cluster, pcs("pref", namespace, [clique("w", 4, 4, pool=namespace)], topologyConstraint=preferred))
        wait_for("4 bound", lambda: len(bound(cluster, namespace, "pref")) == 4, op=operator)
        # Left to itself the scheduler spreads over the least allocated nodes, hence over both racks.
        assert len(racks_of(cluster, bound(cluster, namespace, "pref"))) == 1
    finally:
        cluster.kubectl("delete", "clustertopologybinding", namespace, check=False)


def test_constraint_without_binding_is_refused(cluster: Any, namespace: str, operator: Operator) -> None:
    missing = {"topologyName": "no-such-binding", "pack": {"required": "rack"}}
    apply(cluster, pcs("orphan", namespace, [clique("w", 1)], topologyConstraint=missing))

    def spec_valid() -> dict[str, Any]:
        out = cluster.kubectl("get", "pcs", "orphan", "-n", namespace, "-o", "json").stdout
        return condition(json.loads(out), "SpecValid")

    wait_for("SpecValid=False", lambda: spec_valid().get("status") == "False", op=operator)
    assert "topologyName" in spec_valid()["message"] and "no-such-binding" in spec_valid()["message"]
    assert cluster.kubectl("get", "pclq", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_scaling_group_replicas_each_pack_into_a_rack(
    cluster: Any, namespace: str, pool: Pool, operator: Operator
) -> None:
    pool.add(3, labels={RACK: "a"})
    pool.add(3, labels={RACK: "b"})
    apply(cluster, binding(namespace))
    group = {
        "name": "sg",
        "cliqueNames": ["lead", "work"],
        "replicas": 2,
        "minAvailable": 2,
        "topologyConstraint": {"topologyName": namespace, "pack": {"required": "rack"}},
    }
    cliques = [clique("lead", 1, pool=namespace), clique("work", 2, pool=namespace)]
    try:
        apply(cluster, pcs("grp", namespace, cliques, podCliqueScalingGroups=[group]))
        wait_for("6 bound", lambda: len(bound(cluster, namespace, "grp")) == 6, op=operator)
        placed = bound(cluster, namespace, "grp")
        for j in ("0", "1"):
            replica = [
                p for p in placed if p["metadata"]["labels"]["grove.io/podcliquescalinggroup-replica-index"] == j
            ]
            assert len(replica) == 3 and len(racks_of(cluster, replica)) == 1, j
    finally:
        cluster.kubectl("delete", "clustertopologybinding", namespace, check=False)
