"""The grove-py `devices` short spec as a resource.k8s.io/v1 ResourceClaimSpec.

Whole GPUs become an `exactly` request of class `gpu.nvidia.com`, MIG slices one of class `mig.nvidia.com`;
product, memory and compute-capability limits become CEL selectors. All devices of one claim come from one
node anyway (node-local slices), so no constraint is needed for locality; several whole GPUs are also held to
one product (`matchAttribute: gpu.nvidia.com/productName`) so a mixed node never hands a pod an H100 and an
L4 together.
"""

from __future__ import annotations

from typing import Any

from grove.api.devices import DeviceSpec, GPURequest, MIGRequest
from grove.claims import selectors
from grove.claims.constants import (
    GPU_DEVICE_CLASS,
    GPU_DRIVER,
    GPU_REQUEST,
    MIG_DEVICE_CLASS,
    MIG_REQUEST,
)


def gpu_request(gpu: GPURequest) -> dict[str, Any]:
    """The DeviceRequest for whole GPUs."""
    exprs: list[str] = []
    if gpu.product_name:
        exprs.append(selectors.product_name(gpu.product_name))
    if gpu.min_memory:
        exprs.append(selectors.min_memory(gpu.min_memory))
    if gpu.min_compute_capability:
        exprs.append(selectors.min_compute_capability(gpu.min_compute_capability))
    return {"name": GPU_REQUEST, "exactly": _exactly(GPU_DEVICE_CLASS, gpu.count, exprs)}


def mig_request(mig: MIGRequest) -> dict[str, Any]:
    """The DeviceRequest for MIG slices of one profile."""
    return {
        "name": MIG_REQUEST,
        "exactly": _exactly(MIG_DEVICE_CLASS, mig.count, [selectors.mig_profile(mig.profile)]),
    }


def _exactly(device_class: str, count: int, exprs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"deviceClassName": device_class, "allocationMode": "ExactCount", "count": count}
    if exprs:
        out["selectors"] = [selectors.selector(e) for e in exprs]
    return out


def has_devices(devices: DeviceSpec | None) -> bool:
    """Whether the spec asks for GPUs or MIG slices (a ComputeDomain alone needs no device claim)."""
    return devices is not None and (devices.gpu is not None or devices.mig is not None)


def claim_spec(devices: DeviceSpec) -> dict[str, Any]:
    """The ResourceClaimSpec (`{devices: {requests, constraints}}`) for GPUs and/or MIG slices.

    Raises ValueError when there is nothing to claim, so callers never create an empty template (the API
    server would refuse it anyway: requests must not be empty).
    """
    requests: list[dict[str, Any]] = []
    constraints: list[dict[str, Any]] = []
    if devices.gpu is not None:
        requests.append(gpu_request(devices.gpu))
        if devices.gpu.count > 1:
            constraints.append({"requests": [GPU_REQUEST], "matchAttribute": f"{GPU_DRIVER}/productName"})
    if devices.mig is not None:
        requests.append(mig_request(devices.mig))
    if not requests:
        raise ValueError("devices: neither gpu nor mig is set, nothing to claim")
    claim: dict[str, Any] = {"requests": requests}
    if constraints:
        claim["constraints"] = constraints
    return {"devices": claim}
