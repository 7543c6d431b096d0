"""The driver against the real control plane: KWOK nodes, real kube-scheduler allocation, kubelet protocol.

Three `grove driver --backend simulated` processes (one per KWOK node) publish ResourceSlices; claims
from templates using NVIDIA's DeviceClasses are allocated by kube-scheduler; our kubelet client then
prepares each claim on the node the pod was bound to and the CDI spec is checked.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client

from grove.dra.kube import body, raw_json
from grove.dra.kubeletclient import KubeletClient

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DRV = "gpu.nvidia.com"
T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Drivers:
    """One driver process per node, sharing one temp root."""

    def __init__(self, kubeconfig: str, nodes: list[str], sim_config: str, root: Path,
                 extra_args: list[str] | None = None) -> None:
        self.kubeconfig, self.nodes, self.root = kubeconfig, nodes, root
        self.extra_args = extra_args or []
        (root / "sim.yaml").write_text(sim_config)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def dirs(self, node: str) -> tuple[Path, Path, Path]:
        base = self.root / node
        return base / "registry", base / "plugin", base / "cdi"

    def start(self) -> None:
        for node in self.nodes:
            reg, data, cdi = self.dirs(node)
            cmd = [sys.executable, "-m", "grove.cli", "driver", "--node-name", node,
                   "--plugin-registration-dir", str(reg), "--plugin-data-dir", str(data), "--cdi-root", str(cdi),
                   "--backend", "simulated", "--simulated-config", str(self.root / "sim.yaml"),
                   "--kubeconfig", self.kubeconfig, "--resync-seconds", "1", *self.extra_args]
            log = (self.root / f"{node}.log").open("ab")
            self.procs[node] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                                env={**os.environ, "PYTHONPATH": str(REPO)})

    def client(self, node: str, driver: str = DRV) -> KubeletClient:
        reg, _, _ = self.dirs(node)
        wait_for(lambda: (reg / f"{driver}-reg.sock").exists(), 30, f"driver on {node}")
        c = KubeletClient(reg, driver)
        c.register()
        return c

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def drivers(cluster: Any) -> Iterator[Drivers]:
    suffix = uuid.uuid4().hex[:5]
    nodes = cluster.create_nodes(3, f"dra-drv-{suffix}-")
    sim = f"""
nodes:
  {nodes[0]}: {{model: H100-80GB, count: 2}}
  {nodes[1]}: {{model: H100-80GB, count: 1, migLayout: {{0: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}}}}
  {nodes[2]}: {{model: A100-40GB, count: 4, unhealthy: [gpu-3]}}
"""
    cluster.kubectl("apply", "-f", str(REPO / "deploy/dra/deviceclasses.yaml"))
    with tempfile.TemporaryDirectory(prefix="gdra-int-") as d:
        drv = Drivers(str(cluster.kubeconfig), nodes, sim, Path(d))
        drv.start()
        try:
            yield drv
        finally:
            drv.stop()
            from grove.devcluster import delete_nodes

            delete_nodes(cluster.api_client, nodes)


def slices_of(api: client.ResourceV1Api, node: str) -> list[dict[str, Any]]:
    resp = api.list_resource_slice(field_selector=f"spec.nodeName={node},spec.driver={DRV}",
                                   _preload_content=False)
    items: list[dict[str, Any]] = raw_json(resp)["items"]
    return items


def pod(core: client.CoreV1Api, name: str, ns: str) -> dict[str, Any]:
    return raw_json(core.read_namespaced_pod(name, ns, _preload_content=False))


def claim_pod(core: client.CoreV1Api, resource: client.ResourceV1Api, ns: str, name: str,
              request: dict[str, Any], *, node: str | None = None,
              config: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, Any]]:
    """Template + pod; returns the node the pod was bound to and the allocated claim (raw JSON).

    ``node`` pins the pod (nodeSelector on the hostname label); ``config`` becomes the template's
    ``spec.devices.config``."""
    devices: dict[str, Any] = {"requests": [request], **({"config": config} if config else {})}
    resource.create_namespaced_resource_claim_template(ns, body({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate", "metadata": {"name": name},
        "spec": {"spec": {"devices": devices}}}))
    pod_spec: dict[str, Any] = {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": name}],
                                "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                                                "resources": {"claims": [{"name": "gpu"}]}}]}
    if node:
        pod_spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    core.create_namespaced_pod(ns, body({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                         "spec": pod_spec}))

    def claim_name() -> str | None:
        for s in pod(core, name, ns).get("status", {}).get("resourceClaimStatuses") or []:
            if s.get("resourceClaimName"):
                return str(s["resourceClaimName"])
        return None

    cname = wait_for(claim_name, 60, "generated claim")

    def allocated() -> dict[str, Any] | None:
        raw = raw_json(resource.read_namespaced_resource_claim(cname, ns, _preload_content=False))
        return raw if (raw.get("status") or {}).get("allocation") else None

    claim = wait_for(allocated, 60, "allocation by kube-scheduler")
    node = wait_for(lambda: pod(core, name, ns)["spec"].get("nodeName"), 60, "pod bound")
    return str(node), claim


def test_slices_allocation_prepare_unprepare(cluster: Any, namespace: str, drivers: Drivers) -> None:
    resource = client.ResourceV1Api(cluster.api_client)
    core = client.CoreV1Api(cluster.api_client)
    n_full, n_mig, n_a100 = drivers.nodes

    # 1. every node's driver publishes its pool, owned by the Node
    for node, count in ((n_full, 2), (n_mig, 4), (n_a100, 4)):
        slices = wait_for(functools.partial(slices_of, resource, node), 60, f"slices of {node}")
        assert len(slices) == 1
        spec = slices[0]["spec"]
        assert spec["pool"]["name"] == node and spec["nodeName"] == node
        assert len(spec["devices"]) == count
        owner = slices[0]["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "Node" and owner["name"] == node
    # an unhealthy device is tainted (the API server accepts it and adds timeAdded)
    [a100] = slices_of(resource, n_a100)
    tainted = {d["name"]: d["taints"] for d in a100["spec"]["devices"] if d.get("taints")}
    assert list(tainted) == ["gpu-3"]
    assert {k: v for k, v in tainted["gpu-3"][0].items() if k != "timeAdded"} == {
        "key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule"}
    assert tainted["gpu-3"][0].get("timeAdded")

    # periodic re-publication against the real API server writes nothing when nothing changed
    before = {s["metadata"]["resourceVersion"] for n in drivers.nodes for s in slices_of(resource, n)}
    time.sleep(2.5)
    assert {s["metadata"]["resourceVersion"] for n in drivers.nodes for s in slices_of(resource, n)} == before
    assert {s["spec"]["pool"]["generation"] for n in drivers.nodes for s in slices_of(resource, n)} == {1}
    mig_names = [d["name"] for d in slices_of(resource, n_mig)[0]["spec"]["devices"]]
    assert "gpu-0-mig-1g10gb-19-2" in mig_names and "gpu-0" not in mig_names

    # 2. two H100s by product name: only n_full has two full H100s
    node, claim = claim_pod(core, resource, namespace, "two-h100", {"name": "gpus", "exactly": {
        "deviceClassName": "gpu.nvidia.com", "count": 2,
        "selectors": [{"cel": {"expression":
                               "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100 80GB HBM3'"}}]}})
    assert node == n_full
    results = claim["status"]["allocation"]["devices"]["results"]
    assert sorted(r["device"] for r in results) == ["gpu-0", "gpu-1"] and {r["pool"] for r in results} == {n_full}

    kc = drivers.client(n_full)
    meta = claim["metadata"]
    out = kc.prepare([(namespace, meta["name"], meta["uid"])])[meta["uid"]]
    assert out.error == ""
    assert sorted(d["deviceName"] for d in out.devices) == ["gpu-0", "gpu-1"]
    assert all(d["requestNames"] == ["gpus"] and d["poolName"] == n_full for d in out.devices)
    _, _, cdi_root = drivers.dirs(n_full)
    spec = json.loads((cdi_root / f"k8s.gpu.nvidia.com-claim_{meta['uid']}.json").read_text())
    assert spec["kind"] == "k8s.gpu.nvidia.com/claim"
    ids = {i for d in out.devices for i in d["cdiDeviceIds"]}
    assert ids == {f"k8s.gpu.nvidia.com/claim={d['name']}" for d in spec["devices"]}
    # preparing on the wrong node's driver fails clearly
    wrong = drivers.client(n_a100).prepare([(namespace, meta["name"], meta["uid"])])[meta["uid"]]
    assert "is not on node" in wrong.error

    # 3. a MIG slice by profile lands on the MIG node
    node2, mclaim = claim_pod(core, resource, namespace, "one-mig", {"name": "mig", "exactly": {
        "deviceClassName": "mig.nvidia.com",
        "selectors": [{"cel": {"expression": "device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"}}]}})
    assert node2 == n_mig
    [mres] = mclaim["status"]["allocation"]["devices"]["results"]
    assert mres["device"].startswith("gpu-0-mig-1g10gb-19-")
    mm = mclaim["metadata"]
    mout = drivers.client(n_mig).prepare([(namespace, mm["name"], mm["uid"])])[mm["uid"]]
    assert mout.error == "" and mout.devices[0]["deviceName"] == mres["device"]

    # 4. the tainted A100 is not allocated unless the request tolerates the taint
    a100_req: dict[str, Any] = {"name": "gpus", "exactly": {
        "deviceClassName": "gpu.nvidia.com", "count": 4,
        "selectors": [{"cel": {"expression": "device.attributes['gpu.nvidia.com'].architecture == 'Ampere'"}}]}}
    resource.create_namespaced_resource_claim_template(namespace, body({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate", "metadata": {"name": "four-a100"},
        "spec": {"spec": {"devices": {"requests": [a100_req]}}}}))
    core.create_namespaced_pod(namespace, body({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "four-a100"},
        "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "four-a100"}],
                 "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"claims": [{"name": "gpu"}]}}]}}))

    def unschedulable() -> bool:
        conds = pod(core, "four-a100", namespace).get("status", {}).get("conditions") or []
        return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conds)

    wait_for(unschedulable, 60, "four-a100 reported Unschedulable (one A100 is tainted)")
    a100_req["exactly"]["tolerations"] = [
        {"key": "gpu.nvidia.com/xid", "operator": "Exists", "effect": "NoSchedule"}]
    node4, claim4 = claim_pod(core, resource, namespace, "four-a100-tolerating", a100_req)
    assert node4 == n_a100
    assert "gpu-3" in {r["device"] for r in claim4["status"]["allocation"]["devices"]["results"]}

    # 5. unprepare cleans up (twice: idempotent)
    for _ in range(2):
        assert kc.unprepare([(namespace, meta["name"], meta["uid"])]) == {meta["uid"]: ""}
    assert not (cdi_root / f"k8s.gpu.nvidia.com-claim_{meta['uid']}.json").exists()

    # 6. SIGTERM removes the node's slices
    drivers.stop()
    for node in drivers.nodes:
        wait_for(functools.partial(lambda n: not slices_of(resource, n) or None, node), 30, f"{node} slices deleted")


def test_failing_simulated_gpus_get_nvidias_taints(cluster: Any, namespace: str, drivers: Drivers) -> None:
    """Issue 14: a simulated GPU made to fail while its driver runs (by editing the simulated hardware file)
    is tainted in its ResourceSlice with NVIDIA's keys and values, as the API server stores them; a claim that
    tolerates NVIDIA's key gets the device, one that does not is never given it; recovery removes the taints."""
    resource = client.ResourceV1Api(cluster.api_client)
    core = client.CoreV1Api(cluster.api_client)
    n_full = drivers.nodes[0]
    wait_for(functools.partial(slices_of, resource, n_full), 60, f"slices of {n_full}")
    sim = drivers.root / "sim.yaml"
    healthy = sim.read_text()
    sim.write_text(healthy.replace("{model: H100-80GB, count: 2}",
                                   "{model: H100-80GB, count: 2, unhealthy: {gpu-0: gpu-lost, gpu-1: 31}}"))

    def taints() -> dict[str, list[dict[str, str]]]:
        [s] = slices_of(resource, n_full)
        return {d["name"]: [{k: v for k, v in t.items() if k != "timeAdded"} for t in d["taints"]]
                for d in s["spec"]["devices"] if d.get("taints")}

    assert wait_for(lambda: len(taints()) == 2 and taints(), 30, "taints published") == {
        "gpu-0": [{"key": "gpu.nvidia.com/gpu-lost", "effect": "NoSchedule"}],
        "gpu-1": [{"key": "gpu.nvidia.com/xid", "value": "31", "effect": "None"}],  # non-fatal: informational
    }
    # the lost GPU is not allocated without a toleration; the informational taint does not keep pods off gpu-1
    req = {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2}}
    core.create_namespaced_pod(namespace, body({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "two"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": n_full},
                 "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "two"}],
                 "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"claims": [{"name": "gpu"}]}}]}}))
    resource.create_namespaced_resource_claim_template(namespace, body({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate", "metadata": {"name": "two"},
        "spec": {"spec": {"devices": {"requests": [req]}}}}))

    def unschedulable() -> bool:
        conds = pod(core, "two", namespace).get("status", {}).get("conditions") or []
        return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conds)

    wait_for(unschedulable, 60, "two GPUs on a node with a lost one: Unschedulable")
    req["exactly"]["tolerations"] = [{"key": "gpu.nvidia.com/gpu-lost", "operator": "Exists"}]
    _, claim = claim_pod(core, resource, namespace, "two-tolerating", req, node=n_full)
    assert sorted(r["device"] for r in claim["status"]["allocation"]["devices"]["results"]) == ["gpu-0", "gpu-1"]
    # the hardware recovers (simulated): the taints go
    sim.write_text(healthy)
    wait_for(lambda: not taints(), 30, "taints removed")


def test_deploy_manifests_are_accepted(cluster: Any) -> None:
    """RBAC + the slice-guarding ValidatingAdmissionPolicy work for real (checked by impersonating the
    driver's ServiceAccount); the DaemonSet passes server-side dry-run; the DeviceClasses exist."""
    cluster.kubectl("apply", "-f", str(REPO / "deploy/dra/deviceclasses.yaml"))
    cluster.kubectl("apply", "-f", str(REPO / "deploy/dra/rbac.yaml"))
    out = cluster.kubectl("apply", "--dry-run=server", "-f", str(REPO / "deploy/dra/daemonset.yaml"))
    assert "grove-dra-driver" in out.stdout

    # the ValidatingAdmissionPolicy: the driver's ServiceAccount may only write its own node's slices
    sa = "--as=system:serviceaccount:grove-system:grove-dra-driver"
    extra = "--as-user-extra=authentication.kubernetes.io/node-name=node-x"

    def create_slice(node: str, *who: str) -> Any:
        body = json.dumps({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                           "metadata": {"name": f"vap-test-{node}"},
                           "spec": {"driver": DRV, "nodeName": node, "pool": {"name": node, "generation": 1,
                                                                             "resourceSliceCount": 1}}})
        return cluster.kubectl("create", "--dry-run=server", *who, "-f", "-", input=body, check=False)

    def admitted() -> bool | None:  # the policy becomes active asynchronously
        return create_slice("node-y", sa, extra).returncode != 0 or None

    wait_for(admitted, 30, "policy active")
    denied = create_slice("node-y", sa, extra)
    assert "may only modify ResourceSlices of the node it runs on" in denied.stderr
    assert create_slice("node-x", sa, extra).returncode == 0, create_slice("node-x", sa, extra).stderr
    assert "carries no node name" in create_slice("node-x", sa).stderr
    assert create_slice("node-y").returncode == 0  # other users (the kubelet, admins) are unaffected
    names = set(cluster.kubectl("get", "deviceclasses", "-o", "name").stdout.split())
    assert {f"deviceclass.resource.k8s.io/{n}" for n in (
        "gpu.nvidia.com", "mig.nvidia.com", "compute-domain-default-channel.nvidia.com",
        "compute-domain-daemon.nvidia.com")} <= names
    can = cluster.kubectl("auth", "can-i", "create", "resourceslices.resource.k8s.io",
                          "--as=system:serviceaccount:grove-system:grove-dra-driver", check=False)
    assert can.stdout.strip() == "yes"
    lease = cluster.kubectl("auth", "can-i", "update", "leases.coordination.k8s.io", "-n", "grove-system",
                            "--as=system:serviceaccount:grove-system:grove-dra-driver", check=False)
    assert lease.stdout.strip() == "yes"  # one driver per node: the node's Lease
