"""Health stream and registration servicers, in process over a real unix-socket gRPC server."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from grove.dra import health
from grove.dra.backends.base import DeviceHealth
from grove.dra.kubeletclient import KubeletClient, RegistrationRejected
from grove.dra.proto import pluginregistration_v1_pb2_grpc as rgrpc
from grove.dra.registration import RegistrationServicer


@pytest.fixture
def sockdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="gdra-h-") as d:
        yield Path(d)


def serve(sock: Path, add: Callable[[grpc.Server], object]) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    add(server)
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    return server


@pytest.mark.parametrize("service", list(health.SERVICES))
def test_health_stream_sends_changes(sockdir: Path, service: str) -> None:
    """Both packages (v1 for kubelet >= 1.37, v1alpha1 before) stream the same content."""
    hpb, hgrpc = health.SERVICES[service]
    state = {"gpu-0": DeviceHealth(True), "gpu-1": DeviceHealth(True)}
    stop = threading.Event()
    server = serve(sockdir / "dra.sock",
                   lambda s: health.add_to_server("node-a", lambda: dict(state), s, interval=0.05, stop=stop))
    try:
        with grpc.insecure_channel(f"unix://{sockdir / 'dra.sock'}") as ch:
            stream = hgrpc.DRAResourceHealthStub(ch).NodeWatchResources(hpb.NodeWatchResourcesRequest(), timeout=10)
            first = next(stream)
            assert [(d.device.pool_name, d.device.device_name, d.health) for d in first.devices] == [
                ("node-a", "gpu-0", hpb.HEALTHY), ("node-a", "gpu-1", hpb.HEALTHY)]
            assert all(d.last_updated_time > 0 and d.health_check_timeout_seconds > 0 for d in first.devices)
            state["gpu-1"] = DeviceHealth(False, "Xid 79: GPU has fallen off the bus")
            second = next(stream)  # sent because something changed, long before the 60 s resend
            bad = [d for d in second.devices if d.health == hpb.UNHEALTHY]
            assert [(d.device.device_name, d.message) for d in bad] == [
                ("gpu-1", "Xid 79: GPU has fallen off the bus")]
            stream.cancel()
    finally:
        stop.set()
        server.stop(0)


def test_registration_accept_and_reject(sockdir: Path) -> None:
    servicer = RegistrationServicer("gpu.nvidia.com", "/var/lib/kubelet/plugins/gpu.nvidia.com/dra.sock")
    server = serve(sockdir / "gpu.nvidia.com-reg.sock",
                   lambda s: rgrpc.add_RegistrationServicer_to_server(servicer, s))
    try:
        info = KubeletClient(sockdir, "gpu.nvidia.com").register()
        assert info.supported_versions == ["v1.DRAPlugin", "v1beta1.DRAPlugin", "v1.DRAResourceHealth",
                                           "v1alpha1.DRAResourceHealth"]
        assert servicer.registered.is_set() and servicer.error == ""
        old_kubelet = KubeletClient(sockdir, "gpu.nvidia.com", prefer="v1alpha3.NodeService")
        with pytest.raises(RegistrationRejected, match="no supported DRAPlugin service"):
            old_kubelet.register()
        assert not servicer.registered.is_set() and "no supported DRAPlugin" in servicer.error
    finally:
        server.stop(0)
