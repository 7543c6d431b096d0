"""Claims and pods written the way NVIDIA's quickstart and e2e tests write them, against the real control plane.

Each case is applied unchanged in shape (ResourceClaimTemplate or ResourceClaim + Pods, NVIDIA's
DeviceClasses and opaque configs), allocated by the real kube-scheduler against the simulated driver's
ResourceSlices, prepared through the kubelet protocol client on the node the pod was bound to, and the
CDI spec is checked field by field. An unknown opaque-config field is refused per claim.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from test_dra_integration import REPO, Drivers, pod, slices_of, wait_for

from grove.dra.kube import body, raw_json
from grove.dra.mps import MpsManager, StandinLauncher

pytestmark = pytest.mark.integration

DRV, CD = "gpu.nvidia.com", "compute-domain.nvidia.com"
PAUSE = "registry.k8s.io/pause:3.10"


def gpu_config(sharing: dict[str, Any], requests: list[str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"opaque": {"driver": DRV, "parameters": {
        "apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig", "sharing": sharing}}}
    if requests:
        entry["requests"] = requests
    return entry


@pytest.fixture
def corpus(cluster: Any) -> Iterator[tuple[Drivers, list[str]]]:
    suffix = uuid.uuid4().hex[:5]
    nodes = cluster.create_nodes(3, f"dra-nv-{suffix}-")
    sim = f"""
nodes:
  {nodes[0]}: {{model: H100-80GB, count: 4}}
  {nodes[1]}: {{model: H100-80GB, count: 1, migLayout: {{0: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}}}}
  {nodes[2]}: {{model: L4, count: 12}}
"""
    cluster.kubectl("apply", "-f", str(REPO / "deploy/dra/deviceclasses.yaml"))
    with tempfile.TemporaryDirectory(prefix="gdra-nv-") as d:
        drv = Drivers(str(cluster.kubeconfig), nodes, sim, Path(d), ["--compute-domain-channels"])
        drv.start()
        try:
            yield drv, nodes
        finally:
            drv.stop()
            for n in nodes:  # unprepare leaves no daemon; a failed test must not leave one either
                _, data, _ = drv.dirs(n)
                mgr = MpsManager(data / "mps", StandinLauncher())
                for pids in mgr.running().values():
                    mgr.kill(pids)
            from grove.devcluster import delete_nodes

            delete_nodes(cluster.api_client, nodes)


class Corpus:
    def __init__(self, cluster: Any, ns: str, drivers: Drivers) -> None:
        self.resource = client.ResourceV1Api(cluster.api_client)
        self.core = client.CoreV1Api(cluster.api_client)
        self.ns, self.drivers = ns, drivers

    def template(self, name: str, requests: list[dict[str, Any]], config: list[dict[str, Any]] | None = None,
                 kind: str = "ResourceClaimTemplate") -> None:
        devices: dict[str, Any] = {"requests": requests, **({"config": config} if config else {})}
        spec = {"spec": {"devices": devices}} if kind == "ResourceClaimTemplate" else {"devices": devices}
        obj = {"apiVersion": "resource.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        if kind == "ResourceClaimTemplate":
            self.resource.create_namespaced_resource_claim_template(self.ns, body(obj))
        else:
            self.resource.create_namespaced_resource_claim(self.ns, body(obj))

    def pod(self, name: str, claims: dict[str, dict[str, str]], containers: dict[str, list[dict[str, str]]]) -> None:
        self.core.create_namespaced_pod(self.ns, body({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"resourceClaims": [{"name": k, **v} for k, v in claims.items()],
                     "containers": [{"name": c, "image": PAUSE, "resources": {"claims": refs}}
                                    for c, refs in containers.items()]}}))

    def claim_of(self, pod_name: str, local: str) -> dict[str, Any]:
        def name() -> str | None:
            spec_claims = pod(self.core, pod_name, self.ns)["spec"]["resourceClaims"]
            direct = next((c.get("resourceClaimName") for c in spec_claims if c["name"] == local), None)
            if direct:
                return str(direct)
            for s in pod(self.core, pod_name, self.ns).get("status", {}).get("resourceClaimStatuses") or []:
                if s["name"] == local and s.get("resourceClaimName"):
                    return str(s["resourceClaimName"])
            return None

        cname = wait_for(name, 60, f"claim {local} of {pod_name}")

        def allocated() -> dict[str, Any] | None:
            raw = raw_json(self.resource.read_namespaced_resource_claim(cname, self.ns, _preload_content=False))
            return raw if (raw.get("status") or {}).get("allocation") else None

        return wait_for(allocated, 60, f"allocation of {cname}")

    def node_of(self, pod_name: str) -> str:
        return str(wait_for(lambda: pod(self.core, pod_name, self.ns)["spec"].get("nodeName"), 60, f"{pod_name} bound"))

    def prepare(self, node: str, claim: dict[str, Any], driver: str = DRV) -> tuple[Any, dict[str, Any]]:
        m = claim["metadata"]
        out = self.drivers.client(node, driver).prepare([(self.ns, m["name"], m["uid"])])[m["uid"]]
        spec: dict[str, Any] = {}
        if not out.error:
            _, _, cdi = self.drivers.dirs(node)
            spec = json.loads((cdi / f"k8s.{driver}-claim_{m['uid']}.json").read_text())
        return out, spec

    def unprepare(self, node: str, claim: dict[str, Any], driver: str = DRV) -> None:
        m = claim["metadata"]
        assert self.drivers.client(node, driver).unprepare([(self.ns, m["name"], m["uid"])]) == {m["uid"]: ""}


def device_uuid(resource: client.ResourceV1Api, node: str, device: str) -> str:
    [s] = slices_of(resource, node)
    return str(next(d for d in s["spec"]["devices"] if d["name"] == device)["attributes"]["uuid"]["string"])


def cdi_device(spec: dict[str, Any], uid: str, device: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(d for d in spec["devices"] if d["name"] == f"{uid}-{device}")["containerEdits"]
    return entry


def test_nvidia_style_corpus(cluster: Any, namespace: str, corpus: tuple[Drivers, list[str]]) -> None:
    drivers, (n_h100, n_mig, n_l4) = corpus
    c = Corpus(cluster, namespace, drivers)
    for n in (n_h100, n_mig, n_l4):
        wait_for(lambda n=n: slices_of(c.resource, n), 60, f"slices of {n}")
    gpu_req = [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]

    # 1. whole GPU (quickstart gpu-test1: one pod, one claim from a template)
    c.template("single-gpu", [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "selectors": [
        {"cel": {"expression": "device.attributes['gpu.nvidia.com'].architecture == 'Hopper'"}}]}}])
    c.pod("pod-whole", {"gpu": {"resourceClaimTemplateName": "single-gpu"}}, {"ctr": [{"name": "gpu"}]})
    claim = c.claim_of("pod-whole", "gpu")
    node = c.node_of("pod-whole")
    [res] = claim["status"]["allocation"]["devices"]["results"]
    out, spec = c.prepare(node, claim)
    uid = claim["metadata"]["uid"]
    assert out.error == "" and [d["deviceName"] for d in out.devices] == [res["device"]]
    assert out.devices[0]["cdiDeviceIds"] == [f"k8s.gpu.nvidia.com/claim={uid}-{res['device']}"]
    assert spec["cdiVersion"] == "0.6.0" and spec["kind"] == "k8s.gpu.nvidia.com/claim"
    var = "GROVE_DRA_DEVICE_" + res["device"].upper().replace("-", "_")
    assert cdi_device(spec, uid, res["device"]) == {"env": [f"{var}={device_uuid(c.resource, node, res['device'])}"]}
    assert spec["containerEdits"]["env"] == [f"GROVE_DRA_SIMULATED_NODE={node}", "NVIDIA_VISIBLE_DEVICES=void"]
    assert spec["annotations"]["grove.io/claim-uid"] == uid

    # 2. two pods, one claim (quickstart gpu-test2 / e2e "shared claim across pods")
    c.template("shared-gpu", gpu_req, kind="ResourceClaim")
    for p in ("pod-a", "pod-b"):
        c.pod(p, {"shared": {"resourceClaimName": "shared-gpu"}}, {"ctr": [{"name": "shared"}]})
    shared = c.claim_of("pod-a", "shared")
    na, nb = c.node_of("pod-a"), c.node_of("pod-b")
    assert na == nb
    wait_for(lambda: len(raw_json(c.resource.read_namespaced_resource_claim(
        "shared-gpu", namespace, _preload_content=False))["status"].get("reservedFor") or []) == 2, 60, "2 consumers")
    first, spec_a = c.prepare(na, shared)
    second, spec_b = c.prepare(na, shared)  # the kubelet prepares again for the second pod
    assert first.error == "" and second.devices == first.devices and spec_a == spec_b

    # 3. two containers, one claim (quickstart gpu-test3)
    c.template("two-ctr", gpu_req)
    c.pod("pod-2ctr", {"gpu": {"resourceClaimTemplateName": "two-ctr"}},
          {"ctr0": [{"name": "gpu"}], "ctr1": [{"name": "gpu"}]})
    two = c.claim_of("pod-2ctr", "gpu")
    assert len(two["status"]["allocation"]["devices"]["results"]) == 1
    out2, _ = c.prepare(c.node_of("pod-2ctr"), two)
    assert out2.error == "" and len(out2.devices) == 1

    # 4. selectors on productName, memory, architecture, driverVersion (NVIDIA's e2e CEL specs)
    selectors = {
        "by-product": ("device.attributes['gpu.nvidia.com'].productName.matches('L4')", n_l4),
        "by-memory": ("device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('40Gi')) < 0 && "
                      "device.attributes['gpu.nvidia.com'].type == 'gpu'", n_l4),
        "by-arch": ("device.attributes['gpu.nvidia.com'].architecture == 'Ada Lovelace'", n_l4),
        "by-driver": ("device.attributes['gpu.nvidia.com'].driverVersion.compareTo(semver('560.0.0')) >= 0 && "
                      "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100 80GB HBM3' && "
                      "device.attributes['gpu.nvidia.com'].type == 'gpu'", None),
    }
    for name, (expr, want) in selectors.items():
        c.template(name, [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com",
                                                      "selectors": [{"cel": {"expression": expr}}]}}])
        c.pod(name, {"gpu": {"resourceClaimTemplateName": name}}, {"ctr": [{"name": "gpu"}]})
        c.claim_of(name, "gpu")
        got = c.node_of(name)
        assert got == (want or got) and (want is not None or got in (n_h100, n_mig)), (name, got)

    # 5. MIG by profile (NVIDIA's mig-test: mig.nvidia.com with a profile selector)
    c.template("mig-1g", [{"name": "mig", "exactly": {"deviceClassName": "mig.nvidia.com", "selectors": [
        {"cel": {"expression": "device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"}}]}}])
    c.pod("pod-mig", {"mig": {"resourceClaimTemplateName": "mig-1g"}}, {"ctr": [{"name": "mig"}]})
    mclaim = c.claim_of("pod-mig", "mig")
    assert c.node_of("pod-mig") == n_mig
    mout, mspec = c.prepare(n_mig, mclaim)
    [mres] = mclaim["status"]["allocation"]["devices"]["results"]
    assert mout.error == "" and mres["device"].startswith("gpu-0-mig-1g10gb-19-")
    mvar = "GROVE_DRA_DEVICE_" + mres["device"].upper().replace("-", "_")
    assert cdi_device(mspec, mclaim["metadata"]["uid"], mres["device"])["env"][0].startswith(f"{mvar}=MIG-")

    # 6. time-slicing, shared by two pods (NVIDIA's gpu-test-timeslicing), config naming its request
    c.template("ts-gpu", [{"name": "ts-gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}],
               [gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}}, ["ts-gpu"])],
               kind="ResourceClaim")
    for p in ("ts-0", "ts-1"):
        c.pod(p, {"shared-gpu": {"resourceClaimName": "ts-gpu"}}, {"ctr": [{"name": "shared-gpu"}]})
    ts = c.claim_of("ts-0", "shared-gpu")
    ts_node = c.node_of("ts-0")
    assert c.node_of("ts-1") == ts_node
    assert [e.get("requests") for e in ts["spec"]["devices"]["config"]] == [["ts-gpu"]]
    alloc_cfg = ts["status"]["allocation"]["devices"]["config"]
    # kube-scheduler v1.37.2 copies the config without its `requests` list (seen here: [None]); the driver
    # takes the list from the claim's spec (grove.dra.claims.with_claim_requests), see case 10
    assert [e.get("requests") for e in alloc_cfg if e["source"] == "FromClaim"] in ([None], [["ts-gpu"]])
    tout, tspec = c.prepare(ts_node, ts)
    [tres] = ts["status"]["allocation"]["devices"]["results"]
    tvar = "GROVE_DRA_DEVICE_" + tres["device"].upper().replace("-", "_")
    tenv = cdi_device(tspec, ts["metadata"]["uid"], tres["device"])["env"]
    assert tout.error == ""
    assert f"{tvar}_SHARING_STRATEGY=TimeSlicing" in tenv and f"{tvar}_TIMESLICE_INTERVAL=Long" in tenv
    _, ts_data, _ = drivers.dirs(ts_node)
    settings = json.loads((ts_data / "gpu-settings.json").read_text())
    assert settings[tres["device"]] == {"claim": ts["metadata"]["uid"], "computeMode": "DEFAULT", "timeSlice": "Long"}
    assert c.prepare(ts_node, ts)[0].devices == tout.devices  # second pod: same device

    # 7. MPS (NVIDIA's gpu-test-mps), two containers of one pod sharing the claim
    c.template("mps-gpu", [{"name": "mps-gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}],
               [gpu_config({"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 50,
                                                             "defaultPinnedDeviceMemoryLimit": "10Gi"}},
                           ["mps-gpu"])])
    c.pod("pod-mps", {"mps": {"resourceClaimTemplateName": "mps-gpu"}},
          {"mps-ctr0": [{"name": "mps", "request": "mps-gpu"}], "mps-ctr1": [{"name": "mps", "request": "mps-gpu"}]})
    mps_claim = c.claim_of("pod-mps", "mps")
    mps_node = c.node_of("pod-mps")
    pout, pspec = c.prepare(mps_node, mps_claim)
    assert pout.error == ""
    _, mps_data, _ = drivers.dirs(mps_node)
    mgr = MpsManager(mps_data / "mps", StandinLauncher())
    running = mgr.running()
    assert len(running) == 1 and next(iter(running)).startswith(mps_claim["metadata"]["uid"] + "-")
    [pres] = mps_claim["status"]["allocation"]["devices"]["results"]
    pedits = cdi_device(pspec, mps_claim["metadata"]["uid"], pres["device"])
    assert {"CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps", "CUDA_MPS_LOG_DIRECTORY=/var/log/nvidia-mps",
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=10240M"} <= set(pedits["env"])
    did = next(iter(running))
    assert {(m["containerPath"], m["hostPath"]) for m in pedits["mounts"]} == {
        ("/dev/shm", str(mps_data / "mps" / did / "shm")), ("/tmp/nvidia-mps", str(mps_data / "mps" / did / "pipe")),
        ("/var/log/nvidia-mps", str(mps_data / "mps" / did / "log"))}
    assert c.prepare(mps_node, mps_claim)[0].devices == pout.devices and mgr.running() == running
    c.unprepare(mps_node, mps_claim)
    assert mgr.running() == {} and list((mps_data / "mps").iterdir()) == []

    # 8. ComputeDomain channel (NVIDIA's imex-channel-injection: the controller's channel template)
    domain = str(uuid.uuid4())
    c.template("imex-channel-0", [{"name": "channel", "exactly": {
        "deviceClassName": "compute-domain-default-channel.nvidia.com"}}],
        [{"opaque": {"driver": CD, "parameters": {"apiVersion": "resource.nvidia.com/v1beta1",
                                                  "kind": "ComputeDomainChannelConfig", "domainID": domain}}}])
    c.pod("pod-imex", {"imex-channel-0": {"resourceClaimTemplateName": "imex-channel-0"}},
          {"ctr": [{"name": "imex-channel-0"}]})
    cd_claim = c.claim_of("pod-imex", "imex-channel-0")
    cd_node = c.node_of("pod-imex")
    [cres] = cd_claim["status"]["allocation"]["devices"]["results"]
    assert (cres["driver"], cres["device"]) == (CD, "channel-0")
    cm = cd_claim["metadata"]
    gpu_side = drivers.client(cd_node).prepare([(namespace, cm["name"], cm["uid"])])[cm["uid"]]
    assert (gpu_side.error, gpu_side.devices) == ("", [])  # nothing of gpu.nvidia.com in this claim
    cout, cspec = c.prepare(cd_node, cd_claim, CD)
    assert cout.error == "" and cout.devices[0]["cdiDeviceIds"] == [
        f"k8s.compute-domain.nvidia.com/claim={cd_claim['metadata']['uid']}-channel-0"]
    [node_entry] = cdi_device(cspec, cd_claim["metadata"]["uid"], "channel-0")["deviceNodes"]
    assert node_entry["path"] == "/dev/nvidia-caps-imex-channels/channel0"
    assert Path(node_entry["hostPath"]).is_file()
    _, cd_data, _ = drivers.dirs(cd_node)
    assert Path(node_entry["hostPath"]) == cd_data.parent / CD / "root/dev/nvidia-caps-imex-channels/channel0"

    # 9. an unknown opaque-config field is refused per claim, next to a good claim in the same call
    c.template("typo", gpu_req, [gpu_config({"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentag": 5}})])
    c.pod("pod-typo", {"gpu": {"resourceClaimTemplateName": "typo"}}, {"ctr": [{"name": "gpu"}]})
    bad = c.claim_of("pod-typo", "gpu")
    bad_node = c.node_of("pod-typo")
    good_claims = [(cl, c.node_of(p)) for cl, p in ((claim, "pod-whole"), (two, "pod-2ctr"))]
    good = next((cl for cl, n in good_claims if n == bad_node), None)
    refs = [(namespace, bad["metadata"]["name"], bad["metadata"]["uid"])]
    if good is not None:
        refs.append((namespace, good["metadata"]["name"], good["metadata"]["uid"]))
    outs = drivers.client(bad_node).prepare(refs)
    assert outs[bad["metadata"]["uid"]].error == (
        "config[0] (FromClaim): GpuConfig.sharing.mpsConfig.defaultActiveThreadPercentag: unknown field")
    assert outs[bad["metadata"]["uid"]].devices == []
    if good is not None:
        assert outs[good["metadata"]["uid"]].error == ""
    _, _, bad_cdi = drivers.dirs(bad_node)
    assert not (bad_cdi / f"k8s.gpu.nvidia.com-claim_{bad['metadata']['uid']}.json").exists()

    # 10. per-request configs in one claim: each request gets its own (the allocation keeps `requests`)
    c.template("two-configs", [{"name": "ts", "exactly": {"deviceClassName": "gpu.nvidia.com"}},
                               {"name": "mps", "exactly": {"deviceClassName": "gpu.nvidia.com"}}],
               [gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Short"}}, ["ts"]),
                gpu_config({"strategy": "MPS"}, ["mps"])])
    c.pod("pod-two-configs", {"gpu": {"resourceClaimTemplateName": "two-configs"}},
          {"a": [{"name": "gpu", "request": "ts"}], "b": [{"name": "gpu", "request": "mps"}]})
    tc = c.claim_of("pod-two-configs", "gpu")
    tc_node = c.node_of("pod-two-configs")
    tc_alloc = tc["status"]["allocation"]["devices"]
    assert [e.get("requests") for e in tc["spec"]["devices"]["config"]] == [["ts"], ["mps"]]
    tcout, tcspec = c.prepare(tc_node, tc)
    assert tcout.error == ""
    by_req = {r["request"]: r["device"] for r in tc_alloc["results"]}
    env_ts = cdi_device(tcspec, tc["metadata"]["uid"], by_req["ts"])["env"]
    env_mps = cdi_device(tcspec, tc["metadata"]["uid"], by_req["mps"])["env"]
    assert any(e.endswith("_TIMESLICE_INTERVAL=Short") for e in env_ts)
    assert "CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps" not in env_ts
    assert "CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps" in env_mps
    assert {d["requestNames"][0]: d["deviceName"] for d in tcout.devices} == by_req
    c.unprepare(tc_node, tc)
