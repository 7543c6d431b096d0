"""Device model: NVIDIA-compatible names, attributes and capacities."""

from __future__ import annotations

import pytest

from grove.dra.backends.catalog import H100_MIG
from grove.dra.devices import AllocatableDevice, GpuInfo, memory_quantity, mig_profile_slug, semver

GPU = GpuInfo(minor=3, index=1, uuid="GPU-abc", product_name="NVIDIA H100 80GB HBM3", brand="Nvidia",
              architecture="Hopper", cuda_compute_capability="9.0", driver_version="570.133.07",
              cuda_driver_version="12.8.0", memory_mib=81559, pci_bus_id="0000:41:00.0")


@pytest.mark.parametrize("raw,want", [("9.0", "9.0.0"), ("550.54", "550.54.0"), ("570.133.07", "570.133.7"),
                                      ("12.8.0", "12.8.0"), ("560", "560.0.0")])
def test_semver(raw: str, want: str) -> None:
    assert semver(raw) == want


def test_full_gpu_uses_nvidia_names_and_attributes() -> None:
    d = AllocatableDevice(gpu=GPU).to_slice_device()
    assert d["name"] == "gpu-3"  # minor, not index
    a = d["attributes"]
    assert a["type"] == {"string": "gpu"}
    assert a["productName"] == {"string": "NVIDIA H100 80GB HBM3"}
    assert a["architecture"] == {"string": "Hopper"}
    assert a["cudaComputeCapability"] == {"version": "9.0.0"}
    assert a["driverVersion"] == {"version": "570.133.7"}
    assert a["uuid"] == {"string": "GPU-abc"}
    assert "index" not in a and "minor" not in a  # removed by NVIDIA (not reliable)
    assert a["resource.kubernetes.io/pciBusID"] == {"string": "0000:41:00.0"}
    assert d["capacity"] == {"memory": {"value": "81559Mi"}}
    assert len(a) + len(d["capacity"]) <= 32  # API limit


def test_mig_device_name_and_attributes() -> None:
    dev = AllocatableDevice(gpu=GPU, mig_profile=H100_MIG["2g.20gb"].profile, mig_uuid="MIG-1",
                            mig_placement_start=4, mig_gi_id=5, mig_index=2)
    d = dev.to_slice_device()
    assert d["name"] == "gpu-3-mig-2g20gb-14-4"
    a = d["attributes"]
    assert a["type"] == {"string": "mig"}
    assert a["profile"] == {"string": "2g.20gb"}
    assert a["parentUUID"] == {"string": "GPU-abc"}
    assert a["uuid"] == {"string": "MIG-1"}
    assert d["capacity"]["memory"] == {"value": "20096Mi"}
    assert d["capacity"]["multiprocessors"] == {"value": "32"}
    assert len(a) + len(d["capacity"]) <= 32


@pytest.mark.parametrize("mib,want", [(81559, "81559Mi"), (40960, "40Gi"), (1024 * 1024, "1Ti"), (0, "0"),
                                      (1536, "1536Mi")])
def test_memory_quantity_is_canonical(mib: int, want: str) -> None:
    assert memory_quantity(mib) == want


def test_profile_slug_is_a_dns_label_part() -> None:
    assert mig_profile_slug("1g.10gb+me") == "1g10gb-me"
    assert mig_profile_slug("1c.2g.20gb") == "1c2g20gb"
