"""MPS under real faults: the driver is SIGKILLed at ten different points of preparing an MPS claim (its
writes slowed so the kills land in every stage: checkpoint, settings, daemon start, pid record, CDI).
After each restart no daemon runs that no prepared claim owns, the kubelet's retry ends with exactly one
daemon for the claim, and unprepare leaves no daemon, no directory and no file behind."""

from __future__ import annotations

import contextlib
import json
import threading

import grpc
from dra_fakeapi import FakeApi
from dra_harness import DriverRun
from test_dra_driver_process import results, temp_files, wait_for

from grove.dra.fsutil import WRITE_DELAY_ENV
from grove.dra.kubeletclient import KubeletClient
from grove.dra.mps import MpsManager, StandinLauncher

DRV = "gpu.nvidia.com"
MPS_CONFIG = [{"source": "FromClaim", "requests": ["gpu"], "opaque": {"driver": DRV, "parameters": {
    "apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig",
    "sharing": {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 30}}}}}]


def daemons(run: DriverRun) -> dict[str, list[int]]:
    return MpsManager(run.data_dir / "mps", StandinLauncher()).running()


def completed_daemon_ids(run: DriverRun) -> set[str]:
    doc = json.loads((run.data_dir / "checkpoint.json").read_text())
    return {m["id"] for c in doc["data"]["claims"].values() if c["state"] == "PrepareCompleted" for m in c["mps"]}


def test_sigkill_mid_mps_prepare_ten_times_leaves_no_orphan(driver_run: DriverRun, fake_api: FakeApi) -> None:
    slow = {WRITE_DELAY_ENV: "0.25"}
    run = driver_run.start(extra_env=slow)
    killed_with_daemon = 0
    try:
        for i in range(10):
            name = f"mps-{i}"
            uid = fake_api.add_claim("ns", name, results("node-a", "gpu-0", "gpu-1"), config=MPS_CONFIG)
            client = KubeletClient(run.reg_dir, DRV, timeout=60)

            def call(c: KubeletClient = client, n: str = name, u: str = uid) -> None:
                with contextlib.suppress(grpc.RpcError):  # UNAVAILABLE when the kill lands first
                    c.prepare([("ns", n, u)])

            t = threading.Thread(target=call)
            t.start()
            wait_for(lambda u=uid: u in (run.data_dir / "checkpoint.json").read_text())  # type: ignore[misc]
            threading.Event().wait(0.2 * i)  # ten kill points across the prepare
            killed_with_daemon += bool(daemons(run))
            run.kill()
            t.join(30)
            run.start(extra_env=slow)
            # no daemon runs unless a completed claim owns it
            assert set(daemons(run)) <= completed_daemon_ids(run), run.log.read_text()
            out = KubeletClient(run.reg_dir, DRV).prepare([("ns", name, uid)])[uid]  # the kubelet's retry
            assert out.error == ""
            running = daemons(run)
            assert len(running) == 1 and all(len(p) == 1 for p in running.values())
            [did] = running
            assert did.startswith(uid + "-")
            spec = json.loads((run.cdi_root / f"k8s.gpu.nvidia.com-claim_{uid}.json").read_text())
            assert all("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=30" in d["containerEdits"]["env"] for d in spec["devices"])
            assert KubeletClient(run.reg_dir, DRV).unprepare([("ns", name, uid)]) == {uid: ""}
            assert daemons(run) == {}
            assert list((run.data_dir / "mps").iterdir()) == []
            assert list(run.cdi_root.iterdir()) == []
            assert json.loads((run.data_dir / "gpu-settings.json").read_text()) == {}
            assert temp_files(run) == []
        assert killed_with_daemon >= 3, "the kills never hit a running daemon: the test proves nothing"
        assert "stopping orphaned MPS control daemon" in run.log.read_text() or \
            "rolling back interrupted prepare" in run.log.read_text()
    finally:
        run.kill()
        for pids in daemons(run).values():  # never leave a stand-in behind, even when an assert failed
            MpsManager(run.data_dir / "mps", StandinLauncher()).kill(pids)
