"""NVML backend on a real GPU (device machine only; skipped where NVML can't initialise).

A skip here is honest: the unit suite models the H100 with a fake NVML (test_dra_nvml_backend.py);
this file only adds confidence where real hardware exists.
"""

from __future__ import annotations

import re
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
