"""Simulated backend: YAML-driven hardware, stable UUIDs, exclusive prepare bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from grove.dra import healthtaints as ht
from grove.dra.backends.base import BackendError, DeviceBackend
from grove.dra.backends.simulated import PREPARE_LOG, SimulatedBackend
from grove.dra.opaqueconfig import DeviceConfig

CFG = """
defaults: {model: H100-80GB, count: 2}
nodes:
  big: {count: 8}
  mig:
    count: 2
    migLayout: {0: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}
  a100: {model: A100-40GB, count: 1}
  bad: {migLayout: {0: [4g.40gb, 4g.40gb]}}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "sim.yaml"
    p.write_text(CFG)
    return p


def test_counts_models_and_stable_uuids(cfg: Path, tmp_path: Path) -> None:
    b = SimulatedBackend("big", cfg, tmp_path)
    assert isinstance(b, DeviceBackend)
    devs = b.discover()
    assert [d.name for d in devs] == [f"gpu-{i}" for i in range(8)]
    assert devs[0].gpu.product_name == "NVIDIA H100 80GB HBM3"
    assert [d.uuid for d in devs] == [d.uuid for d in SimulatedBackend("big", cfg, tmp_path).discover()]
    assert devs[0].uuid != SimulatedBackend("other", cfg, tmp_path).discover()[0].uuid
    assert len({d.uuid for d in devs}) == 8
    assert SimulatedBackend("a100", cfg, tmp_path).discover()[0].gpu.architecture == "Ampere"


def test_mig_layout_replaces_the_full_gpu(cfg: Path, tmp_path: Path) -> None:
    devs = SimulatedBackend("mig", cfg, tmp_path).discover()
    assert [d.name for d in devs] == [
        "gpu-0-mig-3g40gb-9-4", "gpu-0-mig-2g20gb-14-0", "gpu-0-mig-1g10gb-19-2", "gpu-0-mig-1g10gb-19-3", "gpu-1",
    ]
    assert {d.gpu.uuid for d in devs if d.gpu.minor == 0} == {devs[0].gpu.uuid}
    assert all(d.uuid.startswith("MIG-") for d in devs[:4])


def test_mig_layout_placements_never_overlap(cfg: Path, tmp_path: Path) -> None:
    migs = [d for d in SimulatedBackend("mig", cfg, tmp_path).discover() if d.mig_profile is not None]
    occupied = [s for d in migs if d.mig_profile for s in range(d.mig_placement_start,
                                                                d.mig_placement_start + d.mig_profile.slice_count)]
    assert len(occupied) == len(set(occupied)) == 8


def test_impossible_layout_is_rejected(cfg: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        SimulatedBackend("bad", cfg, tmp_path).discover()


def test_prepare_is_exclusive_and_idempotent(cfg: Path, tmp_path: Path) -> None:
    b = SimulatedBackend("big", cfg, tmp_path)
    dev = b.discover()[0]
    e1 = b.prepare("claim-a", dev, DeviceConfig("GpuConfig"))
    e2 = b.prepare("claim-a", dev, DeviceConfig("GpuConfig"))
    assert e1 == e2 and e1.env == [f"GROVE_DRA_DEVICE_GPU_0={dev.uuid}"]
    with pytest.raises(BackendError, match="already prepared for claim claim-a"):
        b.prepare("claim-b", dev, DeviceConfig("GpuConfig"))
    b.unprepare("claim-a", dev.name)
    b.prepare("claim-b", dev, DeviceConfig("GpuConfig", strategy="TimeSlicing", time_slice_interval="Long"))
    assert (tmp_path / PREPARE_LOG).read_text().splitlines() == ["claim-a gpu-0", "claim-b gpu-0"]


def test_health_from_config(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("nodes: {n: {count: 2, unhealthy: [gpu-1]}}\n")
    h = SimulatedBackend("n", p, tmp_path).health()
    assert h["gpu-0"].healthy and not h["gpu-1"].healthy
    assert h["gpu-1"].taints == (ht.HealthTaint("xid", "79", "NoSchedule"),) and h["gpu-0"].taints == ()


def test_simulated_faults_use_nvidias_taints(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("nodes: {n: {count: 4, unhealthy: {gpu-0: 48, gpu-1: 31, gpu-2: gpu-lost, gpu-3: unmonitored}}}\n")
    h = SimulatedBackend("n", p, tmp_path).health()
    assert {name: (d.healthy, d.taints) for name, d in h.items()} == {
        "gpu-0": (False, (ht.HealthTaint("xid", "48", "NoSchedule"),)),
        "gpu-1": (True, (ht.HealthTaint("xid", "31", "None"),)),  # an application XID: informational only
        "gpu-2": (False, (ht.HealthTaint("gpu-lost", "", "NoSchedule"),)),
        "gpu-3": (True, (ht.HealthTaint("unmonitored", "", "None"),)),
    }
    assert h["gpu-0"].message == "critical XID 48" and h["gpu-2"].message == "GPU is lost"
    p.write_text("nodes: {n: {count: 1, unhealthy: {gpu-0: sometimes}}}\n")
    bad = SimulatedBackend("n", p, tmp_path).health()["gpu-0"]
    assert bad.taints == (ht.unmonitored(),) and "unhealthy.gpu-0" in bad.message
