"""Device model shared by all backends, rendered as resource.k8s.io/v1 ResourceSlice devices.

Names and attributes follow NVIDIA's ``gpu.nvidia.com`` driver so DeviceClasses and CEL selectors written
for it select our devices too: full GPUs are ``gpu-<minor>`` with ``type=gpu``; MIG devices are
``gpu-<parentMinor>-mig-<profile>-<giProfileId>-<placementStart>`` with ``type=mig``, ``profile`` and
``parentUUID``. The attribute and capacity sets are NVIDIA's current ones (checked against a fixture in
tests/dra/test_dra_nvidia_attributes.py): ``index``/``minor`` (and MIG ``parentIndex``/``parentMinor``/``index``),
which NVIDIA removed as unreliable, are not published; ``resource.kubernetes.io/numaNode`` and
``addressingMode`` are, when known; MIG devices carry one ``memorySlice<i>`` capacity per memory slice they
occupy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

PCI_BUS_ID_ATTR = "resource.kubernetes.io/pciBusID"
PCIE_ROOT_ATTR = "resource.kubernetes.io/pcieRoot"
NUMA_NODE_ATTR = "resource.kubernetes.io/numaNode"  # the Kubernetes standard name (deviceattribute package)

DeviceType = Literal["gpu", "mig"]


def semver(version: str) -> str:
    """Normalize a driver/CUDA/compute-capability string to the strict semver the API requires.

    ``"9.0"`` -> ``"9.0.0"``, ``"550.54"`` -> ``"550.54.0"``, ``"570.133.07"`` -> ``"570.133.7"``
    (semver forbids leading zeros, and the apiserver rejects invalid versions).
    """
    parts = [p for p in re.split(r"[.\-+]", version.strip()) if p != ""][:3]
    nums = [str(int(p)) if p.isdigit() else "0" for p in parts]
    while len(nums) < 3:
        nums.append("0")
    return ".".join(nums)


def mig_profile_slug(profile: str) -> str:
    """RFC 1123 form of a MIG profile name as used in device names: ``1g.10gb+me`` -> ``1g10gb-me``."""
    slug = re.sub(r"[^a-z0-9-]", "", profile.lower().replace("+", "-"))
    return slug.strip("-")


def memory_quantity(mib: int) -> str:
    """The canonical binary-SI Quantity for a MiB count.

    Canonical (largest exact suffix: 40960Mi -> 40Gi) because the API server canonicalizes quantities;
    anything else would make every re-publication look like a change and bump the pool generation.
    """
    if mib == 0:
        return "0"
    value, suffixes = mib, ["Mi", "Gi", "Ti", "Pi", "Ei"]
    i = 0
    while value and value % 1024 == 0 and i < len(suffixes) - 1:
        value //= 1024
        i += 1
    return f"{value}{suffixes[i]}"


@dataclass(frozen=True)
class GpuInfo:
    """What every GPU-backed device (full GPU or MIG parent) knows about its physical GPU."""

    minor: int
    index: int
    uuid: str
    product_name: str
    brand: str
    architecture: str
    cuda_compute_capability: str
    driver_version: str
    cuda_driver_version: str
    memory_mib: int
    pci_bus_id: str
    mig_enabled: bool = False
    pcie_root: str = ""  # e.g. "pci0000:40": lets other drivers (NICs) align by PCIe root
    numa_node: int | None = None  # from sysfs; None when the platform reports none (-1)
    addressing_mode: str = ""  # NVML's HMM / ATS / None on coherent-memory systems; "" where unsupported


@dataclass(frozen=True)
class MigProfile:
    """Static properties of a MIG GPU-instance profile (from NVML GpuInstanceProfileInfo)."""

    name: str  # e.g. "1g.10gb"
    gi_profile_id: int  # NVML profile info id (nvidia-smi "ID" column), e.g. 19 for 1g.10gb on H100
    memory_mib: int
    multiprocessors: int
    copy_engines: int
    decoders: int
    encoders: int
    jpeg_engines: int
    ofa_engines: int
    slice_count: int  # number of memory slices the instance occupies


@dataclass(frozen=True)
class AllocatableDevice:
    """One device offered in the ResourceSlice; ``mig`` is set for MIG devices, else a full GPU."""

    gpu: GpuInfo
    mig_profile: MigProfile | None = None
    mig_uuid: str = ""
    mig_placement_start: int = 0
    mig_gi_id: int = 0
    mig_ci_id: int = 0
    mig_index: int = 0
    extra_attributes: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def type(self) -> DeviceType:
        return "mig" if self.mig_profile is not None else "gpu"

    @property
    def name(self) -> str:
        if self.mig_profile is None:
            return f"gpu-{self.gpu.minor}"
        p = self.mig_profile
        return f"gpu-{self.gpu.minor}-mig-{mig_profile_slug(p.name)}-{p.gi_profile_id}-{self.mig_placement_start}"

    @property
    def uuid(self) -> str:
        return self.mig_uuid if self.mig_profile is not None else self.gpu.uuid

    @property
    def compute_capability(self) -> str:
        return self.gpu.cuda_compute_capability

    def attributes(self) -> dict[str, dict[str, Any]]:
        """ResourceSlice ``attributes`` (unqualified names live in the driver's domain)."""
        g = self.gpu
        attrs: dict[str, dict[str, Any]] = {
            "type": {"string": self.type},
            "productName": {"string": g.product_name},
            "brand": {"string": g.brand},
            "architecture": {"string": g.architecture},
            "cudaComputeCapability": {"version": semver(g.cuda_compute_capability)},
            "driverVersion": {"version": semver(g.driver_version)},
            "cudaDriverVersion": {"version": semver(g.cuda_driver_version)},
            PCI_BUS_ID_ATTR: {"string": g.pci_bus_id},
        }
        if g.pcie_root:
            attrs[PCIE_ROOT_ATTR] = {"string": g.pcie_root}
        if g.addressing_mode:
            attrs["addressingMode"] = {"string": g.addressing_mode}
        if self.mig_profile is None:
            attrs["uuid"] = {"string": g.uuid}
            if g.numa_node is not None:  # NVIDIA publishes it on full GPUs only
                attrs[NUMA_NODE_ATTR] = {"int": g.numa_node}
        else:
            attrs |= {"profile": {"string": self.mig_profile.name}, "parentUUID": {"string": g.uuid}}
            if self.mig_uuid:
                attrs["uuid"] = {"string": self.mig_uuid}
        for k, v in self.extra_attributes.items():
            attrs[k] = v
        return attrs

    def capacity(self) -> dict[str, dict[str, str]]:
        """ResourceSlice ``capacity``: memory for GPUs; the GI profile's engines and the memory slices it
        occupies (``memorySlice<i>`` = 1, as NVIDIA's static MIG devices) for MIG."""
        p = self.mig_profile
        if p is None:
            return {"memory": {"value": memory_quantity(self.gpu.memory_mib)}}
        slices = range(self.mig_placement_start, self.mig_placement_start + p.slice_count)
        return {
            "memory": {"value": memory_quantity(p.memory_mib)},
            "multiprocessors": {"value": str(p.multiprocessors)},
            "copyEngines": {"value": str(p.copy_engines)},
            "decoders": {"value": str(p.decoders)},
            "encoders": {"value": str(p.encoders)},
            "jpegEngines": {"value": str(p.jpeg_engines)},
            "ofaEngines": {"value": str(p.ofa_engines)},
            **{f"memorySlice{i}": {"value": "1"} for i in slices},
        }

    def to_slice_device(self) -> dict[str, Any]:
        """The ``spec.devices[]`` entry (resource.k8s.io/v1 flattened device shape)."""
        return {"name": self.name, "attributes": self.attributes(), "capacity": self.capacity()}


def sort_devices(devices: list[AllocatableDevice]) -> list[AllocatableDevice]:
    """Stable order: by parent PCI bus id, full GPU first, then MIG devices by name.

    A stable order keeps published slices byte-identical across restarts (no needless generation bumps).
    """
    return sorted(devices, key=lambda d: (d.gpu.pci_bus_id, d.gpu.minor, d.mig_profile is not None, d.name))
