"""Opaque device configuration (``resource.nvidia.com/v1beta1`` GpuConfig / MigDeviceConfig).

Decoded strictly (unknown fields are errors, as NVIDIA's driver does for claims) so a typo in a claim
is reported in the prepare response instead of being silently ignored. Precedence follows the Go
driver: class configs before claim configs, later entries win, configs naming a request beat
request-less defaults, and a default only applies to devices of its type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "resource.nvidia.com/v1beta1"
GPU_CONFIG = "GpuConfig"
MIG_CONFIG = "MigDeviceConfig"
KIND_FOR_TYPE = {"gpu": GPU_CONFIG, "mig": MIG_CONFIG}
STRATEGIES = ("TimeSlicing", "MPS")
INTERVALS = ("Default", "Short", "Medium", "Long")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[mkMGTPE]|e[0-9]+)?$")


class ConfigError(ValueError):
    """An opaque config is invalid; reported per claim, never raised out of the gRPC handler."""


@dataclass(frozen=True)
class DeviceConfig:
    """The normalized config for one device (``strategy`` None = exclusive, no sharing)."""

    kind: str
    strategy: str | None = None
    time_slice_interval: str | None = None
    mps: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def env(self, prefix: str) -> list[str]:
        """Environment the config implies; ``prefix`` is per device so two devices never conflict in CDI."""
        out: list[str] = []
        if self.strategy:
            out.append(f"{prefix}_SHARING_STRATEGY={self.strategy}")
        if self.time_slice_interval:
            out.append(f"{prefix}_TIMESLICE_INTERVAL={self.time_slice_interval}")
        if "defaultActiveThreadPercentage" in self.mps:
            out.append(f"{prefix}_MPS_ACTIVE_THREAD_PERCENTAGE={self.mps['defaultActiveThreadPercentage']}")
        return out


def default_for(device_type: str) -> DeviceConfig:
    return DeviceConfig(kind=KIND_FOR_TYPE[device_type])


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _decode_mps(mps: Any, where: str) -> dict[str, Any]:
    if not isinstance(mps, dict):
        raise ConfigError(f"{where}: must be an object")
    _check_keys(
        mps,
        {"defaultActiveThreadPercentage", "defaultPinnedDeviceMemoryLimit", "defaultPerDevicePinnedMemoryLimit"},
        where,
    )
    pct = mps.get("defaultActiveThreadPercentage")
    if pct is not None and (not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100):
        raise ConfigError(f"{where}.defaultActiveThreadPercentage: must be an integer in [0, 100], got {pct!r}")
    limit = mps.get("defaultPinnedDeviceMemoryLimit")
    if limit is not None and not (isinstance(limit, str) and _QUANTITY.match(limit)):
        raise ConfigError(f"{where}.defaultPinnedDeviceMemoryLimit: not a quantity: {limit!r}")
    per = mps.get("defaultPerDevicePinnedMemoryLimit", {})
    if not isinstance(per, dict) or not all(isinstance(v, str) and _QUANTITY.match(v) for v in per.values()):
        raise ConfigError(f"{where}.defaultPerDevicePinnedMemoryLimit: must map devices to quantities")
    return dict(mps)


def decode(parameters: Any) -> DeviceConfig:
    """Strictly decode one opaque ``parameters`` object."""
    if not isinstance(parameters, dict):
        raise ConfigError("parameters must be a JSON object")
    api_version, kind = parameters.get("apiVersion"), parameters.get("kind")
    if api_version != API_VERSION:
        raise ConfigError(f"unsupported apiVersion {api_version!r} (want {API_VERSION})")
    if kind not in (GPU_CONFIG, MIG_CONFIG):
        raise ConfigError(f"unsupported kind {kind!r} (want {GPU_CONFIG} or {MIG_CONFIG})")
    _check_keys(parameters, {"apiVersion", "kind", "sharing"}, kind)
    sharing = parameters.get("sharing")
    if sharing is None:
        return DeviceConfig(kind=kind)
    if not isinstance(sharing, dict):
        raise ConfigError(f"{kind}.sharing: must be an object")
    allowed = {"strategy", "mpsConfig"} | ({"timeSlicingConfig"} if kind == GPU_CONFIG else set())
    _check_keys(sharing, allowed, f"{kind}.sharing")
    strategy = sharing.get("strategy")
    if strategy not in STRATEGIES:
        raise ConfigError(f"{kind}.sharing.strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    interval = None
    if "timeSlicingConfig" in sharing:
        if strategy != "TimeSlicing":
            raise ConfigError(f"{kind}.sharing.timeSlicingConfig: only valid with strategy TimeSlicing")
        ts = sharing["timeSlicingConfig"] or {}
        if not isinstance(ts, dict):
            raise ConfigError(f"{kind}.sharing.timeSlicingConfig: must be an object")
        _check_keys(ts, {"interval"}, f"{kind}.sharing.timeSlicingConfig")
        interval = ts.get("interval", "Default")
        if interval not in INTERVALS:
            raise ConfigError(f"{kind}.sharing.timeSlicingConfig.interval: must be one of {', '.join(INTERVALS)}")
    elif strategy == "TimeSlicing" and kind == GPU_CONFIG:
        interval = "Default"
    mps: dict[str, Any] = {}
    if "mpsConfig" in sharing:
        if strategy != "MPS":
            raise ConfigError(f"{kind}.sharing.mpsConfig: only valid with strategy MPS")
        mps = _decode_mps(sharing["mpsConfig"] or {}, f"{kind}.sharing.mpsConfig")
    return DeviceConfig(kind=kind, strategy=strategy, time_slice_interval=interval, mps=mps)


def _base_request(request: str) -> str:
    """``req/subreq`` (firstAvailable) -> ``req``: configs and pods name the parent request."""
    return request.split("/", 1)[0]


def resolve(
    driver: str, results: list[dict[str, Any]], configs: list[dict[str, Any]], device_types: dict[str, str]
) -> list[DeviceConfig]:
    """The config for each allocation result (same order), or ConfigError naming the culprit.

    ``configs`` is ``status.allocation.devices.config``; ``device_types`` maps device name -> gpu|mig.
    """
    ordered = [c for c in configs if c.get("source") == "FromClass"] + [
        c for c in configs if c.get("source") != "FromClass"
    ]
    decoded: list[tuple[set[str], DeviceConfig]] = []
    for i, c in enumerate(ordered):
        opaque = c.get("opaque") or {}
        if opaque.get("driver") != driver:
            continue
        try:
            cfg = decode(opaque.get("parameters"))
        except ConfigError as e:
            raise ConfigError(f"config[{i}] ({c.get('source', 'FromClaim')}): {e}") from None
        decoded.append((set(c.get("requests") or []), cfg))
    out: list[DeviceConfig] = []
    for r in results:
        dtype = device_types[r["device"]]
        req = r["request"]
        explicit = [cfg for reqs, cfg in decoded if reqs and (req in reqs or _base_request(req) in reqs)]
        if explicit:
            cfg = explicit[-1]
            if cfg.kind != KIND_FOR_TYPE[dtype]:
                raise ConfigError(
                    f"request {req!r}: {cfg.kind} cannot configure {dtype} device {r['device']!r} "
                    f"(use {KIND_FOR_TYPE[dtype]})"
                )
        else:
            defaults = [cfg for reqs, cfg in decoded if not reqs and cfg.kind == KIND_FOR_TYPE[dtype]]
            cfg = defaults[-1] if defaults else default_for(dtype)
        out.append(cfg)
    return out
