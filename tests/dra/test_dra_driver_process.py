"""`grove driver` as a real process, driven by the kubelet-protocol client over unix sockets.

The API server is the in-memory fake (real HTTP, real kubernetes client), so these run without the
control plane. Fault tests SIGKILL the driver mid-prepare and mid-write and check the retry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from dra_fakeapi import FakeApi
from dra_harness import DriverRun

from grove.dra.backends.simulated import PREPARE_LOG, STATE_FILE
from grove.dra.fsutil import TEMP_MARKER, WRITE_DELAY_ENV
from grove.dra.kubeletclient import KubeletClient
from grove.dra.proto import dra_v1_pb2, dra_v1_pb2_grpc

DRV = "gpu.nvidia.com"
T = TypeVar("T")


def results(node: str, *devices: str, request: str = "gpu") -> list[dict[str, str]]:
    return [{"request": request, "driver": DRV, "pool": node, "device": d} for d in devices]


def wait_for(cond: Callable[[], T], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def temp_files(run: DriverRun) -> list[Path]:
    return [p for d in (run.data_dir, run.cdi_root) if d.exists() for p in d.iterdir() if TEMP_MARKER in p.name]


def test_registration_prepare_unprepare_and_shutdown(driver_run: DriverRun, fake_api: FakeApi) -> None:
    run = driver_run.start()
    client = KubeletClient(run.reg_dir, DRV)
    info = client.register()
    assert info.type == "DRAPlugin" and info.name == DRV
    assert info.endpoint == str(run.data_dir / "dra.sock")
    assert list(info.supported_versions)[:2] == ["v1.DRAPlugin", "v1beta1.DRAPlugin"]
    assert client.version == "v1.DRAPlugin"

    slices = wait_for(lambda: fake_api.slices_for("node-a"))
    assert [d["name"] for d in slices[0]["spec"]["devices"]] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]

    uid = fake_api.add_claim("ns", "c1", results("node-a", "gpu-0", "gpu-1"))
    out = client.prepare([("ns", "c1", uid)])
    assert out[uid].error == ""
    assert [d["cdiDeviceIds"] for d in out[uid].devices] == [
        [f"k8s.gpu.nvidia.com/claim={uid}-gpu-0"], [f"k8s.gpu.nvidia.com/claim={uid}-gpu-1"]]
    spec = json.loads((run.cdi_root / f"k8s.gpu.nvidia.com-claim_{uid}.json").read_text())
    assert {d["name"] for d in spec["devices"]} == {f"{uid}-gpu-0", f"{uid}-gpu-1"}

    # the v1beta1 service answers the same (a 1.32/1.33 kubelet would use it)
    beta = KubeletClient(run.reg_dir, DRV, prefer="v1beta1.DRAPlugin")
    beta.register()
    assert beta.prepare([("ns", "c1", uid)])[uid].devices == out[uid].devices

    health = client.watch_health()
    assert {d.device.device_name for d in health[0].devices} == {"gpu-0", "gpu-1", "gpu-2", "gpu-3"}
    assert all(d.health == 1 and d.device.pool_name == "node-a" for d in health[0].devices)

    assert client.unprepare([("ns", "c1", uid)]) == {uid: ""}
    assert client.unprepare([("ns", "c1", uid)]) == {uid: ""}
    assert not (run.cdi_root / f"k8s.gpu.nvidia.com-claim_{uid}.json").exists()

    assert run.terminate() == 0
    assert fake_api.slices_for("node-a") == []  # cleaned up on SIGTERM
    assert not (run.reg_dir / f"{DRV}-reg.sock").exists() and not (run.data_dir / "dra.sock").exists()


def test_empty_prepare_answers_and_missing_claim_fields_are_rejected(driver_run: DriverRun) -> None:
    run = driver_run.start()
    with grpc.insecure_channel(f"unix://{run.data_dir / 'dra.sock'}") as ch:
        stub = dra_v1_pb2_grpc.DRAPluginStub(ch)
        assert len(stub.NodePrepareResources(dra_v1_pb2.NodePrepareResourcesRequest(), timeout=10).claims) == 0
        with pytest.raises(grpc.RpcError) as e:
            stub.NodePrepareResources(dra_v1_pb2.NodePrepareResourcesRequest(
                claims=[dra_v1_pb2.Claim(namespace="ns", name="x")]), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_opaque_config_is_a_clear_per_claim_error(driver_run: DriverRun, fake_api: FakeApi) -> None:
    run = driver_run.start()
    good = fake_api.add_claim("ns", "good", results("node-a", "gpu-0"))
    bad = fake_api.add_claim("ns", "bad", results("node-a", "gpu-1"), config=[{
        "source": "FromClaim", "requests": ["gpu"], "opaque": {"driver": DRV, "parameters": {
            "apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig",
            "sharing": {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Sometimes"}}}}}])
    out = run.client().prepare([("ns", "good", good), ("ns", "bad", bad)])
    assert out[good].error == "" and out[bad].devices == []
    assert out[bad].error == ("config[0] (FromClaim): GpuConfig.sharing.timeSlicingConfig.interval: "
                              "must be one of 'Default', 'Short', 'Medium' or 'Long', got 'Sometimes'")
    assert run.proc is not None and run.proc.poll() is None  # still alive


def test_sigkill_during_prepare_then_retry(driver_run: DriverRun, fake_api: FakeApi) -> None:
    run = driver_run.start(extra_env={"GROVE_DRA_SIMULATED_PREPARE_DELAY": "30"})
    uid = fake_api.add_claim("ns", "c", results("node-a", "gpu-2", "gpu-3"))
    client = run.client()
    client.timeout = 60
    import threading

    errors: list[grpc.RpcError] = []

    def call() -> None:
        try:
            client.prepare([("ns", "c", uid)])
        except grpc.RpcError as e:
            errors.append(e)

    t = threading.Thread(target=call)
    t.start()
    # wait until the driver has recorded PrepareStarted, then kill it mid-prepare
    wait_for(lambda: (run.data_dir / "checkpoint.json").exists()
             and "PrepareStarted" in (run.data_dir / "checkpoint.json").read_text())
    run.kill()
    t.join(30)
    assert errors and errors[0].code() == grpc.StatusCode.UNAVAILABLE  # what the kubelet sees

    run.start()  # restart without the delay; the kubelet retries
    assert "rolling back interrupted prepare" in run.log.read_text(), run.log.read_text()
    retry = KubeletClient(run.reg_dir, DRV)
    out = retry.prepare([("ns", "c", uid)])
    assert out[uid].error == ""
    again = retry.prepare([("ns", "c", uid)])  # a repeated kubelet call
    assert again[uid].devices == out[uid].devices
    log = (run.data_dir / PREPARE_LOG).read_text().splitlines()
    assert sorted(log) == [f"{uid} gpu-2", f"{uid} gpu-3"]  # each device prepared exactly once
    assert json.loads((run.data_dir / STATE_FILE).read_text()) == {"gpu-2": uid, "gpu-3": uid}
    assert temp_files(run) == []
    assert [p.name for p in run.cdi_root.iterdir()] == [f"k8s.gpu.nvidia.com-claim_{uid}.json"]


def test_sigkill_during_atomic_write_leaves_no_temp_file(driver_run: DriverRun, fake_api: FakeApi) -> None:
    run = driver_run.start()
    uid = fake_api.add_claim("ns", "c", results("node-a", "gpu-0"))
    run.kill()
    run.start(extra_env={WRITE_DELAY_ENV: "30"}, wait=False)
    # start-up itself saves the checkpoint through atomic_write: the temp file appears and we kill
    wait_for(lambda: temp_files(run))
    run.kill()
    assert temp_files(run)
    run.start()
    assert temp_files(run) == []
    assert "removed temp file left by a killed driver" in run.log.read_text()
    out = KubeletClient(run.reg_dir, DRV).prepare([("ns", "c", uid)])
    assert out[uid].error == ""


def test_corrupt_checkpoint_file_is_reported_and_recovered(driver_run: DriverRun, fake_api: FakeApi) -> None:
    run = driver_run.start()
    uid = fake_api.add_claim("ns", "c", results("node-a", "gpu-1"))
    first = run.client().prepare([("ns", "c", uid)])[uid]
    run.kill()
    (run.data_dir / "checkpoint.json").write_text('{"kind": "GroveDRACheckpoint", "version": 1, "data": {tru')
    run.start()
    text = run.log.read_text()
    assert "checkpoint is corrupt" in text and "rebuilt 1 prepared claim(s) from CDI specs" in text
    assert (run.data_dir / "checkpoint.json.corrupt").exists()
    client = KubeletClient(run.reg_dir, DRV)
    assert client.prepare([("ns", "c", uid)])[uid].devices == first.devices
    assert client.unprepare([("ns", "c", uid)]) == {uid: ""}
    assert list(run.cdi_root.iterdir()) == []


def test_restart_keeps_prepared_claims_and_slices_stable(driver_run: DriverRun, fake_api: FakeApi) -> None:
    run = driver_run.start()
    uid = fake_api.add_claim("ns", "c", results("node-a", "gpu-0"))
    first = run.client().prepare([("ns", "c", uid)])[uid]
    wait_for(lambda: fake_api.slices_for("node-a"))
    gen = fake_api.slices_for("node-a")[0]["spec"]["pool"]["generation"]
    run.kill()  # no clean shutdown: slices stay, checkpoint stays
    run.start()
    time.sleep(1.0)
    assert KubeletClient(run.reg_dir, DRV).prepare([("ns", "c", uid)])[uid].devices == first.devices
    assert fake_api.slices_for("node-a")[0]["spec"]["pool"]["generation"] == gen  # unchanged devices, no bump


def test_stale_claims_are_unprepared(driver_run: DriverRun, fake_api: FakeApi) -> None:
    """A claim deleted without NodeUnprepareResources (force-deleted pod) is cleaned up by the driver."""
    run = driver_run.start(extra_args=["--stale-claim-cleanup-seconds", "0.5"])
    keep = fake_api.add_claim("ns", "keep", results("node-a", "gpu-0"))
    gone = fake_api.add_claim("ns", "gone", results("node-a", "gpu-1"))
    client = run.client()
    out = client.prepare([("ns", "keep", keep), ("ns", "gone", gone)])
    assert out[keep].error == out[gone].error == ""
    del fake_api.claims[("ns", "gone")]
    wait_for(lambda: not (run.cdi_root / f"k8s.gpu.nvidia.com-claim_{gone}.json").exists())
    assert (run.cdi_root / f"k8s.gpu.nvidia.com-claim_{keep}.json").exists()
    assert json.loads((run.data_dir / STATE_FILE).read_text()) == {"gpu-0": keep}
    wait_for(lambda: "unprepared stale claim ns/gone" in run.log.read_text())  # logged after the unprepare


def test_rolling_update_two_instances(fake_api: FakeApi, short_tmp: Path) -> None:
    """Old and new pod serve side by side (per-UID sockets, shared checkpoint); the old one stopping
    leaves the slices to the new one; the last one out deletes them."""
    fake_api.add_node("node-a")
    kc = fake_api.kubeconfig(short_tmp / "kubeconfig")
    old = DriverRun(root=short_tmp, node="node-a", kubeconfig=kc)
    new = DriverRun(root=short_tmp, node="node-a", kubeconfig=kc)
    try:
        old.start(extra_args=["--pod-uid", "aaaa"], wait=False)
        wait_for(lambda: (short_tmp / "registry" / f"{DRV}-aaaa-reg.sock").exists())
        wait_for(lambda: fake_api.slices_for("node-a"))
        new.start(extra_args=["--pod-uid", "bbbb"], wait=False)
        wait_for(lambda: (short_tmp / "registry" / f"{DRV}-bbbb-reg.sock").exists())
        uid = fake_api.add_claim("ns", "c", results("node-a", "gpu-0"))

        def kubelet(pod_uid: str) -> KubeletClient:
            c = KubeletClient(short_tmp / "registry", DRV)
            c.reg_socket = short_tmp / "registry" / f"{DRV}-{pod_uid}-reg.sock"
            info = c.register()
            assert info.endpoint == str(short_tmp / "plugin" / f"dra-{pod_uid}.sock")
            return c

        first = kubelet("aaaa").prepare([("ns", "c", uid)])[uid]
        assert first.error == ""
        assert kubelet("bbbb").prepare([("ns", "c", uid)])[uid].devices == first.devices  # shared checkpoint
        assert old.terminate() == 0
        time.sleep(0.5)
        assert fake_api.slices_for("node-a"), "old instance must leave slices to its successor"
        assert "leaving ResourceSlices to it" in old.log.read_text()
        assert kubelet("bbbb").unprepare([("ns", "c", uid)]) == {uid: ""}
        assert new.terminate() == 0
        assert fake_api.slices_for("node-a") == []
    finally:
        old.kill()
        new.kill()


def test_unhealthy_devices_are_tainted_in_the_slice(driver_run: DriverRun, fake_api: FakeApi) -> None:
    run = driver_run.start()
    wait_for(lambda: fake_api.slices_for("node-a"))
    cfg = run.root / "sim.yaml"
    cfg.write_text(cfg.read_text().replace("node-a: {count: 4}", "node-a: {count: 4, unhealthy: [gpu-2]}"))

    def taints() -> dict[str, list[dict[str, str]]] | None:
        [s] = fake_api.slices_for("node-a")
        t = {d["name"]: d["taints"] for d in s["spec"]["devices"] if d.get("taints")}
        return t or None

    assert wait_for(taints) == {"gpu-2": [{"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule"}]}
    assert fake_api.slices_for("node-a")[0]["spec"]["pool"]["generation"] == 2
    health = run.client().watch_health()[0]
    assert [d.device.device_name for d in health.devices if d.health == 2] == ["gpu-2"]
    cfg.write_text(cfg.read_text().replace(", unhealthy: [gpu-2]", ""))
    wait_for(lambda: taints() is None)
    assert fake_api.slices_for("node-a")[0]["spec"]["pool"]["generation"] == 3
