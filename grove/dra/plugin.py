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
import os
import signal
import threading
import time
from collections.abc import Callable
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
from grove.dra.imex import ImexBackend
from grove.dra.kube import api_client_for
from grove.dra.nodelease import DriverConflict, NodeLease, identity_for
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
    driver_root: Path = Path("/")  # NVIDIA driver files as seen by this process (e.g. /driver-root)
    host_driver_root: Path | None = None  # the same on the host, for CDI hostPaths (default: driver_root)
    kubeconfig: str | None = None
    publish: bool = True
    resync_seconds: float = 30.0
    health_interval: float = 5.0
    cleanup_seconds: float = 600.0  # stale-claim cleanup period; 0 disables
    pod_uid: str = ""  # set for rolling updates: per-instance socket names (kubelet >= 1.33)
    # Also serve compute-domain.nvidia.com: publish this node's IMEX channel-0/daemon-0 and prepare
    # ComputeDomain channel/daemon claims (grove.dra.imex), in place of NVIDIA's compute-domain plugin.
    compute_domain_channels: bool = False
    lease_seconds: int = 30  # Lease duration: how long a crashed driver blocks a successor with another identity
    lease_namespace: str = ""  # where the one-driver-per-node Lease lives (default $POD_NAMESPACE or kube-node-lease)
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

    @property
    def cd_data_dir(self) -> Path:
        """Checkpoint, sockets and simulated channel files of the compute-domain.nvidia.com instance: next to
        the GPU driver's directory, as NVIDIA's two plugins are (``/var/lib/kubelet/plugins/<driver>``)."""
        base = self.plugin_data_dir.parent if self.plugin_data_dir else Path("/var/lib/kubelet/plugins")
        return base / COMPUTE_DOMAIN_DRIVER

    @property
    def cd_dra_socket(self) -> Path:
        return self.cd_data_dir / (f"dra-{self.pod_uid}.sock" if self.pod_uid else "dra.sock")

    @property
    def cd_registration_socket(self) -> Path:
        infix = f"-{self.pod_uid}" if self.pod_uid else ""
        return self.registration_dir / f"{COMPUTE_DOMAIN_DRIVER}{infix}-reg.sock"

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
        self.backend = backend or make_backend(
            opts.backend, opts.node_name, opts.data_dir, opts.simulated_config, opts.driver_root, opts.host_driver_root
        )
        self.api_client = api_client
        self.stop_event = threading.Event()
        # set on stop and when the backend reports a health change: the slices are republished at once
        self.wake = threading.Event()
        self.published = threading.Event()
        self.started_at = time.monotonic()
        self.publish_seconds: float | None = None
        self._servers: list[grpc.Server] = []  # DRA servers
        self._reg_servers: list[tuple[grpc.Server, Path]] = []  # registration servers and their sockets
        self._threads: list[threading.Thread] = []
        self.publisher: SlicePublisher | None = None
        self.channel_publisher: SlicePublisher | None = None
        self.preparer: Preparer | None = None
        self.cd_preparer: Preparer | None = None
        self.lease: NodeLease | None = None
        self.lease_lost = False
        self.metrics_server: Any = None

    def start(self) -> None:
        o = self.opts
        self.started_at = time.monotonic()
        devices = sort_devices(self.backend.discover())
        log.info("discovered %d device(s) with backend %s on %s", len(devices), self.backend.name, o.node_name)
        if self.api_client is None:
            self.api_client = api_client_for(o.kubeconfig)
        if o.publish:  # one node, one driver (issue 12): refuse to start next to another live driver
            ns = o.lease_namespace or os.environ.get("POD_NAMESPACE") or "kube-node-lease"
            self.lease = NodeLease(
                self.api_client, ns, o.driver_name, o.node_name, identity_for(o.data_dir), o.lease_seconds
            )
            self.lease.acquire()
            t = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
            t.start()
            self._threads.append(t)
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
        self._serve_instance(self.preparer, self.backend.health, o.dra_socket, o.registration_socket)
        if o.compute_domain_channels:
            imex = ImexBackend(
                Path("/") if o.backend == "nvml" else o.cd_data_dir / "root", o.cd_data_dir, o.backend != "nvml"
            )
            self.cd_preparer = Preparer(
                COMPUTE_DOMAIN_DRIVER,
                o.node_name,
                imex,
                KubeClaimReader(self.api_client),
                cdi.CdiWriter(o.cdi_root, COMPUTE_DOMAIN_DRIVER),
                CheckpointStore(o.cd_data_dir / "checkpoint.json"),
                o.cd_data_dir,
                imex.discover(),
            )
            self.cd_preparer.startup()
            self._serve_instance(self.cd_preparer, imex.health, o.cd_dra_socket, o.cd_registration_socket)
        if o.cleanup_seconds > 0:
            for p in (self.preparer, self.cd_preparer):
                if p is None:
                    continue
                t = threading.Thread(
                    target=cleanup_loop,
                    name=f"cleanup-{p.driver}",
                    daemon=True,
                    args=(p, self.api_client, o.cleanup_seconds, self.stop_event),
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

    def _serve_instance(
        self, preparer: Preparer, probe: Callable[[], dict[str, DeviceHealth]], dra_sock: Path, reg_sock: Path
    ) -> None:
        """The DRA socket first (the kubelet may call as soon as it sees the registration socket)."""
        o, stop = self.opts, self.stop_event
        self._servers.append(
            _serve(
                dra_sock,
                [
                    lambda s: service.add_to_server(preparer, s),
                    lambda s: health.add_to_server(o.node_name, probe, s, interval=o.health_interval, stop=stop),
                ],
            )
        )
        reg = RegistrationServicer(preparer.driver, str(dra_sock))
        if preparer is self.preparer:
            self.registration = reg
        server = _serve(
            reg_sock, [lambda s: pluginregistration_v1_pb2_grpc.add_RegistrationServicer_to_server(reg, s)], workers=2
        )
        self._reg_servers.append((server, reg_sock))
        log.info("serving %s (DRA) and %s (registration) for %s", dra_sock, reg_sock, preparer.driver)

    def _renew_loop(self) -> None:
        assert self.lease is not None
        while not self.stop_event.wait(self.lease.duration / 3):
            try:
                if not self.lease.renew():
                    log.error("another driver took Lease %s/%s: stopping", self.lease.namespace, self.lease.name)
                    self.lease_lost = True
                    self.stop_event.set()
            except Exception as e:  # API server unreachable: keep serving, retry
                log.error("renewing Lease %s failed: %s", self.lease.name, e)

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
        for server, sock in self._reg_servers:
            server.stop(grace=1).wait()
            sock.unlink(missing_ok=True)
        self._reg_servers.clear()
        for t in self._threads:
            t.join(timeout=5)
        successor = next((p for p in o.peer_registration_sockets() if _serves(p, o.driver_name)), None)
        if successor is not None:
            log.info("another instance serves %s (%s): leaving ResourceSlices to it", o.driver_name, successor)
        elif self.lease is not None and not self._lease_held():
            log.warning("Lease %s is held by another driver: leaving its ResourceSlices alone", self.lease.name)
        else:
            for publisher in (self.publisher, self.channel_publisher):
                if publisher is None:
                    continue
                try:
                    n = publisher.delete_all()
                    log.info("deleted %d ResourceSlice(s) of %s on %s", n, publisher.driver, o.node_name)
                except Exception as e:
                    log.error("deleting ResourceSlices on shutdown failed: %s", e)
            if self.lease is not None:
                try:
                    self.lease.release()
                except Exception as e:
                    log.error("releasing Lease %s failed: %s", self.lease.name, e)
        for server in self._servers:
            server.stop(grace=2).wait()
        o.dra_socket.unlink(missing_ok=True)
        o.cd_dra_socket.unlink(missing_ok=True)
        self._servers.clear()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server = None

    def _lease_held(self) -> bool:
        assert self.lease is not None
        try:
            return self.lease.held()
        except Exception as e:  # can't tell: deleting might remove another driver's slices
            log.error("reading Lease %s failed (%s): leaving ResourceSlices", self.lease.name, e)
            return False

    def run(self) -> int:
        """Start, wait for SIGTERM/SIGINT, stop. The process exit code."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received signal %d, shutting down", signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.start()
        except DriverConflict as e:
            log.error("%s", e)
            self.stop_event.set()
            self.stop()
            return 3
        self.stop_event.wait()
        self.stop()
        return 1 if self.lease_lost else 0
