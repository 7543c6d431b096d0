"""The interface every device backend implements (NVML on real nodes, simulated for KWOK/tests).

A backend discovers devices, turns a device of a claim into CDI container edits, and undoes that. It
never decides *which* devices a claim gets (the scheduler did) and never persists claim state (the
checkpoint does); it may keep its own bookkeeping to refuse a device that is already in use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from grove.dra import healthtaints
from grove.dra.devices import AllocatableDevice
from grove.dra.healthtaints import HealthTaint
from grove.dra.opaqueconfig import DeviceConfig


class BackendError(RuntimeError):
    """A device could not be prepared; the message ends up in the claim's prepare response."""


@dataclass
class ContainerEdits:
    """The CDI ``containerEdits`` a prepared device contributes (subset of the CDI spec we use)."""

    env: list[str] = field(default_factory=list)
    device_nodes: list[str] = field(default_factory=list)

    def to_cdi(self) -> dict[str, object]:
        edits: dict[str, object] = {}
        if self.env:
            edits["env"] = list(self.env)
        if self.device_nodes:
            edits["deviceNodes"] = [{"path": p} for p in self.device_nodes]
        return edits


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


@runtime_checkable
class DeviceBackend(Protocol):
    """Discovery and per-device prepare/unprepare."""

    name: str

    def discover(self) -> list[AllocatableDevice]:
        """All devices this node offers, read-only (never changes MIG mode or GPU settings)."""
        ...

    def common_edits(self) -> ContainerEdits:
        """Edits every claim's CDI spec carries once (e.g. /dev/nvidiactl)."""
        ...

    def prepare(self, claim_uid: str, device: AllocatableDevice, config: DeviceConfig) -> ContainerEdits:
        """Make ``device`` usable by the claim; idempotent for the same claim."""
        ...

    def unprepare(self, claim_uid: str, device_name: str) -> None:
        """Undo ``prepare``; a no-op for devices not prepared for this claim."""
        ...

    def reset(self, active: dict[str, str]) -> None:
        """Forget preparations not in ``active`` (device -> claim UID) after a reboot or checkpoint rebuild."""
        ...

    def health(self) -> dict[str, DeviceHealth]:
        """Current health per device name."""
        ...

    def start_health_monitor(self, stop: threading.Event, changed: Callable[[], None]) -> None:
        """Watch for health events in the background until ``stop`` is set, calling ``changed`` when a device's
        health changed (so the slice is republished at once); a no-op for backends that compute health on
        every ``health()`` call."""
        ...
