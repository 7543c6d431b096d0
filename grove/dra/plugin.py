"""One driver process per node: discovery, recovery, gRPC sockets, ResourceSlices, clean shutdown.

Rolling updates (``--pod-uid``): sockets get per-instance names, both instances share the checkpoint
(serialized by ``flock``), and an instance that stops while a peer is registered leaves the
ResourceSlices to it instead of deleting them.

Start order matters: the DRA socket is served before the registration socket appears (the kubelet
may call the endpoint as soon as it sees the registration socket), and the checkpoint is recovered
before either. On SIGTERM the registration socket goes first (the kubelet stops routing to us), then
our ResourceSlices are deleted, then the DRA socket.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from kubernetes import client

from grove.computedomain.devices import channel_devices
from grove.computedomain.model import DRIVER as COMPUTE_DOMAIN_DRIVER
from grove.dra import cdi, health, metrics, service
from grove.dra.backends import DeviceBackend, DeviceHealth, make_backend
from grove.dra.checkpoint import CheckpointStore
from grove.dra.claims import KubeClaimReader
from grove.dra.cleanup import cleanup_loop
from grove.dra.devices import sort_devices
from grove.dra.kube import api_client_for
from grove.dra.prepare import Preparer
from grove.dra.proto import pluginregistration_v1_pb2, pluginregistration_v1_pb2_grpc
from grove.dra.registration import RegistrationServicer
from grove.dra.slices import SlicePublisher, with_health_taints

log = logging.getLogger(__name__)


@dataclass
class DriverOptions:
    node_name: str
    driver_name: str = "gpu.nvidia.com"
    registration_dir: Path = Path("/var/lib/kubelet/plugins_registry")
    plugin_data_dir: Path | None = None  # default /var/lib/kubelet/plugins/<driver>
    cdi_root: Path = Path("/var/run/cdi")
    backend: str = "nvml"
    simulated_config: Path | None = None
    kubeconfig: str | None = None
    publish: bool = True
    resync_seconds: float = 30.0
    health_interval: float = 5.0
    cleanup_seconds: float = 600.0  # stale-claim cleanup period; 0 disables
    pod_uid: str = ""  # set for rolling updates: per-instance socket names (kubelet >= 1.33)
    # Also publish this node's IMEX channel (compute-domain.nvidia.com channel-0/daemon-0) so ComputeDomain
    # claims can be allocated on simulated nodes; a real node runs NVIDIA's compute-domain plugin instead.
    compute_domain_channels: bool = False
    metrics_port: int = 0  # Prometheus /metrics (0: off)

    @property
    def data_dir(self) -> Path:
        return self.plugin_data_dir or Path("/var/lib/kubelet/plugins") / self.driver_name

    @property
    def dra_socket(self) -> Path:
        return self.data_dir / (f"dra-{self.pod_uid}.sock" if self.pod_uid else "dra.sock")

    @property
    def registration_socket(self) -> Path:
        infix = f"-{self.pod_uid}" if self.pod_uid else ""
        return self.registration_dir / f"{self.driver_name}{infix}-reg.sock"

    def peer_registration_sockets(self) -> list[Path]:
        """Registration sockets of other instances of this driver (rolling update)."""
        own = self.registration_socket
        return [p for p in self.registration_dir.glob(f"{self.driver_name}-*reg.sock") if p != own]


def _serve(sock: Path, register: list[object], workers: int = 8) -> grpc.Server:
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)  # stale socket from a killed predecessor
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    for add in register:
        add(server)  # type: ignore[operator]
    if server.add_insecure_port(f"unix://{sock}") == 0:
        raise RuntimeError(f"cannot bind {sock}")
    server.start()
    return server


def _serves(sock: Path, driver: str) -> bool:
    """Whether a live instance of ``driver`` serves this registration socket (a killed one leaves a
    dead file; a similarly named socket may belong to another driver, so the name is checked)."""
    with grpc.insecure_channel(f"unix://{sock}") as ch:
        try:
            info = pluginregistration_v1_pb2_grpc.RegistrationStub(ch).GetInfo(
                pluginregistration_v1_pb2.InfoRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(info.name == driver)


class DriverProcess:
    """Owns the servers and background publisher of one driver instance."""

    def __init__(
        self, opts: DriverOptions, backend: DeviceBackend | None = None, api_client: client.ApiClient | None = None
    ) -> None:
        self.opts = opts
        self.backend = backend or make_backend(opts.backend, opts.node_name, opts.data_dir, opts.simulated_config)
        self.api_client = api_client
        self.stop_event = threading.Event()
        # set on stop and when the backend reports a health change: the slices are republished at once
        self.wake = threading.Event()
        self.published = threading.Event()
        self.started_at = time.monotonic()
        self.publish_seconds: float | None = None
        self._servers: list[grpc.Server] = []
        self._threads: list[threading.Thread] = []
        self.publisher: SlicePublisher | None = None
        self.channel_publisher: SlicePublisher | None = None
        self.preparer: Preparer | None = None
        self.metrics_server: Any = None

    def start(self) -> None:
        o = self.opts
        self.started_at = time.monotonic()
        devices = sort_devices(self.backend.discover())
        log.info("discovered %d device(s) with backend %s on %s", len(devices), self.backend.name, o.node_name)
        if self.api_client is None:
            self.api_client = api_client_for(o.kubeconfig)
        self.preparer = Preparer(
            o.driver_name,
            o.node_name,
            self.backend,
            KubeClaimReader(self.api_client),
            cdi.CdiWriter(o.cdi_root, o.driver_name),
            CheckpointStore(o.data_dir / "checkpoint.json"),
            o.data_dir,
            devices,
        )
        self.preparer.startup()
        self.metrics_server = metrics.serve(o.metrics_port)
        self.backend.start_health_monitor(self.stop_event, self.wake.set)
        probe, interval, stop = self.backend.health, o.health_interval, self.stop_event
        preparer = self.preparer
        self._servers.append(
            _serve(
                o.dra_socket,
                [
                    lambda s: service.add_to_server(preparer, s),
                    lambda s: health.add_to_server(o.node_name, probe, s, interval=interval, stop=stop),
                ],
            )
        )
        self.registration = RegistrationServicer(o.driver_name, str(o.dra_socket))
        reg = self.registration
        self._servers.append(
            _serve(
                o.registration_socket,
                [
                    lambda s: pluginregistration_v1_pb2_grpc.add_RegistrationServicer_to_server(reg, s),
                ],
                workers=2,
            )
        )
        log.info("serving %s (DRA) and %s (registration)", o.dra_socket, o.registration_socket)
        if o.cleanup_seconds > 0:
            t = threading.Thread(
                target=cleanup_loop,
                name="cleanup",
                daemon=True,
                args=(preparer, self.api_client, o.cleanup_seconds, self.stop_event),
            )
            t.start()
            self._threads.append(t)
        if o.publish:
            self.publisher = SlicePublisher(self.api_client, o.driver_name, o.node_name)
            if o.compute_domain_channels:
                self.channel_publisher = SlicePublisher(self.api_client, COMPUTE_DOMAIN_DRIVER, o.node_name)
            slice_devices = [d.to_slice_device() for d in devices]
            t = threading.Thread(target=self._publish_loop, args=(slice_devices,), name="slices", daemon=True)

            t.start()
            self._threads.append(t)

    def _publish_loop(self, devices: list[dict[str, Any]]) -> None:
        """Publish, retrying with backoff; then re-check periodically: the kubelet may wipe slices, and
        device health (as taints) may have changed."""
        assert self.publisher is not None
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                self.publisher.publish(with_health_taints(devices, self._health(), self.opts.driver_name))
                metrics.DEVICES.labels(self.opts.driver_name).set(len(devices))
                if self.channel_publisher is not None:
                    channels = channel_devices()
                    self.channel_publisher.publish(channels)
                    metrics.DEVICES.labels(COMPUTE_DOMAIN_DRIVER).set(len(channels))
                if not self.published.is_set():
                    self.publish_seconds = time.monotonic() - self.started_at
                    log.info("ResourceSlices published %.3fs after start", self.publish_seconds)
                    self.published.set()
                backoff = 0.5
                self.wake.wait(self.opts.resync_seconds)
                self.wake.clear()
            except Exception as e:
                log.error("publishing ResourceSlices failed (retry in %.1fs): %s", backoff, e)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _health(self) -> dict[str, DeviceHealth]:
        try:
            return self.backend.health()
        except Exception as e:  # a broken probe must not stop publication
            log.error("health probe failed, publishing without taints: %s", e)
            return {}

    def stop(self) -> None:
        """Unregister, delete our slices, stop serving. Safe to call twice."""
        self.stop_event.set()
        self.wake.set()
        o = self.opts
        if len(self._servers) > 1:
            self._servers[1].stop(grace=1).wait()
        o.registration_socket.unlink(missing_ok=True)
        for t in self._threads:
            t.join(timeout=5)
        successor = next((p for p in o.peer_registration_sockets() if _serves(p, o.driver_name)), None)
        if successor is not None:
            log.info("another instance serves %s (%s): leaving ResourceSlices to it", o.driver_name, successor)
        else:
            for publisher in (self.publisher, self.channel_publisher):
                if publisher is None:
                    continue
                try:
                    n = publisher.delete_all()
                    log.info("deleted %d ResourceSlice(s) of %s on %s", n, publisher.driver, o.node_name)
                except Exception as e:
                    log.error("deleting ResourceSlices on shutdown failed: %s", e)
        if self._servers:
            self._servers[0].stop(grace=2).wait()
        o.dra_socket.unlink(missing_ok=True)
        self._servers.clear()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server = None

    def run(self) -> int:
        """Start, wait for SIGTERM/SIGINT, stop. The process exit code."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received signal %d, shutting down", signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        self.stop_event.wait()
        self.stop()
        return 0
