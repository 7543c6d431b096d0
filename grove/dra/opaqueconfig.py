"""NVIDIA's opaque device configuration API (``resource.nvidia.com/v1beta1``) as pydantic models.

Kinds, fields, defaults and checks are NVIDIA's (``api/nvidia.com/resource/v1beta1``): ``GpuConfig``,
``MigDeviceConfig``, ``ComputeDomainChannelConfig``, ``ComputeDomainDaemonConfig``. Decoding is strict
(unknown fields are errors, as NVIDIA's strict decoder does for claims) so a typo in a claim is reported
in that claim's prepare response instead of being silently ignored. Precedence follows the Go driver:
class configs before claim configs, later entries win, configs naming a request beat request-less
defaults, and a default only applies to devices of its type.

This module is the one validation both backends go through (issue 14: the simulated backend must
refuse what the NVML backend refuses): ``resolve`` picks and checks the config of each device, and
``check_device`` applies the checks that depend on the device (multiUser needs Volta or newer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

from kubernetes.utils import parse_quantity
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

API_VERSION = "resource.nvidia.com/v1beta1"
GPU_CONFIG = "GpuConfig"
MIG_CONFIG = "MigDeviceConfig"
CHANNEL_CONFIG = "ComputeDomainChannelConfig"
DAEMON_CONFIG = "ComputeDomainDaemonConfig"
KIND_FOR_TYPE = {"gpu": GPU_CONFIG, "mig": MIG_CONFIG, "channel": CHANNEL_CONFIG, "daemon": DAEMON_CONFIG}
STRATEGIES = ("TimeSlicing", "MPS")
INTERVALS = ("Default", "Short", "Medium", "Long")
#: ``nvidia-smi compute-policy --set-timeslice`` values (NVIDIA's ``TimeSliceInterval.Int()``).
INTERVAL_VALUES = {"Default": 0, "Short": 1, "Medium": 2, "Long": 3}
MPS_MULTI_USER_MIN_CC = (7, 0)  # NVIDIA: "multiuser mode requires architecture to be volta or newer"


class ConfigError(ValueError):
    """An opaque config is invalid; reported per claim, never raised out of the gRPC handler."""


def _quantity(v: Any) -> str:
    """A Kubernetes quantity (``10Gi``, ``512M``), kept as written; refused if unparsable."""
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ValueError(f"not a quantity: {v!r}")
    try:
        parse_quantity(v)
    except ValueError:
        raise ValueError(f"not a quantity: {v!r}") from None
    return str(v)


Quantity = Annotated[str, BeforeValidator(_quantity)]


class _Strict(BaseModel):
    """NVIDIA's JSON names only (no snake_case aliases), unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        frozen=True,
        strict=True,
    )


class TimeSlicingConfig(_Strict):
    interval: Literal["Default", "Short", "Medium", "Long"] = "Default"


class MpsConfig(_Strict):
    default_active_thread_percentage: int | None = Field(default=None, ge=0, le=100)
    default_pinned_device_memory_limit: Quantity | None = None
    # device index (within the claim's devices) or UUID -> limit; overrides the default per device
    default_per_device_pinned_memory_limit: dict[str, Quantity] | None = None
    multi_user: bool | None = None


class GpuSharing(_Strict):
    strategy: Literal["TimeSlicing", "MPS"]
    time_slicing_config: TimeSlicingConfig | None = None
    mps_config: MpsConfig | None = None

    @model_validator(mode="after")
    def _one_config(self) -> GpuSharing:
        if self.strategy == "MPS" and self.time_slicing_config is not None:
            raise ValueError("cannot use timeSlicingConfig with the 'MPS' strategy")
        if self.strategy == "TimeSlicing" and self.mps_config is not None:
            raise ValueError("cannot use mpsConfig with the 'TimeSlicing' strategy")
        return self


class MigDeviceSharing(_Strict):
    strategy: Literal["TimeSlicing", "MPS"]
    mps_config: MpsConfig | None = None

    @model_validator(mode="after")
    def _mps_only(self) -> MigDeviceSharing:
        if self.strategy == "TimeSlicing" and self.mps_config is not None:
            raise ValueError("cannot use mpsConfig with the 'TimeSlicing' strategy")
        return self


class GpuConfig(_Strict):
    api_version: Literal["resource.nvidia.com/v1beta1"]
    kind: Literal["GpuConfig"]
    sharing: GpuSharing | None = None


class MigDeviceConfig(_Strict):
    api_version: Literal["resource.nvidia.com/v1beta1"]
    kind: Literal["MigDeviceConfig"]
    sharing: MigDeviceSharing | None = None


class ComputeDomainChannelConfig(_Strict):
    api_version: Literal["resource.nvidia.com/v1beta1"]
    kind: Literal["ComputeDomainChannelConfig"]
    domain_id: str = Field(alias="domainID", min_length=1)
    allocation_mode: Literal["Single", "All"] = "Single"


class ComputeDomainDaemonConfig(_Strict):
    api_version: Literal["resource.nvidia.com/v1beta1"]
    kind: Literal["ComputeDomainDaemonConfig"]
    domain_id: str = Field(alias="domainID", min_length=1)


MODELS: dict[str, type[_Strict]] = {
    GPU_CONFIG: GpuConfig,
    MIG_CONFIG: MigDeviceConfig,
    CHANNEL_CONFIG: ComputeDomainChannelConfig,
    DAEMON_CONFIG: ComputeDomainDaemonConfig,
}


@dataclass(frozen=True)
class DeviceConfig:
    """The normalized config for one device (``strategy`` None = exclusive, no sharing).

    ``mps`` is the MPS config as NVIDIA's JSON (only set fields); ``domain_id``/``allocation_mode`` are
    for ComputeDomain channel and daemon devices.
    """

    kind: str
    strategy: str | None = None
    time_slice_interval: str | None = None
    mps: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    domain_id: str = ""
    allocation_mode: str = "Single"


def default_for(device_type: str) -> DeviceConfig:
    return DeviceConfig(kind=KIND_FOR_TYPE[device_type])


def _explain(kind: str, e: ValidationError) -> str:
    """NVIDIA-style one-liners naming the field: ``GpuConfig.sharing.mpsConfig.foo: unknown field``."""
    out = []
    for err in e.errors():
        path = ".".join(str(p) for p in (kind, *err["loc"]) if not str(p).startswith("function-after"))
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "literal_error":
            msg = f"must be one of {err['ctx']['expected']}, got {err['input']!r}"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
        out.append(f"{path}: {msg}")
    return "; ".join(out)


def decode(parameters: Any) -> DeviceConfig:
    """Strictly decode and normalize one opaque ``parameters`` object."""
    if not isinstance(parameters, dict):
        raise ConfigError("parameters must be a JSON object")
    api_version, kind = parameters.get("apiVersion"), parameters.get("kind")
    if api_version != API_VERSION:
        raise ConfigError(f"unsupported apiVersion {api_version!r} (want {API_VERSION})")
    if kind not in MODELS:
        raise ConfigError(f"unsupported kind {kind!r} (want one of {', '.join(MODELS)})")
    try:
        model = MODELS[kind].model_validate(parameters)
    except ValidationError as e:
        raise ConfigError(_explain(kind, e)) from None
    if isinstance(model, ComputeDomainChannelConfig):
        return DeviceConfig(kind=kind, domain_id=model.domain_id, allocation_mode=model.allocation_mode)
    if isinstance(model, ComputeDomainDaemonConfig):
        return DeviceConfig(kind=kind, domain_id=model.domain_id)
    assert isinstance(model, GpuConfig | MigDeviceConfig)
    sharing = model.sharing
    if sharing is None:
        return DeviceConfig(kind=kind)
    interval = None
    if sharing.strategy == "TimeSlicing" and isinstance(sharing, GpuSharing):
        interval = (sharing.time_slicing_config or TimeSlicingConfig()).interval  # NVIDIA's Normalize()
    mps: dict[str, Any] = {}
    if sharing.strategy == "MPS":
        mps = (sharing.mps_config or MpsConfig()).model_dump(by_alias=True, exclude_none=True)
    return DeviceConfig(kind=kind, strategy=sharing.strategy, time_slice_interval=interval, mps=mps)


def _compute_capability(cc: str) -> tuple[int, int]:
    parts = [int(p) if p.isdigit() else 0 for p in cc.split(".")[:2]]
    major, minor = [*parts, 0, 0][:2]
    return major, minor


def check_device(cfg: DeviceConfig, device_name: str, compute_capability: str) -> None:
    """Checks that depend on the device, applied the same way whatever the backend."""
    if cfg.mps.get("multiUser") and _compute_capability(compute_capability) < MPS_MULTI_USER_MIN_CC:
        raise ConfigError(
            f"device {device_name}: mpsConfig.multiUser needs compute capability >= 7.0 (Volta), "
            f"device has {compute_capability}"
        )


def pinned_memory_limits(mps: dict[str, Any], uuids: list[str]) -> dict[str, str]:
    """NVIDIA's ``MpsPerDevicePinnedMemoryLimit.Normalize``: UUID -> limit in ``<n>M``, the default first,
    then per-device overrides keyed by index (into ``uuids``) or UUID."""

    def megabytes(q: str, what: str) -> str:
        mb = int(Decimal(parse_quantity(q)) / (1024 * 1024))
        if mb <= 0:
            raise ConfigError(f"mpsConfig.{what}: invalid limit: value set too low: {q}")
        return f"{mb}M"

    limits: dict[str, str] = {}
    default = mps.get("defaultPinnedDeviceMemoryLimit")
    if default is not None:
        limits = {u: megabytes(default, "defaultPinnedDeviceMemoryLimit") for u in uuids}
    for key, q in (mps.get("defaultPerDevicePinnedMemoryLimit") or {}).items():
        if key in uuids:
            uid = key
        elif key.isdigit() and int(key) < len(uuids):
            uid = uuids[int(key)]
        else:
            raise ConfigError(f"mpsConfig.defaultPerDevicePinnedMemoryLimit: invalid device: {key!r}")
        limits[uid] = megabytes(q, f"defaultPerDevicePinnedMemoryLimit[{key}]")
    return limits


def _base_request(request: str) -> str:
    """``req/subreq`` (firstAvailable) -> ``req``: configs and pods name the parent request."""
    return request.split("/", 1)[0]


def resolve(
    driver: str, results: list[dict[str, Any]], configs: list[dict[str, Any]], device_types: dict[str, str]
) -> list[DeviceConfig]:
    """The config for each allocation result (same order), or ConfigError naming the culprit.

    ``configs`` is ``status.allocation.devices.config`` (the scheduler copies each entry's ``requests``
    list there); ``device_types`` maps device name -> gpu|mig|channel|daemon.
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
        if cfg.kind in (CHANNEL_CONFIG, DAEMON_CONFIG) and not cfg.domain_id:
            raise ConfigError(f"request {req!r}: {dtype} device {r['device']!r} needs a {cfg.kind} with a domainID")
        out.append(cfg)
    return out
