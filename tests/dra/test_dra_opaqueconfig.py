"""Opaque config decoding (strict) and precedence."""

from __future__ import annotations

from typing import Any

import pytest

from grove.dra.opaqueconfig import ConfigError, check_device, decode, pinned_memory_limits, resolve

DRV = "gpu.nvidia.com"


def gpu_cfg(**sharing: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig"}
    if sharing:
        d["sharing"] = sharing
    return d


def entry(params: dict[str, Any], requests: list[str] | None = None, source: str = "FromClaim",
          driver: str = DRV) -> dict[str, Any]:
    return {"source": source, "requests": requests or [], "opaque": {"driver": driver, "parameters": params}}


def test_valid_configs() -> None:
    assert decode(gpu_cfg()).strategy is None
    c = decode(gpu_cfg(strategy="TimeSlicing", timeSlicingConfig={"interval": "Long"}))
    assert (c.strategy, c.time_slice_interval) == ("TimeSlicing", "Long")
    assert decode(gpu_cfg(strategy="TimeSlicing")).time_slice_interval == "Default"
    m = decode({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "MigDeviceConfig",
                "sharing": {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 50}}})
    assert m.mps == {"defaultActiveThreadPercentage": 50}
    full = decode(gpu_cfg(strategy="MPS", mpsConfig={
        "defaultActiveThreadPercentage": 0, "defaultPinnedDeviceMemoryLimit": "10Gi",
        "defaultPerDevicePinnedMemoryLimit": {"0": "5Gi"}, "multiUser": True}))
    assert full.mps["multiUser"] is True and full.mps["defaultPerDevicePinnedMemoryLimit"] == {"0": "5Gi"}
    ch = decode({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomainChannelConfig", "domainID": "d"})
    assert (ch.domain_id, ch.allocation_mode) == ("d", "Single")


def test_pinned_memory_limits_follow_nvidia_normalize() -> None:
    mps = {"defaultPinnedDeviceMemoryLimit": "10Gi", "defaultPerDevicePinnedMemoryLimit": {"1": "5Gi", "GPU-a": "1Gi"}}
    assert pinned_memory_limits(mps, ["GPU-a", "GPU-b"]) == {"GPU-a": "1024M", "GPU-b": "5120M"}
    with pytest.raises(ConfigError, match="invalid device"):
        pinned_memory_limits({"defaultPerDevicePinnedMemoryLimit": {"7": "1Gi"}}, ["GPU-a"])
    with pytest.raises(ConfigError, match="too low"):
        pinned_memory_limits({"defaultPinnedDeviceMemoryLimit": "1Ki"}, ["GPU-a"])


def test_multi_user_needs_volta() -> None:
    cfg = decode(gpu_cfg(strategy="MPS", mpsConfig={"multiUser": True}))
    check_device(cfg, "gpu-0", "7.0")
    with pytest.raises(ConfigError, match=r"needs compute capability >= 7\.0"):
        check_device(cfg, "gpu-0", "6.1")


@pytest.mark.parametrize("params,msg", [
    ({"apiVersion": "v1", "kind": "GpuConfig"}, "unsupported apiVersion"),
    ({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "Nope"}, "unsupported kind"),
    (gpu_cfg(strategy="Bogus"), "strategy: must be one of"),
    (gpu_cfg(strategy="TimeSlicing", timeSlicingConfig={"interval": "Forever"}), "interval: must be one of"),
    (gpu_cfg(strategy="MPS", timeSlicingConfig={}), "cannot use timeSlicingConfig with the 'MPS' strategy"),
    (gpu_cfg(strategy="TimeSlicing", mpsConfig={}), "cannot use mpsConfig with the 'TimeSlicing' strategy"),
    (gpu_cfg(strategy="MPS", mpsConfig={"defaultActiveThreadPercentage": 150}),
     "defaultActiveThreadPercentage: Input should be less than or equal to 100"),
    (gpu_cfg(strategy="MPS", mpsConfig={"default_active_thread_percentage": 5}),
     "mpsConfig.default_active_thread_percentage: unknown field"),
    (gpu_cfg(strategy="MPS", mpsConfig={"multiUser": "yes"}), "multiUser"),
    (gpu_cfg(strategy="MPS", mpsConfig={"defaultPerDevicePinnedMemoryLimit": {"0": "x"}}), "not a quantity"),
    ({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomainChannelConfig"}, "domainID: Field required"),
    ({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomainChannelConfig", "domainID": "u",
      "allocationMode": "Some"}, "allocationMode: must be one of 'Single' or 'All'"),
    (gpu_cfg(strategy="MPS", mpsConfig={"defaultPinnedDeviceMemoryLimit": "lots"}), "not a quantity"),
    ({**gpu_cfg(), "sharin": {}}, "unknown field"),
    ({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "MigDeviceConfig",
      "sharing": {"strategy": "TimeSlicing", "timeSlicingConfig": {}}}, "unknown field"),
    ("not-an-object", "JSON object"),
])
def test_invalid_configs(params: Any, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        decode(params)


def test_precedence_and_type_matching() -> None:
    results = [{"request": "a", "device": "gpu-0"}, {"request": "b/small", "device": "gpu-1-mig-x"}]
    types = {"gpu-0": "gpu", "gpu-1-mig-x": "mig"}
    configs = [
        entry(gpu_cfg(strategy="TimeSlicing"), source="FromClaim"),
        entry(gpu_cfg(strategy="MPS"), source="FromClass"),  # class config loses to claim config
        entry({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig"}, driver="other.example.com"),
    ]
    a, b = resolve(DRV, results, configs, types)
    assert a.strategy == "TimeSlicing"
    assert b.kind == "MigDeviceConfig" and b.strategy is None  # GpuConfig default doesn't apply to MIG
    mig_cfg = {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "MigDeviceConfig",
               "sharing": {"strategy": "MPS"}}
    _, b2 = resolve(DRV, results, [*configs, entry(mig_cfg, requests=["b"])], types)
    assert b2.strategy == "MPS"  # "b/small" matches a config naming request "b"


def test_config_of_wrong_type_for_named_request_is_an_error() -> None:
    with pytest.raises(ConfigError, match="GpuConfig cannot configure mig device"):
        resolve(DRV, [{"request": "m", "device": "gpu-0-mig-1g10gb-19-0"}], [entry(gpu_cfg(), requests=["m"])],
                {"gpu-0-mig-1g10gb-19-0": "mig"})


def test_error_names_the_config_entry() -> None:
    with pytest.raises(ConfigError, match=r"config\[0\] \(FromClaim\): GpuConfig.sharing.strategy"):
        resolve(DRV, [{"request": "a", "device": "gpu-0"}], [entry(gpu_cfg(strategy="x"))], {"gpu-0": "gpu"})


def test_lost_requests_list_is_restored_from_the_claim_spec() -> None:
    """The allocation's FromClaim config without ``requests`` gets them back from the claim's spec."""
    from grove.dra.claims import with_claim_requests

    opaque_a = {"driver": DRV, "parameters": gpu_cfg(strategy="TimeSlicing")}
    opaque_b = {"driver": DRV, "parameters": gpu_cfg(strategy="MPS")}
    claim = {"spec": {"devices": {"config": [{"requests": ["a"], "opaque": opaque_a},
                                             {"requests": ["b"], "opaque": opaque_b}]}}}
    lost = [{"source": "FromClass", "opaque": opaque_b}, {"source": "FromClaim", "opaque": opaque_a},
            {"source": "FromClaim", "requests": ["b"], "opaque": opaque_b}]
    fixed = with_claim_requests(lost, claim)
    assert [c.get("requests") for c in fixed] == [None, ["a"], ["b"]]
    a, b = resolve(DRV, [{"request": "a", "device": "gpu-0"}, {"request": "b", "device": "gpu-1"}], fixed,
                   {"gpu-0": "gpu", "gpu-1": "gpu"})
    assert (a.strategy, b.strategy) == ("TimeSlicing", "MPS")
