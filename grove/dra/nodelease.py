"""One node, one driver: a ``coordination.k8s.io/v1`` Lease per (driver, node).

Two driver processes started for the same node name (a copy-pasted DaemonSet, a second sandbox, a
typo in ``--node-name``) would publish the same pool and prepare the same GPUs twice. The first one
holds the Lease ``<driver>-<node>``; a second one with another identity refuses to start with an
error naming the holder, until the Lease expires (its holder died without releasing it). The identity
is ``<host>:<plugin data dir>``, so the two instances of a rolling update on one node (same host, same
checkpoint, serialized by ``pu.lock``) count as one driver. A driver that lost its Lease stops, and at
shutdown only the holder deletes the node's ResourceSlices, so a stopping driver never deletes slices
another live driver owns.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from grove.dra.kube import body as as_body
from grove.dra.kube import raw_json

log = logging.getLogger(__name__)

DEFAULT_DURATION = 30


class DriverConflict(RuntimeError):
    """Another live driver holds this node's Lease."""


def identity_for(data_dir: Path) -> str:
    return f"{socket.gethostname()}:{data_dir.resolve()}"


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


def _holder(lease: dict[str, Any]) -> str:
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeLease:
    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        driver: str,
        node: str,
        identity: str,
        duration: int = DEFAULT_DURATION,
    ) -> None:
        self.api = client.CoordinationV1Api(api_client)
        self.namespace, self.name = namespace, f"{driver}-{node}"
        self.node, self.identity, self.duration = node, identity, duration

    def _read(self) -> dict[str, Any] | None:
        try:
            return raw_json(self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False))
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def _meta(self, lease: dict[str, Any]) -> dict[str, Any]:
        m = lease["metadata"]
        return {"name": self.name, "namespace": self.namespace, "resourceVersion": m["resourceVersion"],
                "labels": m.get("labels") or {}}

    def _spec(self, acquire: bool) -> dict[str, Any]:
        now = _fmt(_now())
        spec: dict[str, Any] = {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                                "renewTime": now}
        if acquire:
            spec["acquireTime"] = now
        return spec

    def acquire(self) -> None:
        """Take the Lease, or raise ``DriverConflict`` naming the live holder."""
        for _ in range(3):
            lease = self._read()
            if lease is None:
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace,
                                     "labels": {"app.kubernetes.io/managed-by": "grove-dra-driver"}},
                        "spec": self._spec(acquire=True)}
                try:
                    self.api.create_namespaced_lease(self.namespace, as_body(body))
                    return
                except client.ApiException as e:
                    if e.status == 409:
                        continue  # created concurrently: look again
                    raise
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            renewed = spec.get("renewTime") or spec.get("acquireTime")
            age = (_now() - _parse(renewed)).total_seconds() if renewed else float("inf")
            duration = spec.get("leaseDurationSeconds") or self.duration
            if holder and holder != self.identity and age < duration:
                raise DriverConflict(
                    f"another driver for node {self.node} is running: Lease {self.namespace}/{self.name} is "
                    f"held by {holder!r}, renewed {age:.0f}s ago (expires in {duration - age:.0f}s); refusing to "
                    "start, so that two drivers never publish or prepare the same devices"
                )
            if holder and holder != self.identity:
                log.warning("taking over expired Lease %s/%s from %s", self.namespace, self.name, holder)
            body = {"metadata": self._meta(lease), "spec": self._spec(acquire=holder != self.identity)}
            try:
                self.api.replace_namespaced_lease(self.name, self.namespace, as_body(body))
                return
            except client.ApiException as e:
                if e.status != 409:
                    raise
        raise DriverConflict(f"Lease {self.namespace}/{self.name} keeps changing: another driver is starting")

    def renew(self) -> bool:
        """Renew; False if another driver holds the Lease now (we must stop). A Lease released by the
        other instance of a rolling update (same identity) is simply taken again."""
        lease = self._read()
        if lease is None:
            try:
                self.acquire()
            except DriverConflict:
                return False
            return True
        if _holder(lease) != self.identity:
            return False
        acquired = (lease.get("spec") or {}).get("acquireTime") or _fmt(_now())
        body = {"metadata": self._meta(lease), "spec": self._spec(acquire=False) | {"acquireTime": acquired}}
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, as_body(body))
        except client.ApiException as e:
            if e.status == 409:
                return self.held()
            raise
        return True

    def held(self) -> bool:
        lease = self._read()
        return lease is not None and _holder(lease) == self.identity

    def release(self) -> None:
        """Delete the Lease if it is still ours (a successor may start at once)."""
        lease = self._read()
        if lease is None or _holder(lease) != self.identity:
            return
        try:
            self.api.delete_namespaced_lease(self.name, self.namespace, body=as_body({
                "preconditions": {"resourceVersion": lease["metadata"]["resourceVersion"]}}))
        except client.ApiException as e:
            if e.status not in (404, 409):
                raise
