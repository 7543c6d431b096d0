"""The DRAResourceHealth stream (``v1``, and ``v1alpha1`` for kubelets before 1.37): device health.

NVIDIA's driver does not implement it; the kubelet (ResourceHealthStatus) uses it to fill
``allocatedResourcesStatus``. Each message is the complete device list; a message is sent at once,
then whenever health changes, and at least every ``resend`` seconds so the kubelet never times out.
Both packages have identical messages, so one servicer serves both (kubelet 1.37 prefers v1 and
drops v1alpha1 in 1.40).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import grpc

from grove.dra.backends.base import DeviceHealth
from grove.dra.healthtaints import UNMONITORED
from grove.dra.proto import (
    dra_health_v1_pb2,
    dra_health_v1_pb2_grpc,
    dra_health_v1alpha1_pb2,
    dra_health_v1alpha1_pb2_grpc,
)

log = logging.getLogger(__name__)

# registration strings, newest first, with their (messages, grpc) modules
SERVICES: dict[str, tuple[ModuleType, ModuleType]] = {
    "v1.DRAResourceHealth": (dra_health_v1_pb2, dra_health_v1_pb2_grpc),
    "v1alpha1.DRAResourceHealth": (dra_health_v1alpha1_pb2, dra_health_v1alpha1_pb2_grpc),
}


class HealthServicer:
    """Polls the backend and streams changes; ``pb`` selects the proto package."""

    def __init__(self, pool: str, probe: Callable[[], dict[str, DeviceHealth]], interval: float = 5.0,
                 resend: float = 30.0, stop: threading.Event | None = None,
                 pb: ModuleType = dra_health_v1_pb2) -> None:
        self.pool, self.probe, self.interval, self.resend, self.pb = pool, probe, interval, resend, pb
        self.stop = stop or threading.Event()

    def snapshot(self) -> Any:
        now = int(time.time())
        resp = self.pb.NodeWatchResourcesResponse()
        for name, h in sorted(self.probe().items()):
            resp.devices.add(
                device=self.pb.DeviceIdentifier(pool_name=self.pool, device_name=name),
                health=self._status(h),
                last_updated_time=now,
                health_check_timeout_seconds=int(max(self.resend * 2, 60)),
                message=h.message[:1024],
            )
        return resp

    def _status(self, h: DeviceHealth) -> Any:
        """NVIDIA's mapping: NoSchedule taints -> Unhealthy; an ``unmonitored`` taint -> Unknown."""
        if not h.healthy:
            return self.pb.UNHEALTHY
        if any(t.key == UNMONITORED for t in h.taints):
            return self.pb.UNKNOWN
        return self.pb.HEALTHY

    def NodeWatchResources(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        last_key: list[tuple[str, int, str]] | None = None
        last_sent = 0.0
        while context.is_active() and not self.stop.is_set():
            try:
                snap = self.snapshot()
            except Exception as e:
                log.error("health probe failed: %s", e)
                snap = None
            if snap is not None:
                key = [(d.device.device_name, d.health, d.message) for d in snap.devices]
                if key != last_key or time.monotonic() - last_sent >= self.resend:
                    yield snap
                    last_key, last_sent = key, time.monotonic()
            self.stop.wait(self.interval)


def add_to_server(pool: str, probe: Callable[[], dict[str, DeviceHealth]], server: grpc.Server,
                  interval: float = 5.0, stop: threading.Event | None = None) -> None:
    """Serve every health package in ``SERVICES``."""
    for pb, pb_grpc in SERVICES.values():
        servicer = HealthServicer(pool, probe, interval=interval, stop=stop, pb=pb)
        handler = pb_grpc.add_DRAResourceHealthServicer_to_server
        handler(servicer, server)
