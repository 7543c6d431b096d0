"""Device health as NVIDIA's driver expresses it: DRA device taints with its keys, values and effects (pure).

NVIDIA's NVMLDeviceHealthCheck (dra.md §3.11) taints a device in its ResourceSlice with one key per health
dimension under the driver's domain, so tolerations written for NVIDIA's driver match ours (issue 14):

- ``<driver>/xid``, value = the XID number: effect ``NoSchedule`` for a critical XID, ``None`` (informational)
  for the XIDs NVIDIA treats as application errors (13, 31, 43, 45, 68, 109) and for ignored ones;
- ``<driver>/gpu-lost``, no value, ``NoSchedule``: NVML reported the GPU lost;
- ``<driver>/unmonitored``, no value, ``None``: health cannot be observed (event registration failed).

Taints are sticky in the critical direction, as NVIDIA's ``AddOrUpdateTaint``: a later event may change a
key's value but never lowers its effect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

XID = "xid"
GPU_LOST = "gpu-lost"
UNMONITORED = "unmonitored"
NO_SCHEDULE = "NoSchedule"
NONE = "None"  # the informational effect (ignored by scheduler and eviction)

# XIDs NVIDIA's driver does not count as device failures (application-caused; its xidsToSkip default list).
NON_FATAL_XIDS = frozenset({13, 31, 43, 45, 68, 109})
# The XID a simulated GPU reports when its fault names none: 79, "GPU has fallen off the bus".
DEFAULT_XID = 79


@dataclass(frozen=True)
class HealthTaint:
    """One taint: ``key`` is relative to the driver's domain (``xid``, ``gpu-lost``, ``unmonitored``)."""

    key: str
    value: str = ""
    effect: str = NO_SCHEDULE

    def to_slice(self, driver: str) -> dict[str, str]:
        """The ResourceSlice ``devices[].taints[]`` entry (no ``value`` when empty, as the API server stores it)."""
        out = {"key": f"{driver}/{self.key}", "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out

    def describe(self) -> str:
        if self.key == XID:
            return f"{'non-fatal' if self.effect == NONE else 'critical'} XID {self.value}"
        return {GPU_LOST: "GPU is lost", UNMONITORED: "device health is not monitored"}.get(self.key, self.key)


def xid(code: int, ignored: Iterable[int] = ()) -> HealthTaint:
    non_fatal = code in NON_FATAL_XIDS or code in set(ignored)
    return HealthTaint(XID, str(code), NONE if non_fatal else NO_SCHEDULE)


def gpu_lost() -> HealthTaint:
    return HealthTaint(GPU_LOST)


def unmonitored() -> HealthTaint:
    return HealthTaint(UNMONITORED, effect=NONE)


def merge(taints: Iterable[HealthTaint], new: HealthTaint) -> tuple[HealthTaint, ...]:
    """``taints`` with ``new`` added: one taint per key; an existing key takes the new value but keeps the
    stronger effect (sticky until the driver restarts, like NVIDIA's)."""
    out: dict[str, HealthTaint] = {t.key: t for t in taints}
    old = out.get(new.key)
    effect = NO_SCHEDULE if NO_SCHEDULE in (new.effect, old.effect if old else NONE) else new.effect
    out[new.key] = HealthTaint(new.key, new.value, effect)
    return tuple(sorted(out.values(), key=lambda t: t.key))


def is_healthy(taints: Iterable[HealthTaint]) -> bool:
    """Unhealthy when any taint keeps pods off the device (informational ``None`` taints do not)."""
    return all(t.effect == NONE for t in taints)


def describe(taints: Iterable[HealthTaint]) -> str:
    return "; ".join(t.describe() for t in taints)
