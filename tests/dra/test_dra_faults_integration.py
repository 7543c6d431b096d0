"""Driver fault tests against the real control plane (the fake-API versions are in test_dra_driver_process).

Each test gets its own KWOK node and one `grove driver --backend simulated` process for it (two H100s,
see dra_harness.SIM_CONFIG defaults) publishing ResourceSlices to the real API server. Claims come from
ResourceClaimTemplates using NVIDIA's DeviceClasses and are allocated by the real kube-scheduler (the pod
is pinned to the test's node); our kubelet client then calls the driver over its unix sockets, and the
driver reads the allocated claim from the real API server.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dra_harness import DriverRun
from kubernetes import client
from test_dra_driver_process import temp_files
from test_dra_integration import DRV, REPO, claim_pod, slices_of, wait_for

from grove.devcluster import delete_nodes
from grove.dra.backends.simulated import PREPARE_DELAY_ENV, PREPARE_LOG, STATE_FILE
from grove.dra.kube import raw_json
from grove.dra.kubeletclient import KubeletClient

pytestmark = pytest.mark.integration

GPU_REQUEST: dict[str, Any] = {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 1}}


class Node:
    """A fresh KWOK node with a driver run for it (not started) and API handles."""

    def __init__(self, cluster: Any, root: Path) -> None:
        self.name = cluster.create_nodes(1, f"dra-fault-{uuid.uuid4().hex[:5]}-")[0]
        self.run = DriverRun(root=root, node=self.name, kubeconfig=Path(cluster.kubeconfig))
        self.resource = client.ResourceV1Api(cluster.api_client)
        self.core = client.CoreV1Api(cluster.api_client)

    def start(self, extra_env: dict[str, str] | None = None) -> DriverRun:
        self.run.start(extra_env=extra_env)
        wait_for(functools.partial(slices_of, self.resource, self.name), 60, f"slices of {self.name}")
        return self.run

    def allocate(
        self, ns: str, name: str, request: dict[str, Any] = GPU_REQUEST, config: list[dict[str, Any]] | None = None
    ) -> tuple[tuple[str, str, str], list[str]]:
        """A pod pinned to this node; kube-scheduler allocates its claim. Returns the (ns, name, uid) the
        kubelet would send and the allocated device names (sorted)."""
        bound, claim = claim_pod(self.core, self.resource, ns, name, request, node=self.name, config=config)
        assert bound == self.name
        results = claim["status"]["allocation"]["devices"]["results"]
        assert {(r["driver"], r["pool"]) for r in results} == {(DRV, self.name)}
        meta = claim["metadata"]
        return (ns, meta["name"], meta["uid"]), sorted(r["device"] for r in results)

    def cdi_spec(self, uid: str) -> Path:
        return self.run.cdi_root / f"k8s.gpu.nvidia.com-claim_{uid}.json"


@pytest.fixture
def node(cluster: Any, namespace: str, short_tmp: Path) -> Iterator[Node]:
    cluster.kubectl("apply", "-f", str(REPO / "deploy/dra/deviceclasses.yaml"))
    n = Node(cluster, short_tmp)
    try:
        yield n
    finally:
        if n.run.proc is not None and n.run.proc.poll() is None:
            n.run.terminate()  # deletes the node's slices
        n.run.kill()
        delete_nodes(cluster.api_client, [n.name])


def prepared_names(out: Any) -> list[str]:
    return sorted(d["deviceName"] for d in out.devices)


def test_sigkill_during_prepare_of_allocated_claim_then_retry(node: Node, namespace: str) -> None:
    run = node.start(extra_env={PREPARE_DELAY_ENV: "30"})
    ref, devices = node.allocate(
        namespace, "two-gpus", {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2}}
    )
    assert devices == ["gpu-0", "gpu-1"]
    uid = ref[2]
    kubelet = run.client()
    kubelet.timeout = 60
    errors: list[grpc.RpcError] = []

    def call() -> None:
        try:
            kubelet.prepare([ref])
        except grpc.RpcError as e:
            errors.append(e)

    t = threading.Thread(target=call)
    t.start()
    checkpoint = run.data_dir / "checkpoint.json"
    # the driver read the claim from the API server and recorded PrepareStarted: kill it mid-prepare
    wait_for(
        lambda: checkpoint.exists() and "PrepareStarted" in checkpoint.read_text() and uid in checkpoint.read_text(),
        30,
        "PrepareStarted in the checkpoint",
    )
    run.kill()
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and errors[0].code() == grpc.StatusCode.UNAVAILABLE  # what the kubelet sees
    assert not (run.data_dir / PREPARE_LOG).exists()  # killed before any device was prepared

    run.start()  # same directories, no delay; the kubelet retries
    assert "rolling back interrupted prepare" in run.log.read_text(), run.log.read_text()
    retry = KubeletClient(run.reg_dir, DRV)
    out = retry.prepare([ref])[uid]
    assert out.error == ""
    assert prepared_names(out) == devices
    assert all(d["poolName"] == node.name and d["requestNames"] == ["gpu"] for d in out.devices)
    assert retry.prepare([ref])[uid].devices == out.devices  # a repeated kubelet call
    log = (run.data_dir / PREPARE_LOG).read_text().splitlines()
    assert sorted(log) == [f"{uid} gpu-0", f"{uid} gpu-1"]  # each device prepared exactly once
    assert json.loads((run.data_dir / STATE_FILE).read_text()) == {"gpu-0": uid, "gpu-1": uid}
    spec = json.loads(node.cdi_spec(uid).read_text())
    assert {d["name"] for d in spec["devices"]} == {f"{uid}-gpu-0", f"{uid}-gpu-1"}
    assert {i for d in out.devices for i in d["cdiDeviceIds"]} == {
        f"k8s.gpu.nvidia.com/claim={uid}-gpu-0",
        f"k8s.gpu.nvidia.com/claim={uid}-gpu-1",
    }
    assert temp_files(run) == []
    assert [p.name for p in run.cdi_root.iterdir()] == [node.cdi_spec(uid).name]

    assert retry.unprepare([ref]) == {uid: ""}
    assert list(run.cdi_root.iterdir()) == []
    assert json.loads((run.data_dir / STATE_FILE).read_text()) == {}


def test_corrupt_checkpoint_with_allocated_claim(node: Node, namespace: str) -> None:
    run = node.start()
    ref, devices = node.allocate(namespace, "one-gpu")
    uid = ref[2]
    first = run.client().prepare([ref])[uid]
    assert first.error == "" and prepared_names(first) == devices
    assert run.terminate() == 0  # a clean stop (it deletes the node's slices; the allocation stays)
    checkpoint = run.data_dir / "checkpoint.json"
    assert uid in checkpoint.read_text()
    checkpoint.write_text('{"kind": "GroveDRACheckpoint", "version": 1, "data": {tru')

    run.start()
    wait_for(functools.partial(slices_of, node.resource, node.name), 60, "slices re-published")
    time.sleep(3)  # over a resync period: no crash loop
    assert run.proc is not None and run.proc.poll() is None, run.log.read_text()
    text = run.log.read_text()
    assert text.count("checkpoint is corrupt") == 1, text
    assert "rebuilt 1 prepared claim(s) from CDI specs" in text
    assert (run.data_dir / "checkpoint.json.corrupt").exists()

    kubelet = KubeletClient(run.reg_dir, DRV)
    again = kubelet.prepare([ref])[uid]
    assert again.error == "" and again.devices == first.devices  # idempotent: same devices, same CDI ids
    assert len((run.data_dir / PREPARE_LOG).read_text().splitlines()) == 1  # not prepared a second time
    assert json.loads(checkpoint.read_text())  # a valid checkpoint again
    assert kubelet.unprepare([ref]) == {uid: ""}
    assert list(run.cdi_root.iterdir()) == []
    assert json.loads((run.data_dir / STATE_FILE).read_text()) == {}
    assert run.proc.poll() is None


def test_bad_opaque_config_admitted_allocated_and_rejected_per_claim(node: Node, namespace: str) -> None:
    run = node.start()
    bad_config = [
        {
            "requests": ["gpu"],
            "opaque": {
                "driver": DRV,
                "parameters": {
                    "apiVersion": "resource.nvidia.com/v1beta1",
                    "kind": "GpuConfig",
                    "sharing": {"strategy": "Sharded"},
                },
            },
        }
    ]
    good_ref, good_devices = node.allocate(namespace, "good")
    # the API server admits the opaque parameters as they are, and kube-scheduler allocates
    bad_ref, bad_devices = node.allocate(namespace, "bad", config=bad_config)
    assert sorted(good_devices + bad_devices) == ["gpu-0", "gpu-1"]
    claim = raw_json(node.resource.read_namespaced_resource_claim(bad_ref[1], namespace, _preload_content=False))
    assert claim["spec"]["devices"]["config"] == bad_config  # admitted unchanged (opaque to the API server)
    # the scheduler copies it into the allocation (v1.37.2 leaves out `requests` there)
    [alloc_config] = claim["status"]["allocation"]["devices"]["config"]
    assert alloc_config["source"] == "FromClaim" and alloc_config["opaque"] == bad_config[0]["opaque"]

    out = run.client().prepare([good_ref, bad_ref])
    good, bad = out[good_ref[2]], out[bad_ref[2]]
    assert good.error == "" and prepared_names(good) == good_devices
    assert bad.devices == []
    assert bad.error == (
        "config[0] (FromClaim): GpuConfig.sharing.strategy: must be one of 'TimeSlicing' or 'MPS', got 'Sharded'"
    )
    assert not node.cdi_spec(bad_ref[2]).exists() and node.cdi_spec(good_ref[2]).exists()
    assert json.loads((run.data_dir / STATE_FILE).read_text()) == {good_devices[0]: good_ref[2]}
    time.sleep(1)
    assert run.proc is not None and run.proc.poll() is None, run.log.read_text()  # still up
    # and still serving: the same error again, the good claim unprepares
    kubelet = KubeletClient(run.reg_dir, DRV)
    assert kubelet.prepare([bad_ref])[bad_ref[2]].error == bad.error
    assert kubelet.unprepare([good_ref, bad_ref]) == {good_ref[2]: "", bad_ref[2]: ""}
    assert list(run.cdi_root.iterdir()) == []
