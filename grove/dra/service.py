"""The DRA node services (``k8s.io.kubelet.pkg.apis.dra.v1`` and ``v1beta1``) over one ``Preparer``.

Both versions have the same messages (v1 adds ``Device.share_id``), so one generic adapter serves
both. Errors are per claim, inside the response; the RPC itself only fails on malformed requests.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import grpc

from grove.dra import metrics
from grove.dra.prepare import ClaimRef, Preparer
from grove.dra.proto import dra_v1_pb2, dra_v1_pb2_grpc, dra_v1beta1_pb2, dra_v1beta1_pb2_grpc


def _refs(request: Any, context: grpc.ServicerContext) -> list[ClaimRef]:
    refs = [ClaimRef(namespace=c.namespace, uid=c.uid, name=c.name) for c in request.claims]
    bad = [r for r in refs if not (r.namespace and r.uid and r.name)]
    if bad:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"claims need namespace, uid and name: {bad}")
    return refs


class _DRAPlugin:
    """Version-independent NodePrepareResources / NodeUnprepareResources."""

    pb: ModuleType

    def __init__(self, preparer: Preparer) -> None:
        self.preparer = preparer

    def NodePrepareResources(self, request: Any, context: grpc.ServicerContext) -> Any:
        with metrics.timed("prepare"):
            results = self.preparer.prepare(_refs(request, context))
        metrics.count("prepare", {uid: res.error for uid, res in results.items()})
        resp = self.pb.NodePrepareResourcesResponse()
        has_share_id = "share_id" in self.pb.Device.DESCRIPTOR.fields_by_name
        for uid, res in results.items():
            entry = resp.claims[uid]
            if res.error:
                entry.error = res.error
                continue
            for d in res.devices:
                dev = entry.devices.add(
                    request_names=d["requestNames"], pool_name=d["poolName"], device_name=d["deviceName"],
                    cdi_device_ids=d["cdiDeviceIds"],
                )
                if has_share_id and d.get("shareId"):
                    dev.share_id = d["shareId"]
        return resp

    def NodeUnprepareResources(self, request: Any, context: grpc.ServicerContext) -> Any:
        with metrics.timed("unprepare"):
            results = self.preparer.unprepare(_refs(request, context))
        metrics.count("unprepare", results)
        resp = self.pb.NodeUnprepareResourcesResponse()
        for uid, err in results.items():
            resp.claims[uid].error = err
        return resp


class DRAPluginV1(_DRAPlugin, dra_v1_pb2_grpc.DRAPluginServicer):
    pb = dra_v1_pb2


class DRAPluginV1beta1(_DRAPlugin, dra_v1beta1_pb2_grpc.DRAPluginServicer):
    pb = dra_v1beta1_pb2


def add_to_server(preparer: Preparer, server: grpc.Server) -> None:
    dra_v1_pb2_grpc.add_DRAPluginServicer_to_server(DRAPluginV1(preparer), server)
    dra_v1beta1_pb2_grpc.add_DRAPluginServicer_to_server(DRAPluginV1beta1(preparer), server)
