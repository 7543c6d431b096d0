"""Leader election with a coordination.k8s.io Lease (issue #10), as client-go's leaderelection does it.

Why a Lease and not kopf's peering: peering needs its own CRDs and PATCHes a peering object every few
seconds from every replica; a Lease is the cluster's standard, one object, written only by the leader.
A follower runs no kopf at all (so it writes nothing and holds no caches), and polls the Lease every
`retry_period`. Expiry is judged on the follower's own clock (the time it last saw the record change), never
by comparing the leader's timestamps with ours, so clock skew does not matter. The leader renews every
`retry_period`; if it cannot renew for `renew_deadline` it stops (the process exits and is restarted), since
another replica may take over once `lease_duration` has passed. A graceful stop releases the Lease at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controllers.client import ApiError, Kube

log = logging.getLogger("grove.leader")


class LeaseLost(Exception):
    """The leader could not renew its Lease within the renew deadline."""


def micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    kube: Kube
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    leading: bool = False
    last_contact: float = field(default=0.0)  # monotonic time of the last successful API answer
    _observed: tuple[Any, ...] | None = None
    _observed_at: float = 0.0

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def _spec(self, transitions: int, acquire: str | None) -> dict[str, Any]:
        now = micro_time()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": acquire or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One round: create the Lease, renew ours, or take over an expired one. True while we lead."""
        try:
            lease = await self.kube.request("GET", self.path, attempts=1)
        except ApiError as error:
            if error.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0, None),
            }
            path = self.path.rsplit("/", 1)[0]
            try:
                await self.kube.request("POST", path, body, attempts=1)
            except ApiError as create_error:
                if create_error.status == 409:  # someone else created it first
                    return False
                raise
            self.last_contact = time.monotonic()
            return True
        self.last_contact = time.monotonic()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and now < self._observed_at + duration:
            return False  # held by someone else and not expired (by our clock)
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            new_spec = self._spec(transitions, spec.get("acquireTime"))
        else:
            new_spec = self._spec(transitions + 1, None)
        lease["spec"] = new_spec
        try:
            await self.kube.request("PUT", self.path, lease, attempts=1)
        except ApiError as error:
            if error.status == 409:  # the Lease changed under us: another replica won this round
                return False
            raise
        self.last_contact = time.monotonic()
        return True

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until we lead (True) or `stop` is set (False)."""
        log.info("waiting for lease %s/%s as %s", self.namespace, self.name, self.identity)
        while not stop.is_set():
            try:
                if await self.try_acquire_or_renew():
                    self.leading = True
                    log.info("acquired lease %s/%s", self.namespace, self.name)
                    return True
            except Exception as error:  # API down or forbidden: keep trying, /readyz reports it
                log.warning("lease %s/%s: %s", self.namespace, self.name, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry_period)
        return False

    async def hold(self) -> None:
        """Renew until cancelled; raises LeaseLost if renewing fails for `renew_deadline`."""
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                if await asyncio.wait_for(self.try_acquire_or_renew(), self.renew_deadline):
                    last_renew = time.monotonic()
                    continue
                self.leading = False
                raise LeaseLost(f"lease {self.namespace}/{self.name} was taken over")
            except LeaseLost:
                raise
            except Exception as error:  # API unreachable or slow: retry until the deadline
                log.warning("renewing lease %s/%s failed: %s", self.namespace, self.name, error)
            if time.monotonic() - last_renew > self.renew_deadline:
                self.leading = False
                raise LeaseLost(f"could not renew lease {self.namespace}/{self.name} for {self.renew_deadline}s")

    async def release(self) -> None:
        """Give the Lease up (graceful stop): a follower takes over on its next poll, not after expiry."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self.kube.request("GET", self.path, attempts=1)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"] = {
                **lease["spec"],
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(),
            }
            await self.kube.request("PUT", self.path, lease, attempts=1)
            log.info("released lease %s/%s", self.namespace, self.name)
        except Exception as error:  # best effort: the Lease expires anyway
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, error)
