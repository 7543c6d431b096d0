"""Operator metrics (issue #10) without a cluster: REST paths map to resources, reconciles are counted by
result, and the scrape-time gauges read the caches and the queue."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from controllers import cache as caches
from controllers import metrics


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/namespaces/ns/pods", "pods"),
        ("/api/v1/namespaces/ns/pods/p-0", "pods"),
        ("/apis/grove.io/v1alpha1/namespaces/ns/podcliques/x/status", "podcliques/status"),
        ("/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", "leases"),
        ("/api/v1/nodes/n1", "nodes"),
        ("/apis/resource.k8s.io/v1/namespaces/ns/resourceclaims?dryRun=All", "resourceclaims"),
    ],
)
def test_resource_of(path: str, resource: str) -> None:
    assert metrics.resource_of(path) == resource


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_reconciles_are_counted_and_timed_by_result() -> None:
    ok, bad = (
        value("grove_reconcile_total", kind="T", result="success"),
        value("grove_reconcile_total", kind="T", result="error"),
    )
    count = value("grove_reconcile_duration_seconds_count", kind="T")

    async def fine(key: object, hints: object) -> None:
        return None

    async def broken(key: object, hints: object) -> None:
        raise RuntimeError("boom")

    asyncio.run(metrics.instrument(fine)(("T", "ns", "a"), None))
    with pytest.raises(RuntimeError):
        asyncio.run(metrics.instrument(broken)(("T", "ns", "b"), None))
    assert value("grove_reconcile_total", kind="T", result="success") == ok + 1
    assert value("grove_reconcile_total", kind="T", result="error") == bad + 1
    assert value("grove_reconcile_duration_seconds_count", kind="T") == count + 2


def test_writes_by_verb_and_resource_and_errors_by_code() -> None:
    before = value("grove_api_writes_total", verb="POST", resource="podgangs")
    metrics.record_request("POST", "/apis/scheduler.grove.io/v1alpha1/namespaces/ns/podgangs", 201)
    metrics.record_request("GET", "/apis/scheduler.grove.io/v1alpha1/namespaces/ns/podgangs/g", 200)
    metrics.record_request("POST", "/apis/scheduler.grove.io/v1alpha1/namespaces/ns/podgangs", 409)
    assert value("grove_api_writes_total", verb="POST", resource="podgangs") == before + 2
    assert value("grove_api_writes_total", verb="GET", resource="podgangs") == 0
    assert value("grove_api_errors_total", verb="POST", resource="podgangs", code="409") >= 1


def test_state_collector_reads_caches_and_queue() -> None:
    pod = SimpleNamespace(gated=True)
    indexes = {
        caches.PCS: {("name", "ns", "a"): [{}], ("name", "ns", "b"): [{}]},
        caches.PCLQ: {("name", "ns", "a-0-x"): [{}], ("pcs", "ns", "a"): ["a-0-x"]},
        caches.PODS: {("pclq", "ns", "a-0-x"): [pod, SimpleNamespace(gated=False)]},
    }
    queue = SimpleNamespace(scheduled={1, 2, 3}, running={4})
    registry = CollectorRegistry()
    registry.register(metrics.StateCollector(lambda: indexes, lambda: queue))
    assert registry.get_sample_value("grove_objects_managed", {"kind": "PodCliqueSet"}) == 2
    assert registry.get_sample_value("grove_objects_managed", {"kind": "PodClique"}) == 1
    assert registry.get_sample_value("grove_objects_managed", {"kind": "Pod"}) == 2
    assert registry.get_sample_value("grove_objects_managed", {"kind": "PodGang"}) == 0
    assert registry.get_sample_value("grove_pods_gated", {}) == 1
    assert registry.get_sample_value("grove_workqueue_depth", {}) == 3
    assert registry.get_sample_value("grove_workqueue_running", {}) == 1
