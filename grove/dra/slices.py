"""ResourceSlice building (pure) and publication (API server) for one node's pool.

Pool name = node name, one pool per node per driver, ``nodeName`` set, owner = the Node (so slices
die with the node). At most 128 devices per slice (64 if any device has taints). Publication diffs
desired against existing slices (found by the ``spec.nodeName``/``spec.driver`` field selectors the
kubelet also uses): nothing changes -> nothing is written; any change -> ``pool.generation`` is bumped
in every slice of the pool and ``resourceSliceCount`` is set, as the Go helper does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from grove.dra.backends.base import DeviceHealth
from grove.dra.kube import body as as_body
from grove.dra.kube import get_json, raw_json

log = logging.getLogger(__name__)

MAX_DEVICES = 128
MAX_DEVICES_WITH_TAINTS = 64


def chunk_devices(devices: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split into slices of at most 128 devices (64 when taints are used); at least one slice."""
    limit = MAX_DEVICES_WITH_TAINTS if any(d.get("taints") for d in devices) else MAX_DEVICES
    chunks = [devices[i : i + limit] for i in range(0, len(devices), limit)]
    return chunks or [[]]


def with_health_taints(
    devices: list[dict[str, Any]], health: Mapping[str, DeviceHealth], driver: str
) -> list[dict[str, Any]]:
    """Devices with their health taints under NVIDIA's keys (``<driver>/xid``, ``/gpu-lost``, ``/unmonitored``,
    see ``grove.dra.healthtaints``), so the scheduler stops allocating failed devices and tolerations written
    for NVIDIA's driver match (issue 14)."""
    out = []
    for d in devices:
        h = health.get(d["name"])
        if h is not None and h.taints:
            d = {**d, "taints": [t.to_slice(driver) for t in h.taints]}
        out.append(d)
    return out


def build_specs(driver: str, node: str, devices: list[dict[str, Any]], generation: int) -> list[dict[str, Any]]:
    """The ``spec`` of each slice for the pool at ``generation``."""
    chunks = chunk_devices(devices)
    return [
        {
            "driver": driver,
            "pool": {"name": node, "generation": generation, "resourceSliceCount": len(chunks)},
            "nodeName": node,
            "devices": chunk,
        }
        for chunk in chunks
    ]


def slice_name_prefix(driver: str, node: str) -> str:
    return f"{node}-{driver}-"


def _content(spec: dict[str, Any]) -> str:
    """Comparable content of a slice spec, ignoring the generation (which we own) and the taints'
    ``timeAdded`` (which the API server fills in)."""
    s = {k: v for k, v in spec.items() if k not in ("pool", "devices")}
    s["devices"] = [
        {**d, "taints": [{k: v for k, v in t.items() if k != "timeAdded"} for t in d["taints"]]}
        if d.get("taints") else d
        for d in spec.get("devices") or []
    ]
    s["pool"] = {k: v for k, v in spec.get("pool", {}).items() if k != "generation"}
    return json.dumps(s, sort_keys=True)


class SlicePublisher:
    """Keeps the node's ResourceSlices equal to the discovered devices."""

    def __init__(self, api_client: client.ApiClient, driver: str, node: str) -> None:
        self.api = client.ResourceV1Api(api_client)
        self.api_client = api_client
        self.driver, self.node = driver, node

    def _selector(self) -> str:
        return f"spec.nodeName={self.node},spec.driver={self.driver}"

    def existing(self) -> list[dict[str, Any]]:
        resp = self.api.list_resource_slice(field_selector=self._selector(), _preload_content=False)
        items: list[dict[str, Any]] = raw_json(resp).get("items") or []
        return sorted(items, key=lambda s: s["metadata"]["name"])

    def _owner(self) -> dict[str, Any]:
        node = get_json(self.api_client, f"/api/v1/nodes/{self.node}")
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "name": self.node,
            "uid": node["metadata"]["uid"],
            "controller": True,
        }

    def publish(self, devices: list[dict[str, Any]]) -> int:
        """Make the API match ``devices``; returns the pool generation now published."""
        existing = self.existing()
        gen = max((int(s["spec"]["pool"].get("generation", 0)) for s in existing), default=0)
        current = build_specs(self.driver, self.node, devices, gen)
        unchanged = sorted(_content(e["spec"]) for e in existing) == sorted(_content(c) for c in current)
        if unchanged and all(e["spec"]["pool"].get("generation") == gen for e in existing):
            return gen  # slice names are random, so compare as a multiset
        gen += 1
        desired = build_specs(self.driver, self.node, devices, gen)
        owner = self._owner()
        for i, spec in enumerate(desired):
            if i < len(existing):
                body = existing[i]
                body["apiVersion"], body["kind"] = "resource.k8s.io/v1", "ResourceSlice"
                body["spec"] = spec
                body["metadata"]["ownerReferences"] = [owner]
                self.api.replace_resource_slice(body["metadata"]["name"], as_body(body))
            else:
                body = {
                    "apiVersion": "resource.k8s.io/v1",
                    "kind": "ResourceSlice",
                    "metadata": {
                        "generateName": slice_name_prefix(self.driver, self.node),
                        "ownerReferences": [owner],
                        "labels": {"app.kubernetes.io/managed-by": "grove-dra-driver"},
                    },
                    "spec": spec,
                }
                self.api.create_resource_slice(as_body(body))
        for extra in existing[len(desired) :]:
            self._delete(extra["metadata"]["name"])
        log.info(
            "published %d device(s) in %d ResourceSlice(s), pool %s generation %d",
            len(devices),
            len(desired),
            self.node,
            gen,
        )
        return gen

    def _delete(self, name: str) -> None:
        try:
            self.api.delete_resource_slice(name)
        except client.ApiException as e:
            if e.status != 404:
                raise

    def delete_all(self) -> int:
        """Remove every slice of ours for this node (shutdown); returns how many were deleted."""
        items = self.existing()
        for s in items:
            self._delete(s["metadata"]["name"])
        return len(items)
