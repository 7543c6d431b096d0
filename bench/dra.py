"""Benchmark the DRA node driver: NodePrepareResources latency and time to ResourceSlices.

    .venv/bin/python bench/dra.py [--claims 100] [--starts 5] [--fake-api]

* Prepare/unprepare latency (p50/p99) for claims of 1 and 8 simulated devices, and for 1-device claims
  with NVIDIA's sharing configs: time-sliced (``GpuConfig`` TimeSlicing/Long) and MPS (the driver starts
  one control daemon per claim, a real stand-in process, and stops it at unprepare), measured at the kubelet's
  side of the unix socket with ``grove.dra.kubeletclient`` (exactly the kubelet's calls). Each prepare
  reads its ResourceClaim from the API server. Claims are created in the API server with their
  allocation written to status directly (what kube-scheduler would write), so scheduling time is not
  in the figure.
* Time from driver process start (``Popen`` of ``python -m grove.cli driver``, i.e. ``grove driver``
  including Python start-up and imports) to the node's ResourceSlices being visible in the API, and
  the driver's own logged figure (from its start(), after imports).

The API server is the real local control plane (``grove.devcluster``, binaries in ``.cache/bin``) when
available; otherwise (or with ``--fake-api``) an in-memory fake, and the output says so.
Writes ``bench/results/dra.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client, config  # noqa: E402

from grove.dra.kubeletclient import KubeletClient  # noqa: E402

DRV = "gpu.nvidia.com"
GPUS = 16
SHARING: dict[str, list[dict[str, Any]]] = {
    "exclusive": [],
    "timeslicing": [{"source": "FromClaim", "requests": ["gpus"], "opaque": {"driver": DRV, "parameters": {
        "apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig",
        "sharing": {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}}}}}],
    "mps": [{"source": "FromClaim", "requests": ["gpus"], "opaque": {"driver": DRV, "parameters": {
        "apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig",
        "sharing": {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 50}}}}}],
}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


class Api:
    """Real control plane if possible, else the in-memory fake."""

    def __init__(self, workdir: Path, force_fake: bool) -> None:
        self.kind = "fake"
        self.note = ""
        self.dev: Any = None
        self.fake: Any = None
        if not force_fake:
            try:
                from grove.devcluster import DevCluster, default_bin_dir, missing_binaries

                missing = missing_binaries(default_bin_dir())
                if missing:
                    raise RuntimeError(f"binaries missing: {missing}")
                self.dev = DevCluster(workdir / "cluster", default_bin_dir(), initial_nodes=1)
                self.dev.start()
                self.kind = "real (grove.devcluster: etcd + kube-apiserver v1.37, KWOK node)"
                self.kubeconfig = str(self.dev.kubeconfig)
                self.api_client = self.dev.api_client
                self.node = self.dev.create_nodes(1, "bench-dra-")[0]
                return
            except Exception as e:
                if self.dev is not None:
                    self.dev.stop()
                    self.dev = None
                first = (str(e).splitlines() or [type(e).__name__])[0][:200]
                self.note = f"real control plane unavailable ({first}); used in-memory fake API server"
        sys.path.insert(0, str(REPO / "tests" / "dra"))
        from dra_fakeapi import FakeApi

        self.fake = FakeApi().start()
        self.node = "bench-dra-0"
        self.fake.add_node(self.node)
        self.kubeconfig = str(self.fake.kubeconfig(workdir / "kubeconfig"))
        self.api_client = config.new_client_from_config(config_file=self.kubeconfig)
        self.kind = "fake (in-memory HTTP, tests/dra/dra_fakeapi.py)"

    def make_claim(self, ns: str, name: str, devices: list[str], config: list[dict[str, Any]]) -> str:
        if self.fake is not None:
            results = [{"request": "gpus", "driver": DRV, "pool": self.node, "device": d} for d in devices]
            return str(self.fake.add_claim(ns, name, results, config=config))
        api = client.ResourceV1Api(self.api_client)
        created = api.create_namespaced_resource_claim(ns, {
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": name},
            "spec": {"devices": {"requests": [{"name": "gpus", "exactly": {
                "deviceClassName": DRV, "allocationMode": "ExactCount", "count": len(devices)}}],
                **({"config": [{k: v for k, v in c.items() if k != "source"} for c in config]} if config else {})}}})
        body = client.ApiClient().sanitize_for_serialization(created)
        body["status"] = {"allocation": {"devices": {"results": [
            {"request": "gpus", "driver": DRV, "pool": self.node, "device": d} for d in devices],
            **({"config": config} if config else {})}}}
        api.replace_namespaced_resource_claim_status(name, ns, body)
        return str(created.metadata.uid)

    def namespace(self) -> str:
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        if self.fake is None:
            client.CoreV1Api(self.api_client).create_namespace({"metadata": {"name": ns}})
        return ns

    def slices_visible(self) -> bool:
        if self.fake is not None:
            return bool(self.fake.slices_for(self.node))
        resp = client.ResourceV1Api(self.api_client).list_resource_slice(
            field_selector=f"spec.nodeName={self.node},spec.driver={DRV}", _preload_content=False)
        return bool(json.loads(resp.data)["items"])

    def close(self) -> None:
        if self.dev is not None:
            self.dev.stop()
        if self.fake is not None:
            self.fake.stop()


class Driver:
    def __init__(self, api: Api, root: Path) -> None:
        self.api, self.root = api, root
        (root / "sim.yaml").write_text(f"nodes: {{{api.node}: {{model: H100-80GB, count: {GPUS}}}}}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> tuple[float, float | None]:
        """Start; seconds until the node's slices are visible in the API server, and the driver's own
        figure (from its start() after Python imports, as logged)."""
        t0 = time.perf_counter()
        log = self.root / "driver.log"
        offset = log.stat().st_size if log.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grove.cli", "driver", "--node-name", self.api.node,
             "--plugin-registration-dir", str(self.root / "reg"), "--plugin-data-dir", str(self.root / "data"),
             "--cdi-root", str(self.root / "cdi"), "--backend", "simulated",
             "--simulated-config", str(self.root / "sim.yaml"), "--kubeconfig", self.api.kubeconfig,
             "--log-level", "INFO"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=(self.root / "driver.log").open("ab"), stderr=subprocess.STDOUT)
        while not self.api.slices_visible():
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "driver.log").read_text())
            time.sleep(0.005)
        elapsed = time.perf_counter() - t0
        internal = None
        deadline = time.monotonic() + 5
        while internal is None and time.monotonic() < deadline:
            m = re.search(r"ResourceSlices published ([0-9.]+)s after start", log.read_text()[offset:])
            internal = float(m.group(1)) if m else None
            time.sleep(0.02)
        return elapsed, internal

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        deadline = time.monotonic() + 30
        while self.api.slices_visible() and time.monotonic() < deadline:
            time.sleep(0.05)


def bench_prepare(
    api: Api, kc: KubeletClient, ns: str, size: int, n: int, sharing: str = "exclusive"
) -> dict[str, Any]:
    claims = []
    for i in range(n):
        devices = [f"gpu-{(i * size + j) % GPUS}" for j in range(size)]
        name = f"c{size}-{sharing}-{i}"
        claims.append((ns, name, api.make_claim(ns, name, devices, SHARING[sharing])))
    prep, again, unprep = [], [], []
    for c in claims:
        t = time.perf_counter()
        out = kc.prepare([c])
        prep.append(time.perf_counter() - t)
        assert out[c[2]].error == "", out[c[2]].error
        assert len(out[c[2]].devices) == size
        t = time.perf_counter()
        kc.prepare([c])
        again.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert kc.unprepare([c]) == {c[2]: ""}
        unprep.append(time.perf_counter() - t)

    def ms(v: list[float]) -> dict[str, float]:
        return {"p50_ms": round(pct(v, 50) * 1e3, 2), "p99_ms": round(pct(v, 99) * 1e3, 2),
                "mean_ms": round(statistics.fmean(v) * 1e3, 2)}

    return {"sharing": sharing, "devices_per_claim": size, "claims": n, "prepare": ms(prep),
            "prepare_repeat": ms(again), "unprepare": ms(unprep)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", type=int, default=100, help="claims per size")
    ap.add_argument("--starts", type=int, default=5, help="driver starts for the time-to-slices figure")
    ap.add_argument("--fake-api", action="store_true", help="don't start the local control plane")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dra.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gdra-bench-") as d:
        root = Path(d)
        api = Api(root, args.fake_api)
        try:
            drv = Driver(api, root)
            starts, internal = [], []
            for _ in range(args.starts):
                total, own = drv.start()
                starts.append(total)
                if own is not None:
                    internal.append(own)
                drv.stop()
            drv.start()
            kc = KubeletClient(root / "reg", DRV)
            kc.register()
            ns = api.namespace()
            rows = [bench_prepare(api, kc, ns, size, args.claims) for size in (1, 8)]
            rows += [bench_prepare(api, kc, ns, 1, args.claims, sharing) for sharing in ("timeslicing", "mps")]
            kc.close()
            drv.stop()
        finally:
            api.close()
    result = {
        "api_server": api.kind, "note": api.note,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "simulated_gpus": GPUS,
        "time_to_slices_s": {"runs": [round(s, 3) for s in starts], "p50": round(pct(starts, 50), 3),
                             "max": round(max(starts), 3),
                             "driver_internal_p50": round(pct(internal, 50), 3) if internal else None},
        "prepare": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"API server: {api.kind}" + (f"\nNOTE: {api.note}" if api.note else ""))
    print(f"driver start -> ResourceSlices visible: p50 {result['time_to_slices_s']['p50']:.3f}s "
          f"max {result['time_to_slices_s']['max']:.3f}s over {len(starts)} starts ({GPUS} simulated GPUs); "
          f"driver-internal (after imports) p50 {result['time_to_slices_s']['driver_internal_p50']}s")
    print(f"host: {os.cpu_count()} CPUs, load average {result['host']['loadavg_1m_at_end']} at the end")
    print(f"{'sharing':>11} {'devices/claim':>13} {'claims':>6} | {'prepare p50':>11} {'p99':>8} | "
          f"{'re-prepare p50':>14} {'p99':>8} | {'unprepare p50':>13} {'p99':>8}")
    for r in rows:
        print(f"{r['sharing']:>11} {r['devices_per_claim']:>13} {r['claims']:>6} | {r['prepare']['p50_ms']:>9.2f}ms "
              f"{r['prepare']['p99_ms']:>6.2f}ms | {r['prepare_repeat']['p50_ms']:>12.2f}ms "
              f"{r['prepare_repeat']['p99_ms']:>6.2f}ms | {r['unprepare']['p50_ms']:>11.2f}ms "
              f"{r['unprepare']['p99_ms']:>6.2f}ms")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
