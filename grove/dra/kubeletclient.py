"""The kubelet's side of the plugin protocol, for tests and benchmarks.

Does what the kubelet does: dial ``<registration-dir>/<driver>-reg.sock``, GetInfo, validate the
answer, NotifyRegistrationStatus, then call NodePrepareResources/NodeUnprepareResources on the
advertised endpoint with the newest DRAPlugin version both sides support.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from grove.dra.proto import (
    dra_health_v1_pb2,
    dra_health_v1_pb2_grpc,
    dra_health_v1alpha1_pb2,
    dra_health_v1alpha1_pb2_grpc,
    dra_v1_pb2,
    dra_v1_pb2_grpc,
    dra_v1beta1_pb2,
    dra_v1beta1_pb2_grpc,
)
from grove.dra.proto import pluginregistration_v1_pb2 as reg_pb
from grove.dra.proto import pluginregistration_v1_pb2_grpc as reg_grpc

# kubelet 1.34+ preference order
KUBELET_VERSIONS = {"v1.DRAPlugin": (dra_v1_pb2, dra_v1_pb2_grpc), "v1beta1.DRAPlugin": (dra_v1beta1_pb2,
                                                                                         dra_v1beta1_pb2_grpc)}


HEALTH_SERVICES = {"v1.DRAResourceHealth": (dra_health_v1_pb2, dra_health_v1_pb2_grpc),
                   "v1alpha1.DRAResourceHealth": (dra_health_v1alpha1_pb2, dra_health_v1alpha1_pb2_grpc)}


class RegistrationRejected(RuntimeError):
    pass


@dataclass
class PreparedClaim:
    """Plain-data view of one claim's NodePrepareResourceResponse."""

    error: str
    devices: list[dict[str, Any]]


class KubeletClient:
    """Registers a plugin like the kubelet's plugin watcher and calls it like the DRA manager."""

    def __init__(self, registration_dir: Path, driver: str, timeout: float = 45.0,
                 prefer: str | None = None) -> None:
        self.reg_socket = registration_dir / f"{driver}-reg.sock"
        self.driver = driver
        self.timeout = timeout  # the kubelet's defaultClientCallTimeout
        self.prefer = prefer
        self.info: reg_pb.PluginInfo | None = None
        self.version = ""
        self._channel: grpc.Channel | None = None

    def register(self) -> reg_pb.PluginInfo:
        with grpc.insecure_channel(f"unix://{self.reg_socket}") as ch:
            stub = reg_grpc.RegistrationStub(ch)
            info = stub.GetInfo(reg_pb.InfoRequest(), timeout=self.timeout)
            error = ""
            supported = [v for v in KUBELET_VERSIONS if v in info.supported_versions]
            if self.prefer:
                supported = [v for v in supported if v == self.prefer]
            if info.type != "DRAPlugin":
                error = f"unexpected plugin type {info.type!r}"
            elif info.name != self.driver:
                error = f"plugin name {info.name!r} != {self.driver!r}"
            elif not Path(info.endpoint).is_absolute():
                error = f"endpoint {info.endpoint!r} is not absolute"
            elif not supported:
                error = f"no supported DRAPlugin service in {list(info.supported_versions)}"
            stub.NotifyRegistrationStatus(
                reg_pb.RegistrationStatus(plugin_registered=not error, error=error), timeout=self.timeout
            )
        if error:
            raise RegistrationRejected(error)
        self.info, self.version = info, supported[0]
        self._channel = grpc.insecure_channel(f"unix://{info.endpoint}")
        return info

    def _stub(self) -> tuple[Any, Any]:
        if self._channel is None:
            self.register()
        assert self._channel is not None
        pb, pb_grpc = KUBELET_VERSIONS[self.version]
        return pb, pb_grpc.DRAPluginStub(self._channel)

    def prepare(self, claims: list[tuple[str, str, str]]) -> dict[str, PreparedClaim]:
        """``claims`` = [(namespace, name, uid)] -> per UID result."""
        pb, stub = self._stub()
        req = pb.NodePrepareResourcesRequest(
            claims=[pb.Claim(namespace=ns, name=name, uid=uid) for ns, name, uid in claims]
        )
        resp = stub.NodePrepareResources(req, timeout=self.timeout)
        out: dict[str, PreparedClaim] = {}
        for uid, r in resp.claims.items():
            devs = []
            for d in r.devices:
                dev: dict[str, Any] = {"requestNames": list(d.request_names), "poolName": d.pool_name,
                                       "deviceName": d.device_name, "cdiDeviceIds": list(d.cdi_device_ids)}
                if "share_id" in d.DESCRIPTOR.fields_by_name and d.HasField("share_id"):
                    dev["shareId"] = d.share_id
                devs.append(dev)
            out[uid] = PreparedClaim(error=r.error, devices=devs)
        return out

    def unprepare(self, claims: list[tuple[str, str, str]]) -> dict[str, str]:
        pb, stub = self._stub()
        req = pb.NodeUnprepareResourcesRequest(
            claims=[pb.Claim(namespace=ns, name=name, uid=uid) for ns, name, uid in claims]
        )
        resp = stub.NodeUnprepareResources(req, timeout=self.timeout)
        return {uid: r.error for uid, r in resp.claims.items()}

    def watch_health(self, max_messages: int = 1, service: str | None = None) -> list[Any]:
        """First ``max_messages`` messages of the health stream, on the newest health service the plugin
        advertises (as the 1.37 kubelet picks it), or on ``service``."""
        if self._channel is None:
            self.register()
        assert self.info is not None and self._channel is not None
        offered = [s for s in HEALTH_SERVICES if s in self.info.supported_versions and s in (service or s)]
        if not offered:
            raise RegistrationRejected(f"plugin advertises none of {list(HEALTH_SERVICES)}")
        pb, pb_grpc = HEALTH_SERVICES[offered[0]]
        stub = pb_grpc.DRAResourceHealthStub(self._channel)
        out = []
        stream = stub.NodeWatchResources(pb.NodeWatchResourcesRequest(), timeout=self.timeout)
        for msg in stream:
            out.append(msg)
            if len(out) >= max_messages:
                stream.cancel()
                break
        return out

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
