"""Both backends publish NVIDIA's current attribute and capacity sets (issue 14), compared with a fixture
written from NVIDIA's driver source (fixtures/nvidia_device_attributes.yaml). Every difference we keep on
purpose is named in INTENTIONAL below; anything else fails."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_dra_nvml_backend import FakeNvml

from grove.dra.backends.nvml import NvmlBackend
from grove.dra.backends.simulated import SimulatedBackend
from grove.dra.devices import AllocatableDevice

NVIDIA = yaml.safe_load((Path(__file__).parent / "fixtures" / "nvidia_device_attributes.yaml").read_text())

# Intentional differences, per backend and device type: optional NVIDIA attributes a backend does not publish,
# and why. (No attribute or capacity of ours is missing from NVIDIA's sets, and none is added.)
INTENTIONAL: dict[tuple[str, str], dict[str, str]] = {
    ("simulated", "gpu"): {"addressingMode": "models an x86 HGX host, where NVML reports the query unsupported"},
    ("simulated", "mig"): {"addressingMode": "models an x86 HGX host, where NVML reports the query unsupported"},
}


class CoherentFakeNvml(FakeNvml):
    """The fake H100 node on a coherent-memory platform (addressing mode ATS, as on Grace Hopper)."""

    def nvmlDeviceGetAddressingMode(self, h: Any) -> int:
        return self.NVML_DEVICE_ADDRESSING_MODE_ATS


def sysfs(root: Path, count: int) -> Path:
    """PCI devices with a NUMA node and a PCIe root, like /sys on a two-socket node."""
    for i in range(count):
        bus = f"0000:{0x18 + 0x10 * i:02x}:00.0"
        dev = root / f"devices/pci0000:{0x10 + 0x10 * i:02x}/{bus}"
        dev.mkdir(parents=True)
        (dev / "numa_node").write_text(f"{i // 2}\n")
        (root / "bus/pci/devices").mkdir(parents=True, exist_ok=True)
        (root / "bus/pci/devices" / bus).symlink_to(dev)
    return root


def nvml_devices(tmp_path: Path) -> list[AllocatableDevice]:
    fake = CoherentFakeNvml(count=2, mig={0: [("3g.40gb", 4, 2), ("1g.10gb", 2, 9)]})
    return NvmlBackend(nvml=fake, sys_root=sysfs(tmp_path / "sys", 2)).discover()


def simulated_devices(tmp_path: Path) -> list[AllocatableDevice]:
    config = tmp_path / "sim.yaml"
    config.write_text("nodes: {n: {count: 2, migLayout: {0: [3g.40gb, 1g.10gb]}}}\n")
    return SimulatedBackend("n", config, tmp_path).discover()


def value_type(value: dict[str, Any]) -> str:
    (kind,) = value
    return str(kind)


@pytest.mark.parametrize("backend", ["nvml", "simulated"])
def test_attribute_and_capacity_sets_are_nvidias(backend: str, tmp_path: Path) -> None:
    devices = (nvml_devices if backend == "nvml" else simulated_devices)(tmp_path)
    assert {d.type for d in devices} == {"gpu", "mig"}
    for device in devices:
        published = device.to_slice_device()
        want = NVIDIA[device.type]
        not_published = INTENTIONAL.get((backend, device.type), {})
        expected = {**want["attributes"], **{k: v for k, v in want["optional"].items() if k not in not_published}}
        got = {name: value_type(v) for name, v in published["attributes"].items()}
        assert got == expected, f"{backend} {published['name']}"
        assert not set(got) & set(NVIDIA["removed"])
        capacity = set(published["capacity"])
        slices = {c for c in capacity if re.fullmatch(r"memorySlice\d+", c)}
        assert capacity - slices == set(want["capacity"]), f"{backend} {published['name']}"
        if want.get("memory_slices"):
            p = device.mig_profile
            assert p is not None
            span = range(device.mig_placement_start, device.mig_placement_start + p.slice_count)
            assert slices == {f"memorySlice{i}" for i in span}
            assert all(published["capacity"][c] == {"value": "1"} for c in slices)
        else:
            assert not slices


def test_values_of_the_new_attributes(tmp_path: Path) -> None:
    gpu, = [d for d in nvml_devices(tmp_path) if d.type == "gpu"]
    attrs = gpu.to_slice_device()["attributes"]
    assert attrs["resource.kubernetes.io/numaNode"] == {"int": 0}  # gpu-1 sits on NUMA node 1 // 2 = 0
    assert attrs["addressingMode"] == {"string": "ATS"}
    mig = next(d for d in nvml_devices(tmp_path / "again") if d.name == "gpu-0-mig-3g40gb-9-4")
    assert {k: v for k, v in mig.capacity().items() if k.startswith("memorySlice")} == {
        "memorySlice4": {"value": "1"}, "memorySlice5": {"value": "1"},
        "memorySlice6": {"value": "1"}, "memorySlice7": {"value": "1"}}


def test_unknown_numa_and_unsupported_addressing_mode_are_omitted(tmp_path: Path) -> None:
    """Where sysfs says -1 (no NUMA) or NVML cannot answer, NVIDIA publishes nothing, and so do we."""
    root = sysfs(tmp_path / "sys", 1)
    (root / "bus/pci/devices/0000:18:00.0/numa_node").write_text("-1\n")

    (gpu,) = NvmlBackend(nvml=FakeNvml(count=1), sys_root=root).discover()  # its addressing mode: NOT_SUPPORTED
    attrs = gpu.to_slice_device()["attributes"]
    assert "resource.kubernetes.io/numaNode" not in attrs and "addressingMode" not in attrs
