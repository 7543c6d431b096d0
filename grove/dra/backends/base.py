"""The interface every device backend implements (NVML on real nodes, simulated for KWOK/tests).

A backend discovers devices, turns a device of a claim into CDI container edits, and undoes that. It
never decides *which* devices a claim gets (the scheduler did) and never persists claim state (the
checkpoint does); it may keep its own bookkeeping to refuse a device that is already in use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from grove.dra import healthtaints
from grove.dra.devices import AllocatableDevice
from grove.dra.fsutil import atomic_write
from grove.dra.healthtaints import HealthTaint
from grove.dra.mps import MpsLauncher
from grove.dra.opaqueconfig import DeviceConfig


class PreparableDevice(Protocol):
    """What prepare needs of a device: ``devices.AllocatableDevice`` (GPU, MIG) or ``imex.ChannelDevice``."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def uuid(self) -> str: ...

    @property
    def compute_capability(self) -> str: ...


class BackendError(RuntimeError):
    """A device could not be prepared; the message ends up in the claim's prepare response."""


@dataclass
class ContainerEdits:
    """The CDI ``containerEdits`` a prepared device contributes (subset of the CDI spec we use)."""

    env: list[str] = field(default_factory=list)
    device_nodes: list[str] = field(default_factory=list)
    device_node_specs: list[dict[str, Any]] = field(default_factory=list)  # CDI deviceNodes with hostPath etc.
    mounts: list[dict[str, Any]] = field(default_factory=list)  # CDI {hostPath, containerPath, options}
    hooks: list[dict[str, Any]] = field(default_factory=list)  # CDI {hookName, path, args}

    def to_cdi(self) -> dict[str, object]:
        edits: dict[str, object] = {}
        if self.env:
            edits["env"] = list(self.env)
        if self.device_nodes or self.device_node_specs:
            edits["deviceNodes"] = [{"path": p} for p in self.device_nodes] + list(self.device_node_specs)
        if self.mounts:
            edits["mounts"] = list(self.mounts)
        if self.hooks:
            edits["hooks"] = list(self.hooks)
        return edits


def device_env(device: AllocatableDevice, config: DeviceConfig) -> list[str]:
    """Per-device env both backends put in the CDI spec (names carry the device, so two never clash):
    the UUID, and the sharing settings applied, as NVIDIA's example driver reports them."""
    var = "GROVE_DRA_DEVICE_" + device.name.upper().replace("-", "_")
    env = [f"{var}={device.uuid}"]
    if config.strategy:
        env.append(f"{var}_SHARING_STRATEGY={config.strategy}")
    if config.time_slice_interval:
        env.append(f"{var}_TIMESLICE_INTERVAL={config.time_slice_interval}")
    return env


class GpuSettings:
    """What a backend changed on each device (compute mode, time slice), so unprepare can reset it and a
    restart knows it: ``<state_dir>/gpu-settings.json``, device -> {claim, computeMode, timeSlice}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            data: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def set(self, device: str, claim_uid: str, compute_mode: str, time_slice: str) -> None:
        data = self.load()
        data[device] = {"claim": claim_uid, "computeMode": compute_mode, "timeSlice": time_slice}
        atomic_write(self.path, json.dumps(data, sort_keys=True, indent=1).encode(), durable=False)

    def pop(self, device: str, claim_uid: str | None = None) -> dict[str, Any] | None:
        data = self.load()
        entry = data.get(device)
        if entry is None or (claim_uid is not None and entry.get("claim") != claim_uid):
            return None
        del data[device]
        atomic_write(self.path, json.dumps(data, sort_keys=True, indent=1).encode(), durable=False)
        return entry


@dataclass(frozen=True)
class DeviceHealth:
    """Health of one device: ``healthy`` and ``message`` for the DRAResourceHealth stream, ``taints`` (NVIDIA's
    keys, see ``grove.dra.healthtaints``) for the ResourceSlice."""

    healthy: bool
    message: str = ""
    taints: tuple[HealthTaint, ...] = ()

    @classmethod
    def of(cls, taints: Iterable[HealthTaint]) -> DeviceHealth:
        """Health as NVIDIA derives it from a device's taints."""
        found = tuple(taints)
        return cls(healthtaints.is_healthy(found), healthtaints.describe(found), found)


class PrepareBackend(Protocol):
    """What the prepare state machine uses (GPU backends and ``imex.ImexBackend``)."""

    name: str
    mps_launcher: MpsLauncher  # how this node runs an MPS control daemon

    def common_edits(self) -> ContainerEdits:
        """Edits every claim's CDI spec carries once (e.g. /dev/nvidiactl)."""
        ...

    def prepare(self, claim_uid: str, device: Any, config: DeviceConfig) -> ContainerEdits:
        """Make ``device`` usable by the claim, applying its sharing settings (time slice, compute mode
        EXCLUSIVE_PROCESS for MPS); idempotent for the same claim. ``config`` is already validated."""
        ...

    def unprepare(self, claim_uid: str, device_name: str) -> None:
        """Undo ``prepare`` (settings back to default); a no-op for devices not prepared for this claim."""
        ...

    def reset(self, active: dict[str, str]) -> None:
        """Forget preparations not in ``active`` (device -> claim UID) after a reboot or checkpoint rebuild."""
        ...



@runtime_checkable
class DeviceBackend(PrepareBackend, Protocol):
    """GPU discovery and health on top of per-device prepare/unprepare."""

    def discover(self) -> list[AllocatableDevice]:
        """All devices this node offers, read-only (never changes MIG mode or GPU settings)."""
        ...

    def health(self) -> dict[str, DeviceHealth]:
        """Current health per device name."""
        ...

    def start_health_monitor(self, stop: threading.Event, changed: Callable[[], None]) -> None:
        """Watch for health events in the background until ``stop`` is set, calling ``changed`` when a device's
        health changed (so the slice is republished at once); a no-op for backends that compute health on
        every ``health()`` call."""
        ...
