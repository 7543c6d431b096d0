"""GPU sharing in the prepare state machine: one validation for both backends, time-slicing recorded,
MPS control daemons started once per claim, adopted after a restart, stopped at unprepare, orphans killed.

The MPS daemons here are real processes (the simulated stand-in, or a fake ``nvidia-cuda-mps-control -d``
that daemonizes it for the NVML backend), found through /proc like the driver finds them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_dra_nvml_backend import FakeNvml
from test_dra_prepare import DRV, NODE, Claims

from grove.dra.backends.base import DeviceBackend
from grove.dra.backends.nvml import NvmlBackend
from grove.dra.backends.simulated import SimulatedBackend
from grove.dra.cdi import CdiWriter
from grove.dra.checkpoint import STARTED, CheckpointStore, ClaimRecord
from grove.dra.mps import ID_ENV, ROOT_ENV, MpsDaemon
from grove.dra.prepare import ClaimRef, Preparer

REPO = Path(__file__).resolve().parents[2]


def gpu_config(sharing: dict[str, Any] | None = None, requests: list[str] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig"}
    if sharing is not None:
        params["sharing"] = sharing
    return {"source": "FromClaim", "requests": requests or [], "opaque": {"driver": DRV, "parameters": params}}


def fake_tools(tmp_path: Path) -> tuple[str, str]:
    """``nvidia-smi`` that accepts everything, and ``nvidia-cuda-mps-control`` whose ``-d`` daemonizes the
    stand-in (inheriting the environment, as the real daemon does) and whose commands are logged."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    smi, ctl = bindir / "nvidia-smi", bindir / "nvidia-cuda-mps-control"
    smi.write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path}/smi.log\n")
    ctl.write_text(
        "#!/bin/sh\n"
        f"if [ \"$1\" = -d ]; then PYTHONPATH={REPO} {sys.executable} -m grove.dra.mps_standin "
        "</dev/null >/dev/null 2>&1 & exit 0; fi\n"
        f"cat >> {tmp_path}/mps-control.log\n")
    for p in (smi, ctl):
        p.chmod(0o755)
    return str(smi), str(ctl)


def make(tmp_path: Path, claims: Claims, kind: str, model: str = "H100-80GB") -> Preparer:
    data = tmp_path / kind / "data"
    backend: DeviceBackend
    if kind == "simulated":
        cfg = tmp_path / "sim.yaml"
        cfg.write_text(f"nodes: {{{NODE}: {{count: 2, model: {model}}}}}\n")
        backend = SimulatedBackend(NODE, cfg, data)
    else:
        smi, ctl = fake_tools(tmp_path)
        backend = NvmlBackend(nvml=FakeNvml(count=2), state_dir=data, nvidia_smi=smi)
        backend.mps_launcher.control = ctl  # type: ignore[attr-defined]
    p = Preparer(DRV, NODE, backend, claims, CdiWriter(tmp_path / kind / "cdi", DRV),
                 CheckpointStore(data / "checkpoint.json", boot_id="b"), data, backend.discover())
    p.startup()
    return p


def spec(p: Preparer, uid: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(p.cdi.path(uid).read_text())
    return doc


VERDICT_CORPUS: list[tuple[str, list[dict[str, Any]]]] = [
    ("exclusive", []),
    ("timeslicing-long", [gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}})]),
    ("timeslicing-default", [gpu_config({"strategy": "TimeSlicing"})]),
    ("mps-full", [gpu_config({"strategy": "MPS", "mpsConfig": {
        "defaultActiveThreadPercentage": 50, "defaultPinnedDeviceMemoryLimit": "10Gi",
        "defaultPerDevicePinnedMemoryLimit": {"1": "5Gi"}, "multiUser": True}})]),
    ("mps-unknown-field", [gpu_config({"strategy": "MPS", "mpsConfig": {"activeThreads": 3}})]),
    ("mps-with-timeslicing", [gpu_config({"strategy": "MPS", "timeSlicingConfig": {"interval": "Long"}})]),
    ("bad-interval", [gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Forever"}})]),
    ("fabric", [gpu_config({"strategy": "Fabric"})]),
    ("limit-too-low", [gpu_config({"strategy": "MPS", "mpsConfig": {"defaultPinnedDeviceMemoryLimit": "1Ki"}})]),
    ("bad-device-key", [gpu_config({"strategy": "MPS",
                                    "mpsConfig": {"defaultPerDevicePinnedMemoryLimit": {"7": "1Gi"}}})]),
    ("mig-config-on-gpu", [{"source": "FromClaim", "requests": ["gpus"], "opaque": {"driver": DRV, "parameters": {
        "apiVersion": "resource.nvidia.com/v1beta1", "kind": "MigDeviceConfig"}}}]),
    ("per-request", [gpu_config({"strategy": "MPS"}, ["other"]), gpu_config({"strategy": "TimeSlicing"}, ["gpus"])]),
]


def test_both_backends_give_the_same_verdicts(tmp_path: Path) -> None:
    """Issue 14: the simulated backend must accept exactly what the NVML backend accepts."""
    verdicts: dict[str, dict[str, tuple[str, list[str]]]] = {}
    for kind in ("simulated", "nvml"):
        claims = Claims()
        p = make(tmp_path, claims, kind)
        verdicts[kind] = {}
        for name, config in VERDICT_CORPUS:
            ref = claims.add(name, ["gpu-0", "gpu-1"], config)
            out = p.prepare([ref])[ref.uid]
            env = sorted(e for d in spec(p, ref.uid)["devices"] for e in d["containerEdits"].get("env", [])
                         if "SHARING" in e or "TIMESLICE" in e or e.startswith("CUDA_MPS")) if not out.error else []
            verdicts[kind][name] = (out.error, env)
            assert p.unprepare([ref]) == {ref.uid: ""}
        assert p.mps.running() == {}
    assert verdicts["simulated"] == verdicts["nvml"]
    v = verdicts["nvml"]
    accepted = {n for n, (err, _) in v.items() if not err}
    assert accepted == {"exclusive", "timeslicing-long", "timeslicing-default", "mps-full", "per-request"}
    assert "mpsConfig.activeThreads: unknown field" in v["mps-unknown-field"][0]
    assert "cannot use timeSlicingConfig with the 'MPS' strategy" in v["mps-with-timeslicing"][0]
    assert "value set too low" in v["limit-too-low"][0]
    assert "MigDeviceConfig cannot configure gpu device" in v["mig-config-on-gpu"][0]
    assert "GROVE_DRA_DEVICE_GPU_1_TIMESLICE_INTERVAL=Long" in v["timeslicing-long"][1]
    # the config naming the request wins over the one naming another request
    assert "GROVE_DRA_DEVICE_GPU_0_SHARING_STRATEGY=TimeSlicing" in v["per-request"][1]
    assert "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=10240M,1=5120M" in v["mps-full"][1]


def test_multi_user_is_refused_before_volta(tmp_path: Path) -> None:
    claims = Claims()
    p = make(tmp_path, claims, "simulated", model="P4")
    ref = claims.add("mu", ["gpu-0"], [gpu_config({"strategy": "MPS", "mpsConfig": {"multiUser": True}})])
    assert "needs compute capability >= 7.0 (Volta), device has 6.1" in p.prepare([ref])[ref.uid].error
    assert p.mps.running() == {} and not p.cdi.path(ref.uid).exists()


def test_time_slicing_is_recorded_and_reset(tmp_path: Path) -> None:
    claims = Claims()
    p = make(tmp_path, claims, "simulated")
    ts = {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Short"}}
    ref = claims.add("ts", ["gpu-1"], [gpu_config(ts)])
    assert p.prepare([ref])[ref.uid].error == ""
    settings = tmp_path / "simulated/data/gpu-settings.json"
    assert json.loads(settings.read_text()) == {
        "gpu-1": {"claim": ref.uid, "computeMode": "DEFAULT", "timeSlice": "Short"}}
    p.unprepare([ref])
    assert json.loads(settings.read_text()) == {}


@pytest.mark.parametrize("kind", ["simulated", "nvml"])
def test_mps_daemon_per_claim_adopted_after_restart_stopped_at_unprepare(tmp_path: Path, kind: str) -> None:
    claims = Claims()
    p = make(tmp_path, claims, kind)
    mps = [gpu_config({"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 25}})]
    a = claims.add("a", ["gpu-0", "gpu-1"], mps)
    b = claims.add("b", [], mps)
    assert p.prepare([a])[a.uid].error == ""
    running = p.mps.running()
    assert list(running) == [p.records[a.uid].mps[0]["id"]] and len(running[next(iter(running))]) == 1
    [daemon] = p.records[a.uid].mps
    assert daemon["pid"] == running[daemon["id"]][0] and daemon["id"].startswith(a.uid + "-")
    assert p.prepare([a])[a.uid].error == "" and p.mps.running() == running  # idempotent: still one daemon
    dirs = p.mps.dirs(MpsDaemon.from_json(daemon))
    assert (dirs["pipe"] / "control").exists()
    assert "CUDA_VISIBLE_DEVICES=GPU-" in (dirs["log"] / "control.log").read_text()
    d0 = next(d for d in spec(p, a.uid)["devices"] if d["name"].endswith("gpu-0"))["containerEdits"]
    assert "CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps" in d0["env"]
    assert "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25" in d0["env"]
    assert {m["containerPath"]: m["hostPath"] for m in d0["mounts"]} == {
        "/dev/shm": str(dirs["shm"]), "/tmp/nvidia-mps": str(dirs["pipe"]), "/var/log/nvidia-mps": str(dirs["log"])}
    settings = json.loads((tmp_path / kind / "data/gpu-settings.json").read_text())
    assert {v["computeMode"] for v in settings.values()} == {"EXCLUSIVE_PROCESS"}
    if kind == "nvml":
        assert "set_default_active_thread_percentage 25" in (tmp_path / "mps-control.log").read_text()
    # a restarted driver adopts the running daemon (same pid), and kills a daemon nobody claims
    stray = subprocess.Popen([sys.executable, "-m", "grove.dra.mps_standin"], start_new_session=True, env={
        **os.environ, "PYTHONPATH": str(REPO), ROOT_ENV: str(p.mps.root), ID_ENV: "stray-00000",
        "CUDA_MPS_PIPE_DIRECTORY": str(tmp_path), "CUDA_MPS_LOG_DIRECTORY": str(tmp_path)})
    (p.mps.root / "stray-00000").mkdir()
    try:
        assert "stray-00000" in p.mps.running() or stray.poll() is None
        p2 = make(tmp_path, claims, kind)
        assert p2.mps.running() == running
        assert stray.wait(10) in (0, -signal.SIGTERM) and not (p2.mps.root / "stray-00000").exists()
    finally:
        if stray.poll() is None:
            stray.send_signal(signal.SIGKILL)
            stray.wait()
    assert p2.prepare([b])[b.uid].error == ""  # b has no devices of this driver: no daemon
    assert p2.unprepare([a]) == {a.uid: ""}
    assert p2.mps.running() == {} and list(p2.mps.root.iterdir()) == []
    assert json.loads((tmp_path / kind / "data/gpu-settings.json").read_text()) == {}


def test_crash_mid_prepare_is_rolled_back_without_orphans(tmp_path: Path) -> None:
    """A PrepareStarted entry with a started daemon (the driver died before CDI) is rolled back."""
    claims = Claims()
    p = make(tmp_path, claims, "simulated")
    ref = claims.add("c", ["gpu-0"], [gpu_config({"strategy": "MPS"})])
    entries, _, daemons = p._plan(ref)
    p.records[ref.uid] = ClaimRecord(ref.uid, "ns", "c", STARTED, entries, [daemons[0][0].to_json()])
    p.store.save(p.records)
    p.mps.start(daemons[0][0])  # the daemon ran; its pid never reached the checkpoint
    assert len(p.mps.running()) == 1
    p2 = make(tmp_path, claims, "simulated")
    assert p2.mps.running() == {} and p2.records == {} and list(p2.mps.root.iterdir()) == []
    assert p2.prepare([ClaimRef("ns", ref.uid, "c")])[ref.uid].error == "" and len(p2.mps.running()) == 1
    p2.unprepare([ref])
