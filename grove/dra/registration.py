"""The kubelet plugin registration service (``pluginregistration.Registration``).

The kubelet's plugin watcher finds ``<plugins_registry>/<driver>-reg.sock``, calls GetInfo, and reports
back with NotifyRegistrationStatus. We advertise the DRA services by their gRPC service names.
"""

from __future__ import annotations

import logging
import threading

import grpc

from grove.dra.proto import pluginregistration_v1_pb2 as pb
from grove.dra.proto import pluginregistration_v1_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DRA_PLUGIN_TYPE = "DRAPlugin"
SUPPORTED_VERSIONS = ["v1.DRAPlugin", "v1beta1.DRAPlugin"]
HEALTH_SERVICES = ["v1.DRAResourceHealth", "v1alpha1.DRAResourceHealth"]  # kubelet picks the first it knows


class RegistrationServicer(pb_grpc.RegistrationServicer):
    """Answers GetInfo and records the kubelet's verdict."""

    def __init__(self, driver: str, endpoint: str, health: bool = True) -> None:
        self.driver = driver
        self.endpoint = endpoint
        self.versions = SUPPORTED_VERSIONS + (HEALTH_SERVICES if health else [])
        self.registered = threading.Event()
        self.error = ""

    def GetInfo(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.PluginInfo:
        return pb.PluginInfo(
            type=DRA_PLUGIN_TYPE, name=self.driver, endpoint=self.endpoint, supported_versions=self.versions
        )

    def NotifyRegistrationStatus(
        self, request: pb.RegistrationStatus, context: grpc.ServicerContext
    ) -> pb.RegistrationStatusResponse:
        if request.plugin_registered:
            self.error = ""
            self.registered.set()
            log.info("kubelet registered driver %s", self.driver)
        else:
            self.error = request.error
            self.registered.clear()
            log.error("kubelet rejected driver %s: %s", self.driver, request.error)
        return pb.RegistrationStatusResponse()
