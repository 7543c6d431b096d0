"""Fault test (issue 8): SIGKILL the operator (`grove operator`, a real subprocess) at random moments during
rolling updates of a 40-replica PodCliqueSet with a scaling group, restart it, and require every run to
converge: every pod on the new template, none gated, none missing, none terminating, status correct.

Every kill lands while a rollout is still running (checked right before it). Prints the time from a rollout's
last restart to convergence (min/median/max); nothing asserts on it. Kept as small as the issue allows (40
replicas, 4 pods each) for a 2-core machine; GROVE_FAULT_KILLS (10) kills are spread over at least
GROVE_FAULT_ROLLOUTS (3) rollouts; GROVE_FAULT_SEED picks the moments."""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_operator_integration import Operator, get, running_operator, wait_for

from grove.api import constants as c

# In `make test`; `make test-faults` runs it alone. It once caught a PCS status stuck at available 39/40 after
# the last restart (issue 8: a pass that only re-sent unwatched objects skipped its status for good).
pytestmark = pytest.mark.faults

REPLICAS = 40
PER_REPLICA = 4  # frontend x1, prefill [leader x1, worker x2] x1
KILLS = int(os.environ.get("GROVE_FAULT_KILLS", "10"))
ROLLOUTS = max(1, min(KILLS, int(os.environ.get("GROVE_FAULT_ROLLOUTS", "3"))))
MAX_ROLLOUTS = 4 * ROLLOUTS


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    yield from running_operator(cluster, tmp_path_factory, "fault", nodes=2)


def workload(namespace: str) -> dict[str, Any]:
    def clique(name: str, replicas: int) -> dict[str, Any]:
        container = {"name": "main", "image": "busybox", "env": [{"name": "VERSION", "value": "0"}]}
        spec = {"roleName": name, "replicas": replicas, "minAvailable": 1, "podSpec": {"containers": [container]}}
        return {"name": name, "spec": spec}

    return {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": "ft", "namespace": namespace},
        "spec": {
            "replicas": REPLICAS,
            "template": {
                "cliques": [clique("frontend", 1), clique("leader", 1), clique("worker", 2)],
                "podCliqueScalingGroups": [
                    {"name": "prefill", "cliqueNames": ["leader", "worker"], "replicas": 1, "minAvailable": 1}
                ],
            },
        },
    }


def converged(cluster: Any, namespace: str, version: str) -> list[str]:
    """What still differs from a finished rollout to `version` (empty: converged)."""
    items = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    problems: list[str] = []
    if len(items) != REPLICAS * PER_REPLICA:
        problems.append(f"{len(items)} pods, want {REPLICAS * PER_REPLICA}")
    pclqs = {
        q["metadata"]["name"]: q
        for q in json.loads(cluster.kubectl("get", "pclq", "-n", namespace, "-o", "json").stdout)["items"]
    }
    counts = {"old": 0, "gated": 0, "terminating": 0, "not ready": 0, "stale hash": 0}
    for p in items:
        env = {e["name"]: e.get("value") for e in p["spec"]["containers"][0].get("env") or []}
        counts["old"] += env.get("VERSION") != version
        counts["gated"] += bool(p["spec"].get("schedulingGates"))
        counts["terminating"] += bool(p["metadata"].get("deletionTimestamp"))
        counts["not ready"] += not any(
            x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or []
        )
        owner = pclqs.get(p["metadata"]["labels"][c.LABEL_PODCLIQUE])
        counts["stale hash"] += owner is None or (
            owner["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH] != p["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH]
        )
    problems += [f"{n} {what}" for what, n in counts.items() if n]
    pcs = get(cluster, namespace, "pcs", "ft")
    st = pcs.get("status") or {}
    progress = st.get("updateProgress") or {}
    if st.get("observedGeneration") != pcs["metadata"]["generation"]:
        problems.append("status not at the current generation")
    if st.get("updatedReplicas") != REPLICAS or st.get("availableReplicas") != REPLICAS:
        problems.append(f"status updated/available {st.get('updatedReplicas')}/{st.get('availableReplicas')}")
        # Which children keep a replica from counting as available (the stuck case seen once in CI).
        pcsgs = json.loads(cluster.kubectl("get", "pcsg", "-n", namespace, "-o", "json").stdout)["items"]
        for obj in [*pclqs.values(), *pcsgs]:
            cond = next(
                (x for x in (obj.get("status") or {}).get("conditions") or [] if x["type"] == "MinAvailableBreached"),
                None,
            )
            if cond is None or cond["status"] != "False":
                state = "no condition" if cond is None else f"{cond['status']}/{cond.get('reason')}"
                problems.append(
                    f"{obj['kind']} {obj['metadata']['name']} MinAvailableBreached {state}: "
                    f"{json.dumps(obj.get('status'))[:600]}"
                )
    if not progress.get("updateEndedAt") or progress.get("currentlyUpdating"):
        problems.append(f"updateProgress not ended: {progress.get('currentlyUpdating')}")
    if progress.get("updatedPodCliquesCount") != REPLICAS or progress.get("updatedPodCliqueScalingGroupsCount") != (
        REPLICAS
    ):
        problems.append("updateProgress counts")
    return problems


def roll_to(cluster: Any, namespace: str, version: str) -> None:
    """A template change in every clique (standalone and scaling-group members)."""
    patch = [
        {"op": "replace", "path": f"/spec/template/cliques/{k}/spec/podSpec/containers/0/env/0/value", "value": version}
        for k in range(3)
    ]
    cluster.kubectl("patch", "pcs", "ft", "-n", namespace, "--type=json", "-p", json.dumps(patch))


@pytest.mark.timeout(300 + MAX_ROLLOUTS * 300)
def test_sigkill_during_rollouts_always_converges(
    cluster: Any, namespace: str, operator: Operator, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(int(os.environ.get("GROVE_FAULT_SEED", "8")))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(workload(namespace)))
    wait_for("initial workload converged", lambda: not converged(cluster, namespace, "0"), timeout=600, op=operator)
    times: list[float] = []
    landed: list[int] = []
    # KILLS kills, each at a random moment of a rollout that is still running (checked right before the kill:
    # on a quiet machine a 40-replica rollout takes half a minute, under load several), the operator restarted
    # at once. The kills are spread over at least ROLLOUTS rollouts; one that finishes before its share of kills
    # passes the rest on to the next. After a rollout's last restart it must converge.
    run = 0
    while (sum(landed) < KILLS or run < ROLLOUTS) and run < MAX_ROLLOUTS:
        run += 1
        version = str(run)
        roll_to(cluster, namespace, version)
        share = -(-(KILLS - sum(landed)) // max(1, ROLLOUTS - run + 1))
        kills = 0
        while kills < share:
            time.sleep(rng.uniform(0.3, 4.0))  # a create, delete, ungate or status write in flight
            if not converged(cluster, namespace, version):
                break  # this rollout finished before the kill: the kill goes to the next one
            operator.kill()
            operator.start()
            kills += 1
        landed.append(kills)
        started = time.monotonic()
        problems: list[str] = ["not checked yet"]
        deadline = started + 600
        while problems and time.monotonic() < deadline:
            problems = converged(cluster, namespace, version)
            if problems:
                time.sleep(0.5)
        assert not problems, f"rollout {run}: not converged after SIGKILL: {problems}\n{operator.logs()[-3000:]}"
        times.append(time.monotonic() - started)
        print(f"rollout {run}: {kills} kills, converged {times[-1]:.1f}s after the last restart", flush=True)
    assert sum(landed) == KILLS, f"only {sum(landed)} of {KILLS} kills landed during a rollout: {landed}"
    with capsys.disabled():  # the figures the issue asks for, shown by `make test` too
        print(
            f"\nSIGKILL x{KILLS} during {run} rollouts of {REPLICAS} replicas x {PER_REPLICA} pods (kills per rollout "
            f"{landed}): time to converge after the last restart min {min(times):.1f}s median "
            f"{statistics.median(times):.1f}s max {max(times):.1f}s"
        )
