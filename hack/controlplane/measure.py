"""Measure the local control plane: startup time, RSS of its five processes at idle and under a Deployment,
and how long N replicas take to be Running on KWOK nodes. Usage:

    .venv/bin/python hack/controlplane/measure.py [--replicas 3 1000]

Prints one JSON document; the figures back the numbers quoted for issue #2.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client

from grove.devcluster import DevCluster
from grove.devcluster.processes import ProcessRecord


def rss_mib(records: list[ProcessRecord]) -> dict[str, float]:
    out = {}
    for rec in records:
        try:
            out[rec.name] = round(psutil.Process(rec.pid).memory_info().rss / 2**20, 1)
        except psutil.NoSuchProcess:
            out[rec.name] = 0.0
    out["total"] = round(sum(out.values()), 1)
    return out


def run_deployment(dev: DevCluster, replicas: int, peak: dict[str, float]) -> dict[str, Any]:
    apps = client.AppsV1Api(dev.api_client)
    core = client.CoreV1Api(dev.api_client)
    ns = f"measure-{replicas}"
    core.create_namespace({"metadata": {"name": ns}})  # type: ignore[arg-type]
    while True:
        try:
            core.read_namespaced_service_account("default", ns)
            break
        except client.ApiException:
            time.sleep(0.1)
    labels = {"app": "m"}
    t0 = time.monotonic()
    apps.create_namespaced_deployment(
        ns,
        {  # type: ignore[arg-type]
            "metadata": {"name": "m"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
                },
            },
        },
    )
    while True:
        sample = rss_mib(dev.records)
        if sample["total"] > peak.get("total", 0):
            peak.clear()
            peak.update(sample)
        pods = core.list_namespaced_pod(ns, label_selector="app=m").items
        running = len([p for p in pods if p.status and p.status.phase == "Running"])
        if running == replicas or time.monotonic() - t0 > 300:
            break
        time.sleep(0.5)
    ready_s = time.monotonic() - t0
    during = rss_mib(dev.records)
    t1 = time.monotonic()
    apps.delete_namespaced_deployment("m", ns, propagation_policy="Background")
    while core.list_namespaced_pod(ns, label_selector="app=m").items:
        time.sleep(0.5)
    gc_s = time.monotonic() - t1
    core.delete_namespace(ns)
    return {
        "replicas": replicas,
        "running": running,
        "all_running_s": round(ready_s, 1),
        "gc_s": round(gc_s, 1),
        "rss_mib": during,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, nargs="+", default=[3])
    parser.add_argument("--nodes", type=int, default=5, help="KWOK nodes (250 pods each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        dev = DevCluster(Path(tmp), initial_nodes=args.nodes)
        with dev:
            result: dict[str, Any] = {"startup_s": round(dev.startup_seconds or 0, 1)}
            time.sleep(15)  # let bootstrap controllers settle
            result["idle_rss_mib"] = rss_mib(dev.records)
            peak: dict[str, float] = {}
            result["deployments"] = [run_deployment(dev, n, peak) for n in args.replicas]
            result["peak_rss_mib"] = peak
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
