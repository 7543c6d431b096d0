"""Integration tests for our KWOK stages, in particular the startup gate the operator relies on:

a bound pod annotated `grove.io/startup-released: "false"` stays Pending with its `grove-startup-wait` init
container running; once the annotation is "true" (or absent) it becomes Running and Ready.
"""

from __future__ import annotations

import time
from typing import Any

import yaml
from kubernetes import client

from grove.devcluster import DevCluster
from grove.devcluster.cluster import stages_file
from grove.devcluster.wait import wait_for

PAUSE = "registry.k8s.io/pause:3.10"
GATE = "grove.io/startup-released"


def _pod(name: str, released: str | None) -> dict[str, Any]:
    annotations = {GATE: released} if released is not None else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "initContainers": [
                {"name": "setup", "image": PAUSE},
                {"name": "grove-startup-wait", "image": PAUSE},
                {"name": "after", "image": PAUSE},
            ],
            "containers": [{"name": "main", "image": PAUSE}, {"name": "side", "image": PAUSE}],
        },
    }


def _ready(pod: client.V1Pod) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def test_stages_file_is_ours_and_complete() -> None:
    stages = [s for s in yaml.safe_load_all(stages_file()) if s]
    names = {s["metadata"]["name"] for s in stages}
    assert names == {
        "grove-node-initialize",
        "grove-node-heartbeat",
        "grove-pod-startup-blocked",
        "grove-pod-ready",
        "grove-job-pod-complete",
        "grove-pod-delete",
    }
    assert all(s["kind"] == "Stage" and s["apiVersion"] == "kwok.x-k8s.io/v1alpha1" for s in stages)


def test_gated_pod_waits_until_released(cluster: DevCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    core.create_namespaced_pod(namespace, _pod("gated", "false"))

    def blocked() -> client.V1Pod | None:
        pod = core.read_namespaced_pod("gated", namespace)
        statuses = {s.name: s for s in pod.status.init_container_statuses or []}
        return pod if "grove-startup-wait" in statuses else None

    pod = wait_for(blocked, 30, "gated pod bound and held")
    assert pod.spec.node_name, "the gate holds startup, not scheduling"
    assert pod.status.phase == "Pending"
    init = {s.name: s.state for s in pod.status.init_container_statuses}
    assert init["setup"].terminated is not None and init["setup"].terminated.exit_code == 0
    assert init["grove-startup-wait"].running is not None
    assert init["after"].waiting is not None
    assert all(s.state.waiting is not None for s in pod.status.container_statuses)
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions["Initialized"] == "False" and conditions["Ready"] == "False"
    assert conditions["PodScheduled"] == "True"

    # It stays held: kwok must not flip it to Running on its own (nor loop re-applying the stage).
    time.sleep(3)
    again = core.read_namespaced_pod("gated", namespace)
    assert again.status.phase == "Pending"
    assert again.metadata.resource_version == pod.metadata.resource_version

    core.patch_namespaced_pod("gated", namespace, {"metadata": {"annotations": {GATE: "true"}}})
    pod = wait_for(lambda: _ready(p := core.read_namespaced_pod("gated", namespace)) and p, 30, "released pod Ready")
    init = {s.name: s.state for s in pod.status.init_container_statuses}
    assert all(state.terminated is not None for state in init.values())
    assert all(s.ready and s.state.running is not None for s in pod.status.container_statuses)
    assert pod.status.pod_ip


def test_ungated_and_released_pods_start_at_once(cluster: DevCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    core.create_namespaced_pod(namespace, _pod("plain", None))  # no annotation: the NotIn selector matches
    core.create_namespaced_pod(namespace, _pod("released", "true"))
    core.create_namespaced_pod(namespace, _pod("held", "false"))
    for name in ("plain", "released"):
        wait_for(lambda n=name: _ready(core.read_namespaced_pod(n, namespace)), 30, f"{name} Ready")
    wait_for(lambda: core.read_namespaced_pod("held", namespace).status.init_container_statuses, 30, "held pod held")
    time.sleep(1)
    held = core.read_namespaced_pod("held", namespace)
    assert held.status.phase == "Pending" and not _ready(held)


def test_deleting_a_held_pod_with_finalizer_completes(cluster: DevCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    body = _pod("fin", "false")
    body["metadata"]["finalizers"] = ["grove.io/test-finalizer"]
    core.create_namespaced_pod(namespace, body)
    wait_for(lambda: core.read_namespaced_pod("fin", namespace).spec.node_name, 30, "pod bound")
    core.delete_namespaced_pod("fin", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("fin", namespace)
            return False
        except client.ApiException as error:
            return error.status == 404

    wait_for(gone, 30, "pod deleted (finalizers stripped by the pod-delete stage)")
