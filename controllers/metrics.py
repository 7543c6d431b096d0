"""Prometheus metrics of the operator (issue #10), recorded at the shared seams only: the work-queue dispatch
(reconciles per kind), `Kube` requests (API writes by verb and resource) and, at scrape time, the caches
(objects managed, pods still gated) and the queue (depth). Served by `controllers.serving`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controllers import cache as caches
from controllers.queue_keys import PCLQ, PCS, PCSG

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "grove_reconcile", "Reconciles run, by kind and result (success, error).", ["kind", "result"], registry=REGISTRY
)
RECONCILE_SECONDS = Histogram(
    "grove_reconcile_duration_seconds",
    "Time one reconcile took, by kind.",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
API_WRITES = Counter(
    "grove_api_writes", "API write requests sent, by verb and resource.", ["verb", "resource"], registry=REGISTRY
)
API_ERRORS = Counter(
    "grove_api_errors",
    "API requests answered with an error status, by verb, resource and code.",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "grove_leader", "1 while this operator holds the leader lease (or runs without election).", registry=REGISTRY
)

# Index id -> the kind it holds (one "name" key per object; pods are keyed by PodClique).
_MANAGED = {
    caches.PCS: "PodCliqueSet",
    caches.PCSG: "PodCliqueScalingGroup",
    caches.PCLQ: "PodClique",
    caches.GANGS: "PodGang",
    caches.SERVICES: "Service",
    caches.HPAS: "HorizontalPodAutoscaler",
}


_QUEUE_KINDS = {PCS: "PodCliqueSet", PCSG: "PodCliqueScalingGroup", PCLQ: "PodClique"}


def resource_of(path: str) -> str:
    """`pods`, `podcliques/status`... from a REST path (namespaced or not; the object name is dropped)."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        parts = parts[parts.index("namespaces") + 2 :]
    else:
        parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if not parts:
        return "unknown"
    return parts[0] if len(parts) < 3 else f"{parts[0]}/{parts[2]}"


def record_request(method: str, path: str, status: int | None) -> None:
    """One API request (called by `Kube` for every attempt)."""
    resource = resource_of(path)
    if method != "GET":
        API_WRITES.labels(method, resource).inc()
    if status is not None and status >= 400:
        API_ERRORS.labels(method, resource, str(status)).inc()


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    """Count and time one reconcile of `kind`; an exception counts as an error (and propagates)."""
    start = time.perf_counter()
    result = "error"
    try:
        yield
        result = "success"
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - start)
        RECONCILES.labels(kind, result).inc()


def instrument(handler: Callable[[Any, Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
    """Wrap the work queue's handler (key = (kind, namespace, name))."""

    async def handle(key: Any, hints: Any) -> None:
        with reconciling(_QUEUE_KINDS.get(key[0], key[0])):
            await handler(key, hints)

    return handle


class StateCollector(Collector):
    """Gauges read at scrape time from the caches and the queue, on the operator's event loop (the metrics
    endpoint runs there, so the kopf indexes are never read while they change)."""

    def __init__(self, indexes: Callable[[], Mapping[str, Mapping[Any, Iterable[Any]]]], queue: Callable[[], Any]):
        self.indexes = indexes
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        managed = GaugeMetricFamily(
            "grove_objects_managed", "Objects in the operator's caches, by kind.", labels=["kind"]
        )
        gated = GaugeMetricFamily("grove_pods_gated", "Grove pods still carrying the podgang scheduling gate.")
        indexes = self.indexes()
        for index_id, kind in _MANAGED.items():
            index = indexes.get(index_id) or {}
            managed.add_metric([kind], sum(1 for key in index if key[0] == "name"))
        pods = [view for views in (indexes.get(caches.PODS) or {}).values() for view in views]
        managed.add_metric(["Pod"], len(pods))
        gated.add_metric([], sum(1 for view in pods if view.gated))
        yield managed
        yield gated
        queue = self.queue()
        depth = GaugeMetricFamily("grove_workqueue_depth", "Keys waiting in the work queue (not yet running).")
        running = GaugeMetricFamily("grove_workqueue_running", "Keys being reconciled now.")
        depth.add_metric([], len(queue.scheduled) if queue is not None else 0)
        running.add_metric([], len(queue.running) if queue is not None else 0)
        yield depth
        yield running

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
