"""NVML backend on a real GPU (device machine only; skipped where NVML can't initialise): discovery,
time-slicing and MPS (needs root: nvidia-smi changes the compute mode and time slice).

A skip here is honest: the unit suite models the H100 with a fake NVML (test_dra_nvml_backend.py);
this file only adds confidence where real hardware exists.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import pytest

from grove.dra.backends.nvml import NvmlBackend
from grove.dra.opaqueconfig import DeviceConfig

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def nvml() -> Any:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except Exception as e:  # no driver / no GPU on this machine
        pytest.skip(f"NVML unavailable: {e}")
    pynvml.nvmlShutdown()
    return pynvml


def test_discovery_on_real_gpus_is_read_only(nvml: Any) -> None:
    def mig_modes() -> list[object]:
        nvml.nvmlInit()
        try:
            out: list[object] = []
            for i in range(nvml.nvmlDeviceGetCount()):
                try:
                    out.append(nvml.nvmlDeviceGetMigMode(nvml.nvmlDeviceGetHandleByIndex(i)))
                except nvml.NVMLError:
                    out.append(None)
            return out
        finally:
            nvml.nvmlShutdown()

    before = mig_modes()
    backend = NvmlBackend()
    devices = backend.discover()
    assert devices, "NVML initialised but no devices were discovered"
    for d in devices:
        s = d.to_slice_device()
        assert re.fullmatch(r"gpu-\d+(-mig-[a-z0-9-]+-\d+-\d+)?", s["name"])
        a = s["attributes"]
        assert a["productName"]["string"].startswith("NVIDIA")
        assert re.fullmatch(r"\d+\.\d+\.\d+", a["driverVersion"]["version"])
        assert re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d", a["resource.kubernetes.io/pciBusID"]["string"])
        assert len(a) + len(s["capacity"]) <= 32
        edits = backend.prepare("uid", d, DeviceConfig("GpuConfig" if d.type == "gpu" else "MigDeviceConfig"))
        assert f"/dev/nvidia{d.gpu.minor}" in edits.device_nodes
    assert all(h.healthy for h in backend.health().values())
    assert mig_modes() == before


def _first_full_gpu(backend: NvmlBackend) -> Any:
    gpu = next((d for d in backend.discover() if d.type == "gpu"), None)
    if gpu is None:
        pytest.skip("every GPU is in MIG mode: time-slicing/MPS tests need a full GPU")
    return gpu


def _compute_mode(nvml: Any, uuid: str) -> int:
    nvml.nvmlInit()
    try:
        return int(nvml.nvmlDeviceGetComputeMode(nvml.nvmlDeviceGetHandleByUUID(uuid)))
    finally:
        nvml.nvmlShutdown()


def test_time_slicing_on_a_real_gpu(nvml: Any, tmp_path: Any) -> None:
    """nvidia-smi sets compute mode DEFAULT and the time slice; unprepare puts the default back."""
    backend = NvmlBackend(state_dir=tmp_path)
    gpu = _first_full_gpu(backend)
    edits = backend.prepare("claim-ts", gpu, DeviceConfig("GpuConfig", strategy="TimeSlicing",
                                                          time_slice_interval="Long"))
    try:
        assert _compute_mode(nvml, gpu.uuid) == nvml.NVML_COMPUTEMODE_DEFAULT
        assert any(e.endswith("_TIMESLICE_INTERVAL=Long") for e in edits.env)
        listed = subprocess.run([backend.nvidia_smi, "compute-policy", "-i", gpu.uuid, "-l"],
                                capture_output=True, text=True, check=False)
        assert listed.returncode == 0, listed.stderr
    finally:
        backend.unprepare("claim-ts", gpu.name)
    assert backend.settings.load() == {}


def test_mps_on_a_real_gpu(nvml: Any, tmp_path: Any) -> None:
    """One nvidia-cuda-mps-control daemon per claim, EXCLUSIVE_PROCESS while it runs, a CUDA client can
    ask it for its servers; unprepare stops it and resets the compute mode."""
    from test_dra_prepare import NODE, Claims

    from grove.dra.cdi import CdiWriter
    from grove.dra.checkpoint import CheckpointStore
    from grove.dra.prepare import Preparer

    backend = NvmlBackend(state_dir=tmp_path / "data")
    gpu = _first_full_gpu(backend)
    claims = Claims()
    ref = claims.add("mps", [gpu.name], [{"source": "FromClaim", "requests": [], "opaque": {
        "driver": "gpu.nvidia.com", "parameters": {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig",
                                                   "sharing": {"strategy": "MPS", "mpsConfig": {
                                                       "defaultActiveThreadPercentage": 50}}}}}])
    p = Preparer("gpu.nvidia.com", NODE, backend, claims, CdiWriter(tmp_path / "cdi", "gpu.nvidia.com"),
                 CheckpointStore(tmp_path / "data" / "checkpoint.json"), tmp_path / "data", backend.discover())
    p.startup()
    out = p.prepare([ref])[ref.uid]
    try:
        assert out.error == "", out.error
        running = p.mps.running()
        assert len(running) == 1
        [did] = running
        assert _compute_mode(nvml, gpu.uuid) == nvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS
        pipe = tmp_path / "data" / "mps" / did / "pipe"
        control = backend.mps_launcher.control  # type: ignore[attr-defined]
        servers = subprocess.run([control], input="get_server_list\n", capture_output=True, text=True, check=False,
                                 timeout=30, env={**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(pipe)})
        assert servers.returncode == 0, servers.stderr
    finally:
        assert p.unprepare([ref]) == {ref.uid: ""}
    assert p.mps.running() == {}
    assert _compute_mode(nvml, gpu.uuid) == nvml.NVML_COMPUTEMODE_DEFAULT
