"""The `devices` short spec as ResourceClaimSpecs, and the CEL selectors evaluated against NVIDIA-shaped devices."""

from __future__ import annotations

from typing import Any

import pytest
from claims_cel import matches, request_matches

from grove.api import DeviceSpec
from grove.claims import devicespec, selectors

DRIVER = "gpu.nvidia.com"


def gpu_device(product: str, memory: str, cc: str) -> dict[str, Any]:
    return {
        "name": "gpu-0",
        "attributes": {
            "type": {"string": "gpu"},
            "productName": {"string": product},
            "cudaComputeCapability": {"version": cc},
        },
        "capacity": {"memory": {"value": memory}},
    }


H100 = gpu_device("NVIDIA H100 80GB HBM3", "81559Mi", "9.0.0")
A100 = gpu_device("NVIDIA A100-SXM4-80GB", "81920Mi", "8.0.0")
L4 = gpu_device("NVIDIA L4", "23034Mi", "8.9.0")
MIG_1G = {
    "name": "gpu-0-mig-1g10gb-19-0",
    "attributes": {"type": {"string": "mig"}, "profile": {"string": "1g.10gb"}, "parentUUID": {"string": "GPU-1"}},
    "capacity": {"memory": {"value": "9984Mi"}},
}
NO_ATTRS: dict[str, Any] = {"name": "odd", "attributes": {}, "capacity": {}}


def spec(**devices: Any) -> DeviceSpec:
    return DeviceSpec.model_validate(devices)


def test_gpu_request_shape() -> None:
    out = devicespec.claim_spec(spec(gpu={"count": 4}))
    assert out == {
        "devices": {
            "requests": [
                {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount",
                                            "count": 4}}
            ],
            "constraints": [{"requests": ["gpu"], "matchAttribute": "gpu.nvidia.com/productName"}],
        }
    }


def test_single_gpu_has_no_constraint_and_no_selectors() -> None:
    out = devicespec.claim_spec(spec(gpu={}))
    assert "constraints" not in out["devices"]
    assert "selectors" not in out["devices"]["requests"][0]["exactly"]
    assert out["devices"]["requests"][0]["exactly"]["count"] == 1


def test_mig_request() -> None:
    out = devicespec.claim_spec(spec(mig={"profile": "1g.10gb", "count": 2}))
    (request,) = out["devices"]["requests"]
    assert request["name"] == "mig"
    assert request["exactly"]["deviceClassName"] == "mig.nvidia.com"
    assert request["exactly"]["count"] == 2
    assert request_matches(request, DRIVER, MIG_1G)
    assert not request_matches(request, DRIVER, H100)


def test_nothing_to_claim_is_an_error() -> None:
    with pytest.raises(ValueError):
        devicespec.claim_spec(spec(computeDomain={}))
    assert not devicespec.has_devices(spec(computeDomain={}))
    assert not devicespec.has_devices(None)


@pytest.mark.parametrize(
    ("gpu", "accepted"),
    [
        ({"productName": "NVIDIA H100 80GB HBM3"}, {"H100"}),
        ({"minMemory": "40Gi"}, {"H100", "A100"}),
        ({"minMemory": "80Gi"}, {"A100"}),  # an H100 80GB reports 81559Mi, a little less than 80Gi
        ({"minComputeCapability": "9.0"}, {"H100"}),
        ({"minComputeCapability": "8.9"}, {"H100", "L4"}),
        ({"minComputeCapability": "8.0", "minMemory": "20Gi"}, {"H100", "A100", "L4"}),
        ({"productName": "NVIDIA H100 80GB HBM3", "minComputeCapability": "10.0"}, set()),
    ],
)
def test_gpu_selectors_pick_the_right_devices(gpu: dict[str, Any], accepted: set[str]) -> None:
    request = devicespec.gpu_request(spec(gpu=gpu).gpu)  # type: ignore[arg-type]
    devices = {"H100": H100, "A100": A100, "L4": L4}
    assert {name for name, dev in devices.items() if request_matches(request, DRIVER, dev)} == accepted


def test_selectors_tolerate_devices_without_the_attribute() -> None:
    """A missing attribute must be a non-match, not an error that aborts allocation for the whole claim."""
    for expr in (
        selectors.product_name("x"),
        selectors.min_memory("1Gi"),
        selectors.min_compute_capability("1.0"),
        selectors.mig_profile("1g.10gb"),
    ):
        assert matches(expr, DRIVER, NO_ATTRS) is False


def test_product_name_is_escaped() -> None:
    tricky = 'NVIDIA "H100" \\ 80GB'
    expr = selectors.product_name(tricky)
    assert matches(expr, DRIVER, gpu_device(tricky, "1Gi", "1.0.0"))
    assert not matches(expr, DRIVER, gpu_device("NVIDIA H100", "1Gi", "1.0.0"))


@pytest.mark.parametrize(("raw", "out"), [("9.0", "9.0.0"), ("10", "10.0.0"), ("8.06", "8.6.0"), ("1.2.3", "1.2.3")])
def test_semver(raw: str, out: str) -> None:
    assert selectors.semver(raw) == out


def test_semver_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        selectors.semver("nine")


def test_selectors_match_the_dra_drivers_own_device_model() -> None:
    """Our selectors against the slice devices the bundled driver publishes (grove.dra), not only hand-made ones."""
    catalog = pytest.importorskip("grove.dra.backends.catalog")
    dra = pytest.importorskip("grove.dra.devices")
    model = catalog.MODELS["H100-80GB"]
    info = dra.GpuInfo(0, 0, "GPU-x", model.product_name, model.brand, model.architecture,
                       model.cuda_compute_capability, "570.133.20", "12.8", model.memory_mib, "0000:01:00.0")
    full = dra.AllocatableDevice(info).to_slice_device()
    mig = dra.AllocatableDevice(info, mig_profile=model.mig["1g.10gb"].profile).to_slice_device()
    gpu_req = devicespec.gpu_request(spec(gpu={"productName": model.product_name, "minComputeCapability": "9.0",
                                               "minMemory": "79Gi"}).gpu)  # type: ignore[arg-type]
    assert request_matches(gpu_req, DRIVER, full)
    mig_req = devicespec.mig_request(spec(mig={"profile": "1g.10gb"}).mig)  # type: ignore[arg-type]
    assert request_matches(mig_req, DRIVER, mig)
    assert not request_matches(mig_req, DRIVER, full)
