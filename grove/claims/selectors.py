"""CEL selector expressions for NVIDIA's device attributes (dra.md §1.6, §3.3).

The expressions run in the Kubernetes DRA CEL environment: `device.attributes[<domain>]` and
`device.capacity[<domain>]` are maps, `quantity()` and `semver()` are Kubernetes CEL extensions with
`compareTo()`. A missing attribute is an evaluation error that aborts the whole allocation, so every
expression first checks the attribute with `has()`: a device without it is simply not a match.
"""

from __future__ import annotations

import re

from grove.claims.constants import GPU_DRIVER

_VERSION = re.compile(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$")


def cel_string(value: str) -> str:
    """A CEL double-quoted string literal (backslash and quote escaped), so any product name is safe."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def semver(version: str) -> str:
    """`9.0` -> `9.0.0`: the DRA `version` attribute type and `semver()` need all three parts."""
    match = _VERSION.match(version)
    if not match:
        raise ValueError(f"not a version: {version!r}")
    return ".".join(str(int(part or 0)) for part in match.groups())


def _attribute(name: str, domain: str) -> str:
    return f"device.attributes[{cel_string(domain)}].{name}"


def _capacity(name: str, domain: str) -> str:
    return f"device.capacity[{cel_string(domain)}].{name}"


def attribute_equals(name: str, value: str, domain: str = GPU_DRIVER) -> str:
    """String attribute equality, e.g. productName or MIG profile."""
    attr = _attribute(name, domain)
    return f"has({attr}) && {attr} == {cel_string(value)}"


def product_name(value: str) -> str:
    """Exact `productName` (NVML's name, e.g. "NVIDIA H100 80GB HBM3")."""
    return attribute_equals("productName", value)


def mig_profile(profile: str) -> str:
    """MIG devices of one profile, e.g. `1g.10gb`."""
    return attribute_equals("profile", profile)


def min_memory(quantity: str, domain: str = GPU_DRIVER) -> str:
    """`memory` capacity at least `quantity` (e.g. 40Gi). Note an H100 80GB reports 81559Mi < 80Gi."""
    cap = _capacity("memory", domain)
    return f"has({cap}) && {cap}.compareTo(quantity({cel_string(quantity)})) >= 0"


def min_compute_capability(version: str, domain: str = GPU_DRIVER) -> str:
    """`cudaComputeCapability` (a version attribute) at least `version` (e.g. "9.0")."""
    attr = _attribute("cudaComputeCapability", domain)
    return f"has({attr}) && {attr}.compareTo(semver({cel_string(semver(version))})) >= 0"


def selector(expression: str) -> dict[str, dict[str, str]]:
    """A `DeviceSelector` entry."""
    return {"cel": {"expression": expression}}
