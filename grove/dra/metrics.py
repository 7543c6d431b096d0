"""Prometheus metrics of the DRA node driver (issue #10): NodePrepareResources / NodeUnprepareResources
calls (claims by result, latency per call) and the devices this driver publishes. Served on
`--metrics-port` by prometheus-client's own HTTP thread (the driver is threaded, gRPC included)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)
_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

CLAIMS = Counter(
    "grove_dra_claims",
    "Claims handled, by operation (prepare, unprepare) and result.",
    ["op", "result"],
    registry=REGISTRY,
)
SECONDS = Histogram(
    "grove_dra_request_duration_seconds",
    "Time one NodePrepareResources / NodeUnprepareResources call took, by operation.",
    ["op"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
DEVICES = Gauge(
    "grove_dra_devices_published", "Devices in this node's ResourceSlices, by driver.", ["driver"], registry=REGISTRY
)


@contextmanager
def timed(op: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        SECONDS.labels(op).observe(time.perf_counter() - start)


def count(op: str, errors: Mapping[str, Any]) -> None:
    """One call's per-claim outcome: `errors` maps claim uid to its error ("" or None: success)."""
    for error in errors.values():
        CLAIMS.labels(op, "error" if error else "success").inc()


def serve(port: int) -> Any:
    """Start the /metrics endpoint (port 0: off); returns the server to shut down, or None."""
    if not port:
        return None
    server, _ = start_http_server(port, registry=REGISTRY)
    return server
